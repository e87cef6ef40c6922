"""Replies that more than one front gives (the chat commands, the connect dialog). Pure."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.markdown import code, escape
from bot.core.model import Account, NotificationSettings, WatchedCalendar
from bot.core.texts import t


def describe_notifications(settings: NotificationSettings, lang: str, *,
                           status_refused: bool = False) -> str:
    """The settings in one line; ``status_refused``: Mattermost refused the custom status (the
    bot switched it off), which is said instead of nothing."""
    parts = []
    if settings.daily_at:
        days = t(lang, "notif.weekdays") if settings.daily_weekdays else ""
        parts.append(t(lang, "notif.daily", time=settings.daily_at, days=days))
    if settings.leads:
        parts.append(t(lang, "notif.remind", leads=", ".join(str(v) for v in settings.leads)))
    if settings.status:
        parts.append(t(lang, "notif.status"))
    elif status_refused:
        parts.append(t(lang, "notif.status_refused"))
    if settings.changes:
        parts.append(t(lang, "notif.changes"))
    if settings.responses:
        parts.append(t(lang, "notif.responses"))
    return "; ".join(parts) if parts else t(lang, "notif.none")


def calendar_names(calendars: Sequence[WatchedCalendar]) -> str:
    return ", ".join(escape(c.name) for c in calendars if c.watched) or "—"


def connected_text(account: Account, calendars: Sequence[WatchedCalendar]) -> str:
    """What `connect` (and the connect dialog) answers once the account is stored."""
    return t(account.language, "connect.done", login=code(account.login),
             timezone=account.timezone, count=sum(c.watched for c in calendars),
             names=calendar_names(calendars),
             notifications=describe_notifications(account.notifications, account.language))
