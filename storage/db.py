"""Database set-up: opened from a URL (SQLite by default, PostgreSQL one URL away), WAL mode
for SQLite, and a schema version with an ordered list of upgrades."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from peewee import Database, SqliteDatabase
from playhouse.db_url import connect

from storage.models import ALL_MODELS, SchemaVersion, database

log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {
    "journal_mode": "wal",  # readers never block the writer: chat handlers read while polls write
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    "synchronous": "normal",
}

# Upgrades from version N-1 to N, by index: MIGRATIONS[0] brings a version-1 database to 2.
# A fresh database is created at the newest shape and stamped with SCHEMA_VERSION directly.
Migration = Callable[[Database], None]


def _v2_engine_state(db: Database) -> None:
    """Schema 2: the notification engine's snapshot, notices and threads, and its columns.

    Columns are added as nullable on purpose: peewee's SQLite migrator adds a NOT NULL column by
    rebuilding the table (copy, drop, rename), and dropping ``account`` with foreign keys on
    would cascade-delete every calendar. The model still always writes a value.
    """
    from peewee import BooleanField, CharField, DateTimeField
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

    from storage.models import NoticeRow, ObjectRow, OccurrenceRow, ThreadRow

    migrator = SqliteMigrator(db) if isinstance(db, SqliteDatabase) else PostgresqlMigrator(db)
    migrate(
        migrator.add_column("account", "auth_notice_sent", BooleanField(null=True, default=False)),
        migrator.add_column("account", "status_blocked", BooleanField(null=True, default=False)),
        migrator.add_column("account", "bot_status_text", CharField(max_length=128, null=True)),
        migrator.add_column("account", "bot_status_emoji", CharField(max_length=64, null=True)),
        migrator.add_column("account", "bot_status_expires", DateTimeField(null=True)),
        migrator.add_column("account", "window_end", DateTimeField(null=True)),
        migrator.add_column("calendar", "synced", BooleanField(null=True, default=False)),
    )
    db.create_tables([ObjectRow, OccurrenceRow, NoticeRow, ThreadRow])


MIGRATIONS: list[Migration] = [_v2_engine_state]
SCHEMA_VERSION = 1 + len(MIGRATIONS)


def sqlite_path(url: str) -> Path | None:
    """The file behind a sqlite:/// URL (relative, or absolute with four slashes)."""
    parsed = urlparse(url)
    if parsed.scheme != "sqlite":
        return None
    return Path(parsed.path[1:]) if parsed.path.startswith("/") else Path(parsed.path)


def open_database(url: str) -> Database:
    """Connect, bind the models, and bring the schema up to date."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # BEGIN IMMEDIATE: our atomic() blocks read, then write. A deferred BEGIN takes a WAL
        # read snapshot; if another connection commits before our first write, the upgrade
        # fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT) - busy_timeout does
        # not apply. IMMEDIATE takes the write lock up front, where busy_timeout does wait.
        db: Database = SqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS,
                                      check_same_thread=False, lock_type="IMMEDIATE")
    else:
        db = connect(url)
    database.initialize(db)
    upgrade(db)
    return db


def upgrade(db: Database) -> int:
    """Create or upgrade the schema; returns the version now in force."""
    with db.atomic():
        if not db.table_exists(SchemaVersion._meta.table_name):
            db.create_tables(ALL_MODELS)
            SchemaVersion.create(version=SCHEMA_VERSION)
            log.info("db.created version=%s", SCHEMA_VERSION)
            return SCHEMA_VERSION
        row = SchemaVersion.get()
        while row.version < SCHEMA_VERSION:
            MIGRATIONS[row.version - 1](db)
            row.version += 1
            row.save()
            log.info("db.upgraded version=%s", row.version)
        if row.version > SCHEMA_VERSION:
            raise RuntimeError(
                f"database schema {row.version} is newer than this bot ({SCHEMA_VERSION})"
            )
        return int(row.version)
