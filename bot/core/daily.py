"""When the morning agenda is due, in the user's own zone: a pure decision, no clock.

The agenda of local date ``d`` is scheduled at ``d`` + ``plan.at`` in the user's zone,
resolved across DST (see :func:`scheduled_instant`). At each tick the shell asks
:func:`agenda_due`; it answers the date to send, or ``None``. The shell stores the date it
sent as ``last_sent`` in the same transaction as the post, so a restart neither repeats nor
loses the agenda. An agenda more than ``grace`` late (the bot was down) is skipped, not sent
long after the morning it was meant for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_GRACE = timedelta(hours=2)
_SATURDAY = 5  # date.weekday(): Monday is 0


@dataclass(frozen=True)
class DailyPlan:
    """Send the agenda at local wall time ``at`` (naive), Monday to Friday only when
    ``weekdays_only``."""

    at: time
    weekdays_only: bool


def agenda_due(
    plan: DailyPlan,
    *,
    tz: ZoneInfo,
    now: datetime,
    last_sent: date | None,
    grace: timedelta = DEFAULT_GRACE,
) -> date | None:
    """The local date whose agenda should be sent at ``now``, else ``None``.

    Takes the latest scheduled moment ``<= now`` (today's or yesterday's local date, so
    an agenda at 23:30 still counts after midnight), skipping weekends when
    ``weekdays_only``. Due if ``now`` is at most ``grace`` past it and its date is later
    than ``last_sent`` (an earlier date than one already sent is stale, e.g. after the
    user moved west). Assumes ``grace`` shorter than a day.
    """
    today = now.astimezone(tz).date()
    for day in (today, today - timedelta(days=1)):
        if not _scheduled_on(plan, day):
            continue
        moment = scheduled_instant(day, plan.at, tz)
        if moment <= now:
            fresh = now - moment <= grace
            unsent = last_sent is None or day > last_sent
            return day if fresh and unsent else None
    return None


def next_agenda_at(plan: DailyPlan, *, tz: ZoneInfo, now: datetime) -> datetime:
    """The first scheduled moment strictly after ``now``, as an aware UTC datetime."""
    today = now.astimezone(tz).date()
    for offset in range(8):  # at most 3 days ahead when weekends are skipped
        day = today + timedelta(days=offset)
        if _scheduled_on(plan, day):
            moment = scheduled_instant(day, plan.at, tz)
            if moment > now:
                return moment
    raise AssertionError("unreachable: some weekday within 8 days")


def scheduled_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``day`` + ``at`` in ``tz`` as an aware UTC datetime.

    An ambiguous wall time (fall back) is taken at its first occurrence (fold=0). A wall
    time that does not exist (spring forward gap) fires at the first instant after the
    gap, i.e. the transition itself (02:30 on a 02:00→03:00 day fires at 03:00).
    """
    wall = datetime.combine(day, at.replace(tzinfo=None))
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    return _gap_end(wall, tz)


def _gap_end(wall: datetime, tz: ZoneInfo) -> datetime:
    """The transition instant of the gap that swallows ``wall``.

    PEP 495: in a gap fold=0 applies the offset from before the transition and fold=1
    the one after, which brackets the transition: ``before < transition <= after``.
    Offsets change on whole seconds, so bisect on whole POSIX seconds.
    """
    before = math.floor(wall.replace(tzinfo=tz, fold=1).timestamp())
    after = math.ceil(wall.replace(tzinfo=tz, fold=0).timestamp())
    offset_after = _offset_at(after, tz)
    while after - before > 1:
        middle = (before + after) // 2
        if _offset_at(middle, tz) == offset_after:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def _offset_at(posix_seconds: int, tz: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(posix_seconds, tz).utcoffset()


def _scheduled_on(plan: DailyPlan, day: date) -> bool:
    return not (plan.weekdays_only and day.weekday() >= _SATURDAY)
