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


def test_password_is_stored_encrypted(repo: Repository, db_url: str) -> None:
    """The app password never sits in the database file in clear text."""
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
    repo.record_sync("u1", NOW)
    repo.set_needs_password("u1", True)
    account = repo.account("u1")
    assert account is not None
    assert account.notifications.leads == (10, 1) and account.notifications.daily_at is None
    assert account.last_sync_at == NOW and account.needs_password
    repo.set_credentials("u1", Credentials("ivan@yandex.ru", "new"))
    assert repo.account("u1").needs_password is False  # type: ignore[union-attr]


def test_wal_mode_and_threads(repo: Repository, db_url: str) -> None:
    """SQLite runs in WAL mode and other threads read and write the same file."""
    path = sqlite_path(db_url)
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


def test_schema_upgrade_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An older database is upgraded by the migrations in order, and stamped."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    open_database(url).close()
    ran: list[int] = []
    monkeypatch.setattr(dbmod, "MIGRATIONS", [lambda db: ran.append(2)])
    monkeypatch.setattr(dbmod, "SCHEMA_VERSION", 2)
    open_database(url).close()
    assert ran == [2]
    open_database(url).close()
    assert ran == [2]  # already at 2: nothing runs twice


def test_key_file_created_once_with_0600(tmp_path: Path) -> None:
    """Without YC_SECRET_KEY a key file is generated beside the database, private, and reused."""
    key = load_or_create_key(tmp_path / "data")
    mode = stat.S_IMODE((tmp_path / "data" / "secret.key").stat().st_mode)
    assert mode == 0o600
    assert load_or_create_key(tmp_path / "data") == key
    assert Vault(key).decrypt(Vault(key).encrypt("x")) == "x"
    with pytest.raises(ValueError):
        Vault("other").decrypt(Vault(key).encrypt("x"))
