"""The "📆 In a meeting" status in Mattermost: read what is there, ask ``decide_status``,
then set or clear it.

The stored marker (what the bot set) is the database's decision: a check first swaps it from
the marker it read to the one it wants (compare-and-set), and only the check that won the swap
changes Mattermost; one that lost (another check of the same account ran meanwhile) leaves
Mattermost alone and takes the stored marker. So the marker is always what Mattermost was last
told. A call that fails puts the old marker back."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bot.core.model import Account, Notice, Occurrence
from bot.core.status import BotStatus, Clear, CurrentStatus, Set, decide_status
from bot.core.texts import t
from bot.ports import Messenger, StatusRefused
from bot.stores import Notices, Snapshots

log = logging.getLogger(__name__)


class StatusKeeper:
    def __init__(self, *, store: Snapshots, outbox: Notices, messenger: Messenger) -> None:
        self.store = store
        self.outbox = outbox
        self.messenger = messenger

    def check(self, account: Account, occurrences: Sequence[Occurrence], marker: BotStatus | None,
              now: datetime) -> BotStatus | None:
        """Bring the user's status in line with the meetings; returns the marker now stored.
        ``marker`` is the stored marker as the caller read it (also when it expired: the swap
        expects it). Failures are logged and leave the marker as it was."""
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
                new = BotStatus(decision.emoji, decision.text, decision.expires_at)
                if not self.store.swap_status_marker(user, marker, new):
                    return self._lost(user)
                self._undo_if_fails(user, new, marker, lambda: self.messenger.set_custom_status(
                    user, decision.emoji, decision.text, decision.expires_at))
                log.info("status.set user=%s expires=%s", user, decision.expires_at.isoformat())
                return new
            if isinstance(decision, Clear):
                if not self.store.swap_status_marker(user, marker, None):
                    return self._lost(user)
                self._undo_if_fails(user, None, marker, lambda: self.messenger.clear_custom_status(
                    user))
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

    def _lost(self, user: str) -> BotStatus | None:
        """Another check swapped the marker first: it decides; Mattermost is left alone."""
        log.info("status.raced user=%s", user)
        return self.store.status_marker(user)

    def _undo_if_fails(self, user: str, new: BotStatus | None, old: BotStatus | None,
                       call: Callable[[], None]) -> None:
        """Run the Mattermost call the swap to ``new`` stands for; if it fails, swap back."""
        try:
            call()
        except BaseException:
            if not self.store.swap_status_marker(user, new, old):
                log.info("status.undo_raced user=%s", user)
            raise

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
