"""Signed, expiring action tokens: what a button or a dialog may do, for whom, until when.

Mattermost does not sign the requests it sends to an integration: anyone who can reach the
action endpoint can post a click. So every button's ``context`` (and every dialog's ``state``)
carries a token: the user it belongs to, the action, the meeting, an expiry, and an
HMAC-SHA256 over all of it with a key derived from ``YC_SECRET_KEY`` (HKDF, its own ``info``,
so the key that encrypts app passwords is never used for anything else). A click is acted on
only when the signature holds, the token has not expired and the clicking user is the token's.

Format: ``base64url(json payload) "." base64url(first 16 bytes of the HMAC)``; the payload keys
are short to keep posts small.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.core.model import MeetingRef

_SIG_BYTES = 16


class TokenError(Exception):
    """A token that must not be acted on. ``reason``: "invalid", "expired" or "other_user"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ActionToken:
    user_id: str
    action: str  # answer | snooze | connect | password
    expires_at: datetime
    value: str = ""  # the answer (ACCEPTED, TENTATIVE, DECLINED), …
    ref: MeetingRef | None = None
    notice: str = ""  # the notice the button is on (its row id), for snoozes and updates


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _dump_ref(ref: MeetingRef) -> dict[str, Any]:
    return {"c": ref.calendar, "h": ref.href, "u": ref.uid, "r": ref.recurrence_id,
            "s": int(ref.start.timestamp()), "t": ref.title[:80]}


def _load_ref(data: dict[str, Any]) -> MeetingRef:
    return MeetingRef(str(data["c"]), str(data["h"]), str(data["u"]),
                      None if data.get("r") is None else str(data["r"]),
                      datetime.fromtimestamp(int(data["s"]), UTC), str(data.get("t", "")))


class Signer:
    def __init__(self, secret: str) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"yc-mattermost-bot",
                         info=b"action-tokens").derive(secret.encode("utf-8"))

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIG_BYTES]

    def sign(self, token: ActionToken) -> str:
        data: dict[str, Any] = {"u": token.user_id, "a": token.action,
                                "x": int(token.expires_at.timestamp())}
        if token.value:
            data["v"] = token.value
        if token.ref is not None:
            data["m"] = _dump_ref(token.ref)
        if token.notice:
            data["n"] = token.notice
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def verify(self, text: object, *, user_id: str, now: datetime) -> ActionToken:
        """The token, if it is genuine, unexpired and ``user_id``'s; else ``TokenError``."""
        if not isinstance(text, str) or text.count(".") != 1 or len(text) > 4096:
            raise TokenError("invalid")
        body, signature = text.split(".")
        try:
            payload, given = _unb64(body), _unb64(signature)
        except ValueError:
            raise TokenError("invalid") from None
        if not hmac.compare_digest(self._sign(payload), given):
            raise TokenError("invalid")
        try:
            data = json.loads(payload)
            token = ActionToken(
                user_id=str(data["u"]), action=str(data["a"]),
                expires_at=datetime.fromtimestamp(int(data["x"]), UTC),
                value=str(data.get("v", "")),
                ref=_load_ref(data["m"]) if "m" in data else None,
                notice=str(data.get("n", "")))
        except (ValueError, KeyError, TypeError):
            raise TokenError("invalid") from None
        if now >= token.expires_at:
            raise TokenError("expired")
        if token.user_id != user_id:
            raise TokenError("other_user")
        return token
