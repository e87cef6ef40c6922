"""What a click or a dialog submission does. Each entry point takes the request's JSON (already
parsed and shape-checked) and returns the JSON answer for Mattermost; none raises.

Every request is refused, with an ephemeral line and changing nothing, unless its token (in the
button's ``context`` or the dialog's ``state``) is genuine, unexpired and the clicking user's,
and the user is still connected. Refusals are logged with the reason, never the token.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot import metrics
from bot.actions.buttons import Buttons, answered_attachment
from bot.actions.tokens import ActionToken, Signer, TokenError
from bot.core.markdown import split_message
from bot.core.model import MeetingRef
from bot.core.notices import reminder_message
from bot.core.reminders import Reminder
from bot.core.replies import connected_text
from bot.core.texts import TEXTS, language_of, t
from bot.errors import BadInput, BotError
from bot.ports import Messenger
from bot.services import Services
from bot.stores import ClaimedNotice

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Click:
    """A button click as Mattermost posts it (the fields we use)."""

    user_id: str
    post_id: str
    channel_id: str
    trigger_id: str
    token: object


class Actions:
    def __init__(self, *, services: Services, signer: Signer, buttons: Buttons,
                 messenger: Messenger, clock: Callable[[], datetime], actions_url: str) -> None:
        self.services = services
        self.signer = signer
        self.buttons = buttons
        self.messenger = messenger
        self.clock = clock
        self.url = actions_url.rstrip("/")

    # -- shared -------------------------------------------------------------------------------
    def language(self, user_id: str) -> str:
        return self.services.language(user_id, lambda: self.messenger.profile(user_id).locale)

    def zone(self, user_id: str) -> str:
        return self.services.zone(user_id)

    def verify(self, click: Click, action: str) -> ActionToken | dict[str, Any]:
        """The token, or the refusal to answer with."""
        try:
            token = self.signer.verify(click.token, user_id=click.user_id, now=self.clock())
            if token.action != action:
                raise TokenError("invalid")
        except TokenError as exc:
            log.warning("action.refused action=%s user=%s post=%s reason=%s", action,
                        click.user_id, click.post_id, exc.reason)
            metrics.ACTIONS.labels(action, f"refused_{exc.reason}").inc()
            return self.ephemeral(click.user_id, f"action.refused.{exc.reason}")
        if action not in ("connect",) and self.services.repo.account(click.user_id) is None:
            log.warning("action.refused action=%s user=%s reason=not_connected", action,
                        click.user_id)
            metrics.ACTIONS.labels(action, "refused_not_connected").inc()
            return self.ephemeral(click.user_id, "error.not_connected")
        return token

    def ephemeral(self, user_id: str, key: str, **params: object) -> dict[str, Any]:
        return {"ephemeral_text": t(self.language(user_id), key, **params)}

    def _error(self, user_id: str, exc: BaseException) -> dict[str, Any]:
        key = exc.key if isinstance(exc, BotError) and exc.key in TEXTS else "error.internal"
        if not isinstance(exc, BotError):
            log.exception("action.failed user=%s", user_id)
        return self.ephemeral(user_id, key)

    # -- answer an invitation -----------------------------------------------------------------
    def answer(self, click: Click, token: ActionToken) -> dict[str, Any]:
        """Write the answer to Yandex, then the post's update showing it (slow: CalDAV)."""
        assert token.ref is not None  # noqa: S101 - answer tokens always carry their meeting
        try:
            result = self.services.answer(click.user_id, token.ref, token.value)
        except Exception as exc:
            metrics.ACTIONS.labels("answer", "failed").inc()
            return self._error(click.user_id, exc)
        metrics.ACTIONS.labels("answer", "done").inc()
        update = self.answered_update(click.user_id, click.post_id, token.ref, token.value)
        answer: dict[str, Any] = {"ephemeral_text": t(
            self.language(click.user_id), "answer.gone" if result.state == "gone"
            else f"answer.done.{token.value}")}
        if update is not None:
            answer["update"] = update
        return answer

    def answered_update(self, user_id: str, post_id: str, ref: MeetingRef,
                        partstat: str) -> dict[str, Any] | None:
        """The post as it reads after the answer (its text, and the answered meeting's row);
        None when the post is not one of our notices."""
        found = self.services.outbox.notice_of_post(user_id, post_id)
        if found is None:
            return None
        lang, tz = self.language(user_id), ZoneInfo(self.zone(user_id))
        parts = split_message(found.message)
        index = found.parts.index(post_id)
        message = parts[index] if index < len(parts) else parts[-1]
        props = self.buttons.for_notice(found, self.clock()) or {"attachments": []}
        rows = props["attachments"]
        for position, other in enumerate(found.refs):
            if (other.href, other.recurrence_id) == (ref.href, ref.recurrence_id):
                rows[position] = answered_attachment(
                    other, partstat, tz, lang, titled=len(found.refs) > 1,
                    buttons=rows[position]["actions"])
        return {"message": message, "props": props}

    def finish_late(self, click: Click, answer: dict[str, Any]) -> None:
        """The write finished after the click was answered: update the post and tell the user
        the outcome through the REST API instead."""
        try:
            update = answer.get("update")
            if update is not None:
                self.messenger.update_post(click.post_id, update["message"], update["props"])
            text = answer.get("ephemeral_text")
            if text:
                self.messenger.ephemeral(click.user_id, click.channel_id, str(text))
        except Exception:
            log.warning("action.late_update_failed user=%s post=%s", click.user_id,
                        click.post_id, exc_info=True)

    # -- snooze a reminder --------------------------------------------------------------------
    def snooze(self, click: Click, token: ActionToken) -> dict[str, Any]:
        assert token.ref is not None  # noqa: S101 - snooze tokens always carry their meeting
        ref = token.ref
        user = click.user_id
        found = self.services.outbox.notice_of_post(user, click.post_id)
        reminder_id = found.notice_id if found else f"post|{click.post_id}"
        now = self.clock()
        at = min(now + timedelta(minutes=5), ref.start - timedelta(minutes=1))
        message = self._snoozed_message(user, ref, reminder_id, at, found)
        answerable = bool(found and "answer" in found.actions)
        try:
            at = self.services.snooze(user, ref, reminder_id, message, answerable=answerable)
        except BadInput as exc:
            metrics.ACTIONS.labels("snooze", "refused").inc()
            return self.ephemeral(user, exc.key)
        metrics.ACTIONS.labels("snooze", "done").inc()
        lang, tz = self.language(user), ZoneInfo(self.zone(user))
        note = t(lang, "snooze.done", time=at.astimezone(tz).strftime("%H:%M"))
        answer: dict[str, Any] = {"ephemeral_text": note}
        if found is not None:
            props = self.buttons.for_notice(found, now) or {"attachments": []}
            for attachment in props["attachments"]:
                attachment["actions"] = [b for b in attachment["actions"] if b["id"] != "snooze"]
                attachment["text"] = (attachment.get("text", "") + "\n" + note).strip()
            index = found.parts.index(click.post_id) if click.post_id in found.parts else -1
            answer["update"] = {"message": split_message(found.message)[index], "props": props}
        return answer

    def _snoozed_message(self, user: str, ref: MeetingRef, reminder_id: str, at: datetime,
                         found: ClaimedNotice | None) -> str:
        account = self.services.account(user)
        tz = ZoneInfo(account.timezone)
        occurrence = next((o for o in self.services.store.snapshot(user).values()
                           if o.calendar == ref.calendar and o.uid == ref.uid
                           and o.start == ref.start), None)
        if occurrence is None:
            return found.message if found else ref.title
        lead = max(1, math.ceil((ref.start - at).total_seconds() / 60))
        reminder = Reminder(notice_id=reminder_id, occurrence=occurrence, lead_minutes=lead,
                            due_at=at, late=False)
        return reminder_message(reminder, tz, account.language, at)

    # -- connect without a password in the chat -----------------------------------------------
    def open_connect_dialog(self, click: Click, token: ActionToken) -> dict[str, Any]:
        """Open the dialog (the click's trigger id lives 3 seconds: this goes first)."""
        lang = self.language(click.user_id)
        state = self.signer.sign(ActionToken(click.user_id, f"dialog:{token.action}",
                                             self.clock() + timedelta(minutes=30)))
        account = self.services.repo.account(click.user_id)
        elements: list[dict[str, Any]] = []
        if token.action == "connect":
            elements.append({"display_name": t(lang, "dialog.login"), "name": "login",
                             "type": "text", "subtype": "email",
                             "placeholder": "ivan@yandex.ru",
                             "default": account.login if account else "",
                             "help_text": t(lang, "dialog.login_help")})
        elements.append({"display_name": t(lang, "dialog.password"), "name": "password",
                         "type": "text", "subtype": "password",
                         "help_text": t(lang, "dialog.password_help")})
        if token.action == "connect":
            elements.append({"display_name": t(lang, "dialog.timezone"), "name": "timezone",
                             "type": "text", "subtype": "text", "optional": True,
                             "default": account.timezone if account else "",
                             "placeholder": "Europe/Moscow",
                             "help_text": t(lang, "dialog.timezone_help")})
        intro = t(lang, f"dialog.{token.action}_intro",
                  login=account.login if account else "")
        dialog = {"callback_id": token.action, "title": t(lang, "dialog.title"),
                  "introduction_text": intro, "elements": elements,
                  "submit_label": t(lang, "dialog.submit"), "notify_on_cancel": False,
                  "state": state}
        try:
            self.messenger.open_dialog(click.trigger_id, f"{self.url}/dialogs/{token.action}",
                                       dialog)
        except Exception as exc:
            log.warning("dialog.open_failed user=%s error=%s", click.user_id, type(exc).__name__)
            return self.ephemeral(click.user_id, "dialog.open_failed")
        metrics.ACTIONS.labels(token.action, "dialog_opened").inc()
        return {}

    def submit(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """A dialog submission: checked with Yandex like `connect`; a refusal comes back beside
        the field, in the user's language, and nothing is stored."""
        user = str(body.get("user_id") or "")
        lang = self.language(user)
        try:
            token = self.signer.verify(body.get("state"), user_id=user, now=self.clock())
            if token.action != f"dialog:{kind}":
                raise TokenError("invalid")
        except TokenError as exc:
            log.warning("dialog.refused kind=%s user=%s reason=%s", kind, user, exc.reason)
            metrics.ACTIONS.labels(f"dialog_{kind}", f"refused_{exc.reason}").inc()
            return {"error": t(lang, f"action.refused.{exc.reason}")}
        values = body.get("submission")
        if not isinstance(values, dict):
            return {"error": t(lang, "error.internal")}
        password = str(values.get("password") or "").strip()
        errors: dict[str, str] = {}
        if not password:
            errors["password"] = t(lang, "dialog.required")
        login = str(values.get("login") or "").strip()
        if kind == "connect" and not login:
            errors["login"] = t(lang, "dialog.required")
        if errors:
            return {"errors": errors}
        channel = str(body.get("channel_id") or "")
        try:
            if kind == "connect":
                zone = str(values.get("timezone") or "").strip() or None
                profile = self.messenger.profile(user)
                account, calendars = self.services.connect(
                    user, login, password, zone=zone, profile_zone=profile.timezone,
                    language=language_of(profile.locale))
                done = connected_text(account, calendars)
            else:
                account = self.services.change_password(user, password)
                done = t(account.language, "password.done")
        except BotError as exc:
            metrics.ACTIONS.labels(f"dialog_{kind}", "refused_by_yandex").inc()
            field = "timezone" if exc.key.startswith("error.unknown_zone") else (
                "login" if exc.key == "error.not_connected" else "password")
            params = {k: v for k, v in exc.params.items() if isinstance(v, str)}
            text = t(lang, exc.key, **params) if exc.key in TEXTS else t(lang, "error.internal")
            return {"errors": {field: _short(text)}}
        except Exception:
            log.exception("dialog.failed kind=%s user=%s", kind, user)
            return {"error": t(lang, "error.internal")}
        metrics.ACTIONS.labels(f"dialog_{kind}", "done").inc()
        try:
            self.messenger.post(channel or self.messenger.direct_channel(user), done)
        except Exception:
            log.warning("dialog.reply_failed user=%s", user, exc_info=True)
        return {}


def _short(text: str) -> str:
    """A field error is one line: the first sentence or two of the full reply."""
    return text if len(text) <= 300 else text[:297] + "…"
