"""Shared fixtures: a real database per test, SQLite (a file, never :memory: across threads)
and PostgreSQL (a fresh database on the session's embedded server, see ``tests.pg``).

``db_url`` runs a test once on each; ``sqlite_url`` is for what only SQLite has (its file, WAL,
the one-process lock)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.crypto import Vault
from storage.db import open_database
from storage.repository import Repository
from tests.pg import fresh_database

BACKENDS = ["sqlite", "postgresql"]
# The end-to-end fixtures (fake_mattermost, radicale, world) for every test module.
pytest_plugins = ["tests.e2e_harness", "tests.e2e_world"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    return fresh_database()


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    db = open_database(db_url)
    yield Repository(Vault("test-secret"))
    db.close()
