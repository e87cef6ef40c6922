"""Agenda rendering: meetings grouped by day in the user's zone, calendar text escaped."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.markdown import escape, link
from bot.core.model import ACCEPTED, Occurrence
from bot.core.texts import day_title, t


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local day as aware instants (23 or 25 hours long across DST)."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start, end


def range_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return day_bounds(first, tz)[0], day_bounds(last, tz)[1]


def on_day(occurrences: Iterable[Occurrence], day: date, tz: ZoneInfo) -> list[Occurrence]:
    """Occurrences overlapping the local day, sorted; a zero-length one counts at its start."""
    start, end = day_bounds(day, tz)
    found = [
        o for o in occurrences
        if (o.start < end and o.end > start) or (o.start == o.end and start <= o.start < end)
    ]
    return sorted(found, key=lambda o: (not o.all_day, o.start, o.title.lower()))


def _clock(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%H:%M")


def time_span(occ: Occurrence, tz: ZoneInfo, lang: str) -> str:
    if occ.all_day:
        return t(lang, "agenda.all_day")
    if occ.end <= occ.start:
        return _clock(occ.start, tz)
    return f"{_clock(occ.start, tz)}–{_clock(occ.end, tz)}"


def render_line(occ: Occurrence, tz: ZoneInfo, lang: str) -> str:
    """One meeting: time, title, location, Join link, and the user's answer if not accepted."""
    title = escape(occ.title) or "…"
    span = time_span(occ, tz, lang)
    head = (f"~~{span} {title}~~ · {t(lang, 'agenda.cancelled')}" if occ.cancelled
            else f"{span} **{title}**")
    parts = [head]
    if occ.location.strip() and occ.location.strip() != occ.link:
        parts.append(escape(occ.location))
    if occ.link and not occ.cancelled:
        parts.append(link(f"**{t(lang, 'agenda.join')}**", occ.link))
    if occ.my_partstat and occ.my_partstat != ACCEPTED and not occ.organized_by_me:
        key = f"partstat.{occ.my_partstat}"
        with contextlib.suppress(KeyError):
            parts.append(f"_{t(lang, key)}_")
    return "- " + " · ".join(parts)


def render_day(occurrences: Sequence[Occurrence], day: date, tz: ZoneInfo, lang: str,
               today: date) -> str:
    lines = [f"**{day_title(day, lang, today)}**"]
    todays = on_day(occurrences, day, tz)
    lines += [render_line(o, tz, lang) for o in todays] or [t(lang, "agenda.empty_day")]
    return "\n".join(lines)


def render_agenda(
    occurrences: Sequence[Occurrence],
    *,
    first: date,
    last: date,
    tz: ZoneInfo,
    lang: str,
    today: date,
    skipped: int = 0,
) -> str:
    """A day shows "No meetings." when empty; a longer range lists only the days that have
    meetings (a month of empty weekends would bury the rest), or one line when none has."""
    blocks: list[str] = []
    if first == last:
        blocks.append(render_day(occurrences, first, tz, lang, today))
    else:
        day = first
        while day <= last:
            if on_day(occurrences, day, tz):
                blocks.append(render_day(occurrences, day, tz, lang, today))
            day += timedelta(days=1)
        if not blocks:
            blocks.append(t(lang, "agenda.empty_range", first=_short(first), last=_short(last)))
    if skipped:
        blocks.append(t(lang, "agenda.skipped", count=skipped))
    return "\n\n".join(blocks)


def _short(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def render_next(occ: Occurrence, tz: ZoneInfo, lang: str, today: date) -> str:
    """The meeting under its day's title; an all-day event that is already running (a
    conference that began yesterday) is shown under today, not under its first day."""
    local_day = occ.start.astimezone(tz).date()
    if local_day < today and occ.end > day_bounds(today, tz)[0]:
        local_day = today
    return f"**{day_title(local_day, lang, today)}**\n{render_line(occ, tz, lang)}"


def next_occurrence(occurrences: Iterable[Occurrence], now: datetime) -> Occurrence | None:
    """The next timed meeting that has not started, not cancelled or declined; else the next
    all-day one that has not ended (today's counts), not cancelled or declined."""
    candidates = [
        o for o in occurrences
        if not o.cancelled and not o.declined and o.start >= now and not o.all_day
    ]
    if not candidates:
        candidates = [
            o for o in occurrences
            if o.all_day and o.end > now and not o.cancelled and not o.declined
        ]
    return min(candidates, key=lambda o: (o.start, o.title), default=None)
