"""Test kit for the engine: a manual clock, a recording messenger, a ready engine on a fake
calendar source and a real SQLite file."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.adapters.mattermost import Profile, StatusRefused
from bot.engine import Engine
from bot.services import Services
from storage.engine_store import EngineStore
from storage.repository import Repository


class ManualClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class RecordingMessenger:
    """What reached "Mattermost": DMs with their thread roots, status calls."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    status_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)
    presences: dict[str, str] = field(default_factory=dict)
    fail_posts: int = 0
    status_error: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def direct(self, user_id: str, message: str, root_id: str = "") -> list[str]:
        with self.lock:
            if self.fail_posts:
                self.fail_posts -= 1
                raise ConnectionError("mattermost down")
            post_id = f"p{len(self.posts) + 1}"
            self.posts.append({"id": post_id, "user": user_id, "message": message,
                               "root_id": root_id})
            return [post_id]

    def profile(self, user_id: str) -> Profile:
        return Profile(timezone=None, locale="en", custom_status=self.custom.get(user_id))

    def presence(self, user_id: str) -> str:
        return self.presences.get(user_id, "online")

    def set_custom_status(self, user_id: str, emoji: str, text: str,
                          expires_at: datetime) -> None:
        if self.status_error:
            raise StatusRefused(self.status_error)
        body = {"emoji": emoji, "text": text,
                "expires_at": expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        self.status_calls.append(("PUT", user_id, body))
        self.custom[user_id] = body

    def clear_custom_status(self, user_id: str) -> None:
        if self.status_error:
            raise StatusRefused(self.status_error)
        self.status_calls.append(("DELETE", user_id, {}))
        self.custom.pop(user_id, None)

    def messages(self, user_id: str | None = None) -> list[str]:
        return [p["message"] for p in self.posts if user_id is None or p["user"] == user_id]


def make_engine(repo: Repository, source: Any, clock: ManualClock,
                messenger: RecordingMessenger, poll_seconds: int = 60) -> tuple[Engine, Services]:
    services = Services(repo, source, clock=clock, default_timezone="Europe/Moscow")
    engine = Engine(repo=repo, store=EngineStore(), source=source, messenger=lambda: messenger,
                    clock=clock, poll_seconds=poll_seconds, workers=2)
    return engine, services


def run_tick(engine: Engine, rounds: int = 3) -> None:
    """A tick, then wait for what it handed out; repeat so that sends decided by a poll's
    result also go out."""
    for _ in range(rounds):
        engine.tick()
        engine.drain()
