"""The notification engine on a fake calendar source, a recording messenger and a real SQLite
file: reminders, agenda, status, exactly-once across restarts, trouble with Yandex, changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.model import NotificationSettings
from bot.errors import ServerUnavailable
from storage.repository import Repository
from tests.engine_kit import ManualClock, RecordingMessenger, make_engine, run_tick
from tests.fake_calendar import FakeCalendarSource
from tests.ics_builder import event

START = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # Friday 08:00 in Moscow
LOGIN = "ivan@yandex.ru"
USER = "u-ivan"


@pytest.fixture
def world(repo: Repository):
    source = FakeCalendarSource()
    source.add_account(LOGIN, "pw")
    cal = source.add_calendar(LOGIN, "events-1", "Work")
    clock = ManualClock(START)
    messenger = RecordingMessenger()
    engine, services = make_engine(repo, source, clock, messenger)
    services.connect(USER, LOGIN, "pw", zone="Europe/Moscow", profile_zone=None, language="en")
    yield source, cal, clock, messenger, engine, services, repo
    engine.shutdown()


def test_reminder_with_telemost_link_sent_once(world) -> None:
    """A meeting a little over ten minutes ahead gets one reminder with the Join link."""
    source, cal, clock, messenger, engine, *_ = world
    source.put(LOGIN, cal, "a.ics", event("a", START + timedelta(minutes=10, seconds=30),
                                          START + timedelta(minutes=40), "Standup"))
    run_tick(engine)
    assert not [m for m in messenger.messages() if "Standup" in m]
    clock.advance(seconds=31)
    run_tick(engine)
    clock.advance(seconds=5)
    run_tick(engine)
    reminders = [m for m in messenger.messages() if "Standup" in m]
    assert len(reminders) == 1
    assert "In 10 min" in reminders[0] and "08:10–08:40" in reminders[0]
    assert "[**Join**](https://telemost.yandex.ru/j/12345678901234)" in reminders[0]


def test_restart_between_poll_and_reminder(world, repo: Repository) -> None:
    """A new engine on the same database sends the due reminder once and repeats nothing."""
    source, cal, clock, messenger, engine, services, _ = world
    source.put(LOGIN, cal, "a.ics", event("a", START + timedelta(minutes=20),
                                          START + timedelta(minutes=50), "Planning"))
    run_tick(engine)
    engine.shutdown()
    clock.advance(minutes=11)
    second, _ = make_engine(repo, source, clock, messenger)
    run_tick(second)
    clock.advance(seconds=10)
    run_tick(second)
    third, _ = make_engine(repo, source, clock, messenger)
    run_tick(third)
    assert len([m for m in messenger.messages() if "Planning" in m]) == 1
    second.shutdown()
    third.shutdown()


def test_failed_post_is_retried_not_lost(world) -> None:
    """Mattermost refusing a post once delays the reminder, it does not lose it."""
    source, cal, clock, messenger, engine, *_ = world
    source.put(LOGIN, cal, "a.ics", event("a", START + timedelta(minutes=5),
                                          START + timedelta(minutes=35), "Retro"))
    messenger.fail_posts = 1
    run_tick(engine)
    clock.advance(seconds=6)
    run_tick(engine)
    assert len([m for m in messenger.messages() if "Retro" in m]) == 1


def test_no_reminder_for_declined_cancelled_allday(world) -> None:
    """Declined, cancelled and all-day meetings are not reminded."""
    source, cal, clock, messenger, engine, *_ = world
    at = START + timedelta(minutes=5)
    source.put(LOGIN, cal, "d.ics", event("d", at, at + timedelta(minutes=30), "Declined",
                                          attendees={LOGIN: "DECLINED"}))
    source.put(LOGIN, cal, "c.ics", event("c", at, at + timedelta(minutes=30), "Cancelled",
                                          status="CANCELLED"))
    run_tick(engine)
    clock.advance(seconds=10)
    run_tick(engine)
    assert messenger.messages() == []


def test_morning_agenda_once_without_declined(world, repo: Repository) -> None:
    """At 09:00 Moscow the day's meetings arrive once, declined ones left out."""
    source, cal, clock, messenger, engine, services, _ = world
    repo.set_notifications(USER, NotificationSettings(leads=()))
    day = START + timedelta(hours=4)
    source.put(LOGIN, cal, "a.ics", event("a", day, day + timedelta(hours=1), "Design review"))
    source.put(LOGIN, cal, "b.ics", event("b", day, day + timedelta(hours=1), "Skipped one",
                                          attendees={LOGIN: "DECLINED"}))
    run_tick(engine)  # 08:00: first poll
    clock.advance(hours=1, seconds=1)  # 09:00:01
    run_tick(engine)
    clock.advance(minutes=5)
    run_tick(engine)
    agendas = [m for m in messenger.messages() if "your meetings" in m]
    assert len(agendas) == 1
    assert "Design review" in agendas[0] and "Skipped one" not in agendas[0]
    assert "12:00–13:00" in agendas[0]


def test_status_set_with_block_expiry_and_left_alone(world) -> None:
    """In a meeting: the custom status expires at the end of the back-to-back block; the
    user's own status is not touched."""
    source, cal, clock, messenger, engine, services, repo = world
    repo.set_notifications(USER, NotificationSettings(leads=(), daily_at=None))
    source.put(LOGIN, cal, "a.ics", event("a", START - timedelta(minutes=10),
                                          START + timedelta(minutes=20), "First"))
    source.put(LOGIN, cal, "b.ics", event("b", START + timedelta(minutes=20),
                                          START + timedelta(minutes=50), "Second"))
    run_tick(engine)
    puts = [c for c in messenger.status_calls if c[0] == "PUT"]
    assert len(puts) == 1
    assert puts[0][2]["expires_at"] == (START + timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert puts[0][2]["emoji"] == "calendar" and puts[0][2]["text"] == "In a meeting"
    clock.advance(seconds=30)
    run_tick(engine)
    assert len(messenger.status_calls) == 1  # nothing more while the block holds


def test_users_own_status_and_dnd_left_alone(world) -> None:
    """A hand-set status or Do Not Disturb means no PUT at all."""
    source, cal, clock, messenger, engine, services, repo = world
    source.put(LOGIN, cal, "a.ics", event("a", START - timedelta(minutes=10),
                                          START + timedelta(minutes=20), "First"))
    messenger.custom[USER] = {"emoji": "palm_tree", "text": "On holiday"}
    run_tick(engine)
    assert messenger.status_calls == []
    messenger.custom.clear()
    messenger.presences[USER] = "dnd"
    clock.advance(minutes=6)
    run_tick(engine)
    assert messenger.status_calls == []


def test_status_refused_told_once_and_switched_off(world) -> None:
    """A 403 on the custom status API: one message naming what the admin must grant."""
    source, cal, clock, messenger, engine, services, repo = world
    source.put(LOGIN, cal, "a.ics", event("a", START - timedelta(minutes=10),
                                          START + timedelta(minutes=20), "First"))
    messenger.status_error = 403
    run_tick(engine)
    clock.advance(minutes=6)
    run_tick(engine)
    told = [m for m in messenger.messages() if "System Admin" in m]
    assert len(told) == 1
    assert repo.account(USER).notifications.status is False  # type: ignore[union-attr]


def test_cancelled_meeting_clears_status_early(world) -> None:
    """Our status is cleared when the meeting in progress is cancelled."""
    source, cal, clock, messenger, engine, services, repo = world
    href = source.put(LOGIN, cal, "a.ics", event("a", START - timedelta(minutes=10),
                                                 START + timedelta(minutes=50), "Long"))
    run_tick(engine)
    assert [c[0] for c in messenger.status_calls] == ["PUT"]
    source.put(LOGIN, cal, "a.ics", event("a", START - timedelta(minutes=10),
                                          START + timedelta(minutes=50), "Long",
                                          status="CANCELLED"))
    assert href
    clock.advance(seconds=70)
    run_tick(engine)
    assert [c[0] for c in messenger.status_calls] == ["PUT", "DELETE"]


def test_401_told_once_nothing_deleted_then_resumes(world) -> None:
    """A revoked app password: one message, settings kept, polling resumes after `password`."""
    source, cal, clock, messenger, engine, services, repo = world
    run_tick(engine)
    source.set_password(LOGIN, "new-pw")
    for _ in range(3):
        clock.advance(minutes=31)
        run_tick(engine)
    told = [m for m in messenger.messages() if "password" in m]
    assert len(told) == 1
    account = repo.account(USER)
    assert account is not None and account.needs_password
    assert repo.calendars(USER) and account.notifications == NotificationSettings()
    services.change_password(USER, "new-pw")
    clock.advance(minutes=31)
    run_tick(engine)
    assert repo.account(USER).needs_password is False  # type: ignore[union-attr]


def test_one_failing_account_does_not_touch_another(world) -> None:
    """504s for one login back off that account; the other still gets its reminder."""
    source, cal, clock, messenger, engine, services, repo = world
    source.add_account("anna@yandex.ru", "pw2")
    cal2 = source.add_calendar("anna@yandex.ru", "events-9", "Anna")
    services.connect("u-anna", "anna@yandex.ru", "pw2", zone=None, profile_zone=None,
                     language="en")
    source.put("anna@yandex.ru", cal2, "x.ics", event("x", START + timedelta(minutes=10, seconds=20),
                                                      START + timedelta(minutes=30), "Anna's"))
    source.fail_with(ServerUnavailable, login=LOGIN)
    run_tick(engine)
    clock.advance(seconds=30)
    run_tick(engine)
    assert len([m for m in messenger.messages("u-anna") if "Anna's" in m]) == 1
    assert repo.account(USER).last_error  # type: ignore[union-attr]


def test_changes_first_sync_silent_then_each_change_once(world) -> None:
    """After connect nothing is announced; a move, a deletion, an addition and an attendee's
    answer each give one message; touching only the etag gives none."""
    source, cal, clock, messenger, engine, services, repo = world
    repo.set_notifications(USER, NotificationSettings(leads=(), daily_at=None, status=False))
    tomorrow = START + timedelta(days=1, hours=5)
    source.put(LOGIN, cal, "m.ics", event("m", tomorrow, tomorrow + timedelta(hours=1), "Move me"))
    source.put(LOGIN, cal, "d.ics", event("d", tomorrow, tomorrow + timedelta(hours=1), "Drop me"))
    source.put(LOGIN, cal, "o.ics", event("o", tomorrow, tomorrow + timedelta(hours=1), "Mine",
                                          organizer=LOGIN,
                                          attendees={LOGIN: "ACCEPTED", "anna@ya.ru": "NEEDS-ACTION"}))
    run_tick(engine)
    assert messenger.messages() == []

    def poll() -> list[str]:
        before = len(messenger.posts)
        clock.advance(seconds=70)  # past the poll interval and its jitter
        run_tick(engine)
        return [p["message"] for p in messenger.posts[before:]]

    source.touch(LOGIN, cal + "m.ics")
    assert poll() == []
    later = tomorrow + timedelta(hours=2)
    source.put(LOGIN, cal, "m.ics", event("m", later, later + timedelta(hours=1), "Move me",
                                          stamp="20261126T100000Z"))
    moved = poll()
    assert len(moved) == 1 and "Moved" in moved[0] and "→" in moved[0]
    assert "13:00–14:00 → " in moved[0] and "15:00–16:00" in moved[0]
    source.delete(LOGIN, cal + "d.ics")
    cancelled = poll()
    assert len(cancelled) == 1 and "Cancelled" in cancelled[0] and "Drop me" in cancelled[0]
    source.put(LOGIN, cal, "n.ics", event("n", later, later + timedelta(hours=1), "Brand new"))
    added = poll()
    assert len(added) == 1 and "New meeting" in added[0]
    source.put(LOGIN, cal, "o.ics", event("o", tomorrow, tomorrow + timedelta(hours=1), "Mine",
                                          organizer=LOGIN,
                                          attendees={LOGIN: "ACCEPTED", "anna@ya.ru": "DECLINED"}))
    answered = poll()
    assert len(answered) == 1 and "anna" in answered[0] and "declined" in answered[0]
    source.put(LOGIN, cal, "o.ics", event("o", tomorrow, tomorrow + timedelta(hours=1), "Mine",
                                          organizer=LOGIN,
                                          attendees={LOGIN: "ACCEPTED", "anna@ya.ru": "ACCEPTED"}))
    poll()
    first, second = [p for p in messenger.posts if "Answers to" in p["message"]]
    assert second["root_id"] == first["id"]


def test_calendar_deleted_in_yandex_is_dropped_not_fatal(world) -> None:
    """A watched calendar that vanished (404) is dropped from the list; polling goes on."""
    source, cal, clock, messenger, engine, services, repo = world
    home = source.add_calendar(LOGIN, "events-2", "Home")
    repo.replace_calendars(USER, services.source.list_calendars(repo.credentials(USER)))
    run_tick(engine)
    with source._lock:
        del source._accounts[LOGIN].calendars[home]
    clock.advance(seconds=70)
    run_tick(engine)
    assert [c.href for c in repo.calendars(USER)] == [cal]
    assert repo.account(USER).last_sync_at == clock.now  # type: ignore[union-attr]
