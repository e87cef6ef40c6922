"""What one poll of an account changes: pure decisions, no I/O, no clock.

A poll runs in two steps around the network (``bot.engine.sync`` does the talking):

1. ``plan_fetch``: the server's ETag listing of the window against the stored copies → which
   objects are new or changed (fetch them), and which left the window (ask whether they are
   gone or moved out of it). When nothing changed, nothing moved and no calendar waits for its
   first sync, the poll ends there: it parses nothing.
2. ``decide_changes``: with what was fetched, the new stored copies, the occurrences to store
   (only those of the objects that changed, unless the window moved or a calendar is taken
   in anew, when every object is expanded again), and the notices the diff makes. The
   snapshot, the copies and the notices are then stored in one transaction.

Notice ids are derived from what the notice says plus the versions (ETags) of the objects it
is about: the same change seen twice (two polls of the same state, two processes) has one id,
while a meeting moved there, back, and there again gets a new notice each time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.changes import Diff, OccurrenceKey, diff_snapshots
from bot.core.ical import parse_occurrences
from bot.core.model import Notice, Occurrence, RawObject
from bot.core.notices import change_notices
from bot.errors import IcsError

WINDOW_BACK = timedelta(days=1)
# An object that moved out of the window is read to tell where it went: this far ahead.
ELSEWHERE_DAYS = 366


@dataclass(frozen=True)
class ObjectCopy:
    """The last good copy of a calendar object, as stored."""

    calendar: str
    etag: str
    ics: str


@dataclass(frozen=True)
class FetchPlan:
    changed: list[str]  # listed with a new ETag (or new): fetch them
    left: list[str]  # stored but no longer listed: gone, or moved out of the window


@dataclass(frozen=True)
class ChangeSet:
    """What a poll stores: copies to upsert, hrefs to delete, the occurrences of the objects
    it expanded (href → occurrences; ``replace_all``: they replace every stored one), the
    notices, and the skipped objects (unreadable ICS: their last good copy stays)."""

    upsert: dict[str, ObjectCopy]
    delete: list[str]
    occurrences: dict[str, list[Occurrence]]
    replace_all: bool
    notices: list[Notice]
    skipped: list[str] = field(default_factory=list)


def poll_window(now: datetime, horizon_days: int) -> tuple[datetime, datetime]:
    """The polled window: yesterday … ``horizon_days`` ahead, anchored to the UTC day so it
    moves once a day (an idle poll then needs no parsing at all)."""
    anchor = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    return anchor - WINDOW_BACK, anchor + timedelta(days=horizon_days + 1)


def plan_fetch(stored: Mapping[str, tuple[str, str]],
               seen: Mapping[str, tuple[str, str]]) -> FetchPlan:
    """``stored``/``seen``: href → (calendar, etag)."""
    changed = [h for h, (_, etag) in seen.items() if stored.get(h, ("", ""))[1] != etag]
    left = [h for h in stored if h not in seen]
    return FetchPlan(changed, left)


def nothing_new(plan: FetchPlan, *, previous_end: datetime | None, window_end: datetime,
                unsynced: set[str]) -> bool:
    return not plan.changed and not plan.left and previous_end == window_end and not unsynced


@dataclass(frozen=True)
class PollFacts:
    """Everything a poll learned, for ``decide_changes``."""

    window: tuple[datetime, datetime]
    previous_end: datetime | None  # window end of the stored snapshot (None: never synced)
    watched: list[str]
    unsynced: set[str]  # watched calendars without a baseline: taken in silently
    seen: Mapping[str, tuple[str, str]]  # href → (calendar, etag), as listed now
    fetched: Mapping[str, RawObject]  # the changed objects and those that moved out
    gone: list[str]  # deleted (or in a calendar no longer watched)
    moved_out: list[str]  # still there, outside the window
    stored: Mapping[str, ObjectCopy]  # the stored copies (those needed: see decide_changes)
    snapshot: Mapping[OccurrenceKey, Occurrence]  # the stored occurrences


@dataclass(frozen=True)
class Viewer:
    """Whose poll it is: zone, address, language, which notices they want."""

    tz: ZoneInfo
    me: str
    lang: str
    changes: bool
    responses: bool


def needs_every_copy(facts_window_end: datetime, previous_end: datetime | None,
                     unsynced: set[str]) -> bool:
    """True when every object must be expanded again (window moved, calendar taken in):
    the shell then reads every stored copy, else only those of the changed objects."""
    return previous_end != facts_window_end or bool(unsynced)


def decide_changes(facts: PollFacts, viewer: Viewer, *, now: datetime) -> ChangeSet:
    """The change set of a poll (module doc). ``facts.stored`` must hold every stored copy
    when ``needs_every_copy`` says so, else at least those of the changed objects."""
    start, end = facts.window
    replace_all = needs_every_copy(end, facts.previous_end, facts.unsynced)
    upsert: dict[str, ObjectCopy] = {}
    expanded: dict[str, list[Occurrence]] = {}
    skipped: list[str] = []

    def expand(ics: str, calendar: str, href: str, a: datetime, b: datetime) -> list[Occurrence]:
        return parse_occurrences(ics, calendar=calendar, href=href, start=a, end=b,
                                 tz=viewer.tz, me=viewer.me)

    for href, (calendar, etag) in facts.seen.items():
        raw = facts.fetched.get(href)
        if raw is not None:
            try:
                expanded[href] = expand(raw.ics, calendar, href, start, end)
                upsert[href] = ObjectCopy(calendar, raw.etag or etag, raw.ics)
                continue
            except IcsError:
                skipped.append(href)
        if replace_all and (old := facts.stored.get(href)) is not None:
            try:  # unchanged (or unreadable now): the last good copy, expanded again
                expanded[href] = expand(old.ics, old.calendar, href, start, end)
            except IcsError:
                skipped.append(href)
    elsewhere: list[Occurrence] = []  # new times of meetings moved out of the window
    for href in facts.moved_out:
        raw = facts.fetched.get(href)
        calendar = facts.stored[href].calendar if href in facts.stored else ""
        if raw is not None:
            try:
                elsewhere += expand(raw.ics, calendar, href, end,
                                    end + timedelta(days=ELSEWHERE_DAYS))
            except IcsError:
                skipped.append(href)

    if replace_all:
        new_snapshot = [o for occs in expanded.values() for o in occs]
    else:
        touched = set(expanded) | set(facts.gone) | set(facts.moved_out)
        new_snapshot = [o for o in facts.snapshot.values() if o.href not in touched]
        new_snapshot += [o for occs in expanded.values() for o in occs]

    notices: list[Notice] = []
    synced_before = set(facts.watched) - facts.unsynced
    if facts.previous_end is not None and synced_before and (viewer.changes or viewer.responses):
        before = {k: o for k, o in facts.snapshot.items() if o.calendar in synced_before}
        after = {o.key: o for o in new_snapshot + elsewhere if o.calendar in synced_before}
        diff = diff_snapshots(before, after, now=now,
                              window_end=min(facts.previous_end, end), me=viewer.me)
        versions = {h: etag for h, (_, etag) in facts.seen.items()}
        versions.update({h: c.etag for h, c in facts.stored.items() if h not in versions})
        notices = change_notices(diff, changes=viewer.changes, responses=viewer.responses,
                                 tz=viewer.tz, lang=viewer.lang, now=now,
                                 version=lambda occs: _versions(occs, versions))
    return ChangeSet(upsert=upsert, delete=list(facts.gone) + list(facts.moved_out),
                     occurrences=expanded, replace_all=replace_all, notices=notices,
                     skipped=skipped)


def _versions(occurrences: Iterable[Occurrence], versions: Mapping[str, str]) -> str:
    hrefs = sorted({o.href for o in occurrences})
    return ",".join(f"{h}={versions.get(h, '')}" for h in hrefs)


__all__ = ["ChangeSet", "Diff", "FetchPlan", "ObjectCopy", "PollFacts", "Viewer",
           "decide_changes", "needs_every_copy", "nothing_new", "plan_fetch", "poll_window"]
