"""Incoming chat posts: each answered exactly once, also across processes and restarts.

- Every process hears every post on its websocket; the one that claims the post id in the
  database answers it (``claim``), the others let it be.
- After the websocket (re)connects, the posts of the bot's DMs and mentions made while it was
  away (up to ``CATCH_UP`` back) are read from Mattermost and answered like live ones
  (``catch_up``); those answered already are known by their claims.
- A post claimed by a process that died before answering is taken over once its claim expired
  (``orphans``): first the channel is read back for a reply to it (every reply carries the
  post id in its props), and only if there is none it is answered.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.ports import Messenger
from bot.stores import Coordination

log = logging.getLogger(__name__)

CATCH_UP = timedelta(minutes=15)
CLAIM_FOR = timedelta(seconds=60)  # a post not answered by then is answered by another process
REPLY_PROP = "yc_reply_to"

Handler = Callable[[dict[str, Any]], None]  # answers a post this process has claimed


def post_time(post: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(post.get("create_at") or 0) / 1000, UTC)


def event_body(post: dict[str, Any], channel_type: str, sender: str) -> dict[str, Any]:
    """A post read over REST in the shape of a websocket ``posted`` event (what
    ``mmpy_bot.Message`` wraps)."""
    return {"event": "posted",
            "data": {"channel_type": channel_type, "sender_name": f"@{sender}" if sender else "",
                     "post": post, "team_id": ""},
            "broadcast": {"channel_id": post.get("channel_id", "")}}


class Inbox:
    def __init__(self, *, store: Coordination, messenger: Messenger, bot_username: str,
                 clock: Callable[[], datetime], process_id: str) -> None:
        self.store = store
        self.messenger = messenger
        self.clock = clock
        self.process_id = process_id
        self._bot_username = bot_username
        self._mention = re.compile(rf"(^|\W)@{re.escape(bot_username)}\b", re.IGNORECASE)
        self._prefix = re.compile(rf"^@?{re.escape(bot_username)}[:,]?\s?")

    def claim(self, body: dict[str, Any]) -> bool:
        """True when this process answers the post of this websocket event."""
        post = body["data"]["post"]
        return self.store.claim_post(self.process_id, str(post["id"]), str(post["channel_id"]),
                                     post_time(post), body, self.clock(), CLAIM_FOR)

    def done(self, post_id: str) -> None:
        self.store.post_done(post_id, self.clock())

    def catch_up(self, handle: Handler, since: datetime | None = None) -> int:
        """Answer the commands posted while the websocket was away; returns how many."""
        now = self.clock()
        since = since or now - CATCH_UP
        answered = 0
        for channel_id, channel_type in self.messenger.channels_active_since(since):
            everything = self.messenger.posts_since(channel_id, since)
            posts = [p for p in everything if self._wanted(p, channel_type)]
            # Answered already: claimed in the inbox, or replied to (a reply carries the post's
            # id in its props, or has it as its thread root) by a version of the bot without
            # an inbox.
            known = self.store.known_posts([str(p["id"]) for p in posts])
            for own in everything:
                if own.get("user_id") == self.messenger.bot_user_id:
                    known.add(str((own.get("props") or {}).get(REPLY_PROP) or ""))
                    known.add(str(own.get("root_id") or ""))
            for post in posts:
                if str(post["id"]) in known:
                    continue
                post = dict(post, message=self._prefix.sub("", str(post.get("message", ""))))
                body = event_body(post, channel_type, "")
                if self.claim(body):
                    log.info("inbox.caught_up post=%s channel=%s", post["id"], channel_id)
                    handle(body)
                    answered += 1
        return answered

    def _wanted(self, post: dict[str, Any], channel_type: str) -> bool:
        if post.get("user_id") == self.messenger.bot_user_id or post.get("delete_at"):
            return False
        if str(post.get("type") or "").startswith("system_"):
            return False
        return channel_type == "D" or bool(self._mention.search(str(post.get("message", ""))))

    def orphans(self, handle: Handler) -> int:
        """Answer the posts another process claimed and never answered."""
        taken = self.store.take_orphans(self.process_id, self.clock(), CLAIM_FOR)
        for orphan in taken:
            post = orphan.payload["data"]["post"]
            replies = self.messenger.own_posts_since(str(post["channel_id"]), post_time(post))
            if any(str(r.props.get(REPLY_PROP, "")) == orphan.post_id for r in replies):
                log.info("inbox.orphan_was_answered post=%s", orphan.post_id)
                self.done(orphan.post_id)
                continue
            log.info("inbox.orphan_taken_over post=%s", orphan.post_id)
            handle(orphan.payload)
        return len(taken)
