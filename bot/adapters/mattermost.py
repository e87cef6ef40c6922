"""Mattermost side of the bot: ``bot.ports.Messenger`` as a thin wrapper over mmpy-bot's driver
(mattermostautodriver, REST v4). The one place that turns the driver's exceptions into
``MessengerError`` (permanent or not) and ``StatusRefused``."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import httpx
from mattermostautodriver.exceptions import (
    ContentTooLarge,
    FeatureDisabled,
    InvalidOrMissingParameters,
    NotEnoughPermissions,
    ResourceNotFound,
)

from bot.ports import MessengerError, Profile, SentPost, StatusRefused

log = logging.getLogger(__name__)

T = TypeVar("T")
_PERMANENT = (InvalidOrMissingParameters, NotEnoughPermissions, ResourceNotFound, ContentTooLarge)
_PAGE = 200
# Seconds one REST call may take. mattermostautodriver's default is None, which httpx takes as
# "wait forever": a server that accepts a connection and never answers would hold a sender (and
# the notice it claimed) for good. Well below the outbox's claim hold (bot.stores.NOTICE_HOLD).
REQUEST_TIMEOUT = 10.0


def bound_requests(driver: Any, seconds: float = REQUEST_TIMEOUT) -> None:
    """Give every REST call of the driver (and of mmpy-bot's plugins through it) a timeout.
    The driver's client reads its options dict on each request, so this applies at once."""
    driver.options["request_timeout"] = seconds


def profile_from_user(user: Mapping[str, Any]) -> Profile:
    tz = user.get("timezone") or {}
    automatic = str(tz.get("useAutomaticTimezone", "")).lower() == "true"
    zone = tz.get("automaticTimezone") if automatic else tz.get("manualTimezone")
    raw_status = (user.get("props") or {}).get("customStatus")
    status: dict[str, Any] | None = None
    if raw_status:
        try:
            parsed = json.loads(raw_status) if isinstance(raw_status, str) else raw_status
            status = parsed if isinstance(parsed, dict) and parsed else None
        except ValueError:
            status = None
    roles = str(user.get("roles") or "").split()
    return Profile(timezone=zone or None, locale=user.get("locale") or None,
                   custom_status=status, username=str(user.get("username") or ""),
                   email=str(user.get("email") or ""), is_admin="system_admin" in roles)


def _millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class MattermostMessenger:
    """``bot.ports.Messenger`` through the bot's driver. Thread-safe (httpx's client is)."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self._dm_channels: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def bot_user_id(self) -> str:
        return str(self.driver.user_id)

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except _PERMANENT as exc:
            raise MessengerError(f"{what}: {type(exc).__name__}", permanent=True) from None
        except (httpx.HTTPError, OSError) as exc:
            raise MessengerError(f"{what}: {type(exc).__name__}", permanent=False) from None

    # -- posts --------------------------------------------------------------------------------
    def direct_channel(self, user_id: str) -> str:
        with self._lock:
            cached = self._dm_channels.get(user_id)
        if cached:
            return cached
        channel = self._call("direct_channel", lambda: self.driver.channels.create_direct_channel(
            [self.driver.user_id, user_id]))
        with self._lock:
            self._dm_channels[user_id] = str(channel["id"])
        return str(channel["id"])

    def post(self, channel_id: str, message: str, *, root_id: str = "",
             props: Mapping[str, Any] | None = None, pending_post_id: str = "") -> str:
        body: dict[str, Any] = {"channel_id": channel_id, "message": message, "root_id": root_id}
        if props:
            body["props"] = dict(props)
        if pending_post_id:
            body["pending_post_id"] = pending_post_id
        post = self._call("post", lambda: self.driver.posts.create_post(body))
        return str(post["id"])

    def update_post(self, post_id: str, message: str, props: Mapping[str, Any] | None) -> None:
        body: dict[str, Any] = {"message": message}
        if props is not None:
            body["props"] = dict(props)
        self._call("update_post", lambda: self.driver.posts.patch_post(post_id, body))

    def ephemeral(self, user_id: str, channel_id: str, message: str, root_id: str = "") -> None:
        body = {"user_id": user_id,
                "post": {"channel_id": channel_id, "message": message, "root_id": root_id}}
        self._call("ephemeral", lambda: self.driver.posts.create_post_ephemeral(body))

    def delete_post(self, post_id: str) -> bool:
        try:
            self.driver.posts.delete_post(post_id)
            return True
        except (NotEnoughPermissions, ResourceNotFound, InvalidOrMissingParameters) as exc:
            log.info("post.delete_refused post=%s error=%s", post_id, type(exc).__name__)
            return False
        except (httpx.HTTPError, OSError) as exc:
            raise MessengerError(f"delete_post: {type(exc).__name__}", permanent=False) from None

    def posts_since(self, channel_id: str, since: datetime) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for page in range(50):  # at most 10,000 posts: a catch-up window is minutes long
            answer = self._call("posts_since", partial(
                self.driver.posts.get_posts_for_channel, channel_id,
                params={"since": _millis(since), "page": page, "per_page": _PAGE}))
            posts = answer.get("posts") or {}
            found.update(posts)
            if len(posts) < _PAGE:
                break
        ordered = sorted(found.values(), key=lambda p: (p.get("create_at", 0), p.get("id", "")))
        return [p for p in ordered if p.get("create_at", 0) >= _millis(since)]

    def own_posts_since(self, channel_id: str, since: datetime) -> list[SentPost]:
        return [SentPost(str(p["id"]), str(p.get("root_id") or ""), p.get("props") or {})
                for p in self.posts_since(channel_id, since)
                if p.get("user_id") == self.driver.user_id and not p.get("delete_at")]

    def channels_active_since(self, since: datetime) -> list[tuple[str, str]]:
        channels = self._call("channels", lambda: self.driver.channels.get_channels_for_user("me"))
        return [(str(c["id"]), str(c.get("type", ""))) for c in channels or []
                if int(c.get("last_post_at") or 0) >= _millis(since)]

    # -- users --------------------------------------------------------------------------------
    def profile(self, user_id: str) -> Profile:
        return profile_from_user(self._call("profile", lambda: self.driver.users.get_user(user_id)))

    def users_by_username(self, usernames: Sequence[str]) -> dict[str, Profile]:
        wanted = [u.lstrip("@").lower() for u in usernames]
        if not wanted:
            return {}
        users = self._call("users", lambda: self.driver.users.get_users_by_usernames(wanted))
        found = {}
        for user in users or []:
            profile = profile_from_user(user)
            found[profile.username.lower()] = profile
        return found

    def presence(self, user_id: str) -> str:
        answer = self._call("presence", lambda: self.driver.status.get_user_status(user_id))
        return str(answer.get("status", "online"))

    def set_custom_status(self, user_id: str, emoji: str, text: str, expires_at: datetime) -> None:
        """PUT the custom status with an RFC 3339 expiry (the server does not compute it)."""
        body = {
            "emoji": emoji,
            "text": text,
            "duration": "date_and_time",
            "expires_at": expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self._status_call(lambda: self.driver.status.update_user_custom_status(user_id, body))

    def clear_custom_status(self, user_id: str) -> None:
        self._status_call(lambda: self.driver.status.unset_user_custom_status(user_id))

    def _status_call(self, call: Callable[[], object]) -> None:
        try:
            call()
        except NotEnoughPermissions:
            raise StatusRefused(403) from None
        except FeatureDisabled:
            raise StatusRefused(501) from None
        except (httpx.HTTPError, OSError) as exc:
            raise MessengerError(f"status: {type(exc).__name__}", permanent=False) from None

    # -- dialogs ------------------------------------------------------------------------------
    def open_dialog(self, trigger_id: str, url: str, dialog: Mapping[str, Any]) -> None:
        body = {"trigger_id": trigger_id, "url": url, "dialog": dict(dialog)}
        self._call("open_dialog",
                   lambda: self.driver.integration_actions.open_interactive_dialog(body))
