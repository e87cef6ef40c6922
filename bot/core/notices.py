"""Texts of the notices the engine sends on its own (reminders, agenda, account trouble).
Pure: every value is passed in."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.core.agenda import on_day, render_line, time_span
from bot.core.changes import Change, Diff, ResponseChange, thread_key
from bot.core.markdown import escape, link
from bot.core.model import MeetingRef, Notice, Occurrence
from bot.core.reminders import Reminder
from bot.core.texts import TEXTS, day_title, t


def reminder_message(reminder: Reminder, tz: ZoneInfo, lang: str, now: datetime) -> str:
    """"⏰ In 10 min: Title, 10:00–10:30 · Location · Join" (late ones say how soon)."""
    occ = reminder.occurrence
    minutes = reminder.minutes_left(now)
    head = t(lang, "reminder.head", minutes=minutes, title=escape(occ.title) or "…",
             span=time_span(occ, tz, lang))
    parts = []
    if occ.location.strip() and occ.location.strip() != occ.link:
        parts.append(escape(occ.location))
    if occ.link:
        parts.append(link(f"**{t(lang, 'agenda.join')}**", occ.link))
    return head + ("\n" + " · ".join(parts) if parts else "")


def agenda_message(occurrences: Sequence[Occurrence], day: date, tz: ZoneInfo, lang: str) -> str:
    """The morning agenda: the day's meetings with join links, declined ones left out."""
    todays = [o for o in on_day(occurrences, day, tz) if not o.declined]
    lines = [t(lang, "agenda.morning", day=day_title(day, lang, day))]
    lines += [render_line(o, tz, lang) for o in todays] or [t(lang, "agenda.empty_day")]
    return "\n".join(lines)


# -- change notices (added / cancelled / moved / updated) and attendees' answers --------------

_CHANGE_ICON = {"added": "➕", "cancelled": "❌", "moved": "🔁", "updated": "✏️"}
_ANSWER_ICON = {"ACCEPTED": "✅", "DECLINED": "❌", "TENTATIVE": "❔", "NEEDS-ACTION": "⏳"}


def when(occ: Occurrence, tz: ZoneInfo, lang: str) -> str:
    """"Friday, 27 November, 10:00–10:30" in the user's zone."""
    day = occ.start.astimezone(tz).date()
    return f"{day_title(day, lang)}, {time_span(occ, tz, lang)}"


def _series_note(count: int, lang: str) -> str:
    return " " + t(lang, "change.series", count=count) if count > 1 else ""


def change_message(change: Change, tz: ZoneInfo, lang: str) -> str:
    """One change: what happened, when (old → new for a move) in the user's zone, and for a
    new meeting its organizer (when it is not the user) and place; the Join link."""
    occ = change.occurrence
    title = escape(occ.title) or "…"
    if is_invitation(change):
        head = f"📅 {t(lang, 'change.invitation')}: **{title}**"
    else:
        head = f"{_CHANGE_ICON[change.kind]} {t(lang, 'change.' + change.kind)}: **{title}**"
    lines = [head + _series_note(change.count, lang)]
    if change.kind == "moved" and change.old is not None and change.new is not None:
        lines.append(f"{when(change.old, tz, lang)} → {when(change.new, tz, lang)}")
    else:
        lines.append(when(occ, tz, lang))
    if change.kind == "added":
        if not occ.organized_by_me and (occ.organizer_name or occ.organizer):
            lines.append(t(lang, "change.organizer",
                           who=escape(occ.organizer_name or occ.organizer or "")))
        if occ.location.strip() and occ.location.strip() != occ.link:
            lines.append(t(lang, "change.place", place=escape(occ.location.strip())))
    if change.old is not None and change.new is not None:
        for name in change.fields:
            before, after = _field(change.old, name), _field(change.new, name)
            lines.append(t(lang, "change.field." + name, old=before or "—", new=after or "—"))
    if occ.link and change.kind in ("added", "moved", "updated") and not occ.cancelled:
        lines.append(link(f"**{t(lang, 'agenda.join')}**", occ.link))
    return "\n".join(lines)


def _field(occ: Occurrence, name: str) -> str:
    value = {"title": occ.title, "location": occ.location, "link": occ.link or "",
             "organizer": occ.organizer_name or occ.organizer or ""}[name]
    if name == "link" and value:
        return link(value, value)
    return escape(value)


def response_message(resp: ResponseChange, tz: ZoneInfo, lang: str) -> str:
    occ = resp.occurrence
    title = escape(occ.title) or "…"
    lines = [t(lang, "response.head", title=title, when=when(occ, tz, lang))
             + _series_note(resp.count, lang)]
    for answer in resp.answers:
        who = escape(answer.name or answer.email)
        icon = _ANSWER_ICON.get(answer.new_partstat, "•")
        verb = t(lang, "response." + answer.new_partstat) if (
            "response." + answer.new_partstat) in TEXTS else escape(answer.new_partstat.lower())
        lines.append(f"{icon} {who} — {verb}")
    return "\n".join(lines)


BURST_BUTTONS = 10  # invitations in one burst notice that get their own row of buttons


def content_id(prefix: str, *parts: str) -> str:
    """A notice id derived from what it says: ``prefix|<sha256 of the parts>``."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]
    return f"{prefix}|{digest}"


def is_invitation(change: Change) -> bool:
    """A meeting added to the calendar of someone invited to it (not its organizer)."""
    occ = change.occurrence
    return (change.kind == "added" and not occ.organized_by_me and occ.my_partstat is not None
            and not occ.cancelled)


def change_notices(diff: Diff, *, changes: bool, responses: bool, tz: ZoneInfo, lang: str,
                   now: datetime, version: Callable[[Iterable[Occurrence]], str]) -> list[Notice]:
    """The notices of one poll's diff: one for the changes and one for the answers. Several
    changes (an organizer moving ten meetings, twenty invitations after a team import)
    arrive as one notice listing them, not as twenty DMs.

    ``version`` names the versions of the objects behind some occurrences (their ETags): it
    goes into the notice id with the text, so one change seen twice makes one notice and a
    later change that reads the same makes a new one. Invitations get answer buttons (a series
    invitation answers the series). A change notice expires when every meeting in it is over.
    """
    notices: list[Notice] = []
    if changes and diff.changes:
        blocks = [change_message(c, tz, lang) for c in diff.changes]
        occs = [o for c in diff.changes for o in (c.old, c.new) if o is not None]
        invitations = [c for c in diff.changes if is_invitation(c)]
        notices.append(_bundle(
            "chg", "change", blocks, occs, [c.occurrence for c in diff.changes], lang,
            refs=tuple(MeetingRef.of(c.occurrence, series=True)
                       for c in invitations[:BURST_BUTTONS]),
            version=version))
    if responses and diff.responses:
        blocks = [response_message(r, tz, lang) for r in diff.responses]
        shown = [r.occurrence for r in diff.responses]
        notices.append(_bundle("resp", "response", blocks, shown, shown, lang, refs=(),
                               version=version))
    return notices


def _bundle(prefix: str, kind: str, blocks: list[str], occurrences: list[Occurrence],
            shown: list[Occurrence], lang: str, *, refs: tuple[MeetingRef, ...],
            version: Callable[[Iterable[Occurrence]], str]) -> Notice:
    if len(blocks) == 1:
        message = blocks[0]
    else:
        message = "\n\n".join([t(lang, f"{kind}.burst", count=len(blocks)), *blocks])
    keys = tuple(dict.fromkeys(thread_key(o) for o in shown))
    ends = [o.end for o in occurrences]
    return Notice(
        content_id(prefix, message, version(occurrences)), kind, message, thread_keys=keys,
        expires_at=max(ends) if ends else None, refs=refs,
        actions=("answer",) if refs else ())


def reminder_notice(reminder: Reminder, tz: ZoneInfo, lang: str, now: datetime) -> Notice:
    """The reminder's notice: expires at the meeting's start; a meeting the user was invited
    to (not organizes) can be answered from it, that one occurrence; every reminder can be
    snoozed."""
    occ = reminder.occurrence
    invited = occ.my_partstat is not None and not occ.organized_by_me
    return Notice(
        reminder.notice_id, "reminder", reminder_message(reminder, tz, lang, now),
        expires_at=occ.start, refs=(MeetingRef.of(occ, series=False),),
        actions=("answer", "snooze") if invited else ("snooze",))
