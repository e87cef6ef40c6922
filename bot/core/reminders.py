"""Which meeting reminders are due: a pure decision, no I/O, no clock.

A reminder for lead ``L`` (minutes) of occurrence ``O`` is *due* while
``O.start - L <= now < O.start``. The window stays open until the meeting starts, so a
reminder whose moment passed while the bot was down is still sent late, as long as the
meeting has not started; once the meeting has started nothing is sent.

Every (occurrence key, start, lead) has one stable notice id (:func:`notice_id`). The shell
records sent ids in the database; ``already`` is that record. A moved meeting gets new ids
(its start is part of the id) and is reminded again at its new time; the same start keeps
the same id forever, so a meeting moved away and back is not reminded twice.

Several leads of one occurrence can be due at once (the bot was down, ``remind 10 10``,
or a tick that skipped over a window). Then one :class:`Reminder` is returned, for the
smallest lead that is due; its ``covers`` lists every pending id it stands for, and the
shell marks them all sent in the same transaction that records the post.

Leads that are not positive are ignored: a zero lead has an empty window.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.model import Occurrence

LATE_AFTER = timedelta(seconds=60)  # one tick's tolerance: later than this reads "late"


@dataclass(frozen=True)
class Reminder:
    """One reminder to post now.

    ``covers`` holds ``notice_id`` first, then the ids of larger leads this reminder also
    stands for; all of them are to be marked sent. ``late`` means ``now`` was past
    ``due_at`` by more than the tolerance: the text then counts minutes from now
    (:meth:`minutes_left`) instead of quoting the lead.
    """

    notice_id: str
    occurrence: Occurrence
    lead_minutes: int
    due_at: datetime
    late: bool
    covers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.notice_id not in self.covers:  # a hand-built Reminder still covers itself
            object.__setattr__(self, "covers", (self.notice_id, *self.covers))

    def minutes_left(self, now: datetime) -> int:
        """Minutes to show in "starts in N minutes": the lead when on time, else the
        minutes from ``now`` to the start, rounded up (never 0 before the start)."""
        if not self.late:
            return self.lead_minutes
        seconds = (self.occurrence.start - now).total_seconds()
        return max(1, math.ceil(seconds / 60))


def notice_id(occurrence: Occurrence, lead_minutes: int) -> str:
    """Stable id ``rem|<calendar>|<uid>|<recurrence-id>|<start UTC ISO>|<lead>``.

    The start is normalised to UTC so one instant always gives one id; ``%`` and ``|``
    inside the parts are escaped so distinct keys never share an id.
    """
    start = occurrence.start.astimezone(UTC).isoformat()
    parts = (*occurrence.key, start, str(lead_minutes))
    return "rem|" + "|".join(_escape(part) for part in parts)


def is_remindable(occurrence: Occurrence) -> bool:
    """All-day, cancelled and declined occurrences never get a reminder."""
    return not (occurrence.all_day or occurrence.cancelled or occurrence.declined)


def due_reminders(
    occurrences: Iterable[Occurrence],
    *,
    leads: Sequence[int],
    now: datetime,
    already: Container[str],
    late_after: timedelta = LATE_AFTER,
) -> list[Reminder]:
    """Reminders to post at ``now``: at most one per occurrence, none whose id is in
    ``already``, ordered by start, then title (then key, for determinism)."""
    lead_list = _clean_leads(leads)
    found: dict[str, Reminder] = {}
    for occurrence in occurrences:
        reminder = _reminder_for(occurrence, lead_list, now, already, late_after)
        if reminder is not None:
            found.setdefault(reminder.notice_id, reminder)  # duplicate input objects
    return sorted(found.values(), key=_order)


def next_reminder(
    occurrences: Iterable[Occurrence],
    *,
    leads: Sequence[int],
    now: datetime,
    already: Container[str],
    late_after: timedelta = LATE_AFTER,
) -> Reminder | None:
    """The reminder that fires next: one due now (possibly late) if any, else the first
    one that becomes due after ``now``, as :func:`due_reminders` will return it then."""
    items = list(occurrences)
    due_now = due_reminders(items, leads=leads, now=now, already=already, late_after=late_after)
    if due_now:
        return due_now[0]
    for moment in _future_due_moments(items, _clean_leads(leads), now, already):
        due = due_reminders(items, leads=leads, now=moment, already=already, late_after=late_after)
        if due:
            return due[0]
    return None


def _reminder_for(
    occurrence: Occurrence,
    leads: list[int],
    now: datetime,
    already: Container[str],
    late_after: timedelta,
) -> Reminder | None:
    if not is_remindable(occurrence) or now >= occurrence.start:
        return None
    due_leads = [lead for lead in leads if occurrence.start - timedelta(minutes=lead) <= now]
    if not due_leads:
        return None
    smallest = due_leads[0]
    own_id = notice_id(occurrence, smallest)
    if own_id in already:
        # The user was reminded at a later point than any larger lead would give
        # (leads changed in between): a late "in 10 minutes" after it would be noise.
        return None
    pending = tuple(
        nid for lead in due_leads if (nid := notice_id(occurrence, lead)) not in already
    )
    due_at = occurrence.start - timedelta(minutes=smallest)
    return Reminder(
        notice_id=own_id,
        occurrence=occurrence,
        lead_minutes=smallest,
        due_at=due_at,
        late=now - due_at > late_after,
        covers=pending,
    )


def _future_due_moments(
    occurrences: list[Occurrence], leads: list[int], now: datetime, already: Container[str]
) -> list[datetime]:
    moments = {
        occurrence.start - timedelta(minutes=lead)
        for occurrence in occurrences
        if is_remindable(occurrence)
        for lead in leads
        if occurrence.start - timedelta(minutes=lead) > now
        and notice_id(occurrence, lead) not in already
    }
    return sorted(moments)


def _clean_leads(leads: Sequence[int]) -> list[int]:
    """Distinct positive leads, smallest first."""
    return sorted({int(lead) for lead in leads if lead > 0})


def _order(reminder: Reminder) -> tuple[datetime, str, tuple[str, str, str], int]:
    occurrence = reminder.occurrence
    return (occurrence.start, occurrence.title, occurrence.key, reminder.lead_minutes)


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace("|", "%7C")
