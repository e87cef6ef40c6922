"""Database set-up: opened from a URL (SQLite by default, PostgreSQL one URL away), WAL mode
for SQLite, a schema version with an ordered list of upgrades, the write transaction every
store uses, and the guard that keeps a second process off one SQLite file."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

from peewee import BaseQuery, Database, SqliteDatabase, TextField
from playhouse.db_url import connect

from storage.models import ALL_MODELS, SchemaVersion, database

log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {
    "journal_mode": "wal",  # readers never block the writer: chat handlers read while polls write
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    "synchronous": "normal",
}


def tuples(query: BaseQuery) -> Iterator[tuple[Any, ...]]:
    """The rows of ``query`` as tuples of column values (``query.tuples()``, run).

    peewee's stubs type ``.tuples()`` as returning the query unchanged, whose rows they type as
    model instances; at run time the rows are plain tuples. The values are typed Any, as peewee
    types a column's value only on a model instance."""
    return iter(cast(Iterable[tuple[Any, ...]], query.tuples()))


# Upgrades from version N-1 to N, by index: MIGRATIONS[0] brings a version-1 database to 2.
# A fresh database is created at the newest shape and stamped with SCHEMA_VERSION directly.
Migration = Callable[[Database], None]


def _migrator(db: Database) -> Any:
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator

    return SqliteMigrator(db) if isinstance(db, SqliteDatabase) else PostgresqlMigrator(db)


def _v2_engine_state(db: Database) -> None:
    """Schema 2: the notification engine's snapshot, notices and threads, and its columns.

    Columns are added as nullable on purpose: peewee's SQLite migrator adds a NOT NULL column by
    rebuilding the table (copy, drop, rename), and dropping ``account`` with foreign keys on
    would cascade-delete every calendar. The model still always writes a value. The tables are
    created from frozen copies of their version-2 shape, so later versions can add to them.
    """
    from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField
    from peewee import Model as PeeweeModel
    from playhouse.migrate import migrate

    from storage.models import AccountRow

    m = _migrator(db)
    migrate(
        m.add_column("account", "auth_notice_sent", BooleanField(null=True, default=False)),
        m.add_column("account", "status_blocked", BooleanField(null=True, default=False)),
        m.add_column("account", "bot_status_text", CharField(max_length=128, null=True)),
        m.add_column("account", "bot_status_emoji", CharField(max_length=64, null=True)),
        m.add_column("account", "bot_status_expires", DateTimeField(null=True)),
        m.add_column("account", "window_end", DateTimeField(null=True)),
        m.add_column("calendar", "synced", BooleanField(null=True, default=False)),
    )

    class V2(PeeweeModel):
        class Meta:
            database = db

    class ObjectV2(V2):
        account = ForeignKeyField(AccountRow, on_delete="CASCADE")
        calendar = CharField(max_length=512)
        href = CharField(max_length=512)
        etag = CharField(max_length=256)
        ics = TextField()

        class Meta:
            table_name = "object"
            indexes = ((("account", "href"), True),)

    class OccurrenceV2(V2):
        account = ForeignKeyField(AccountRow, on_delete="CASCADE")
        calendar = CharField(max_length=512)
        uid = CharField(max_length=512)
        rid = CharField(max_length=64)
        start = DateTimeField(index=True)
        end = DateTimeField()
        data = TextField()

        class Meta:
            table_name = "occurrence"
            indexes = ((("account", "calendar", "uid", "rid"), True),)

    class NoticeV2(V2):
        account = ForeignKeyField(AccountRow, on_delete="CASCADE")
        notice_id = CharField(max_length=700)
        kind = CharField(max_length=16)
        message = TextField()
        thread_key = CharField(max_length=600, null=True)
        created_at = DateTimeField()
        expires_at = DateTimeField(null=True)
        sent_at = DateTimeField(null=True, index=True)
        post_id = CharField(max_length=64, null=True)
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField(null=True)
        dropped = BooleanField(default=False)

        class Meta:
            table_name = "notice"
            indexes = ((("account", "notice_id"), True),)

    class ThreadV2(V2):
        account = ForeignKeyField(AccountRow, on_delete="CASCADE")
        thread_key = CharField(max_length=600)
        post_id = CharField(max_length=64)

        class Meta:
            table_name = "thread"
            indexes = ((("account", "thread_key"), True),)

    db.create_tables([ObjectV2, OccurrenceV2, NoticeV2, ThreadV2])


def _v3_coordination(db: Database) -> None:
    """Schema 3: the database decides across processes. Account leases and the flags their
    holder re-reads, notice claims and resumable parts, the incoming-post inbox, the process
    heartbeats, and the object each stored occurrence came from (filled in from the
    occurrence's own JSON, so the snapshot survives the upgrade and nothing is re-announced).
    """
    import json

    from peewee import BooleanField, CharField, DateTimeField, IntegerField
    from playhouse.migrate import migrate

    from storage.models import AccountRow, InboxRow, NoticeRow, OccurrenceRow, ProcessRow

    m = _migrator(db)
    migrate(
        m.add_column("account", "owner", CharField(max_length=128, null=True)),
        m.add_column("account", "lease_until", DateTimeField(null=True)),
        m.add_column("account", "poll_due_at", DateTimeField(null=True)),
        m.add_column("account", "dirty", BooleanField(null=True, default=False)),
        m.add_column("account", "snapshot_rev", IntegerField(null=True, default=0)),
        m.add_index("account", ("owner",), False),
        m.add_column("occurrence", "href", CharField(max_length=512, null=True)),
        m.add_column("notice", "claimed_by", CharField(max_length=128, null=True)),
        m.add_column("notice", "claim_until", DateTimeField(null=True)),
        m.add_column("notice", "parts", TextField(null=True, default="")),
        m.add_column("notice", "ref", TextField(null=True)),
        m.add_column("notice", "threaded", BooleanField(null=True, default=False)),
        m.add_column("notice", "drop_reason", CharField(max_length=32, null=True)),
    )
    db.create_tables([ProcessRow, InboxRow])
    # Version-2 threads held change and answer notices only: those go out in order now.
    # The new columns get their values (a NULL boolean would make the claim query skip a row).
    AccountRow.update(dirty=False, snapshot_rev=0).execute()
    # Version 2 added its booleans as nullable columns left NULL on the rows it found.
    AccountRow.update(auth_notice_sent=False).where(AccountRow.auth_notice_sent.is_null()).execute()
    AccountRow.update(status_blocked=False).where(AccountRow.status_blocked.is_null()).execute()
    NoticeRow.update(parts="", threaded=NoticeRow.kind.in_(["change", "response"])).execute()
    # A version-2 notice named its thread in ``thread_key``; version 3 reads the threads from
    # ``ref``: a pending change or answer keeps replying in its meeting's thread.
    threads = db.execute_sql(
        "SELECT id, thread_key FROM notice WHERE thread_key IS NOT NULL AND ref IS NULL").fetchall()
    for pk, key in threads:
        ref = json.dumps({"threads": [key], "refs": [], "actions": []}, ensure_ascii=False)
        db.execute_sql(f"UPDATE notice SET ref = {db.param} WHERE id = {db.param}", (ref, pk))
    rows = list(tuples(OccurrenceRow.select(OccurrenceRow.id, OccurrenceRow.data)))
    for pk, data in rows:
        OccurrenceRow.update(href=json.loads(data).get("href") or "").where(
            OccurrenceRow.id == pk).execute()


MIGRATIONS: list[Migration] = [_v2_engine_state, _v3_coordination]
SCHEMA_VERSION = 1 + len(MIGRATIONS)


def sqlite_path(url: str) -> Path | None:
    """The file behind a sqlite:/// URL (relative, or absolute with four slashes)."""
    parsed = urlparse(url)
    if parsed.scheme != "sqlite":
        return None
    return Path(parsed.path[1:]) if parsed.path.startswith("/") else Path(parsed.path)


def is_sqlite(db: Database | None = None) -> bool:
    target = db if db is not None else database.obj
    return isinstance(target, SqliteDatabase)


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
    if not isinstance(db, SqliteDatabase):
        # Several processes may start at once on one PostgreSQL: one upgrades, the others
        # wait on this advisory lock (released at commit) and then find the schema current.
        with db.atomic():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_UPGRADE_LOCK,))
            upgrade(db)
    else:
        upgrade(db)
    return db


def ping() -> bool:
    """Whether the database answers a trivial query (on this thread's connection)."""
    try:
        database.execute_sql("SELECT 1").fetchone()
        return True
    except Exception:
        log.warning("db.ping_failed", exc_info=True)
        return False


_UPGRADE_LOCK = 0x59430001  # any constant: the key of the schema upgrade's advisory lock


# -- one writer at a time on SQLite ------------------------------------------------------------
# SQLite has one writer. Left to SQLite, a writer that finds the database locked polls for it
# with sleeps growing to 100 ms, so with eight pollers writing, the tick waited seconds for each
# transaction; queueing the writers of this process on a lock avoids that. PostgreSQL has row
# locks and needs no such thing: there the lock is a no-op.
_SQLITE_WRITES = threading.RLock()


@contextmanager
def write_transaction() -> Iterator[None]:
    """One write transaction: queued behind this process's other writers on SQLite."""
    if is_sqlite():
        with _SQLITE_WRITES, database.atomic():
            yield
    else:
        with database.atomic():
            yield


@contextmanager
def sqlite_write_lock() -> Iterator[None]:
    """A single write statement outside a transaction (same queue as above on SQLite)."""
    if is_sqlite():
        with _SQLITE_WRITES:
            yield
    else:
        yield


# -- one process per SQLite file ---------------------------------------------------------------
class DatabaseBusy(RuntimeError):
    """Another bot process already uses this SQLite database."""


_held_files: dict[Path, int] = {}


def claim_sqlite_file(path: Path) -> None:
    """Hold an exclusive ``flock`` on ``<database>.lock`` for the life of this process.

    SQLite serves one bot process at a time: two processes would both poll every account and
    post every notice twice. The kernel drops the lock when the process dies (even by SIGKILL),
    so a crash never blocks the next start. Re-entrant within one process (tests restart the
    bot in-process on the same file).
    """
    lock_path = path.resolve().with_name(path.name + ".lock")
    if lock_path in _held_files:
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatabaseBusy(
            f"Another bot process already uses the SQLite database {path}. SQLite serves one "
            "process at a time: stop the other one, or give every process the same "
            "PostgreSQL database (YC_DATABASE_URL=postgresql://…) to run several."
        ) from None
    _held_files[lock_path] = fd


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
