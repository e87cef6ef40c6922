"""Encryption of stored app passwords (Fernet from ``cryptography``: AES-128-CBC + HMAC)."""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger(__name__)

KEY_FILE_NAME = "secret.key"


class Vault:
    """Encrypts and decrypts secrets with a key derived from ``YC_SECRET_KEY``.

    Any string works as the key: HKDF-SHA256 turns it into a Fernet key, so operators can pass a
    long random passphrase as well as a Fernet key.
    """

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("empty secret key")
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"yc-mattermost-bot", info=b"app-passwords"
        ).derive(secret.encode("utf-8"))
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise ValueError("stored secret cannot be decrypted with this YC_SECRET_KEY") from exc


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
