"""The world of an end-to-end test: one user, one Yandex account on Radicale (behind the
Yandex-quirk middleware), the fake Mattermost, and the bot's environment; the bot is the real
``mmpy_bot.Bot`` from ``bot.app.create_bot`` (what ``bot.py`` runs), started by the test.

Import the fixtures into a test module: ``from tests.e2e_world import World, radicale, world``
(plus ``fake_mattermost`` from ``tests.e2e_harness``). ``@both_databases`` runs a test once on
SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import itertools
import socket
import time as systime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_bot
from bot.config import load_config
from tests.e2e_harness import RunningBot, run_bot
from tests.fake_mattermost import FakeMattermost
from tests.pg import fresh_database
from tests.radicale_server import RadicaleServer

_serial = itertools.count(1)


@pytest.fixture(scope="module")
def radicale() -> Iterator[RadicaleServer]:
    with RadicaleServer() as server:
        yield server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class World:
    """One user, one Yandex account on Radicale, and the bot's environment."""

    def __init__(self, fake: FakeMattermost, radicale: RadicaleServer, tmp_path: Path) -> None:
        n = next(_serial)
        self.fake, self.radicale = fake, radicale
        self.login, self.password = f"user{n}@yandex.ru", f"app-pass-{n}-secret"
        radicale.add_user(self.login, self.password)
        self.calendar = radicale.make_calendar(self.login, f"events-{1000 + n}", "Work")
        radicale.make_calendar(self.login, f"todos-{2000 + n}", "Tasks", components=("VTODO",))
        self.user = f"mmuser{n}"
        self.env = {
            "YC_SETTINGS": str(tmp_path / "none.toml"),
            "MATTERMOST_URL": fake.url, "MATTERMOST_PORT": str(fake.port),
            "BOT_TOKEN": fake.token, "SSL_VERIFY": "false",
            "YC_CALDAV_URL": radicale.url, "YC_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "YC_SECRET_KEY": "e2e-secret", "YC_POLL_SECONDS": "1", "YC_TICK_SECONDS": "0.2",
            "YC_CALDAV_TIMEOUT": "5", "YC_ACTIONS_PORT": str(free_port()),
        }
        (tmp_path / "none.toml").write_text("")
        self.running: RunningBot | None = None

    def start(self) -> RunningBot:
        self.running = run_bot(lambda: create_bot(load_config(self.env)), self.fake)
        return self.running

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    def bot_posts(self, after: int = 0) -> list[dict[str, Any]]:
        return [p for p in self.fake.posts[after:] if p["user_id"] == self.fake.bot_user_id]

    def say(self, text: str, **kw: Any) -> dict[str, Any]:
        """Send a message as the user and return the bot's reply in its thread."""
        post_id = self.fake.user_says(self.user, text, **kw)
        return self.fake.wait_for_post(
            lambda p: p["user_id"] == self.fake.bot_user_id and (
                p["root_id"] == post_id or p["props"].get("yc_reply_to") == post_id))

    def connect(self) -> None:
        self.fake.user_says(self.user, f"connect {self.login} {self.password}")
        self.fake.wait_for_post(lambda p: "Connected" in p["message"]
                                or "Подключён" in p["message"], timeout=15)

    def wait_synced(self, timeout: float = 15) -> None:
        """Until the first (silent) sync is done: what is put after it is news."""
        deadline = systime.monotonic() + timeout
        while "sync: never" in self.say("check")["message"]:
            assert systime.monotonic() < deadline, "no first sync"
            systime.sleep(0.3)


# The end-to-end tests of the core paths run on both databases: put this on a test that takes
# the ``world`` fixture.
both_databases = pytest.mark.parametrize("world", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def world(request: pytest.FixtureRequest, fake_mattermost: FakeMattermost,
          radicale: RadicaleServer, tmp_path: Path) -> Iterator[World]:
    w = World(fake_mattermost, radicale, tmp_path)
    if getattr(request, "param", "sqlite") == "postgresql":
        w.env["YC_DATABASE_URL"] = fresh_database()
    fake_mattermost.add_user(w.user, f"ivan{w.user}", locale="en", timezone="Europe/Moscow")
    yield w
    w.stop()
    radicale.quirks.reset_faults()
