"""Storage: accounts with encrypted passwords, calendars, settings, schema versioning."""

from __future__ import annotations

import sqlite3
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from peewee import (
    BooleanField,
    CharField,
    Database,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)
from playhouse.db_url import connect as connect_url

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
    assert repo.account("u1") is None
    assert repo.calendars("u1") == []
    assert repo.account("u2") is not None
    assert len(repo.calendars("u2")) == 2
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
    assert account.notifications.leads == (10, 1)
    assert account.notifications.daily_at is None
    assert account.last_sync_at == NOW
    assert account.needs_password
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
    assert errors == []
    assert len(repo.accounts()) == 4


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
    with pytest.raises(ValueError, match="cannot be decrypted"):
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


# -- upgrades on both databases, built with frozen models of the old shapes --------------------

class _V1Version(Model):
    version = IntegerField()

    class Meta:
        table_name = "schemaversion"


class _V1Account(Model):
    mm_user_id = CharField(unique=True, max_length=64)
    login = CharField(max_length=254)
    password_enc = TextField()
    timezone = CharField(max_length=64)
    language = CharField(max_length=8)
    created_at = DateTimeField()
    daily_at = CharField(max_length=5, null=True)
    daily_weekdays = BooleanField()
    remind_leads = CharField(max_length=64)
    status_on = BooleanField()
    changes_on = BooleanField()
    responses_on = BooleanField()
    needs_password = BooleanField()
    last_sync_at = DateTimeField(null=True)
    last_error = TextField(null=True)
    last_error_at = DateTimeField(null=True)

    class Meta:
        table_name = "account"


class _V1Calendar(Model):
    account = ForeignKeyField(_V1Account, on_delete="CASCADE")
    href = CharField(max_length=512)
    name = CharField(max_length=256)
    watched = BooleanField()
    position = IntegerField()

    class Meta:
        table_name = "calendar"
        indexes = ((("account", "href"), True),)


class _V2Account(_V1Account):
    auth_notice_sent = BooleanField(null=True)
    status_blocked = BooleanField(null=True)
    bot_status_text = CharField(max_length=128, null=True)
    bot_status_emoji = CharField(max_length=64, null=True)
    bot_status_expires = DateTimeField(null=True)
    window_end = DateTimeField(null=True)

    class Meta:
        table_name = "account"


class _V2Calendar(_V1Calendar):
    account = ForeignKeyField(_V2Account, on_delete="CASCADE")
    synced = BooleanField(null=True)

    class Meta:
        table_name = "calendar"


class _V2Object(Model):
    account = ForeignKeyField(_V2Account)
    calendar = CharField(max_length=512)
    href = CharField(max_length=512)
    etag = CharField(max_length=256)
    ics = TextField()

    class Meta:
        table_name = "object"


class _V2Occurrence(Model):
    account = ForeignKeyField(_V2Account)
    calendar = CharField(max_length=512)
    uid = CharField(max_length=512)
    rid = CharField(max_length=64)
    start = DateTimeField()
    end = DateTimeField()
    data = TextField()

    class Meta:
        table_name = "occurrence"


class _V2Notice(Model):
    account = ForeignKeyField(_V2Account)
    notice_id = CharField(max_length=700)
    kind = CharField(max_length=16)
    message = TextField()
    thread_key = CharField(max_length=600, null=True)
    created_at = DateTimeField()
    expires_at = DateTimeField(null=True)
    sent_at = DateTimeField(null=True)
    post_id = CharField(max_length=64, null=True)
    attempts = IntegerField()
    next_attempt_at = DateTimeField(null=True)
    dropped = BooleanField()

    class Meta:
        table_name = "notice"


class _V2Thread(Model):
    account = ForeignKeyField(_V2Account)
    thread_key = CharField(max_length=600)
    post_id = CharField(max_length=64)

    class Meta:
        table_name = "thread"


_V1_MODELS: list[type[Model]] = [_V1Version, _V1Account, _V1Calendar]
_V2_MODELS: list[type[Model]] = [_V1Version, _V2Account, _V2Calendar, _V2Object, _V2Occurrence,
                                 _V2Notice, _V2Thread]
_OLD_CAL = "/calendars/ivan%40yandex.ru/events-1/"
_NAIVE = NOW.replace(tzinfo=None)


def _version_1(url: str, vault: Vault) -> Database:
    """A version-1 database (accounts and calendars only) with one account in it."""
    from storage.models import database

    db = connect_url(url)
    database.initialize(db)  # the upgrades name the current models' tables
    with db.bind_ctx(_V1_MODELS):
        db.create_tables(_V1_MODELS)
        _V1Version.create(version=1)
        account = _V1Account.create(
            mm_user_id="u1", login="ivan@yandex.ru", password_enc=vault.encrypt("pw"),
            timezone="Europe/Moscow", language="ru", created_at=_NAIVE, daily_at="08:30",
            daily_weekdays=False, remind_leads="10,1", status_on=True, changes_on=True,
            responses_on=False, needs_password=False, last_sync_at=_NAIVE)
        _V1Calendar.create(account=account, href=_OLD_CAL, name="Work", watched=True,
                           position=0)
        _V1Calendar.create(account=account, href="/calendars/ivan%40yandex.ru/events-2/",
                           name="Home", watched=False, position=1)
    return db


def _upgraded_account_is_intact(vault: Vault) -> None:
    repo = Repository(vault)
    found = repo.account_with_credentials("u1")
    assert found is not None
    account, creds = found
    assert creds == Credentials("ivan@yandex.ru", "pw")
    assert (account.language, account.timezone) == ("ru", "Europe/Moscow")
    assert account.notifications == NotificationSettings(
        daily_at="08:30", daily_weekdays=False, leads=(10, 1), responses=False)
    assert [(c.href, c.watched) for c in repo.calendars("u1")] == [
        (_OLD_CAL, True), ("/calendars/ivan%40yandex.ru/events-2/", False)]


def test_schema_upgrade_from_version_1_on_both_databases(db_url: str) -> None:
    """A version-1 database (SQLite or PostgreSQL) comes up at the current version, its
    accounts readable and leasable."""
    from storage.coordination import CoordinationStore

    vault = Vault("k")
    _version_1(db_url, vault).close()
    db = open_database(db_url)
    try:
        from storage.models import SchemaVersion

        assert SchemaVersion.get().version == dbmod.SCHEMA_VERSION == 3
        _upgraded_account_is_intact(vault)
        assert CoordinationStore().acquire("p", NOW, NOW + timedelta(seconds=30), 5) == {"u1"}
    finally:
        db.close()


def test_schema_upgrade_from_version_2_keeps_the_engine_state(db_url: str) -> None:
    """A running version-2 database (snapshot, pending and sent notices, threads) comes up at
    version 3 on SQLite and PostgreSQL with nothing lost: occurrences know their object, the
    pending notices are claimable (threaded for changes and answers, in their thread), the
    status marker and the baseline are kept, so nothing is re-announced."""
    from bot.core.model import Occurrence
    from bot.core.status import BotStatus
    from storage.coordination import CoordinationStore
    from storage.engine_store import EngineStore
    from storage.models import NoticeRow, OccurrenceRow, SchemaVersion
    from storage.outbox import OutboxStore
    from storage.serial import dump_occurrence

    vault = Vault("k")
    db = _version_1(db_url, vault)
    dbmod.MIGRATIONS[0](db)
    start = NOW + timedelta(hours=2)
    occurrences = [
        Occurrence(_OLD_CAL, "a", "", start, start + timedelta(hours=1), False, "Sync",
                   href=_OLD_CAL + "a.ics"),
        Occurrence(_OLD_CAL, "s", (start + timedelta(days=1)).isoformat(),
                   start + timedelta(days=1), start + timedelta(days=1, hours=1), False,
                   "Weekly", href=_OLD_CAL + "s.ics"),
    ]
    with db.bind_ctx(_V2_MODELS):
        _V1Version.update(version=2).execute()
        account = _V2Account.get(_V2Account.mm_user_id == "u1")
        _V2Account.update(auth_notice_sent=False, status_blocked=False,
                          bot_status_emoji="calendar", bot_status_text="На встрече",
                          bot_status_expires=_NAIVE + timedelta(minutes=40),
                          window_end=_NAIVE + timedelta(days=61)).execute()
        _V2Calendar.update(synced=True).execute()
        for occ in occurrences:
            _V2Object.create(account=account, calendar=_OLD_CAL, href=occ.href, etag="e1",
                             ics="BEGIN:VCALENDAR")
            _V2Occurrence.create(account=account, calendar=occ.calendar, uid=occ.uid,
                                 rid=occ.recurrence_id, start=occ.start.replace(tzinfo=None),
                                 end=occ.end.replace(tzinfo=None), data=dump_occurrence(occ))
        common = {"account": account, "created_at": _NAIVE, "next_attempt_at": _NAIVE,
                  "dropped": False}
        _V2Notice.create(notice_id="chg|1", kind="change", message="moved",
                         thread_key=f"{_OLD_CAL}|a", attempts=0, **common)
        _V2Notice.create(notice_id="rem|x|10", kind="reminder", message="soon",
                         expires_at=_NAIVE + timedelta(hours=2), attempts=1, **common)
        _V2Notice.create(notice_id="resp|0", kind="response", message="answers",
                         thread_key=f"{_OLD_CAL}|a", sent_at=_NAIVE, post_id="root-1",
                         attempts=1, **common)
        _V2Thread.create(account=account, thread_key=f"{_OLD_CAL}|a", post_id="root-1")
    db.close()

    db = open_database(db_url)
    try:
        assert SchemaVersion.get().version == 3
        _upgraded_account_is_intact(vault)
        assert {r.href for r in OccurrenceRow.select()} == {o.href for o in occurrences}
        store = EngineStore()
        assert set(store.snapshot("u1").values()) == set(occurrences)
        state = store.poll_state("u1")
        assert state.unsynced == set()  # the baseline stays: no re-announce
        assert state.rev == 0
        assert state.window_end == NOW + timedelta(days=61)
        assert store.status_marker("u1") == BotStatus(
            "calendar", "На встрече", NOW + timedelta(minutes=40))
        assert {r.notice_id: r.threaded for r in NoticeRow.select()} == {
            "chg|1": True, "rem|x|10": False, "resp|0": True}
        outbox = OutboxStore()
        claimed = {c.notice_id: c for c in outbox.claim("p", NOW + timedelta(seconds=1))}
        assert set(claimed) == {"chg|1", "rem|x|10"}
        assert claimed["chg|1"].thread_keys == (f"{_OLD_CAL}|a",)
        assert outbox.thread_root("u1", claimed["chg|1"].thread_keys) == "root-1"
        assert CoordinationStore().acquire("p", NOW, NOW + timedelta(seconds=30), 5) == {"u1"}
        assert CoordinationStore().take_dirty("p") == set()
    finally:
        db.close()
