"""Sending a claimed notice: post its parts (resuming after those already posted), mark it
sent; on failure back off, and give up after a bounded number of attempts.

A claim is held for ``NOTICE_HOLD`` (30 s) and renewed before each part; a sender that finds
its claim gone (it stalled and another sender took the notice over) stops without posting.

What keeps a notice from being posted twice when a sender dies between Mattermost's answer
and the database's mark: every part carries its notice's row id in ``props`` and a
``pending_post_id`` (Mattermost answers a repeat within 30 s with the first post instead of
a second one); and a notice claimed again after a failed or abandoned attempt first reads the
bot's recent posts in the DM back and counts the parts it finds there as posted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot import metrics
from bot.core.markdown import split_message
from bot.ports import Messenger, MessengerError
from bot.stores import NOTICE_HOLD, ClaimedNotice, Notices

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
MAX_EARLY = 5.0  # seconds: a notice is never claimed longer than this before it is due
FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY = timedelta(minutes=5)
NOTICE_PROP = "yc_notice"
PART_PROP = "yc_part"

# Buttons for a notice (message attachments), or None: given by the action endpoint when
# YC_ACTIONS_URL is set.
Decorate = Callable[[ClaimedNotice, datetime], Mapping[str, Any] | None]


class ClaimLost(Exception):
    """The notice's claim expired while it was being sent and another sender holds it now."""


def retry_delay(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s … capped at 5 minutes (the exponent is capped before it is used)."""
    return min(FIRST_RETRY * (1 << min(max(attempts - 1, 0), 10)), MAX_RETRY)


class Sender:
    def __init__(self, *, store: Notices, messenger: Messenger,
                 clock: Callable[[], datetime], decorate: Decorate | None = None,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.store = store
        self.messenger = messenger
        self.clock = clock
        self.decorate = decorate
        self.sleep = sleep

    def send(self, notice: ClaimedNotice) -> None:
        """Post the notice (at its ``not_before``, when it was claimed a moment early) or
        record why not; never raises."""
        now = self.clock()
        if notice.not_before is not None and notice.not_before > now:
            self.sleep(min((notice.not_before - now).total_seconds(), MAX_EARLY))
            now = self.clock()
        if notice.expires_at is not None and now >= notice.expires_at:
            self.store.drop(notice.pk, "expired")
            metrics.NOTICES.labels(notice.kind, "expired").inc()
            log.info("notice.expired user=%s id=%s", notice.user_id, notice.notice_id)
            return
        try:
            first = self._post(notice, now)
        except ClaimLost:  # the sender now holding it resumes (after the parts posted here)
            log.warning("notice.claim_lost user=%s id=%s", notice.user_id, notice.notice_id)
            return
        except MessengerError as exc:
            self._failed(notice, exc.reason, permanent=exc.permanent, now=now)
            return
        except Exception as exc:  # a bug or an unexpected answer: retried like a transient one
            log.exception("notice.error user=%s id=%s", notice.user_id, notice.notice_id)
            self._failed(notice, type(exc).__name__, permanent=False, now=now)
            return
        sent_at = self.clock()
        self.store.mark_sent(notice.pk, first, sent_at)
        metrics.NOTICES.labels(notice.kind, "sent").inc()
        if notice.notice_id.startswith("rem|") and notice.expires_at is not None:
            lead = notice.notice_id.rsplit("|", 1)[-1]
            if lead.isdigit():
                due = notice.expires_at - timedelta(minutes=int(lead))
                metrics.REMINDER_LATENESS.observe(max(0.0, (sent_at - due).total_seconds()))
        log.info("notice.sent user=%s kind=%s id=%s attempt=%d", notice.user_id, notice.kind,
                 notice.notice_id, notice.attempts)

    def _post(self, notice: ClaimedNotice, now: datetime) -> str:
        channel = self.messenger.direct_channel(notice.user_id)
        parts = split_message(notice.message)
        done = list(notice.parts)
        if notice.attempts > 1 and len(done) < len(parts):
            done = self._reconcile(notice, channel, done)
        root = self.store.thread_root(notice.user_id, notice.thread_keys)
        for index in range(len(done), len(parts)):
            if notice.claimed_by and not self.store.extend_claim(
                    notice, self.clock() + NOTICE_HOLD):
                raise ClaimLost(notice.notice_id)
            props: dict[str, Any] = {NOTICE_PROP: str(notice.pk), PART_PROP: index}
            if index == len(parts) - 1 and self.decorate is not None:
                props.update(self.decorate(notice, now) or {})
            post_id = self.messenger.post(
                channel, parts[index], root_id=root or "", props=props,
                pending_post_id=f"{self.messenger.bot_user_id}:{notice.pk}-{index}")
            self.store.add_part(notice.pk, post_id)
            done.append(post_id)
        if notice.thread_keys:
            self.store.set_thread_root(notice.user_id, notice.thread_keys, root or done[0])
        return done[0]

    def _reconcile(self, notice: ClaimedNotice, channel: str, done: list[str]) -> list[str]:
        """A retry of a notice whose last attempt may have posted parts it did not record:
        take them from the channel (by the row id in their props)."""
        found: dict[int, str] = {}
        for post in self.messenger.own_posts_since(channel, notice.created_at - timedelta(minutes=1)):
            if str(post.props.get(NOTICE_PROP, "")) == str(notice.pk):
                part = post.props.get(PART_PROP)
                if isinstance(part, int):
                    found.setdefault(part, post.post_id)
        merged = list(done)
        while len(merged) in found:
            merged.append(found[len(merged)])
            self.store.add_part(notice.pk, merged[-1])
        if len(merged) > len(done):
            log.info("notice.reconciled user=%s id=%s parts=%d", notice.user_id,
                     notice.notice_id, len(merged))
        return merged

    def _failed(self, notice: ClaimedNotice, reason: str, *, permanent: bool,
                now: datetime) -> None:
        if permanent or notice.attempts >= MAX_ATTEMPTS:
            why = "refused" if permanent else "attempts"
            self.store.drop(notice.pk, why)
            metrics.NOTICES.labels(notice.kind, "dropped").inc()
            log.warning("notice.dropped user=%s id=%s attempts=%d reason=%s error=%s",
                        notice.user_id, notice.notice_id, notice.attempts, why, reason)
            return
        retry = now + retry_delay(notice.attempts)
        self.store.retry_at(notice.pk, retry)
        metrics.NOTICES.labels(notice.kind, "failed").inc()
        log.warning("notice.failed user=%s id=%s attempt=%d error=%s retry=%s", notice.user_id,
                    notice.notice_id, notice.attempts, reason, retry.isoformat())
