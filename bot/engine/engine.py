"""The tick: one short job on mmpy-bot's scheduler that keeps the leases, hands polls to a
bounded worker pool, lets the planner decide, and hands notices and status checks to a small
sender pool. Nothing here waits for the network, so one slow account never delays another's
notices, and the scheduler thread (shared with mmpy-bot) is never held up.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

from bot import metrics
from bot.core.model import Notice
from bot.core.texts import t
from bot.engine.leases import LeaseKeeper
from bot.engine.outbox import Decorate, Sender
from bot.engine.planner import Planner, StatusCheck
from bot.engine.status import StatusKeeper
from bot.engine.sync import Syncer
from bot.errors import AuthRefused, CalendarError
from bot.ports import CalendarSource, Messenger
from bot.stores import Accounts, Coordination, Notices, Snapshots, StaleSnapshot

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=30)
AUTH_PROBE = timedelta(minutes=30)  # a refused password is tried again this seldom
HOUSEKEEPING = timedelta(minutes=10)
# Reminders are decided this long before they are due and posted at their due time by the
# sender: the tick's period (1 s by default, longer when the scheduler is late) then adds
# nothing to their lateness.
LOOKAHEAD = timedelta(seconds=2)
KEEP_NOTICES = timedelta(days=3)
KEEP_INBOX = timedelta(days=1)


class Engine:
    def __init__(
        self,
        *,
        repo: Accounts,
        store: Snapshots,
        outbox: Notices,
        coordination: Coordination,
        source: CalendarSource,
        messenger: Messenger,
        clock: Callable[[], datetime],
        process_id: str,
        poll_seconds: int,
        horizon_days: int,
        workers: int = 8,
        senders: int = 8,
        decorate: Decorate | None = None,
        rng: random.Random | None = None,
        lookahead: timedelta = LOOKAHEAD,
    ) -> None:
        self.repo = repo
        self.store = store
        self.outbox = outbox
        self.coordination = coordination
        self.clock = clock
        self.process_id = process_id
        self.poll_interval = timedelta(seconds=poll_seconds)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self.leases = LeaseKeeper(coordination, process_id)
        self.syncer = Syncer(repo=repo, store=store, source=source, horizon_days=horizon_days,
                             process_id=process_id)
        self.lookahead = lookahead
        self.planner = Planner(repo=repo, store=store, outbox=outbox, clock=clock,
                               lookahead=lookahead)
        self.status = StatusKeeper(store=store, outbox=outbox, messenger=messenger)
        self.sender = Sender(store=outbox, messenger=messenger, clock=clock, decorate=decorate)
        self._polls = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="yc-poll")
        self._sends = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="yc-send")
        self._send_capacity = senders * 4
        self._lock = threading.Lock()
        self._next_poll: dict[str, datetime] = {}
        self._failures: dict[str, int] = {}
        self._polling: set[str] = set()
        # accounts whose poll was asked for while their poll ran (a new password while the
        # refused poll was in flight): polled again as soon as that one ends
        self._again: set[str] = set()
        self._sending = 0
        self._futures: set[Future[None]] = set()
        self._nudged = True
        self._housekeeping_at: datetime | None = None
        self.last_tick_at: datetime | None = None
        self.ticks = 0

    # -- lifecycle ----------------------------------------------------------------------------
    def register(self, scheduler: Any, tick_seconds: float) -> None:
        """One short job on mmpy-bot's scheduler (the global ``schedule``): no second loop."""
        scheduler.every(tick_seconds).seconds.do(self.tick)

    def nudge(self) -> None:
        """An account was connected or removed here: rebalance the leases on the next tick
        instead of within the next few seconds."""
        self._nudged = True

    def mattermost_back(self) -> None:
        """The websocket logged in again: notices that failed while Mattermost was away are
        due at once instead of after their backoff (their expiry still holds)."""
        count = self.outbox.retry_now(self.clock())
        if count:
            log.info("outbox.retry_now count=%d", count)

    def shutdown(self) -> None:
        self._polls.shutdown(wait=False, cancel_futures=True)
        self._sends.shutdown(wait=False, cancel_futures=True)
        try:
            self.leases.release_all()
        except Exception:
            log.warning("lease.release_failed process=%s", self.process_id, exc_info=True)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until the polls, posts and status calls handed out so far are done (tests,
        benchmarks)."""
        with self._lock:
            pending = list(self._futures)
        wait(pending, timeout=timeout)

    def _submit(self, pool: ThreadPoolExecutor, job: Callable[..., None], *args: Any) -> None:
        future = pool.submit(job, *args)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget_future)

    def _forget_future(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    # -- the tick -----------------------------------------------------------------------------
    def tick(self) -> None:
        """Decide and dispatch; never waits for the network."""
        started = time.perf_counter()
        now = self.clock()
        try:
            self._leases(now)
            dirty = self.coordination.take_dirty(self.process_id)
            if dirty:
                self.syncer.forget(dirty)
                self.planner.load(dirty, now)
            for user in self.coordination.take_poll_requests(self.process_id, now):
                self.syncer.forget([user])
                with self._lock:
                    self._next_poll[user] = now
                    if user in self._polling:  # it may have read the old password
                        self._again.add(user)
            self._dispatch_polls(now)
            for check in self.planner.tick(now):
                self._submit(self._sends, self._status_job, check)
            self._dispatch_notices(now)
            self.syncer.flush_idle(now)
            self._housekeeping(now)
        except Exception:
            log.exception("tick.failed")
        self.last_tick_at = now
        self.ticks += 1
        metrics.TICK_SECONDS.observe(time.perf_counter() - started)

    def _leases(self, now: datetime) -> None:
        if not (self._nudged or self.leases.due(now)):
            return
        self._nudged = False
        acquired, lost = self.leases.maintain(now)
        self.syncer.forget(lost | acquired)
        self.planner.forget(lost)
        self.planner.load(acquired, now)
        spread = self.poll_interval.total_seconds()
        with self._lock:
            for user in lost:
                self._next_poll.pop(user, None)
                self._failures.pop(user, None)
                self._again.discard(user)
            for user in acquired:
                account = self.planner.view_account(user)
                never = account is None or account.last_sync_at is None
                # spread the first polls after a start or a takeover over one interval
                delay = 0.0 if never else self._rng.uniform(0, spread)
                self._next_poll[user] = now + timedelta(seconds=delay)

    def _dispatch_polls(self, now: datetime) -> None:
        with self._lock:
            due = [u for u in self.leases.held
                   if u not in self._polling and now >= self._next_poll.get(u, now)]
            self._polling.update(due)
        for user in due:
            self._submit(self._polls, self._poll_job, user)

    def _dispatch_notices(self, now: datetime) -> None:
        with self._lock:
            room = self._send_capacity - self._sending
        if room <= 0:
            return
        claimed = self.outbox.claim(self.process_id, now, limit=room, ahead=self.lookahead)
        with self._lock:
            self._sending += len(claimed)
        for notice in claimed:
            self._submit(self._sends, self._send_job, notice)

    def _send_job(self, notice: Any) -> None:
        try:
            self.sender.send(notice)
        finally:
            with self._lock:
                self._sending -= 1
        # a burst (the top of the hour) drains at the senders' pace, not one batch per tick;
        # RuntimeError: the pool is shut down, the bot is stopping
        with contextlib.suppress(RuntimeError):
            self._dispatch_notices(self.clock())

    def _status_job(self, check: StatusCheck) -> None:
        marker = check.marker
        try:
            marker = self.status.check(check.account, check.occurrences, check.marker,
                                       self.clock())
        finally:
            self.planner.status_done(check.account.user_id, marker)

    def _housekeeping(self, now: datetime) -> None:
        if self._housekeeping_at is not None and now - self._housekeeping_at < HOUSEKEEPING:
            return
        self._housekeeping_at = now
        self.outbox.prune(now - KEEP_NOTICES)
        self.coordination.prune_inbox(now - KEEP_INBOX)
        self.coordination.prune_processes(now - timedelta(hours=1))
        accounts = self.repo.accounts()
        needing = sum(a.needs_password for a in accounts)
        metrics.ACCOUNTS.labels("ok").set(len(accounts) - needing)
        metrics.ACCOUNTS.labels("needs_password").set(needing)

    # -- polling ------------------------------------------------------------------------------
    def _poll_job(self, user: str) -> None:
        started = time.perf_counter()
        now = self.clock()
        outcome = "error"
        try:
            result = self.syncer.poll(user, now)
            outcome = "changed" if result.changed else "idle"
            jitter = self._rng.uniform(-0.1, 0.1) * self.poll_interval.total_seconds()
            self._schedule(user, now + self.poll_interval + timedelta(seconds=jitter), ok=True)
            self.planner.polled(user, now, changed=result.changed)
        except StaleSnapshot:
            # written meanwhile (an answer from the chat) or the lease moved: start over soon
            outcome = "stale"
            self._schedule(user, now + timedelta(seconds=5), ok=True)
        except AuthRefused:
            outcome = "auth_refused"
            self._auth_refused(user, now)
            self._schedule(user, now + AUTH_PROBE, ok=False)
        except Exception as exc:
            log.warning("poll.failed user=%s error=%s", user, type(exc).__name__,
                        exc_info=not isinstance(exc, CalendarError))
            try:
                key = exc.key if isinstance(exc, CalendarError) else "error.internal"
                self.repo.record_error(user, key, now)
            except Exception:
                log.debug("poll.record_error_failed user=%s", user)
            with self._lock:
                failures = self._failures.get(user, 0) + 1
            backoff = min(self.poll_interval * (2 ** min(failures, 10)), MAX_BACKOFF)
            self._schedule(user, now + backoff * self._rng.uniform(0.8, 1.2), ok=False)
        finally:
            with self._lock:
                self._polling.discard(user)
            metrics.POLLS.labels(outcome).inc()
            metrics.POLL_SECONDS.observe(time.perf_counter() - started)

    def _schedule(self, user: str, when: datetime, *, ok: bool) -> None:
        with self._lock:
            if user not in self.leases.held:
                return
            if user in self._again:  # asked for while this poll ran: at once, not `when`
                self._again.discard(user)
                when = min(when, self.clock())
            self._next_poll[user] = when
            self._failures[user] = 0 if ok else self._failures.get(user, 0) + 1

    def _auth_refused(self, user: str, now: datetime) -> None:
        """A 401: "needs a new app password", told once, nothing deleted."""
        account = self.repo.account(user)
        if account is None:
            return
        first = self.store.record_auth_failure(user, "error.stored_password_refused", now)
        log.warning("poll.auth_refused user=%s told=%s", user, not first)
        if first:
            episode = account.last_sync_at.isoformat() if account.last_sync_at else "never"
            self.outbox.record({user: [Notice(f"auth|{episode}", "system",
                                              t(account.language, "notice.auth"))]}, now)
