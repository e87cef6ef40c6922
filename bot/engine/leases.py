"""Which accounts this process holds. Every few seconds: heartbeat, renew the leases held,
then take or give back leases so that each live process holds its share (a process that died
stops renewing; its leases expire after ``TTL`` and the others take them over)."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from bot import metrics
from bot.stores import Coordination

log = logging.getLogger(__name__)

TTL = timedelta(seconds=30)  # a lease not renewed for this long is free: takeover within ~35 s
EVERY = timedelta(seconds=5)


class LeaseKeeper:
    def __init__(self, store: Coordination, process_id: str, *, ttl: timedelta = TTL,
                 every: timedelta = EVERY) -> None:
        self.store = store
        self.process_id = process_id
        self.ttl = ttl
        self.every = every
        self.held: set[str] = set()
        self._last: datetime | None = None

    def due(self, now: datetime) -> bool:
        return self._last is None or now - self._last >= self.every

    def maintain(self, now: datetime) -> tuple[set[str], set[str]]:
        """Renew, balance; returns (accounts newly held, accounts lost)."""
        self._last = now
        self.store.heartbeat(self.process_id, now)
        until = now + self.ttl
        still = self.store.renew(self.process_id, until)
        lost = self.held - still
        live = max(1, self.store.live_processes(now, self.ttl))
        target = math.ceil(self.store.account_count() / live)
        acquired: set[str] = set()
        if len(still) < target:
            acquired = self.store.acquire(self.process_id, now, until, target - len(still))
        elif len(still) > target:
            # another process joined: give back the surplus, it takes it on its next round
            surplus = set(sorted(still)[target:])
            self.store.release(self.process_id, surplus)
            still -= surplus
            lost |= surplus
        self.held = still | acquired
        metrics.LEASED_ACCOUNTS.set(len(self.held))
        if acquired or lost:
            log.info("lease.changed process=%s acquired=%d lost=%d held=%d live=%d",
                     self.process_id, len(acquired), len(lost), len(self.held), live)
        return acquired, lost

    def release_all(self) -> None:
        """A clean stop: the others need not wait for the leases to expire."""
        self.store.forget_process(self.process_id)
        self.held = set()
