"""Stored app passwords: the key derivation existing databases rely on, old keys that still
decrypt, and the start-up rotation to the current key in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
from peewee import Database

from storage.crypto import SecretKeyMismatch, Vault, rotate_stored_passwords
from storage.db import open_database
from storage.models import AccountRow

OLD = "the-old-key-0123456789"
NEW = "the-new-key-9876543210"
OTHER = "a-key-nobody-used-5555"
# made by the first release's Vault (before rotation existed) for this key and password
LEGACY_KEY = "legacy key from an existing database"
LEGACY_TOKEN = ("gAAAAABrD07RVwj9glNJzjR_r0xyARiN6gfr7R3j_vJRJEGUNu8u30flvOA6-oAef6yOk7I6ekOPxA2j-"
                "eQmCNj8N7O5dVuw6srtztyuoD6uMzjFU7vxMo0=")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    yield database
    database.close()


def _add(user: str, token: str) -> None:
    AccountRow.create(mm_user_id=user, login=f"{user}@ya.ru", password_enc=token,
                      timezone="Europe/Moscow", created_at=datetime(2026, 1, 1))


def _tokens() -> dict[str, str]:
    return {row.mm_user_id: row.password_enc for row in AccountRow.select()}


def test_existing_tokens_still_decrypt() -> None:
    """The HKDF derivation is unchanged: a token from the first release decrypts."""
    assert Vault(LEGACY_KEY).decrypt(LEGACY_TOKEN) == "abcdefghijklmnop"
    assert Vault(NEW, old=[LEGACY_KEY]).decrypt(LEGACY_TOKEN) == "abcdefghijklmnop"


def test_old_keys_decrypt_new_key_encrypts() -> None:
    """With old keys, old tokens decrypt; new tokens are under the current key only."""
    vault = Vault(NEW, old=[OTHER, OLD])
    assert vault.decrypt(Vault(OLD).encrypt("pw")) == "pw"
    token = vault.encrypt("pw2")
    assert Vault(NEW).decrypt(token) == "pw2"
    assert vault.is_current(token)
    with pytest.raises(ValueError, match="cannot be decrypted"):
        Vault(OLD).decrypt(token)
    with pytest.raises(ValueError, match="empty secret key"):
        Vault("").decrypt(token)


def test_unknown_token_is_a_value_error() -> None:
    """A token no key decrypts raises ValueError (what the repository's callers expect)."""
    with pytest.raises(ValueError, match="cannot be decrypted"):
        Vault(NEW, old=[OTHER]).decrypt(Vault(OLD).encrypt("pw"))
    assert not Vault(NEW).is_current("not a token ✗")


def test_rotation_makes_every_account_readable_with_the_new_key(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Passwords under the old key are re-encrypted; afterwards the new key alone reads them all."""
    old = Vault(OLD)
    for index in range(3):
        _add(f"u{index}", old.encrypt(f"password-{index}"))
    _add("u3", Vault(NEW).encrypt("password-3"))  # already current: left as it is
    current = _tokens()["u3"]
    with caplog.at_level(logging.INFO, logger="storage.crypto"):
        assert rotate_stored_passwords(Vault(NEW, old=[OLD])) == 3
    assert "secret.rotated count=3" in caplog.text
    tokens = _tokens()
    assert tokens["u3"] == current
    assert {user: Vault(NEW).decrypt(token) for user, token in tokens.items()} == {
        f"u{index}": f"password-{index}" for index in range(4)}
    assert rotate_stored_passwords(Vault(NEW, old=[OLD])) == 0  # nothing left to rotate
    assert rotate_stored_passwords(Vault(NEW)) == 0  # and the old key can now be dropped


def test_wrong_key_refuses_to_start(db: Database) -> None:
    """Nothing decrypts: a clear error naming what to set, no key shown, nothing changed."""
    _add("u1", Vault(OLD).encrypt("p1"))
    _add("u2", Vault(OLD).encrypt("p2"))
    before = _tokens()
    for vault in (Vault(NEW), Vault(NEW, old=[OTHER])):
        with pytest.raises(SecretKeyMismatch) as info:
            rotate_stored_passwords(vault)
        message = str(info.value)
        assert "YC_SECRET_KEY" in message
        assert "YC_OLD_SECRET_KEYS" in message
        assert "2 stored" in message
        for key in (OLD, NEW, OTHER):
            assert key not in message
    assert _tokens() == before


def test_mixed_keys_rotate_what_decrypts(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """Some passwords under a lost key: the rest rotate, those stay and are counted in the log."""
    _add("u1", Vault(OLD).encrypt("p1"))
    _add("u2", Vault(OTHER).encrypt("p2"))
    _add("u3", Vault(OLD).encrypt("p3"))
    lost = _tokens()["u2"]
    with caplog.at_level(logging.INFO, logger="storage.crypto"):
        assert rotate_stored_passwords(Vault(NEW, old=[OLD])) == 2
    assert "secret.rotated count=2" in caplog.text
    assert "secret.undecryptable count=1" in caplog.text
    tokens = _tokens()
    assert tokens["u2"] == lost
    assert Vault(NEW).decrypt(tokens["u1"]) == "p1"
    assert Vault(NEW).decrypt(tokens["u3"]) == "p3"


def test_empty_database_rotates_nothing(db: Database) -> None:
    """No stored passwords: nothing to check, no error whatever the key."""
    assert rotate_stored_passwords(Vault(NEW, old=[OLD])) == 0


def test_rotation_is_one_transaction(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure while writing leaves every stored password as it was (rolled back)."""
    for index in range(3):
        _add(f"u{index}", Vault(OLD).encrypt(f"p{index}"))
    before = _tokens()
    real_update = AccountRow.update
    calls: list[int] = []

    def failing_update(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_update(*args, **kwargs)

    monkeypatch.setattr(AccountRow, "update", failing_update)
    with pytest.raises(RuntimeError):
        rotate_stored_passwords(Vault(NEW, old=[OLD]))
    monkeypatch.undo()
    assert _tokens() == before
