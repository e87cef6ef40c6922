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
    source, cal, services, repo = setup
    with pytest.raises(AuthRefused):
        services.connect("u", "ivan@yandex.ru", "bad", zone=None, profile_zone=None, language="en")
    source.fail_with(ServerUnavailable, times=1)
    with pytest.raises(ServerUnavailable):
        services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    assert repo.account("u") is None
    account, calendars = services.connect("u", "ivan@yandex.ru", "pw", zone=None,
                                          profile_zone="Asia/Yekaterinburg", language="ru")
    assert account.timezone == "Asia/Yekaterinburg" and account.language == "ru"
    assert [c.name for c in calendars] == ["Work"]


def test_zone_argument_wins_and_bad_zone_changes_nothing(setup) -> None:
    """An explicit zone beats the profile; an unknown one is refused before any request."""
    source, cal, services, repo = setup
    with pytest.raises(BadInput):
        services.connect("u", "ivan@yandex.ru", "pw", zone="Mars/Base", profile_zone=None,
                         language="en")
    assert source.requests == 0 and repo.account("u") is None
    account, _ = services.connect("u", "ivan@yandex.ru", "pw", zone="moscow",
                                  profile_zone="Asia/Tokyo", language="en")
    assert account.timezone == "Europe/Moscow"


def test_broken_event_skipped_rest_shown(setup) -> None:
    """One unparseable object is counted and skipped; the other meetings still come back."""
    source, cal, services, repo = setup
    services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    at = NOW + timedelta(hours=3)
    source.put("ivan@yandex.ru", cal, "ok.ics", event("ok", at, at + timedelta(hours=1), "Fine"))
    source.put("ivan@yandex.ru", cal, "bad.ics", event("bad", at, at + timedelta(hours=1), "Bad")
               .replace("DTSTART;TZID=Europe/Moscow:", "DTSTART;TZID=Europe/Moscow:x"))
    found = services.meetings("u", date(2026, 11, 27), date(2026, 11, 27))
    assert [o.title for o in found.occurrences] == ["Fine"] and found.skipped == 1


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
    source, cal, services, repo = setup
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
    source, cal, services, repo = setup
    services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    source.set_password("ivan@yandex.ru", "new")
    with pytest.raises(AuthRefused) as info:
        services.meetings("u", date(2026, 11, 27), date(2026, 11, 27))
    assert info.value.key == "error.stored_password_refused"
    assert repo.account("u").needs_password and repo.calendars("u")  # type: ignore[union-attr]


def test_me_address_folds_yandex_domains() -> None:
    """A bare login means @yandex.ru; aliases fold."""
    assert me_address("Ivan") == "ivan@yandex.ru"
    assert me_address("ivan@ya.ru") == "ivan@yandex.ru"


def test_connect_again_keeps_settings(setup) -> None:
    """Re-running `connect` for the same login (a new password) keeps settings and choices."""
    from bot.core.model import NotificationSettings

    source, cal, services, repo = setup
    services.connect("u", "ivan@yandex.ru", "pw", zone=None, profile_zone=None, language="en")
    repo.set_notifications("u", NotificationSettings(daily_at="07:45", leads=(5,)))
    source.set_password("ivan@yandex.ru", "pw2")
    account, _ = services.connect("u", "ivan@yandex.ru", "pw2", zone=None, profile_zone=None,
                                  language="en")
    assert account.notifications.daily_at == "07:45" and account.notifications.leads == (5,)
    assert repo.credentials("u").password == "pw2"  # type: ignore[union-attr]
