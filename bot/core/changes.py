"""Change detection between two occurrence snapshots: pure, no I/O, no clock.

The poller keeps the previous snapshot (occurrence key → ``Occurrence``) and builds a new one
each poll; ``diff_snapshots`` turns the pair into the notices a user sees: meetings added,
cancelled, moved or updated, and (for meetings the user organizes) attendees' answers. A
change is a change of the user-visible ``fingerprint`` only (vdirsyncer's idea: hash the
normalised content, not the ETag), because Yandex rewrites stored events by itself while
nothing visible changes (see docs/yandex-caldav.md).

Grouping keeps a chat quiet: every occurrence of a series touched the same way in one poll
(the master was edited) makes ONE notice carrying ``count``; several changes to one meeting in
one poll make one notice; one attendee's answer to a whole series makes one notice.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from bot.core.model import NEEDS_ACTION, Occurrence

log = logging.getLogger(__name__)

OccurrenceKey = tuple[str, str, str]  # (calendar href, UID, RECURRENCE-ID ISO or "")
SeriesKey = tuple[str, str]  # (calendar href, UID)
ChangeKind = Literal["added", "cancelled", "moved", "updated"]

# Fields an "updated" (or "moved") change may name, in this order. Together with the time
# and the status they are every part of the ``fingerprint`` except the attendees' answers,
# which are told as answers (``ResponseChange``), not as a change of the meeting.
UPDATE_FIELDS: tuple[str, ...] = ("title", "location", "link", "organizer")

# A series re-timed across a DST switch shifts one occurrence by an hour more or less than the
# others (timed occurrences carry UTC instants, the event's own zone is gone by now).
_DST_SLACK = timedelta(hours=1)
# Above this many old x new candidates in one series, pair by position instead of by delta.
_MAX_PAIRING_WORK = 20_000


@dataclass(frozen=True, slots=True)
class Change:
    """One notice about a meeting: added, cancelled, moved (old → new) or updated.

    ``old``/``new`` are the representative occurrence before and after: the first upcoming
    one when ``count`` > 1 occurrences of a series changed the same way. ``added`` has
    ``old=None``; ``cancelled`` has ``new=None`` (gone) or the ``STATUS:CANCELLED``
    occurrence; ``moved`` and ``updated`` have both. ``fields`` names which of
    ``UPDATE_FIELDS`` changed (``updated`` always has some; ``moved`` may, when the meeting
    was also renamed in the same poll). ``keys`` lists every occurrence key the notice covers,
    old and new (a series re-timed by editing its master changes its RECURRENCE-IDs).
    """

    kind: ChangeKind
    key: OccurrenceKey
    old: Occurrence | None
    new: Occurrence | None
    fields: tuple[str, ...] = ()
    count: int = 1
    keys: tuple[OccurrenceKey, ...] = ()

    @property
    def occurrence(self) -> Occurrence:
        """The occurrence to show: the new state, or the old one of a vanished meeting."""
        occ = self.new if self.new is not None else self.old
        assert occ is not None  # noqa: S101 - every kind carries at least one side
        return occ


@dataclass(frozen=True, slots=True)
class Answer:
    """An attendee's answer that changed; ``old_partstat`` is None for a newly added one."""

    email: str
    name: str
    old_partstat: str | None
    new_partstat: str


@dataclass(frozen=True, slots=True)
class ResponseChange:
    """Answers to a meeting the user organizes, attached to the first upcoming occurrence
    they apply to; ``count`` occurrences (``keys``) of the series got the same answers."""

    key: OccurrenceKey
    occurrence: Occurrence
    answers: tuple[Answer, ...]
    count: int = 1
    keys: tuple[OccurrenceKey, ...] = ()


@dataclass(frozen=True, slots=True)
class Diff:
    """What one poll has to tell the user, each list ordered by the occurrence's start."""

    changes: list[Change] = field(default_factory=list)
    responses: list[ResponseChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.responses


# --- normalisation and fingerprint -----------------------------------------------------------


def _text(value: str | None) -> str:
    """Whitespace-normalised text: Yandex and other clients re-wrap and pad titles."""
    return " ".join((value or "").split())


def _link(value: str | None) -> str | None:
    return (value or "").strip() or None


def _email(value: str | None) -> str:
    return (value or "").strip().lower()


def _partstat(value: str | None) -> str:
    # RFC 5545 §3.2.12: a missing PARTSTAT means NEEDS-ACTION.
    return (value or "").strip().upper() or NEEDS_ACTION


def _when(occ: Occurrence) -> tuple[object, ...]:
    """The occurrence's time as the user sees it.

    An all-day event is a date: compare its wall dates, not the instants of the viewer-zone
    midnight, so a user who changes their time zone does not see every all-day event "move".
    """
    if occ.all_day:
        return (True, occ.start.date(), occ.end.date())
    return (False, occ.start, occ.end)


def _field_values(occ: Occurrence) -> dict[str, str | None]:
    return {"title": _text(occ.title), "location": _text(occ.location), "link": _link(occ.link),
            "organizer": _email(occ.organizer) or None}


def fingerprint(occ: Occurrence) -> tuple[object, ...]:
    """The user-visible facts of an occurrence, normalised; equal fingerprints = no change.

    Deliberately absent (they are not even in ``Occurrence``): ETag, DTSTAMP, LAST-MODIFIED
    and SEQUENCE. Yandex rewrites stored events by itself, moving them while nothing visible
    changed; the href and the object's ETag change when an event is re-created, too.
    """
    return (
        _when(occ),
        _text(occ.title),
        _text(occ.location),
        occ.cancelled,
        _link(occ.link),
        _email(occ.organizer) or None,
        tuple(sorted({(_email(a.email), _partstat(a.partstat)) for a in occ.attendees})),
    )


def thread_key(occ: Occurrence) -> str:
    """Stable id of a meeting series (or single meeting) to thread its later notices under."""
    return f"{occ.calendar}|{occ.uid}"


# --- the diff --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    """One occurrence's change before grouping."""

    kind: ChangeKind
    old: Occurrence | None
    new: Occurrence | None
    fields: tuple[str, ...]
    group: tuple[object, ...]

    @property
    def shown(self) -> Occurrence:
        occ = self.old if self.kind == "cancelled" or self.new is None else self.new
        assert occ is not None  # noqa: S101
        return occ

    @property
    def keys(self) -> tuple[OccurrenceKey, ...]:
        return tuple(dict.fromkeys(o.key for o in (self.old, self.new) if o is not None))


def _order(occ: Occurrence) -> tuple[datetime, str, str, str]:
    return (occ.start, *occ.key)


def diff_snapshots(
    old: Mapping[OccurrenceKey, Occurrence],
    new: Mapping[OccurrenceKey, Occurrence],
    *,
    now: datetime,
    window_end: datetime,
    me: str,
    unchanged_calendars: Collection[str] = (),
) -> Diff:
    """Decide the notices that turn snapshot ``old`` into ``new``.

    Contract for callers:
    - Both snapshots are expansions of the same watched calendars for the same viewer zone,
      each holding every occurrence that overlaps its poll window.
    - ``window_end`` is the end of the span BOTH snapshots cover: when the window slid
      forward since the old poll, pass the OLD window's end (the smaller one). Occurrences
      starting at or after it are out of view on that side: one that only shows up there is
      not "added", one that only the other side lacks there is not "cancelled".
    - Window starts must be <= ``now`` (e.g. now - 1 day): an occurrence that has ended on
      every side it exists on is history and never noticed, so one that merely slid out of
      the window's start is not "cancelled".
    - ``unchanged_calendars``: calendars not re-read this poll (fetch failed, or skipped);
      their keys are left out of the diff on both sides, and the caller keeps their old
      occurrences.

    Rules: occurrences the user (``me``) declined on every side are silent. A key that
    vanished, or whose status became CANCELLED, is "cancelled"; a new key (or a cancelled one
    reinstated) is "added"; a changed start/end/all-day is "moved", a changed
    title/location/link/organizer "updated". Keys of one series that vanished while others
    appeared (the master's DTSTART or RRULE was edited, so the RECURRENCE-IDs changed) are
    paired into "moved" by their common time shift. A meeting whose ``fingerprint`` is unchanged
    is silent; a new organizer is an "updated" naming ``organizer``. Attendee answers are
    only reported for meetings organized by ``me``, never ``me``'s own.
    """
    if now.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("diff_snapshots needs aware datetimes")
    skip = frozenset(unchanged_calendars)
    olds = {k: o for k, o in old.items() if k[0] not in skip}
    news = {k: n for k, n in new.items() if k[0] not in skip}

    def visible(occ: Occurrence) -> bool:
        return occ.start < window_end

    def live(occ: Occurrence) -> bool:
        return occ.end > now

    def relevant(*occs: Occurrence) -> bool:
        # A cancelled side tells nothing about when the meeting matters: a reinstated
        # meeting counts by its new time, a cancelled one by its old time.
        sides = [o for o in occs if not o.cancelled] or occs
        return (
            any(visible(o) for o in sides)
            and any(live(o) for o in sides)
            and not all(o.declined for o in sides)
        )

    pairs = [(olds[k], news[k]) for k in sorted(olds.keys() & news.keys())]
    gone: dict[SeriesKey, list[Occurrence]] = defaultdict(list)
    came: dict[SeriesKey, list[Occurrence]] = defaultdict(list)
    for k in sorted(olds.keys() - news.keys()):
        if not olds[k].cancelled and visible(olds[k]):
            gone[k[:2]].append(olds[k])
    for k in sorted(news.keys() - olds.keys()):
        if not news[k].cancelled and visible(news[k]):
            came[k[:2]].append(news[k])

    items: list[_Item] = []
    # One-sided occurrences of a re-timed series whose counterpart lies out of view (beyond
    # the window's end, or in the past): they join the series' "moved" notice.
    strays: list[tuple[SeriesKey, _Item]] = []
    for series in sorted(gone.keys() | came.keys()):
        paired, left_old, left_new, delta = _pair(
            sorted(gone.get(series, []), key=_order), sorted(came.get(series, []), key=_order)
        )
        pairs.extend(paired)
        for o in left_old:
            if relevant(o):
                item = _Item("cancelled", o, None, (), (*series, "cancelled"))
                out_of_view = delta is not None and (
                    o.start + delta >= window_end or o.end + delta <= now
                )
                if out_of_view:
                    strays.append((series, item))
                else:
                    items.append(item)
        for n in left_new:
            if relevant(n):
                item = _Item("added", None, n, (), (*series, "added"))
                out_of_view = delta is not None and (
                    n.start - delta >= window_end or n.end - delta <= now
                )
                if out_of_view:
                    strays.append((series, item))
                else:
                    items.append(item)

    baseline: dict[OccurrenceKey, Occurrence] = {}
    for o, n in pairs:
        baseline[n.key] = o
        if relevant(o, n) and (classified := _classify(o, n)) is not None:
            items.append(classified)

    changes = _group(items, strays)
    responses = _responses(
        [n for n in news.values() if n.organized_by_me and not n.cancelled and relevant(n)],
        baseline,
        olds.values(),
        me=_email(me),
    )
    log.debug(
        "changes.diff old=%d new=%d changes=%d responses=%d",
        len(olds),
        len(news),
        len(changes),
        len(responses),
    )
    return Diff(changes=changes, responses=responses)


def _classify(o: Occurrence, n: Occurrence) -> _Item | None:
    """The change from ``o`` to ``n`` of the same meeting occurrence, if the user sees one.

    Equal fingerprints are no change, whatever else differs; otherwise the time, the status
    and the ``UPDATE_FIELDS`` say which change it is (what remains, the attendees' answers,
    is for ``_responses``)."""
    if fingerprint(o) == fingerprint(n):
        return None
    series = (n.calendar, n.uid)
    if o.cancelled or n.cancelled:
        if o.cancelled and n.cancelled:
            return None
        if n.cancelled:
            return _Item("cancelled", o, n, (), (*series, "cancelled"))
        return _Item("added", None, n, (), (*series, "added"))
    before, after = _field_values(o), _field_values(n)
    changed = tuple(f for f in UPDATE_FIELDS if before[f] != after[f])
    values = tuple((f, before[f], after[f]) for f in changed)
    if _when(o) != _when(n):
        return _Item("moved", o, n, changed, (*series, "moved", values, _shift(o, n)))
    if changed:
        return _Item("updated", o, n, changed, (*series, "updated", values))
    return None


def _shift(o: Occurrence, n: Occurrence) -> tuple[object, ...]:
    """How a move shifted the meeting: equal for every occurrence of a re-timed series."""
    if o.all_day and n.all_day:
        return (n.start.date() - o.start.date(), n.end.date() - o.end.date())
    return (n.start - o.start, n.end - o.end)


def _pair(
    olds: list[Occurrence], news: list[Occurrence]
) -> tuple[
    list[tuple[Occurrence, Occurrence]], list[Occurrence], list[Occurrence], timedelta | None
]:
    """Pair vanished and appeared occurrences of one series by their commonest time shift.

    Returns the pairs, the unpaired old and new occurrences, and the shift (None when
    nothing was paired). Inputs and outputs are sorted by start.
    """
    if not olds or not news:
        return [], olds, news, None
    if len(olds) * len(news) > _MAX_PAIRING_WORK:
        delta = news[0].start - olds[0].start
    else:
        shifts = Counter(n.start - o.start for o in olds for n in news)
        delta = min(shifts, key=lambda d: (-shifts[d], abs(d), d))
    free = list(news)
    pairs: list[tuple[Occurrence, Occurrence]] = []
    left_old: list[Occurrence] = []
    for o in olds:
        target = o.start + delta
        match = next((n for n in free if n.start == target), None)
        if match is None:
            left_old.append(o)
            continue
        free.remove(match)
        pairs.append((o, match))
    for o in list(left_old):
        target = o.start + delta
        match = min(free, key=lambda n: (abs(n.start - target), _order(n)), default=None)
        if match is not None and abs(match.start - target) <= _DST_SLACK:
            free.remove(match)
            left_old.remove(o)
            pairs.append((o, match))
    return pairs, left_old, free, delta if pairs else None


def _group(items: list[_Item], strays: list[tuple[SeriesKey, _Item]]) -> list[Change]:
    """One Change per (series, kind, same field values, same shift), shown at its earliest."""
    groups: dict[tuple[object, ...], list[_Item]] = defaultdict(list)
    for item in items:
        groups[item.group].append(item)
    extra: dict[tuple[object, ...], list[_Item]] = defaultdict(list)
    for series, item in strays:
        moved = sorted(
            (g for g in groups if g[:3] == (*series, "moved")),
            key=lambda g: _order(min((i.shown for i in groups[g]), key=_order)),
        )
        if moved:
            extra[moved[0]].append(item)
        else:  # nothing to join: report it on its own after all
            groups[item.group].append(item)
    ordered: list[tuple[tuple[datetime, str, str, str], str, Change]] = []
    for group, members in groups.items():
        members.sort(key=lambda i: _order(i.shown))
        first = members[0]
        keys = [k for i in members + extra[group] for k in i.keys]
        change = Change(
            kind=first.kind,
            key=first.shown.key,
            old=first.old,
            new=first.new,
            fields=first.fields,
            count=len(members) + len(extra[group]),
            keys=tuple(dict.fromkeys(keys)),
        )
        ordered.append((_order(first.shown), first.kind, change))
    ordered.sort(key=lambda t: t[:2])
    return [change for *_, change in ordered]


def _responses(
    candidates: list[Occurrence],
    baseline: Mapping[OccurrenceKey, Occurrence],
    olds: Iterable[Occurrence],
    *,
    me: str,
) -> list[ResponseChange]:
    """Attendees' changed answers on the given occurrences (the user organizes them).

    An occurrence is compared with its old self, or for a new key with its paired
    predecessor, or else with the nearest old occurrence of the same series (so an
    occurrence that newly appears in a series does not re-announce standing answers).
    Each answer change is reported once per series; answers that apply to exactly the same
    occurrences travel together in one ResponseChange.
    """
    siblings: dict[SeriesKey, list[Occurrence]] = defaultdict(list)
    for o in olds:
        siblings[(o.calendar, o.uid)].append(o)

    # (series, email, old, new) -> occurrences it applies to, and the Answer to show
    seen: dict[tuple[SeriesKey, str, str | None, str], list[tuple[Occurrence, Answer]]] = (
        defaultdict(list)
    )
    for n in sorted(candidates, key=_order):
        series = (n.calendar, n.uid)
        base = baseline.get(n.key)
        if base is None and siblings.get(series):
            base = min(siblings[series], key=lambda o: (abs(o.start - n.start), _order(o)))
        for answer in _answer_changes(base, n, me):
            seen[(series, answer.email, answer.old_partstat, answer.new_partstat)].append(
                (n, answer)
            )

    bundles: dict[tuple[SeriesKey, tuple[OccurrenceKey, ...]], list[Answer]] = defaultdict(list)
    shown: dict[tuple[SeriesKey, tuple[OccurrenceKey, ...]], Occurrence] = {}
    for (series, *_), hits in seen.items():
        keys = tuple(n.key for n, _ in hits)
        bundles[(series, keys)].append(hits[0][1])
        shown[(series, keys)] = hits[0][0]
    out = [
        ResponseChange(
            key=shown[b].key,
            occurrence=shown[b],
            answers=tuple(sorted(answers, key=lambda a: a.email)),
            count=len(b[1]),
            keys=b[1],
        )
        for b, answers in bundles.items()
    ]
    out.sort(key=lambda r: (*_order(r.occurrence), r.answers[0].email))
    return out


def _answer_changes(base: Occurrence | None, n: Occurrence, me: str) -> list[Answer]:
    before = (
        {} if base is None else {_email(a.email): _partstat(a.partstat) for a in base.attendees}
    )
    skip = {me, _email(n.organizer)}  # the user's own answers never notify the user
    out: list[Answer] = []
    for a in n.attendees:
        email, now_ps = _email(a.email), _partstat(a.partstat)
        if not email or email in skip:
            continue
        skip.add(email)  # an address listed twice counts once
        was = before.get(email)
        if was == now_ps or (was is None and now_ps == NEEDS_ACTION):
            continue
        out.append(Answer(email=email, name=a.name, old_partstat=was, new_partstat=now_ps))
    return out
