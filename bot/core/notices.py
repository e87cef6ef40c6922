"""Texts of the notices the engine sends on its own (reminders, agenda, account trouble).
Pure: every value is passed in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.core.agenda import on_day, render_line, time_span
from bot.core.changes import Change, Diff, ResponseChange, thread_key
from bot.core.markdown import escape, link
from bot.core.model import Notice, Occurrence
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
    occ = change.occurrence
    title = escape(occ.title) or "…"
    head = f"{_CHANGE_ICON[change.kind]} {t(lang, 'change.' + change.kind)}: **{title}**"
    lines = [head + _series_note(change.count, lang)]
    if change.kind == "moved" and change.old is not None and change.new is not None:
        lines.append(f"{when(change.old, tz, lang)} → {when(change.new, tz, lang)}")
    else:
        lines.append(when(occ, tz, lang))
    if change.old is not None and change.new is not None:
        for name in change.fields:
            before, after = _field(change.old, name), _field(change.new, name)
            lines.append(t(lang, "change.field." + name, old=before or "—", new=after or "—"))
    if occ.link and change.kind in ("added", "moved", "updated") and not occ.cancelled:
        lines.append(link(f"**{t(lang, 'agenda.join')}**", occ.link))
    return "\n".join(lines)


def _field(occ: Occurrence, name: str) -> str:
    value = {"title": occ.title, "location": occ.location, "link": occ.link or ""}[name]
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


def change_notices(diff: Diff, *, changes: bool, responses: bool, tz: ZoneInfo, lang: str,
                   now: datetime) -> list[Notice]:
    """The notices of one poll's diff. Ids only need to be unique: a diff is computed once and
    stored in the same transaction as the snapshot it leads to."""
    stamp = now.strftime("%Y%m%dT%H%M%S.%f")
    notices: list[Notice] = []
    if changes:
        for n, change in enumerate(diff.changes):
            notices.append(Notice(
                f"chg|{stamp}|{n}|{'|'.join(change.key)}", "change",
                change_message(change, tz, lang), thread_key=thread_key(change.occurrence)))
    if responses:
        for n, resp in enumerate(diff.responses):
            notices.append(Notice(
                f"resp|{stamp}|{n}|{'|'.join(resp.key)}", "response",
                response_message(resp, tz, lang), thread_key=thread_key(resp.occurrence)))
    return notices
