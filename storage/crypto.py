"""Encryption of stored app passwords (Fernet from ``cryptography``: AES-128-CBC + HMAC), with key
rotation: previous keys still decrypt, and at start-up everything is re-encrypted with the
current key."""

from __future__ import annotations

import base64
import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.models import AccountRow, database

log = logging.getLogger(__name__)

KEY_FILE_NAME = "secret.key"


def _fernet(secret: str) -> Fernet:
    """HKDF-SHA256 turns any key string into a Fernet key (unchanged since the first release, so
    existing databases keep working)."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"yc-mattermost-bot", info=b"app-passwords"
    ).derive(secret.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(derived))


class Vault:
    """Encrypts with the key from ``YC_SECRET_KEY``; decrypts with it or any of ``old`` (the
    previous keys, ``YC_OLD_SECRET_KEYS``).

    Any string works as a key: HKDF-SHA256 turns it into a Fernet key, so operators can pass a
    long random passphrase as well as a Fernet key.
    """

    def __init__(self, secret: str, old: Iterable[str] = ()) -> None:
        if not secret:
            raise ValueError("empty secret key")
        self._current = _fernet(secret)
        previous = [key for key in dict.fromkeys(old) if key and key != secret]
        self._fernet = MultiFernet([self._current, *(_fernet(key) for key in previous)])
        self.old_key_count = len(previous)

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise ValueError("stored secret cannot be decrypted with this YC_SECRET_KEY") from exc

    def is_current(self, token: str) -> bool:
        """Encrypted with the current key (nothing to rotate)."""
        try:
            self._current.decrypt(token.encode("ascii"))
        except (InvalidToken, ValueError):  # ValueError: not even ASCII
            return False
        return True

    def rotate(self, token: str) -> str:
        """The same secret encrypted with the current key; ValueError when no key decrypts it."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise ValueError("stored secret cannot be decrypted with any given key") from exc


class SecretKeyMismatch(Exception):
    """No stored app password decrypts with the given keys: start-up must stop."""

    def __init__(self, stored: int) -> None:
        self.stored = stored
        super().__init__(
            f"none of the {stored} stored app passwords can be decrypted with YC_SECRET_KEY "
            "(nor with YC_OLD_SECRET_KEYS): the key has changed. Set YC_SECRET_KEY to the key "
            "they were stored with (or restore the secret.key file beside the database), or keep "
            "the new key and list the previous one in YC_OLD_SECRET_KEYS to re-encrypt them."
        )


def rotate_stored_passwords(vault: Vault) -> int:
    """Re-encrypt with the current key every stored app password that an old key decrypts, in
    one transaction; returns how many were re-encrypted.

    Raises SecretKeyMismatch, changing nothing, when there are stored passwords and none of them
    decrypts. Passwords that no key decrypts while others do are left as they are (those accounts
    are asked for a new app password when they are polled) and counted in the log.
    """
    with database.atomic():
        rows = list(AccountRow.select(AccountRow.mm_user_id, AccountRow.password_enc)
                    .order_by(AccountRow.mm_user_id))
        rotated: list[tuple[str, str, str]] = []
        undecryptable = 0
        for row in rows:
            if vault.is_current(row.password_enc):
                continue
            try:
                rotated.append((row.mm_user_id, row.password_enc, vault.rotate(row.password_enc)))
            except ValueError:
                undecryptable += 1
        if rows and undecryptable == len(rows):
            raise SecretKeyMismatch(len(rows))
        count = 0
        for user_id, old_token, token in rotated:
            # compare-and-set: a password another process saved meanwhile is not overwritten
            count += AccountRow.update(password_enc=token).where(
                (AccountRow.mm_user_id == user_id) & (AccountRow.password_enc == old_token)
            ).execute()
    log.info("secret.rotated count=%d", count)
    if undecryptable:
        log.warning("secret.undecryptable count=%d: no given key decrypts these app passwords; "
                    "those users will be asked for a new one", undecryptable)
    return count


def load_or_create_key(directory: Path) -> str:
    """Read the key file beside the database, creating it (mode 0600) on first start."""
    path = directory / KEY_FILE_NAME
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    directory.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    log.warning(
        "secret.generated path=%s: YC_SECRET_KEY not set, generated a key file; back it up "
        "with the database (without it stored app passwords cannot be read)",
        path,
    )
    return key
