"""Test kit for the engine: a manual clock, a recording messenger (``bot.ports.Messenger``),
and a ready engine on a fake calendar source and a real database."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bot.engine import Engine
from bot.ports import MessengerError, Profile, SentPost, StatusRefused
from bot.services import Services
from storage.coordination import CoordinationStore
from storage.engine_store import EngineStore
from storage.models import database
from storage.outbox import OutboxStore
from storage.repository import Repository

_engines = itertools.count(1)
T = TypeVar("T")


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
    """What reached "Mattermost": posts with their thread roots and props, status calls.

    DM channels are ``dm-<user>``. ``fail_posts`` makes that many posts fail (transient);
    ``lose_answers`` makes that many posts succeed at the server but fail on the way back
    (the sender cannot know it posted). ``script`` decides the next posts one by one, before
    those two: "ok", "fail" (transient), "refuse" (permanent) or "lose"."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    status_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)
    presences: dict[str, str] = field(default_factory=dict)
    users: dict[str, Profile] = field(default_factory=dict)
    fail_posts: int = 0
    lose_answers: int = 0
    permanent_failure: bool = False
    status_error: int | None = None
    edits: list[tuple[str, str]] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Any = None

    @property
    def bot_user_id(self) -> str:
        return "bot"

    def direct_channel(self, user_id: str) -> str:
        return f"dm-{user_id}"

    def post(self, channel_id: str, message: str, *, root_id: str = "",
             props: Mapping[str, Any] | None = None, pending_post_id: str = "") -> str:
        with self.lock:
            step = self.script.pop(0) if self.script else ""
            if step == "fail":
                raise MessengerError("post: ConnectError", permanent=False)
            if step == "refuse":
                raise MessengerError("post: HTTP 403", permanent=True)
            if not step and self.fail_posts:
                self.fail_posts -= 1
                raise MessengerError("post: ConnectError", permanent=self.permanent_failure)
            post_id = f"p{len(self.posts) + 1}"
            user = channel_id.removeprefix("dm-")
            self.posts.append({"id": post_id, "user": user, "channel_id": channel_id,
                               "message": message, "root_id": root_id,
                               "props": dict(props or {}), "pending_post_id": pending_post_id,
                               "at": self.clock() if self.clock else datetime.now(UTC)})
            if step == "lose" or (not step and self.lose_answers):
                if not step:
                    self.lose_answers -= 1
                raise MessengerError("post: ReadTimeout", permanent=False)
            return post_id

    def update_post(self, post_id: str, message: str, props: Mapping[str, Any] | None) -> None:
        with self.lock:
            self.edits.append((post_id, message))
            for post in self.posts:
                if post["id"] == post_id:
                    post["message"] = message
                    if props is not None:
                        post["props"] = dict(props)

    def ephemeral(self, user_id: str, channel_id: str, message: str, root_id: str = "") -> None:
        with self.lock:
            self.posts.append({"id": "ephemeral", "user": user_id, "channel_id": channel_id,
                               "message": message, "root_id": root_id, "props": {},
                               "ephemeral": True})

    def delete_post(self, post_id: str) -> bool:
        return False

    def own_posts_since(self, channel_id: str, since: datetime) -> list[SentPost]:
        with self.lock:
            return [SentPost(p["id"], p["root_id"], p["props"]) for p in self.posts
                    if p["channel_id"] == channel_id and not p.get("ephemeral")]

    def profile(self, user_id: str) -> Profile:
        known = self.users.get(user_id)
        return Profile(timezone=None, locale="en", custom_status=self.custom.get(user_id),
                       username=known.username if known else user_id,
                       email=known.email if known else "", is_admin=bool(known and known.is_admin))

    def users_by_username(self, usernames: Sequence[str]) -> dict[str, Profile]:
        wanted = {u.lstrip("@").lower() for u in usernames}
        return {p.username.lower(): p for p in self.users.values() if p.username.lower() in wanted}

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

    def open_dialog(self, trigger_id: str, url: str, dialog: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def channels_active_since(self, since: datetime) -> list[tuple[str, str]]:
        return []

    def posts_since(self, channel_id: str, since: datetime) -> list[dict[str, Any]]:
        return []

    def messages(self, user_id: str | None = None) -> list[str]:
        return [p["message"] for p in self.posts if not p.get("ephemeral")
                and (user_id is None or p["user"] == user_id)]


def make_engine(repo: Repository, source: Any, clock: ManualClock,
                messenger: RecordingMessenger, poll_seconds: int = 60,
                horizon_days: int = 60) -> tuple[Engine, Services]:
    repo.clock = clock
    messenger.clock = clock
    store, outbox = EngineStore(), OutboxStore()
    services = Services(repo, source, clock=clock, default_timezone="Europe/Moscow",
                        store=store, outbox=outbox)
    engine = Engine(repo=repo, store=store, outbox=outbox, coordination=CoordinationStore(),
                    source=source, messenger=messenger, clock=clock,
                    process_id=f"test-{next(_engines)}", poll_seconds=poll_seconds,
                    horizon_days=horizon_days, workers=2, lookahead=timedelta(0))
    return engine, services


def race(count: int, job: Callable[[int], T], timeout: float = 30.0) -> list[T]:
    """Run ``job(0)`` … ``job(count - 1)`` on as many threads released at once (a barrier),
    each on its own database connection (peewee's are per thread, closed at the end).
    Returns the results in order; the first exception raised by a job is raised again."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout)
            results[index] = job(index)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]
    assert not any(thread.is_alive() for thread in threads), "a racing job hung"
    return results


def run_tick(engine: Engine, rounds: int = 3) -> None:
    """A tick, then wait for what it handed out; repeat so that sends decided by a poll's
    result also go out."""
    for _ in range(rounds):
        engine.tick()
        engine.drain()
