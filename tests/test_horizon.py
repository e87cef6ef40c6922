"""Two months of horizon, on the engine with a manual clock: what happens within
``YC_HORIZON_DAYS`` (60 by default) ahead is announced, a meeting that comes into the horizon
as the days pass is not, and a burst of changes makes one message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.model import NotificationSettings
from storage.repository import Repository
from tests.engine_kit import ManualClock, RecordingMessenger, make_engine, run_tick
from tests.fake_calendar import FakeCalendarSource
from tests.ics_builder import event

START = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # Friday 08:00 in Moscow
LOGIN = "ivan@yandex.ru"
USER = "u-ivan"


@pytest.fixture
def world(repo: Repository) -> Iterator[tuple[Any, ...]]:
    source = FakeCalendarSource()
    source.add_account(LOGIN, "pw")
    cal = source.add_calendar(LOGIN, "events-1", "Work")
    clock = ManualClock(START)
    messenger = RecordingMessenger()
    engine, services = make_engine(repo, source, clock, messenger)
    services.connect(USER, LOGIN, "pw", zone="Europe/Moscow", profile_zone=None, language="en")
    repo.set_notifications(USER, NotificationSettings(daily_at=None, leads=(), status=False))
    yield source, cal, clock, messenger, engine
    engine.shutdown()


def _poll(engine: Any, clock: ManualClock, messenger: RecordingMessenger,
          **advance: float) -> list[str]:
    before = len(messenger.posts)
    clock.advance(**(advance or {"seconds": 70}))
    run_tick(engine)
    return [p["message"] for p in messenger.posts[before:]]


def test_invitation_twenty_days_out_is_announced_once_with_its_date(world) -> None:
    """An invitation for a meeting in 20 days: one notice, with its day and time."""
    source, cal, clock, messenger, engine = world
    run_tick(engine)
    at = START + timedelta(days=20, hours=6)  # Thursday 17 December, 14:00 in Moscow
    source.put(LOGIN, cal, "i.ics", event("i", at, at + timedelta(hours=1), "Board",
                                          organizer="boss@yandex.ru",
                                          attendees={LOGIN: "NEEDS-ACTION"}))
    new = _poll(engine, clock, messenger)
    assert len(new) == 1
    assert "Invitation" in new[0]
    assert "17 December, 14:00–15:00" in new[0]
    assert _poll(engine, clock, messenger) == []


def test_meetings_forty_days_out_moved_and_cancelled_are_announced(world) -> None:
    """40 days ahead: a move and a cancellation found in one poll are both announced (one
    message listing both)."""
    source, cal, clock, messenger, engine = world
    far = START + timedelta(days=40)
    source.put(LOGIN, cal, "m.ics", event("m", far, far + timedelta(hours=1), "Offsite"))
    source.put(LOGIN, cal, "c.ics", event("c", far, far + timedelta(hours=1), "Summit"))
    run_tick(engine)
    assert messenger.messages() == []
    later = far + timedelta(days=1)
    source.put(LOGIN, cal, "m.ics", event("m", later, later + timedelta(hours=1), "Offsite",
                                          stamp="20261126T100000Z"))
    source.delete(LOGIN, cal + "c.ics")
    new = _poll(engine, clock, messenger)
    assert len(new) == 1, new
    assert "Moved" in new[0]
    assert "Offsite" in new[0]
    assert "Cancelled" in new[0]
    assert "Summit" in new[0]


def test_a_meeting_entering_the_horizon_as_days_pass_is_not_new(world) -> None:
    """A meeting 65 days out (beyond the horizon at connect) is not announced when, days
    later, it comes within the horizon; an edit of it after that is."""
    source, cal, clock, messenger, engine = world
    far = START + timedelta(days=65)
    source.put(LOGIN, cal, "f.ics", event("f", far, far + timedelta(hours=1), "Far away"))
    run_tick(engine)
    for _ in range(8):  # a day at a time: the window slides once a day
        assert _poll(engine, clock, messenger, days=1) == []
    source.put(LOGIN, cal, "f.ics", event("f", far, far + timedelta(hours=1), "Far away (v2)",
                                          stamp="20261126T100000Z"))
    changed = _poll(engine, clock, messenger)
    assert len(changed) == 1
    assert "Changed" in changed[0]


def test_ten_changes_in_one_poll_make_one_message(world) -> None:
    """Ten invitations found in one poll arrive as one message listing all ten."""
    source, cal, clock, messenger, engine = world
    run_tick(engine)
    for n in range(10):
        at = START + timedelta(days=3, hours=n)
        source.put(LOGIN, cal, f"t{n}.ics", event(f"t{n}", at, at + timedelta(minutes=30),
                                                  f"Team {n}", organizer="hr@yandex.ru",
                                                  attendees={LOGIN: "NEEDS-ACTION"}))
    new = _poll(engine, clock, messenger)
    assert len(new) == 1
    assert "10 changes" in new[0]
    assert all(f"Team {n}" in new[0] for n in range(10))
    assert _poll(engine, clock, messenger) == []
