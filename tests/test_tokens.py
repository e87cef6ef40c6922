"""Signed action tokens: a button acts only for its user, unaltered, before its expiry."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.actions.tokens import ActionToken, Signer, TokenError
from bot.core.model import MeetingRef

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
REF = MeetingRef("/c/events-1/", "/c/events-1/a.ics", "uid-1", None,
                 NOW + timedelta(days=3), "Planning")


def _token(**changes: object) -> ActionToken:
    values: dict[str, object] = {"user_id": "alice", "action": "answer",
                                 "expires_at": NOW + timedelta(hours=1), "value": "ACCEPTED",
                                 "ref": REF, "notice": "17"}
    values.update(changes)
    return ActionToken(**values)  # type: ignore[arg-type]


def test_a_genuine_token_round_trips() -> None:
    """What was signed comes back: user, action, answer, meeting (to the second), notice."""
    signer = Signer("key")
    back = signer.verify(signer.sign(_token()), user_id="alice", now=NOW)
    assert (back.user_id, back.action, back.value, back.notice) == ("alice", "answer",
                                                                    "ACCEPTED", "17")
    assert back.ref == REF
    assert back.expires_at == NOW + timedelta(hours=1)


def test_another_users_click_is_refused() -> None:
    """Bob clicking alice's button: refused as another user's."""
    signer = Signer("key")
    with pytest.raises(TokenError) as refused:
        signer.verify(signer.sign(_token()), user_id="bob", now=NOW)
    assert refused.value.reason == "other_user"


def test_a_replayed_token_after_its_expiry_is_refused() -> None:
    """The same token, genuine, a second after it expired: refused as expired."""
    signer = Signer("key")
    text = signer.sign(_token())
    signer.verify(text, user_id="alice", now=NOW + timedelta(minutes=59))
    with pytest.raises(TokenError) as refused:
        signer.verify(text, user_id="alice", now=NOW + timedelta(hours=1, seconds=1))
    assert refused.value.reason == "expired"


def test_an_altered_payload_is_refused() -> None:
    """Changing the answer (or the user) inside a token breaks its signature."""
    signer = Signer("key")
    body, signature = signer.sign(_token()).split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["v"] = "DECLINED"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError) as refused:
        signer.verify(f"{forged}.{signature}", user_id="alice", now=NOW)
    assert refused.value.reason == "invalid"


@pytest.mark.parametrize("garbage", [None, 42, "", "no-dot", "a.b.c", "!!!.???", "x" * 5000,
                                     {"token": "x"}])
def test_garbage_is_invalid_not_an_exception(garbage: object) -> None:
    """Whatever arrives in a context, verify() answers "invalid" and raises nothing else."""
    with pytest.raises(TokenError) as refused:
        Signer("key").verify(garbage, user_id="alice", now=NOW)
    assert refused.value.reason == "invalid"


def test_a_token_signed_with_another_key_is_refused() -> None:
    """A token from another deployment (or before a key rotation) is not valid here."""
    with pytest.raises(TokenError):
        Signer("new key").verify(Signer("old key").sign(_token()), user_id="alice", now=NOW)
