"""The buttons a notice gets (message attachments), and how they look once used.

Mattermost's interactive messages: ``props.attachments[].actions[]`` of ``type: "button"``
whose ``integration`` names our endpoint and a ``context`` holding a signed token
(``bot.actions.tokens``). The server strips ``integration`` whenever a client reads the post,
so the token never reaches a browser.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.actions.tokens import ActionToken, Signer
from bot.core.markdown import escape
from bot.core.model import ACCEPTED, DECLINED, TENTATIVE, MeetingRef
from bot.core.texts import t
from bot.stores import ClaimedNotice

ANSWERS = {"accept": ACCEPTED, "maybe": TENTATIVE, "decline": DECLINED}
ANSWER_STYLE = {ACCEPTED: "good", TENTATIVE: "default", DECLINED: "danger"}
ANSWER_TTL = timedelta(days=90)  # an invitation can be answered this long after it was sent
CONNECT_TTL = timedelta(minutes=15)


class Buttons:
    """Builds the attachments; ``language(user)`` and ``zone(user)`` look the user up."""

    def __init__(self, *, signer: Signer, actions_url: str,
                 language: Callable[[str], str], zone: Callable[[str], str]) -> None:
        self.signer = signer
        self.url = actions_url.rstrip("/")
        self.language = language
        self.zone = zone

    def _button(self, kind: str, label: str, token: ActionToken, style: str = "default",
                name: str = "") -> dict[str, Any]:
        return {"id": name or kind, "name": label, "type": "button", "style": style,
                "integration": {"url": f"{self.url}/actions/{kind}",
                                "context": {"token": self.signer.sign(token)}}}

    def for_notice(self, notice: ClaimedNotice, now: datetime) -> dict[str, Any] | None:
        """``props`` for the notice's last post: a row of buttons per meeting it is about."""
        if not notice.refs or not notice.actions:
            return None
        lang = self.language(notice.user_id)
        tz = ZoneInfo(self.zone(notice.user_id))
        attachments = []
        for ref in notice.refs:
            actions = []
            if "answer" in notice.actions:
                actions += self.answer_buttons(notice.user_id, ref, str(notice.pk), lang, now)
            if "snooze" in notice.actions and ref.start > now:
                actions.append(self._button(
                    "snooze", t(lang, "button.snooze"),
                    ActionToken(notice.user_id, "snooze", ref.start, ref=ref,
                                notice=str(notice.pk))))
            text = scope_text(ref, tz, lang, titled=len(notice.refs) > 1) \
                if "answer" in notice.actions else ""
            attachments.append({"text": text, "actions": actions})
        return {"attachments": attachments}

    def answer_buttons(self, user: str, ref: MeetingRef, notice: str, lang: str,
                       now: datetime) -> list[dict[str, Any]]:
        expires = max(ref.start, now) + ANSWER_TTL
        return [self._button("answer", t(lang, f"button.{word}"),
                             ActionToken(user, "answer", expires, value=value, ref=ref,
                                         notice=notice),
                             style=ANSWER_STYLE[value], name=word)
                for word, value in ANSWERS.items()]

    def connect_button(self, user: str, action: str, lang: str, now: datetime) -> dict[str, Any]:
        """``props`` with the Connect (or New app password) button that opens the dialog."""
        label = t(lang, "button.connect" if action == "connect" else "button.password")
        return {"attachments": [{"text": t(lang, f"{action}.dialog_hint"), "actions": [
            self._button(action, label, ActionToken(user, action, now + CONNECT_TTL),
                         style="primary")]}]}


def scope_text(ref: MeetingRef, tz: ZoneInfo, lang: str, *, titled: bool) -> str:
    """What an answer applies to: the whole series / this one occurrence (its time)."""
    if ref.recurrence_id is None:
        scope = t(lang, "answer.scope_series")
    else:
        scope = t(lang, "answer.scope_occurrence",
                  when=ref.start.astimezone(tz).strftime("%d.%m %H:%M"))
    return f"**{escape(ref.title) or '…'}** — {scope}" if titled else scope


def answered_attachment(ref: MeetingRef, partstat: str, tz: ZoneInfo, lang: str, *,
                        titled: bool, buttons: list[dict[str, Any]]) -> dict[str, Any]:
    """The attachment after an answer: what was answered, for what; the buttons stay (to
    change the answer) except after a decline, which Yandex makes final for this copy."""
    text = t(lang, f"answer.done.{partstat}") + " — " + scope_text(ref, tz, lang, titled=titled)
    return {"text": text, "actions": [] if partstat == DECLINED else buttons}
