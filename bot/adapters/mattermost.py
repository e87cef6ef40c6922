"""Mattermost side of the bot: a thin wrapper over mmpy-bot's driver (REST v4)."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mattermostautodriver.exceptions import (
    FeatureDisabled,
    InvalidOrMissingParameters,
    NotEnoughPermissions,
    ResourceNotFound,
)

from bot.core.markdown import split_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Profile:
    """What we read from the user object: zone, locale, the current custom status."""

    timezone: str | None
    locale: str | None
    custom_status: dict[str, Any] | None


def profile_from_user(user: dict[str, Any]) -> Profile:
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
    return Profile(timezone=zone or None, locale=user.get("locale") or None, custom_status=status)


class Messenger:
    """Posts, DMs, profile reads and post deletion through the bot's driver."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self._dm_channels: dict[str, str] = {}
        self._lock = threading.Lock()

    def profile(self, user_id: str) -> Profile:
        return profile_from_user(self.driver.users.get_user(user_id))

    def dm_channel(self, user_id: str) -> str:
        with self._lock:
            cached = self._dm_channels.get(user_id)
        if cached:
            return cached
        channel = self.driver.channels.create_direct_channel([self.driver.user_id, user_id])
        with self._lock:
            self._dm_channels[user_id] = channel["id"]
        return str(channel["id"])

    def post(self, channel_id: str, message: str, root_id: str = "") -> list[str]:
        """Post (split below the post limit); returns the new post ids, the first one first."""
        ids = []
        for chunk in split_message(message):
            post = self.driver.posts.create_post(
                {"channel_id": channel_id, "message": chunk, "root_id": root_id}
            )
            ids.append(str(post["id"]))
        return ids

    def direct(self, user_id: str, message: str, root_id: str = "") -> list[str]:
        return self.post(self.dm_channel(user_id), message, root_id)

    def presence(self, user_id: str) -> str:
        """online / away / dnd / offline."""
        return str(self.driver.status.get_user_status(user_id).get("status", "online"))

    def set_custom_status(self, user_id: str, emoji: str, text: str, expires_at: datetime) -> None:
        """PUT the custom status with an RFC 3339 expiry (the server does not compute it)."""
        body = {
            "emoji": emoji,
            "text": text,
            "duration": "date_and_time",
            "expires_at": expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        try:
            self.driver.status.update_user_custom_status(user_id, body)
        except NotEnoughPermissions:
            raise StatusRefused(403) from None
        except FeatureDisabled:
            raise StatusRefused(501) from None

    def clear_custom_status(self, user_id: str) -> None:
        try:
            self.driver.status.unset_user_custom_status(user_id)
        except NotEnoughPermissions:
            raise StatusRefused(403) from None
        except FeatureDisabled:
            raise StatusRefused(501) from None

    def delete_post(self, post_id: str) -> bool:
        """Delete a user's post; False when the bot may not (no delete_others_posts) or it's
        gone."""
        try:
            self.driver.posts.delete_post(post_id)
            return True
        except (NotEnoughPermissions, ResourceNotFound, InvalidOrMissingParameters) as exc:
            log.info("post.delete_refused post=%s error=%s", post_id, type(exc).__name__)
            return False


class StatusRefused(Exception):
    """The server refused custom statuses: 403 (the bot lacks the permission) or 501 (custom
    statuses are switched off)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"custom status refused with {code}")
        self.code = code
