"""The chat front: one listener parses the command, calls a service, and replies in the
command's thread. No business logic here; one place turns exceptions into replies."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import schedule
from mmpy_bot import Message, Plugin, listen_to

from bot.adapters.mattermost import Messenger
from bot.core.agenda import render_agenda, render_next
from bot.core.commands import (
    OFF_WORDS,
    ON_WORDS,
    Command,
    parse_command,
    parse_date,
    parse_hhmm,
    parse_leads,
    parse_range,
    period_for,
)
from bot.core.markdown import code, escape
from bot.core.model import Account, NotificationSettings, WatchedCalendar
from bot.core.texts import LANGUAGES, TEXTS, language_of, t
from bot.engine import Engine
from bot.errors import BadInput, BotError
from bot.services import NEXT_SEARCH_DAYS, Services

log = logging.getLogger(__name__)

# Parameters of these names are ours (zone names, numbers, command words), shown in code spans:
# they must not be Markdown-escaped. Everything else may hold user or calendar text.
_TRUSTED_PARAMS = {"suggestion", "count", "days", "command"}
SECRET_COMMANDS = ("connect", "password")
READ_ONLY_COMMANDS = frozenset(
    {"help", "check", "today", "tomorrow", "week", "month", "date", "range", "next"})


def describe_notifications(settings: NotificationSettings, lang: str) -> str:
    parts = []
    if settings.daily_at:
        days = t(lang, "notif.weekdays") if settings.daily_weekdays else ""
        parts.append(t(lang, "notif.daily", time=settings.daily_at, days=days))
    if settings.leads:
        parts.append(t(lang, "notif.remind", leads=", ".join(str(v) for v in settings.leads)))
    if settings.status:
        parts.append(t(lang, "notif.status"))
    if settings.changes:
        parts.append(t(lang, "notif.changes"))
    if settings.responses:
        parts.append(t(lang, "notif.responses"))
    return "; ".join(parts) if parts else t(lang, "notif.none")


def calendar_names(calendars: list[WatchedCalendar]) -> str:
    return ", ".join(escape(c.name) for c in calendars if c.watched) or "—"


class CalendarPlugin(Plugin):
    """Every command of SPEC.md. Handlers are plain functions: mmpy-bot runs them on its thread
    pool, so CalDAV calls never block the websocket loop."""

    def __init__(self, services: Services, *, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.services = services
        self.clock = clock
        self.engine: Engine | None = None
        self._tick_seconds = 5.0
        self._messenger: Messenger | None = None

    def attach_engine(self, engine: Engine, tick_seconds: float) -> None:
        self.engine = engine
        self._tick_seconds = tick_seconds

    def on_start(self) -> None:
        """mmpy-bot started: put the engine's one tick job on its scheduler."""
        if self.engine is not None:
            self.engine.register(schedule, self._tick_seconds)

    def on_stop(self) -> None:
        if self.engine is not None:
            self.engine.shutdown()

    @property
    def messenger(self) -> Messenger:
        if self._messenger is None:
            self._messenger = Messenger(self.driver)
        return self._messenger

    # -- entry point ----------------------------------------------------------------------
    @listen_to(r"\S", needs_mention=True)
    def on_message(self, message: Message) -> None:
        """Any message in a DM, or mentioning the bot in a channel."""
        if str(message.body["data"]["post"].get("type", "")).startswith("system_"):
            return  # join/leave and other system messages are not commands
        lang = "en"
        root_id = message.reply_id
        try:
            lang = self._language(message.user_id)
            command = parse_command(message.text)
            log.info("command.received user=%s command=%s", message.user_id, command.name)
            if command.name in SECRET_COMMANDS and len(command.args) >= 1:
                root_id = self._protect_secret(message, command, lang)
            reply = self._dispatch(command, message, lang)
            if self.engine is not None and command.name not in READ_ONLY_COMMANDS:
                self.engine.accounts_changed()  # settings apply on the next tick
        except _AlreadyAnswered:
            return
        except BotError as exc:
            params = {
                k: (v if k in _TRUSTED_PARAMS or not isinstance(v, str) else escape(v))
                for k, v in exc.params.items()
            }
            reply = t(lang, exc.key, **params)
        except Exception:
            log.exception("command.failed user=%s", message.user_id)
            reply = t(lang, "error.internal")
        try:
            self.messenger.post(message.channel_id, reply, root_id)
        except Exception:
            log.warning("reply.failed user=%s", message.user_id, exc_info=True)

    def _language(self, user_id: str) -> str:
        account = self.services.repo.account(user_id)
        if account is not None:
            return account.language
        try:
            return language_of(self.messenger.profile(user_id).locale)
        except Exception:
            log.warning("profile.read_failed user=%s", user_id)
            return "en"

    def _protect_secret(self, message: Message, command: Command, lang: str) -> str:
        """A message holding an app password: refuse it outside a DM, and delete it where the
        bot may. Returns the thread to answer in (the deleted post can't hold a thread)."""
        deleted = self.messenger.delete_post(message.id)
        root_id = message.root_id if deleted else message.reply_id
        if not message.is_direct_message:
            note = "" if deleted else " " + t(lang, "connect.post_not_deleted")
            self.messenger.post(
                message.channel_id, t(lang, "error.dm_only", command=command.name) + note, root_id
            )
            raise _AlreadyAnswered()
        key = "connect.post_deleted" if deleted else "connect.post_not_deleted"
        self.messenger.post(message.channel_id, t(lang, key), root_id)
        return root_id

    # -- commands -------------------------------------------------------------------------
    def _dispatch(self, command: Command, message: Message, lang: str) -> str:
        handler = getattr(self, f"cmd_{command.name}")
        return str(handler(command, message, lang))

    def cmd_help(self, command: Command, message: Message, lang: str) -> str:
        return t(lang, "help")

    def cmd_connect(self, command: Command, message: Message, lang: str) -> str:
        if len(command.args) < 2:
            raise BadInput("error.connect_usage")
        login, password = command.args[0], command.args[1]
        zone = " ".join(command.args[2:3]) or None
        profile = None
        try:
            profile = self.messenger.profile(message.user_id)
        except Exception:
            log.warning("profile.read_failed user=%s", message.user_id)
        language = language_of(profile.locale) if profile else lang
        account, calendars = self.services.connect(
            message.user_id,
            login,
            password,
            zone=zone,
            profile_zone=profile.timezone if profile else None,
            language=language,
        )
        return t(
            account.language,
            "connect.done",
            login=code(account.login),
            timezone=account.timezone,
            count=sum(c.watched for c in calendars),
            names=calendar_names(calendars),
            notifications=describe_notifications(account.notifications, account.language),
        )

    def cmd_disconnect(self, command: Command, message: Message, lang: str) -> str:
        if self.engine is not None:
            self.engine.clear_status_now(message.user_id)
        removed = self.services.disconnect(message.user_id)
        return t(lang, "disconnect.done" if removed else "disconnect.none")

    def cmd_login(self, command: Command, message: Message, lang: str) -> str:
        if not command.args:
            raise BadInput("error.login_usage")
        account = self.services.change_login(message.user_id, command.args[0])
        return t(lang, "login.done", login=code(account.login))

    def cmd_password(self, command: Command, message: Message, lang: str) -> str:
        if not command.args:
            raise BadInput("error.password_usage")
        self.services.change_password(message.user_id, command.args[0])
        return t(lang, "password.done")

    def cmd_timezone(self, command: Command, message: Message, lang: str) -> str:
        if not command.args:
            return t(lang, "timezone.show", timezone=self.services.account(message.user_id).timezone)
        account = self.services.change_timezone(message.user_id, " ".join(command.args[:2]))
        local = self.clock().astimezone(ZoneInfo(account.timezone)).strftime("%H:%M")
        return t(lang, "timezone.done", timezone=account.timezone, time=local)

    def cmd_language(self, command: Command, message: Message, lang: str) -> str:
        choice = command.first[:2]
        if choice not in LANGUAGES:
            raise BadInput("error.bad_language")
        self.services.set_language(message.user_id, choice)
        return t(choice, "language.done")

    def cmd_check(self, command: Command, message: Message, lang: str) -> str:
        account = self.services.account(message.user_id)
        calendars = self.services.repo.calendars(message.user_id)
        extra = self.engine.upcoming_info(account) if self.engine else {}
        body = t(
            lang,
            "check.body",
            login=code(account.login),
            timezone=account.timezone,
            calendars=calendar_names(calendars),
            notifications=describe_notifications(account.notifications, lang),
            last_sync=_when(account.last_sync_at, account.timezone) or t(lang, "word.never"),
            last_error=_last_error(account, lang),
            next_agenda=extra.get("next_agenda") or t(lang, "word.off"),
            next_reminder=extra.get("next_reminder") or t(lang, "word.none"),
        )
        if account.needs_password:
            body = t(lang, "check.needs_password") + "\n" + body
        return body

    def cmd_calendars(self, command: Command, message: Message, lang: str) -> str:
        if command.args:
            chosen = self.services.choose_calendars(message.user_id, command.args)
            return t(lang, "calendars.done", names=calendar_names(chosen))
        calendars = self.services.calendars(message.user_id)
        lines = [t(lang, "calendars.header")]
        for number, cal in enumerate(calendars, start=1):
            mark = "✅" if cal.watched else "⬜"
            lines.append(f"{number}. {mark} {escape(cal.name)}")
        lines.append(t(lang, "calendars.footer"))
        return "\n".join(lines)

    def _agenda(self, message: Message, lang: str, first_last: Callable[[Any], Any]) -> str:
        account = self.services.account(message.user_id)
        today = self.clock().astimezone(ZoneInfo(account.timezone)).date()
        first, last = first_last(today)
        found = self.services.meetings(message.user_id, first, last)
        return render_agenda(
            found.occurrences, first=first, last=last, tz=found.tz, lang=lang, today=today,
            skipped=found.skipped,
        )

    def cmd_today(self, command: Command, message: Message, lang: str) -> str:
        return self._agenda(message, lang, lambda today: period_for(command.name, today))

    cmd_tomorrow = cmd_week = cmd_month = cmd_today

    def cmd_date(self, command: Command, message: Message, lang: str) -> str:
        if not command.args:
            raise BadInput("error.bad_date", value="")

        def one_day(today: Any) -> Any:
            day = parse_date(command.args[0], today)
            return day, day

        return self._agenda(message, lang, one_day)

    def cmd_range(self, command: Command, message: Message, lang: str) -> str:
        return self._agenda(message, lang, lambda today: parse_range(command.args, today))

    def cmd_next(self, command: Command, message: Message, lang: str) -> str:
        found, occ = self.services.next_meeting(message.user_id)
        if occ is None:
            return t(lang, "agenda.no_next", days=NEXT_SEARCH_DAYS)
        today = self.clock().astimezone(found.tz).date()
        return render_next(occ, found.tz, lang, today)

    # -- notification settings --------------------------------------------------------------
    def _settings(self, message: Message) -> NotificationSettings:
        return self.services.account(message.user_id).notifications

    def _save(self, message: Message, lang: str, settings: NotificationSettings) -> str:
        account = self.services.set_notifications(message.user_id, settings)
        return t(lang, "settings.saved",
                 summary=describe_notifications(account.notifications, lang))

    def cmd_daily(self, command: Command, message: Message, lang: str) -> str:
        current = self._settings(message)
        if command.first in OFF_WORDS:
            return self._save(message, lang, _replace(current, daily_at=None))
        if not command.args:
            raise BadInput("error.bad_time", value="")
        at = parse_hhmm(command.args[0])
        rest = {a.lower() for a in command.args[1:]}
        weekdays = bool(rest & {"weekdays", "будни", "workdays"})
        return self._save(message, lang, _replace(current, daily_at=at, daily_weekdays=weekdays))

    def cmd_remind(self, command: Command, message: Message, lang: str) -> str:
        current = self._settings(message)
        if command.first in OFF_WORDS:
            return self._save(message, lang, _replace(current, leads=()))
        return self._save(message, lang, _replace(current, leads=parse_leads(command.args)))

    def _switch(self, command: Command, message: Message, lang: str, field: str) -> str:
        current = self._settings(message)
        if command.first not in ON_WORDS | OFF_WORDS:
            raise BadInput("error.on_off", command=command.name)
        return self._save(message, lang, _replace(current, **{field: command.first in ON_WORDS}))

    def cmd_status(self, command: Command, message: Message, lang: str) -> str:
        return self._switch(command, message, lang, "status")

    def cmd_changes(self, command: Command, message: Message, lang: str) -> str:
        return self._switch(command, message, lang, "changes")

    def cmd_responses(self, command: Command, message: Message, lang: str) -> str:
        return self._switch(command, message, lang, "responses")

    def cmd_notifications(self, command: Command, message: Message, lang: str) -> str:
        if not command.args:
            return t(lang, "settings.show",
                     summary=describe_notifications(self._settings(message), lang))
        if command.first in OFF_WORDS:
            return self._save(message, lang, NotificationSettings.off())
        if command.first in ON_WORDS:
            at = parse_hhmm(command.args[1]) if len(command.args) > 1 else "09:00"
            return self._save(message, lang, NotificationSettings(daily_at=at))
        raise BadInput("error.bad_notifications")


class _AlreadyAnswered(BotError):
    """Control flow: the reply was already posted (a refused secret in a channel)."""


def _replace(settings: NotificationSettings, **changes: Any) -> NotificationSettings:
    return replace(settings, **changes)


def _last_error(account: Account, lang: str) -> str:
    if not account.last_error:
        return t(lang, "word.none")
    text = t(lang, account.last_error) if account.last_error in TEXTS else escape(account.last_error)
    return f"{_when(account.last_error_at, account.timezone)} — {text}"


def _when(value: datetime | None, zone: str) -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime("%d.%m.%Y %H:%M")
