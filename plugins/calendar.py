"""The chat front: one listener parses the command, calls a service, and replies in the
command's thread. No business logic here; one place turns exceptions into replies."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import schedule
from mmpy_bot import Message, Plugin, listen_to

from bot import metrics
from bot.actions.buttons import ANSWERS, scope_text
from bot.actions.handlers import Actions
from bot.actions.server import HttpEndpoint
from bot.core.agenda import render_agenda, render_next
from bot.core.commands import (
    OFF_WORDS,
    ON_WORDS,
    Command,
    parse_command,
    parse_date,
    parse_hhmm,
    parse_leads,
    parse_meet,
    parse_range,
    period_for,
)
from bot.core.markdown import code, escape, link, split_message
from bot.core.model import Account, NotificationSettings
from bot.core.notices import when
from bot.core.replies import calendar_names, connected_text, describe_notifications
from bot.core.texts import LANGUAGES, TEXTS, language_of, t
from bot.engine import Engine
from bot.errors import BadInput, BotError
from bot.inbox import REPLY_PROP, Inbox
from bot.ports import Messenger
from bot.services import NEXT_SEARCH_DAYS, Services
from bot.stores import ClaimedNotice

log = logging.getLogger(__name__)
# A reply typed the moment a notice appeared can reach us before the sender has recorded the
# notice's post id (it does right after Mattermost's answer, and may wait for the database's
# write lock): a thread that is not (yet) a known notice is looked up again for this long.
THREAD_LOOKUP_TRIES = 8
THREAD_LOOKUP_PAUSE = 0.25

# Parameters of these names are ours (zone names, numbers, command words), shown in code spans:
# they must not be Markdown-escaped. Everything else may hold user or calendar text.
_TRUSTED_PARAMS = {"suggestion", "count", "days", "command"}
SECRET_COMMANDS = ("connect", "password")
ORPHAN_SWEEP_SECONDS = 10
READ_ONLY_COMMANDS = frozenset(
    {"help", "check", "today", "tomorrow", "week", "month", "date", "range", "next"})


@dataclass(frozen=True)
class Reply:
    """An answer with buttons (``props``) on its last post."""

    text: str
    props: dict[str, Any] | None = None


class CalendarPlugin(Plugin):  # type: ignore[misc]  # mmpy_bot is untyped: Plugin is Any
    """Every chat command. Handlers are plain functions: mmpy-bot runs them on its thread pool,
    so CalDAV calls never block the websocket loop. A post is answered by the one process that
    claims it (``bot.inbox``); the reply carries the post's id in its props."""

    messenger: Messenger  # set by attach(), once the bot has logged in

    def __init__(self, services: Services, *, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.services = services
        self.clock = clock
        self.engine: Engine | None = None
        self.inbox: Inbox | None = None
        self.actions: Actions | None = None
        self.endpoint: HttpEndpoint | None = None
        self._tick_seconds = 1.0
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="yc-chat")
        self.sleep: Callable[[float], object] = time.sleep

    def attach(self, *, messenger: Messenger, inbox: Inbox, engine: Engine | None,
               tick_seconds: float = 1.0, actions: Actions | None = None,
               endpoint: HttpEndpoint | None = None) -> None:
        """The parts built after the bot logged in (they need its driver). ``actions`` only
        when YC_ACTIONS_URL is set: then `connect` and `password` alone answer with a button
        that opens a dialog, and answers typed in a thread also update the notice's buttons."""
        self.messenger = messenger
        self.inbox = inbox
        self.engine = engine
        self._tick_seconds = tick_seconds
        self.actions = actions
        self.endpoint = endpoint

    def on_start(self) -> None:
        """mmpy-bot started: the engine's tick and the inbox sweep go on its scheduler."""
        if self.engine is not None:
            self.engine.register(schedule, self._tick_seconds)
        schedule.every(ORPHAN_SWEEP_SECONDS).seconds.do(self._sweep_orphans)

    def on_stop(self) -> None:
        if self.engine is not None:
            self.engine.shutdown()
        if self.endpoint is not None:
            self.endpoint.stop()
        self._background.shutdown(wait=False, cancel_futures=True)

    def websocket_logged_in(self, first: bool) -> None:
        """(Re)connected: answer what was asked while away; retry what failed meanwhile."""
        if self.engine is not None and not first:
            self.engine.mattermost_back()
        if self.inbox is not None:
            count = self.inbox.catch_up(self.handle)
            if count:
                log.info("inbox.catch_up answered=%d", count)

    def _sweep_orphans(self) -> None:
        if self.inbox is not None:
            self._background.submit(self._run_orphans)

    def _run_orphans(self) -> None:
        try:
            assert self.inbox is not None  # noqa: S101 - checked by the caller
            self.inbox.orphans(self.handle)
        except Exception:
            log.warning("inbox.orphans_failed", exc_info=True)

    # -- entry point ----------------------------------------------------------------------
    @listen_to(r"\S", needs_mention=True)  # type: ignore[untyped-decorator]  # mmpy_bot is untyped
    def on_message(self, message: Message) -> None:
        """Any message in a DM, or mentioning the bot in a channel (from the websocket)."""
        if self.inbox is not None and not self.inbox.claim(message.body):
            return  # another process answers it (or already did)
        self.handle(message.body)

    def handle(self, body: dict[str, Any]) -> None:
        """Answer one claimed post (live, caught up after an absence, or taken over)."""
        message = Message(body)
        try:
            if str(body["data"]["post"].get("type", "")).startswith("system_"):
                return  # join/leave and other system messages are not commands
            self._answer(message)
        finally:
            if self.inbox is not None:
                self.inbox.done(message.id)

    def _answer(self, message: Message) -> None:
        lang = "en"
        root_id = message.reply_id
        command_name = "unknown"
        try:
            lang = self._language(message.user_id)
            command = parse_command(message.text)
            command_name = command.name
            log.info("command.received user=%s command=%s", message.user_id, command.name)
            if command.name in SECRET_COMMANDS and len(command.args) >= 1:
                root_id = self._protect_secret(message, command, lang)
            reply = self._dispatch(command, message, lang)
            if self.engine is not None and command.name not in READ_ONLY_COMMANDS:
                self.engine.nudge()  # a new or removed account is taken on at once
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
        metrics.COMMANDS.labels(command_name).inc()
        answer = reply if isinstance(reply, Reply) else Reply(reply)
        self.reply(message, answer.text, root_id, props=answer.props)

    def reply(self, message: Message, text: str, root_id: str,
              props: dict[str, Any] | None = None) -> list[str]:
        """Post the answer (split below the post limit) in the command's thread, ``props``
        on the last part; returns the post ids."""
        # The same answer posted again (a takeover right after a crash) has the same pending
        # id, which Mattermost answers with the first post for a while instead of a copy.
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        posted: list[str] = []
        try:
            chunks = split_message(text)
            for index, chunk in enumerate(chunks):
                extra = dict(props or {}) if index == len(chunks) - 1 else {}
                posted.append(self.messenger.post(
                    message.channel_id, chunk, root_id=root_id,
                    props={**extra, REPLY_PROP: message.id},
                    pending_post_id=f"{self.messenger.bot_user_id}:{message.id}-{digest}-{index}"))
        except Exception:
            log.warning("reply.failed user=%s", message.user_id, exc_info=True)
        return posted

    def _language(self, user_id: str) -> str:
        return self.services.language(user_id, lambda: self.messenger.profile(user_id).locale)

    def _protect_secret(self, message: Message, command: Command, lang: str) -> str:
        """A message holding an app password: refuse it outside a DM, and delete it where the
        bot may. Returns the thread to answer in (the deleted post can't hold a thread)."""
        deleted = self.messenger.delete_post(message.id)
        root_id: str = message.root_id if deleted else message.reply_id
        if not message.is_direct_message:
            note = "" if deleted else " " + t(lang, "connect.post_not_deleted")
            self.reply(message, t(lang, "error.dm_only", command=command.name) + note, root_id)
            raise _AlreadyAnswered()
        key = "connect.post_deleted" if deleted else "connect.post_not_deleted"
        self.reply(message, t(lang, key), root_id)
        return root_id

    # -- commands -------------------------------------------------------------------------
    def _dispatch(self, command: Command, message: Message, lang: str) -> str | Reply:
        handler = getattr(self, f"cmd_{command.name}")
        answer = handler(command, message, lang)
        return answer if isinstance(answer, Reply) else str(answer)

    def cmd_help(self, command: Command, message: Message, lang: str) -> str:
        return t(lang, "help")

    def _dialog_button(self, message: Message, action: str, lang: str) -> Reply | None:
        """`connect` / `password` alone in a DM, with buttons on: a button opening the dialog
        where the app password is typed, never into a post."""
        if self.actions is None or not message.is_direct_message:
            return None
        props = self.actions.buttons.connect_button(message.user_id, action, lang, self.clock())
        return Reply(t(lang, f"{action}.button_intro"), props=props)

    def cmd_connect(self, command: Command, message: Message, lang: str) -> str | Reply:
        if not command.args and (button := self._dialog_button(message, "connect", lang)):
            return button
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
        return connected_text(account, calendars)

    def cmd_disconnect(self, command: Command, message: Message, lang: str) -> str:
        if self.engine is not None:
            self.engine.status.clear_now(message.user_id)
        removed = self.services.disconnect(message.user_id)
        return t(lang, "disconnect.done" if removed else "disconnect.none")

    def cmd_login(self, command: Command, message: Message, lang: str) -> str:
        if not command.args:
            raise BadInput("error.login_usage")
        account = self.services.change_login(message.user_id, command.args[0])
        return t(lang, "login.done", login=code(account.login))

    def cmd_password(self, command: Command, message: Message, lang: str) -> str | Reply:
        if not command.args:
            self.services.account(message.user_id)  # not connected: say so first
            if button := self._dialog_button(message, "password", lang):
                return button
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
        extra = self.services.upcoming_info(account)
        body = t(
            lang,
            "check.body",
            login=code(account.login),
            timezone=account.timezone,
            calendars=calendar_names(calendars),
            notifications=describe_notifications(account.notifications, lang,
                                                 status_refused=account.status_refused),
            last_sync=_when(account.last_sync_at, account.timezone) or t(lang, "word.never"),
            last_error=_last_error(account, lang),
            next_agenda=extra.get("next_agenda") or t(lang, "word.off"),
            next_reminder=extra.get("next_reminder") or t(lang, "word.none"),
        )
        if account.status_refused:
            body = t(lang, "check.status_refused") + "\n" + body
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


    # -- answering invitations, meetings, admins --------------------------------------------
    def _notice_in_thread(self, user_id: str, root_id: str) -> ClaimedNotice | None:
        """The notice whose post heads the thread the user typed in, or None."""
        if not root_id:
            return None
        for _ in range(THREAD_LOOKUP_TRIES - 1):
            notice = self.services.outbox.notice_of_post(user_id, root_id)
            if notice is not None:
                return notice
            self.sleep(THREAD_LOOKUP_PAUSE)
        return self.services.outbox.notice_of_post(user_id, root_id)

    def _answer_typed(self, message: Message, lang: str, partstat: str) -> str:
        """`accept` / `maybe` / `decline` typed in the thread of an invitation or reminder."""
        notice = self._notice_in_thread(message.user_id, message.root_id)
        refs = list(notice.refs) if notice is not None and "answer" in notice.actions else []
        if not refs:
            raise BadInput("error.answer_where")
        if len(refs) > 1:
            raise BadInput("error.answer_which", count=len(refs))
        ref = refs[0]
        result = self.services.answer(message.user_id, ref, partstat)
        if self.actions is not None:
            update = self.actions.answered_update(message.user_id, message.root_id, ref, partstat)
            if update is not None:
                try:
                    self.messenger.update_post(message.root_id, update["message"],
                                               update["props"])
                except Exception:
                    log.warning("answer.update_failed user=%s", message.user_id, exc_info=True)
        tz = ZoneInfo(self.services.account(message.user_id).timezone)
        done = t(lang, "answer.gone" if result.state == "gone" else f"answer.done.{partstat}")
        return f"{done} — {scope_text(ref, tz, lang, titled=True)}"

    def cmd_accept(self, command: Command, message: Message, lang: str) -> str:
        return self._answer_typed(message, lang, ANSWERS["accept"])

    def cmd_maybe(self, command: Command, message: Message, lang: str) -> str:
        return self._answer_typed(message, lang, ANSWERS["maybe"])

    def cmd_decline(self, command: Command, message: Message, lang: str) -> str:
        return self._answer_typed(message, lang, ANSWERS["decline"])

    def cmd_meet(self, command: Command, message: Message, lang: str) -> Reply:
        """`meet <date> <HH:MM> [<duration>] <title> [with @user …]` in a DM."""
        if not message.is_direct_message:
            raise BadInput("error.meet_dm_only")
        account = self.services.account(message.user_id)
        tz = ZoneInfo(account.timezone)
        request = parse_meet(command.args, self.clock().astimezone(tz).date())
        found = self.messenger.users_by_username(request.guests)
        unknown = [g for g in request.guests if g not in found]
        if unknown:
            raise BadInput("error.meet_unknown_user", value="@" + unknown[0][:60])
        bot = self.messenger.bot_user_id
        guests = [found[g] for g in request.guests if found[g].username != bot]
        # later notices about the meeting (its link, when Yandex adds it late) join this thread
        occurrence = self.services.meet(message.user_id, request, guests,
                                        thread_root=message.reply_id)
        names = ", ".join(escape("@" + g) for g in request.guests) or "—"
        text = t(lang, "meet.done", title=escape(occurrence.title), when=when(occurrence, tz, lang),
                 guests=names)
        if occurrence.link:
            text += "\n" + link(f"**{t(lang, 'agenda.join')}**", occurrence.link)
        else:
            text += "\n" + t(lang, "meet.link_later")
        return Reply(text)

    def cmd_stats(self, command: Command, message: Message, lang: str) -> str:
        """For Mattermost system admins only (their role, read through the API); everyone
        else gets the usual unknown-command answer."""
        if not self.messenger.profile(message.user_id).is_admin:
            raise BadInput("error.unknown_command", text=message.text.strip()[:40])
        stats = self.services.stats()
        uses = ", ".join(f"{t(lang, 'stats.use.' + k)} {v}" for k, v in stats.use.items())
        errors = ", ".join(f"{t(lang, k) if k in TEXTS else escape(k)} ({v})"
                           for k, v in stats.errors.items()) or t(lang, "word.none")
        hours, rest = divmod(int(stats.uptime.total_seconds()), 3600)
        return t(lang, "stats.body", accounts=stats.accounts, uses=uses,
                 needs_password=stats.needs_password, errors=errors, version=stats.version,
                 uptime=f"{hours}h {rest // 60:02d}m")


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
