"""Shared fixtures: a real SQLite file database per test (never :memory: across threads)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.crypto import Vault
from storage.db import open_database
from storage.repository import Repository


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    db = open_database(db_url)
    yield Repository(Vault("test-secret"))
    db.close()
