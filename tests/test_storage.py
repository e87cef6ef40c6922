"""Storage: accounts with encrypted passwords, calendars, settings, schema versioning."""

from __future__ import annotations

import sqlite3
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.model import CalendarInfo, Credentials, NotificationSettings
from storage import db as dbmod
from storage.crypto import Vault, load_or_create_key
from storage.db import open_database, sqlite_path
from storage.repository import Repository

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
CALS = [CalendarInfo("/c/events-1/", "Work"), CalendarInfo("/c/events-2/", "Work")]


def _connect(repo: Repository, user: str = "u1") -> None:
    repo.save_account(user_id=user, creds=Credentials("ivan@yandex.ru", "app-pass-123"),
                      timezone="Europe/Moscow", language="ru", calendars=CALS,
                      notifications=NotificationSettings(), now=NOW)


def test_password_is_stored_encrypted(sqlite_url: str) -> None:
    """The app password never sits in the database file in clear text."""
    open_database(sqlite_url)
    repo = Repository(Vault("test-secret"))
    db_url = sqlite_url
    _connect(repo)
    assert repo.credentials("u1") == Credentials("ivan@yandex.ru", "app-pass-123")
    raw = Path(sqlite_path(db_url) or "").read_bytes()
    wal = Path(str(sqlite_path(db_url)) + "-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    assert b"app-pass-123" not in raw
    assert "app-pass-123" not in repr(repo.credentials("u1"))


def test_account_round_trip_and_calendars(repo: Repository) -> None:
    """Settings, zone and both same-named calendars (keyed by href) come back as saved."""
    _connect(repo)
    account = repo.account("u1")
    assert account is not None
    assert (account.timezone, account.language) == ("Europe/Moscow", "ru")
    assert account.notifications == NotificationSettings()
    assert [c.href for c in repo.calendars("u1")] == ["/c/events-1/", "/c/events-2/"]
    repo.set_watched("u1", {"/c/events-2/"})
    assert [c.watched for c in repo.calendars("u1")] == [False, True]


def test_replace_calendars_keeps_choices(repo: Repository) -> None:
    """A refreshed list keeps each known href's choice, watches new ones, drops vanished."""
    _connect(repo)
    repo.set_watched("u1", {"/c/events-1/"})
    found = [CalendarInfo("/c/events-2/", "Work 2"), CalendarInfo("/c/events-3/", "New")]
    cals = repo.replace_calendars("u1", found)
    assert [(c.href, c.name, c.watched) for c in cals] == [
        ("/c/events-2/", "Work 2", False), ("/c/events-3/", "New", True)]


def test_disconnect_forgets_everything(repo: Repository) -> None:
    """delete_account removes the account and its calendars; other users are untouched."""
    _connect(repo, "u1")
    _connect(repo, "u2")
    assert repo.delete_account("u1") is True
    assert repo.account("u1") is None and repo.calendars("u1") == []
    assert repo.account("u2") is not None and len(repo.calendars("u2")) == 2
    assert repo.delete_account("u1") is False


def test_settings_and_health_updates(repo: Repository) -> None:
    """Notification settings, sync time and the needs-password flag persist, times aware UTC."""
    _connect(repo)
    repo.set_notifications("u1", NotificationSettings(daily_at=None, leads=(10, 1)))
    from storage.models import AccountRow

    AccountRow.update(last_sync_at=NOW.replace(tzinfo=None)).execute()
    repo.set_needs_password("u1", True)
    account = repo.account("u1")
    assert account is not None
    assert account.notifications.leads == (10, 1) and account.notifications.daily_at is None
    assert account.last_sync_at == NOW and account.needs_password
    repo.set_credentials("u1", Credentials("ivan@yandex.ru", "new"))
    assert repo.account("u1").needs_password is False  # type: ignore[union-attr]


def test_wal_mode_and_threads(repo: Repository, db_url: str) -> None:
    """SQLite runs in WAL mode; on both databases other threads read and write at once."""
    path = sqlite_path(db_url)
    if path is not None:
        assert sqlite3.connect(str(path)).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            _connect(repo, f"t{n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and len(repo.accounts()) == 4


V1_SCHEMA = """
CREATE TABLE schemaversion (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
INSERT INTO schemaversion (version) VALUES (1);
CREATE TABLE account (id INTEGER PRIMARY KEY, mm_user_id VARCHAR(64) NOT NULL UNIQUE,
  login VARCHAR(254) NOT NULL, password_enc TEXT NOT NULL, timezone VARCHAR(64) NOT NULL,
  language VARCHAR(8) NOT NULL, created_at DATETIME NOT NULL, daily_at VARCHAR(5),
  daily_weekdays INTEGER NOT NULL, remind_leads VARCHAR(64) NOT NULL, status_on INTEGER NOT NULL,
  changes_on INTEGER NOT NULL, responses_on INTEGER NOT NULL, needs_password INTEGER NOT NULL,
  last_sync_at DATETIME, last_error TEXT, last_error_at DATETIME);
CREATE TABLE calendar (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES account(id)
  ON DELETE CASCADE, href VARCHAR(512) NOT NULL, name VARCHAR(256) NOT NULL,
  watched INTEGER NOT NULL, position INTEGER NOT NULL);
CREATE UNIQUE INDEX calendar_account_id_href ON calendar (account_id, href);
"""


def test_schema_upgrade_from_version_1(tmp_path: Path) -> None:
    """A version-1 database (issue 2's schema) is upgraded in place, its data kept."""
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(V1_SCHEMA)
    vault = Vault("k")
    con.execute(
        "INSERT INTO account VALUES (1, 'u1', 'ivan', ?, 'Europe/Moscow', 'en', "
        "'2026-11-01 00:00:00', '09:00', 1, '10', 1, 1, 1, 0, NULL, NULL, NULL)",
        (vault.encrypt("pw"),),
    )
    con.execute("INSERT INTO calendar VALUES (1, 1, '/c/events-1/', 'Work', 1, 0)")
    con.commit()
    con.close()
    open_database(f"sqlite:///{path}").close()
    version = sqlite3.connect(path).execute("SELECT version FROM schemaversion").fetchone()[0]
    assert version == dbmod.SCHEMA_VERSION == 3
    repo = Repository(vault)
    open_database(f"sqlite:///{path}")
    assert repo.credentials("u1") == Credentials("ivan", "pw")
    assert [c.href for c in repo.calendars("u1")] == ["/c/events-1/"]
    columns = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(account)")}
    assert {"bot_status_expires", "status_blocked", "auth_notice_sent"} <= columns


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database from a newer bot is not touched."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    open_database(url).close()
    sqlite3.connect(tmp_path / "new.db").execute(
        "UPDATE schemaversion SET version = 99"
    ).connection.commit()
    with pytest.raises(RuntimeError):
        open_database(url)


def test_key_file_created_once_with_0600(tmp_path: Path) -> None:
    """Without YC_SECRET_KEY a key file is generated beside the database, private, and reused."""
    key = load_or_create_key(tmp_path / "data")
    mode = stat.S_IMODE((tmp_path / "data" / "secret.key").stat().st_mode)
    assert mode == 0o600
    assert load_or_create_key(tmp_path / "data") == key
    assert Vault(key).decrypt(Vault(key).encrypt("x")) == "x"
    with pytest.raises(ValueError):
        Vault("other").decrypt(Vault(key).encrypt("x"))


def test_rewatched_calendar_and_new_zone_sync_silently(repo: Repository) -> None:
    """Watching a calendar again, or a new time zone, resets the silent-baseline flag."""
    from storage.models import CalendarRow

    _connect(repo)
    CalendarRow.update(synced=True).execute()
    repo.set_watched("u1", {"/c/events-1/"})
    assert {c.href: c.synced for c in CalendarRow.select()} == {
        "/c/events-1/": True, "/c/events-2/": False}
    CalendarRow.update(synced=True).execute()
    repo.set_timezone("u1", "Asia/Yekaterinburg")
    assert not any(c.synced for c in CalendarRow.select())
