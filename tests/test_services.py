"""Use cases on the fake calendar source: connect, queries, bad input changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.errors import AuthRefused, BadInput, NotConnected, ServerUnavailable
from bot.services import Services, me_address
from storage.repository import Repository
from tests.fake_calendar import FakeCalendarSource
from tests.ics_builder import event

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


@pytest.fixture
def setup(repo: Repository):
    source = FakeCalendarSource()
    source.add_account("ivan@yandex.ru", "pw")
    cal = source.add_calendar("ivan@yandex.ru", "events-1", "Work")
    source.add_calendar("ivan@yandex.ru", "todos-2", "Tasks", components=("VTODO",))
    services = Services(repo, source, clock=lambda: NOW, default_timezone="Europe/Moscow")
    return source, cal, services, repo


def test_connect_checks_before_saving(setup) -> None:
    """A refused password or a silent server stores nothing; the right one stores the account
    with the profile's zone and default notifications."""
    source, _cal, services, repo = setup
    with pytest.raises(AuthRefused):
        services.connect("u", "ivan@yandex.ru", "bad", zone=None, profile_zone=None, language="en")
    source.fail_with(ServerUnavailable, times=1)
    with pytest.raises(ServerUnavailable):
        services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    assert repo.account("u") is None
    account, calendars = services.connect("u", "ivan@yandex.ru", "pw", zone=None,
                                          profile_zone="Asia/Yekaterinburg", language="ru")
    assert account.timezone == "Asia/Yekaterinburg"
    assert account.language == "ru"
    assert [c.name for c in calendars] == ["Work"]


def test_zone_argument_wins_and_bad_zone_changes_nothing(setup) -> None:
    """An explicit zone beats the profile; an unknown one is refused before any request."""
    source, _cal, services, repo = setup
    with pytest.raises(BadInput):
        services.connect("u", "ivan@yandex.ru", "pw", zone="Mars/Base", profile_zone=None,
                         language="en")
    assert source.requests == 0
    assert repo.account("u") is None
    account, _ = services.connect("u", "ivan@yandex.ru", "pw", zone="moscow",
                                  profile_zone="Asia/Tokyo", language="en")
    assert account.timezone == "Europe/Moscow"


def test_broken_event_skipped_rest_shown(setup) -> None:
    """One unparseable object is counted and skipped; the other meetings still come back."""
    source, cal, services, _repo = setup
    services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    at = NOW + timedelta(hours=3)
    source.put("ivan@yandex.ru", cal, "ok.ics", event("ok", at, at + timedelta(hours=1), "Fine"))
    source.put("ivan@yandex.ru", cal, "bad.ics", event("bad", at, at + timedelta(hours=1), "Bad")
               .replace("DTSTART;TZID=Europe/Moscow:", "DTSTART;TZID=Europe/Moscow:x"))
    found = services.meetings("u", date(2026, 11, 27), date(2026, 11, 27))
    assert [o.title for o in found.occurrences] == ["Fine"]
    assert found.skipped == 1


def test_commands_need_an_account(setup) -> None:
    """Queries and settings before `connect` say so."""
    _, _, services, _ = setup
    for call in (lambda: services.meetings("x", date(2026, 1, 1), date(2026, 1, 1)),
                 lambda: services.change_timezone("x", "UTC"),
                 lambda: services.choose_calendars("x", ("1",))):
        with pytest.raises(NotConnected):
            call()


def test_choose_calendars(setup) -> None:
    """`calendars 1` / `all` choose by number; an out-of-range number changes nothing."""
    source, _cal, services, repo = setup
    source.add_calendar("ivan@yandex.ru", "events-3", "Home")
    services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    with pytest.raises(BadInput) as info:
        services.choose_calendars("u", ("9",))
    assert info.value.params["count"] == 2
    assert [c.watched for c in repo.calendars("u")] == [True, True]
    assert [c.watched for c in services.choose_calendars("u", ("2",))] == [False, True]
    assert [c.watched for c in services.choose_calendars("u", ("all",))] == [True, True]


def test_stored_password_refused_marks_account(setup) -> None:
    """A revoked password on a query marks "needs a new password" and deletes nothing."""
    source, _cal, services, repo = setup
    services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    source.set_password("ivan@yandex.ru", "new")
    with pytest.raises(AuthRefused) as info:
        services.meetings("u", date(2026, 11, 27), date(2026, 11, 27))
    assert info.value.key == "error.stored_password_refused"
    assert repo.account("u").needs_password
    assert repo.calendars("u")


def test_me_address_folds_yandex_domains() -> None:
    """A bare login means @yandex.ru; aliases fold."""
    assert me_address("Ivan") == "ivan@yandex.ru"
    assert me_address("ivan@ya.ru") == "ivan@yandex.ru"


def test_connect_again_keeps_settings(setup) -> None:
    """Re-running `connect` for the same login (a new password) keeps settings and choices."""
    from bot.core.model import NotificationSettings

    source, _cal, services, repo = setup
    services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    repo.set_notifications("u", NotificationSettings(daily_at="07:45", leads=(5,)))
    source.set_password("ivan@yandex.ru", "pw2")
    account, _ = services.connect("u", "ivan@yandex.ru", "pw2", zone=None, profile_zone=None,
                                  language="en")
    assert account.notifications.daily_at == "07:45"
    assert account.notifications.leads == (5,)
    assert repo.credentials("u").password == "pw2"  # type: ignore[union-attr]


def test_connect_with_another_login_keeps_settings_and_takes_its_calendars(setup) -> None:
    """`connect` with another Yandex login keeps notification settings, language and the
    status marker, and watches exactly the new account's calendars."""
    from bot.core.model import NotificationSettings
    from bot.core.status import BotStatus
    from storage.engine_store import EngineStore

    source, cal, services, repo = setup
    services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="ru")
    settings = NotificationSettings(daily_at="07:45", leads=(5,), changes=False)
    repo.set_notifications("u", settings)
    marker = BotStatus("calendar", "На встрече", NOW + timedelta(minutes=30))
    assert EngineStore().swap_status_marker("u", None, marker)
    from bot.core.model import Occurrence
    from bot.core.sync import ObjectCopy

    at = NOW + timedelta(hours=2)
    ivans = Occurrence(cal, "x", "", at, at + timedelta(hours=1), False, "Ivan's", href=cal + "x")
    EngineStore().apply_local_write("u", cal + "x", cal, ObjectCopy(cal, "e", "ics"), [ivans])
    source.add_account("anna@yandex.ru", "pw-a")
    anna = source.add_calendar("anna@yandex.ru", "events-7", "Anna's")
    source.add_calendar("anna@yandex.ru", "events-8", "Anna's home")
    account, calendars = services.connect("u", "anna@yandex.ru", "pw-a", zone=None,
                                          profile_zone="Asia/Tokyo", language="en")
    assert account.login == "anna@yandex.ru"
    assert account.language == "ru"
    assert account.notifications == settings
    assert account.timezone == "Europe/Moscow"
    assert EngineStore().status_marker("u") == marker
    assert [(c.name, c.watched) for c in calendars] == [("Anna's", True), ("Anna's home", True)]
    assert cal not in {c.href for c in repo.calendars("u")}
    assert anna in {
        c.href for c in repo.calendars("u")}
    assert repo.credentials("u").password == "pw-a"  # type: ignore[union-attr]
    # nothing of Ivan's calendar is left to remind of, and Anna's is taken in silently
    assert EngineStore().snapshot("u") == {}
    assert EngineStore().objects("u") == {}
    state = EngineStore().poll_state("u")
    assert state.window_end is None
    assert state.unsynced == {c.href for c in calendars}


def test_connect_again_with_the_same_login_keeps_calendar_choices(setup) -> None:
    """Reconnecting the same login keeps which calendars are watched."""
    source, cal, services, repo = setup
    home = source.add_calendar("ivan@yandex.ru", "events-3", "Home")
    services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    services.choose_calendars("u", ("1",))  # Home only (listed by name: Home, Work)
    assert {c.href: c.watched for c in repo.calendars("u")} == {home: True, cal: False}
    services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    assert {c.href: c.watched for c in repo.calendars("u")} == {home: True, cal: False}


def test_reconnect_is_one_transaction(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """When storing the calendars fails, the new credentials are not stored either (for
    `password`, `login` and `connect` again)."""
    from storage.repository import Repository

    source, cal, services, repo = setup
    services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    source.set_password("ivan@yandex.ru", "pw2")
    source.add_account("anna@yandex.ru", "pw")  # `login` keeps the stored password
    source.add_calendar("anna@yandex.ru", "events-7", "Anna's")

    def broken(row: object, found: object) -> None:
        raise RuntimeError("calendar step failed")

    monkeypatch.setattr(Repository, "_replace_calendars", staticmethod(broken))
    for change in (lambda: services.change_password("u", "pw2"),
                   lambda: services.change_login("u", "anna@yandex.ru"),
                   lambda: services.connect("u", "anna@yandex.ru", "pw", zone="UTC",
                                            profile_zone=None, language="en")):
        with pytest.raises(RuntimeError):
            change()
        creds = repo.credentials("u")
        assert creds is not None
        assert (creds.login, creds.password) == ("ivan@yandex.ru", "pw")
        assert [c.href for c in repo.calendars("u")] == [cal]
        assert repo.account("u").timezone == "Europe/Moscow"  # type: ignore[union-attr]


def test_check_says_the_status_was_refused(setup) -> None:
    """After Mattermost refused custom statuses, `check` says so and how to retry."""
    from bot.core.commands import parse_command
    from bot.core.model import NotificationSettings
    from plugins.calendar import CalendarPlugin
    from storage.engine_store import EngineStore

    _source, _cal, services, repo = setup
    services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    plugin = CalendarPlugin(services, clock=lambda: NOW)

    class Post:
        user_id = "u"

    def check(lang: str) -> str:
        return plugin.cmd_check(parse_command("check"), Post(), lang)  # type: ignore[arg-type]

    assert "refused" not in check("en")
    EngineStore().block_status("u")
    assert repo.account("u").status_refused  # type: ignore[union-attr]
    assert "Mattermost refused" in check("en")
    assert "`status on`" in check("en")
    assert "Mattermost отказал" in check("ru")
    assert "status refused by Mattermost" in check("en")  # in the settings line too
    services.set_notifications("u", NotificationSettings())  # `status on` tries again
    assert "refused" not in check("en")
