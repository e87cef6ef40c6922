"""Morning agenda timing in the user's zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.daily import DailyPlan, agenda_due, next_agenda_at, scheduled_instant

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MOSCOW = ZoneInfo("Europe/Moscow")
EVERY_DAY_9 = DailyPlan(at=time(9, 0), weekdays_only=False)
WEEKDAYS_9 = DailyPlan(at=time(9, 0), weekdays_only=True)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def run_ticks(
    plan: DailyPlan, tz: ZoneInfo, start: datetime, end: datetime, step: timedelta
) -> dict[date, list[datetime]]:
    """Tick from start to end feeding each sent date back as last_sent; returns when each
    local date was sent."""
    sent: dict[date, list[datetime]] = {}
    last_sent: date | None = None
    now = start
    while now < end:
        day = agenda_due(plan, tz=tz, now=now, last_sent=last_sent)
        if day is not None:
            sent.setdefault(day, []).append(now)
            last_sent = day
        now += step
    return sent


# (zone, scheduled wall time, the local day of the change, expected UTC instant that day).
# Expected instants are worked out by hand: gap → the transition, overlap → first (DST) pass.
DST_CASES = [
    pytest.param(BERLIN, time(2, 30), date(2026, 3, 29), utc(2026, 3, 29, 1, 0), id="berlin-gap"),
    pytest.param(
        BERLIN, time(2, 30), date(2026, 10, 25), utc(2026, 10, 25, 0, 30), id="berlin-overlap"
    ),
    pytest.param(
        BERLIN, time(9, 0), date(2026, 3, 29), utc(2026, 3, 29, 7, 0), id="berlin-spring-9"
    ),
    pytest.param(
        BERLIN, time(9, 0), date(2026, 10, 25), utc(2026, 10, 25, 8, 0), id="berlin-autumn-9"
    ),
    pytest.param(NEW_YORK, time(2, 30), date(2026, 3, 8), utc(2026, 3, 8, 7, 0), id="ny-gap"),
    pytest.param(
        NEW_YORK, time(1, 30), date(2026, 11, 1), utc(2026, 11, 1, 5, 30), id="ny-overlap"
    ),
    pytest.param(
        NEW_YORK, time(1, 30), date(2026, 3, 8), utc(2026, 3, 8, 6, 30), id="ny-spring-1-30"
    ),
    pytest.param(
        NEW_YORK, time(2, 30), date(2026, 11, 1), utc(2026, 11, 1, 7, 30), id="ny-autumn-2-30"
    ),
    pytest.param(NEW_YORK, time(9, 0), date(2026, 3, 8), utc(2026, 3, 8, 13, 0), id="ny-spring-9"),
    pytest.param(
        NEW_YORK, time(9, 0), date(2026, 11, 1), utc(2026, 11, 1, 14, 0), id="ny-autumn-9"
    ),
]


@pytest.mark.parametrize(("tz", "at", "change_day", "expected"), DST_CASES)
def test_sent_exactly_once_per_local_day_across_dst(tz, at, change_day, expected):
    """Minute ticks from two days before to two days after a DST change: each local day's
    agenda is sent once, on the day of the change at the hand-computed instant."""
    plan = DailyPlan(at=at, weekdays_only=False)
    start = datetime.combine(change_day - timedelta(days=2), time(0), tz).astimezone(UTC)
    end = datetime.combine(change_day + timedelta(days=3), time(0), tz).astimezone(UTC)
    sent = run_ticks(plan, tz, start, end, timedelta(minutes=1))
    days = [change_day + timedelta(days=n) for n in range(-2, 3)]
    assert sorted(sent) == days
    assert all(len(instants) == 1 for instants in sent.values())
    assert sent[change_day] == [expected]
    for day in days:  # every day fires at its own scheduled instant, on the tick
        assert sent[day] == [scheduled_instant(day, at, tz)]
        assert sent[day][0].astimezone(tz).date() == day


def test_moscow_has_no_dst():
    """Europe/Moscow: 09:00 is 06:00 UTC in winter and summer alike."""
    assert scheduled_instant(date(2026, 1, 15), time(9), MOSCOW) == utc(2026, 1, 15, 6, 0)
    assert scheduled_instant(date(2026, 7, 15), time(9), MOSCOW) == utc(2026, 7, 15, 6, 0)
    sent = run_ticks(EVERY_DAY_9, MOSCOW, utc(2026, 3, 27), utc(2026, 4, 1), timedelta(minutes=1))
    assert {day: [t.hour for t in ts] for day, ts in sent.items()} == {
        date(2026, 3, d): [6] for d in range(27, 32)
    }


def test_weekdays_only_skips_weekend():
    """Over a full week with weekdays_only, Saturday and Sunday get no agenda."""
    sent = run_ticks(WEEKDAYS_9, MOSCOW, utc(2026, 3, 2), utc(2026, 3, 9), timedelta(minutes=5))
    assert sorted(sent) == [date(2026, 3, d) for d in range(2, 7)]  # Mon 2 … Fri 6


def test_saturday_does_not_fall_back_to_friday():
    """On Saturday morning the latest scheduled moment is Friday's, a day late: nothing."""
    now = utc(2026, 3, 7, 6, 30)  # Saturday 09:30 in Moscow
    assert agenda_due(WEEKDAYS_9, tz=MOSCOW, now=now, last_sent=date(2026, 3, 5)) is None


def test_late_within_grace_is_sent():
    """Bot back 2 h after 09:00: the agenda still goes out."""
    now = utc(2026, 3, 2, 8, 0)  # 11:00 Moscow
    assert agenda_due(EVERY_DAY_9, tz=MOSCOW, now=now, last_sent=None) == date(2026, 3, 2)


def test_late_beyond_grace_is_skipped():
    """Bot back 2 h 1 min after 09:00: that day's agenda is skipped."""
    now = utc(2026, 3, 2, 8, 1)
    assert agenda_due(EVERY_DAY_9, tz=MOSCOW, now=now, last_sent=None) is None


def test_not_due_before_time():
    """At 08:59 local nothing is due yet (yesterday's was sent)."""
    now = utc(2026, 3, 2, 5, 59)
    assert agenda_due(EVERY_DAY_9, tz=MOSCOW, now=now, last_sent=date(2026, 3, 1)) is None


def test_last_sent_prevents_repeat():
    """Once today's date is recorded as sent, later ticks return None."""
    now = utc(2026, 3, 2, 6, 30)
    assert agenda_due(EVERY_DAY_9, tz=MOSCOW, now=now, last_sent=date(2026, 3, 2)) is None


def test_stale_date_after_later_one_sent_is_not_sent():
    """A date earlier than last_sent (user moved west) is never sent."""
    now = utc(2026, 3, 2, 14, 30)  # 09:30 in New York, 2 March
    assert agenda_due(EVERY_DAY_9, tz=NEW_YORK, now=now, last_sent=date(2026, 3, 3)) is None


def test_late_evening_agenda_still_due_after_midnight():
    """Agenda at 23:30: at 00:15 the next local day, yesterday's date is due."""
    plan = DailyPlan(at=time(23, 30), weekdays_only=False)
    now = utc(2026, 3, 2, 21, 15)  # 00:15 on 3 March in Moscow
    assert agenda_due(plan, tz=MOSCOW, now=now, last_sent=date(2026, 3, 1)) == date(2026, 3, 2)


def test_next_agenda_at_later_today():
    """Before 09:00, the next agenda is today's 09:00, as aware UTC."""
    nxt = next_agenda_at(EVERY_DAY_9, tz=MOSCOW, now=utc(2026, 3, 2, 5, 0))
    assert nxt == utc(2026, 3, 2, 6, 0)
    assert nxt.utcoffset() == timedelta(0)


def test_next_agenda_at_exactly_now_is_tomorrow():
    """At the scheduled instant itself, the next one is tomorrow's."""
    nxt = next_agenda_at(EVERY_DAY_9, tz=MOSCOW, now=utc(2026, 3, 2, 6, 0))
    assert nxt == utc(2026, 3, 3, 6, 0)


def test_next_agenda_at_skips_weekend():
    """Friday after 09:00 with weekdays_only: next is Monday."""
    nxt = next_agenda_at(WEEKDAYS_9, tz=MOSCOW, now=utc(2026, 3, 6, 7, 0))
    assert nxt == utc(2026, 3, 9, 6, 0)


def test_next_agenda_at_in_gap_is_transition():
    """Berlin 02:30 on the spring-forward night: next agenda at 03:00 CEST."""
    plan = DailyPlan(at=time(2, 30), weekdays_only=False)
    nxt = next_agenda_at(plan, tz=BERLIN, now=utc(2026, 3, 28, 12, 0))
    assert nxt == utc(2026, 3, 29, 1, 0)


def test_half_hour_dst_gap_resolves_to_transition():
    """Lord Howe moves 30 minutes: 02:15 in its gap fires at 02:30 local."""
    tz = ZoneInfo("Australia/Lord_Howe")
    moment = scheduled_instant(date(2026, 10, 4), time(2, 15), tz)
    assert moment.astimezone(tz).time() == time(2, 30)
