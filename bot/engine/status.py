"""The "📆 In a meeting" status in Mattermost: read what is there, ask ``decide_status``,
set or clear, and record what the bot set (compare-and-set on the stored marker, so two checks
never overwrite each other's record)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.core.model import Account, Notice, Occurrence
from bot.core.status import BotStatus, Clear, CurrentStatus, Set, decide_status
from bot.core.texts import t
from bot.ports import Messenger, StatusRefused
from storage.engine_store import EngineStore
from storage.outbox import OutboxStore

log = logging.getLogger(__name__)


class StatusKeeper:
    def __init__(self, *, store: EngineStore, outbox: OutboxStore, messenger: Messenger) -> None:
        self.store = store
        self.outbox = outbox
        self.messenger = messenger

    def check(self, account: Account, occurrences: Sequence[Occurrence], marker: BotStatus | None,
              now: datetime) -> BotStatus | None:
        """Bring the user's status in line with the meetings; returns the marker now stored.
        Failures are logged and leave the marker as it was."""
        user = account.user_id
        try:
            raw = self.messenger.profile(user).custom_status or {}
            current = CurrentStatus(presence=self.messenger.presence(user),
                                    emoji=raw.get("emoji") or None, text=raw.get("text") or None,
                                    expires_at=_parse_time(raw.get("expires_at")))
            wanted = list(occurrences) if account.notifications.status else []
            decision = decide_status(wanted, now=now, current=current, last_set=marker,
                                     text=t(account.language, "status.text"))
            if isinstance(decision, Set):
                self.messenger.set_custom_status(user, decision.emoji, decision.text,
                                                 decision.expires_at)
                new = BotStatus(decision.emoji, decision.text, decision.expires_at)
                if self.store.swap_status_marker(user, marker, new):
                    log.info("status.set user=%s expires=%s", user, decision.expires_at.isoformat())
                    return new
                return self.store.status_marker(user)
            if isinstance(decision, Clear):
                self.messenger.clear_custom_status(user)
                self.store.swap_status_marker(user, marker, None)
                log.info("status.cleared user=%s", user)
                return None
            # Keep: the marker stays, even if the user removed our status by hand, so the same
            # block is not set again; it is forgotten at its expiry.
            return marker
        except StatusRefused as refused:
            self._refused(account, refused.code, now)
        except Exception:
            log.warning("status.failed user=%s", user, exc_info=True)
        return marker

    def _refused(self, account: Account, code: int, now: datetime) -> None:
        """403/501: tell the user once what the admin must enable; stop trying for them."""
        log.warning("status.refused user=%s code=%s", account.user_id, code)
        self.store.block_status(account.user_id)
        lang = account.language
        message = t(lang, "notice.status_forbidden", reason=f"HTTP {code}",
                    fix=t(lang, "status.fix403" if code == 403 else "status.fix501"))
        self.outbox.record({account.user_id: [
            Notice(f"status-refused|{code}|{now:%Y%m%d}", "system", message)]}, now)

    def clear_now(self, user_id: str) -> None:
        """Disconnect: clear a status the bot set, only if it is still the bot's."""
        marker = self.store.status_marker(user_id)
        if marker is None:
            return
        try:
            raw = self.messenger.profile(user_id).custom_status or {}
            if raw.get("emoji") == marker.emoji and raw.get("text") == marker.text:
                self.messenger.clear_custom_status(user_id)
        except Exception:
            log.warning("status.clear_failed user=%s", user_id, exc_info=True)


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
