"""One account's poll: the cheap ETag listing, fetches of what changed, then the change set
decided by ``bot.core.sync`` and stored with its notices in one transaction."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.model import Account, Credentials
from bot.core.sync import (
    PollFacts,
    Viewer,
    decide_changes,
    needs_every_copy,
    nothing_new,
    plan_fetch,
    poll_window,
)
from bot.errors import AuthRefused, CalendarError
from bot.ports import CalendarSource
from bot.services import me_address
from bot.stores import Accounts, PollState, Snapshots

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollResult:
    changed: bool  # a new snapshot was stored (the planner re-reads it)
    notices: int  # notices newly recorded


@dataclass(frozen=True)
class _Known:
    """What an idle poll needs from the database, kept between polls of a held account."""

    account: Account
    creds: Credentials
    state: PollState
    etags: dict[str, tuple[str, str]]  # href → (calendar, etag) of the stored copies


class Syncer:
    """Polls one account at a time; callers run it on the worker pool, one poll per account
    at once (the engine's job set guarantees it in a process; ``commit_poll``'s revision and
    lease check across processes)."""

    def __init__(self, *, repo: Accounts, store: Snapshots, source: CalendarSource,
                 horizon_days: int, process_id: str) -> None:
        self.repo = repo
        self.store = store
        self.source = source
        self.horizon_days = horizon_days
        self.process_id = process_id
        # An idle poll reads nothing from the database: the account, its decrypted password,
        # its calendars' state and the stored ETags are kept here for the held accounts. They
        # are forgotten whenever they may have changed: a setting changed (the engine sees the
        # account's dirty flag), the lease moved, a poll stored something or failed. A copy
        # that is stale all the same (another process wrote the snapshot) can only make a
        # poll take the full path, which re-reads everything and whose commit checks the
        # snapshot's revision.
        self._known: dict[str, _Known] = {}
        self._idle: set[str] = set()
        self._lock = threading.Lock()

    def forget(self, users: Iterable[str]) -> None:
        with self._lock:
            for user in users:
                self._known.pop(user, None)

    def flush_idle(self, now: datetime) -> None:
        """Stamp the sync time of the accounts whose polls found nothing new since the last
        flush: one UPDATE for all of them (the engine calls it every tick)."""
        with self._lock:
            users, self._idle = self._idle, set()
        if users:
            self.store.touch_sync(users, now)

    def _idle_poll(self, user: str, current: _Known, *, complete: bool) -> PollResult:
        """Nothing new: keep what was read for the next poll (unless a calendar vanished
        meanwhile), and have the sync time stamped with the other idle ones."""
        with self._lock:
            if complete:
                self._known.setdefault(user, current)
            self._idle.add(user)
        return PollResult(False, 0)

    def _load(self, user: str) -> _Known | None:
        try:
            found = self.repo.account_with_credentials(user)
        except ValueError:
            # the stored app password does not decrypt with the configured keys (a key was
            # rotated away): the user is asked for a new one, like after a refused login
            raise AuthRefused(reason="undecryptable") from None
        if found is None:
            return None
        account, creds = found
        return _Known(account, creds, self.store.poll_state(user), self.store.object_etags(user))

    def poll(self, user: str, now: datetime) -> PollResult:
        """Raises ``AuthRefused`` / ``CalendarError`` (the engine backs off) and
        ``StaleSnapshot`` (someone else wrote meanwhile: the next poll starts over)."""
        with self._lock:
            cached = self._known.pop(user, None)  # put back only after an idle poll
        try:
            result = self._poll(user, now, cached)
        except BaseException:
            self.forget([user])
            raise
        return result

    def _poll(self, user: str, now: datetime, cached: _Known | None) -> PollResult:
        current = cached or self._load(user)
        if current is None:
            return PollResult(False, 0)
        account, creds = current.account, current.creds
        start, end = poll_window(now, self.horizon_days)
        known = current.state
        watched = list(known.watched)
        stored_etags = current.etags
        seen: dict[str, tuple[str, str]] = {}
        for href in list(watched):
            try:
                etags = self.source.etags_in_window(creds, href, start, end)
            except CalendarError as exc:
                if exc.params.get("status") != 404:
                    raise
                # the calendar was deleted in Yandex: take the server's list, go on without it
                log.info("poll.calendar_gone user=%s calendar=%s", user, href)
                self.repo.replace_calendars(user, self.source.list_calendars(creds))
                watched.remove(href)
                continue
            for obj_href, etag in etags.items():
                seen[obj_href] = (href, etag)
        plan = plan_fetch(stored_etags, seen)
        # Only watched calendars are polled, so only they can be baselined.
        unsynced = known.unsynced & set(watched)
        if nothing_new(plan, previous_end=known.window_end, window_end=end, unsynced=unsynced):
            return self._idle_poll(user, current, complete=watched == known.watched)
        if cached is not None:
            # Something changed: decide on what the database says now, not on the copy kept
            # for idle polls (the listing just made stays good).
            fresh = self._load(user)
            if fresh is None:
                return PollResult(False, 0)
            account, creds, known = fresh.account, fresh.creds, fresh.state
            stored_etags = fresh.etags
            seen = {h: v for h, v in seen.items() if v[0] in known.watched}
            watched = [h for h in known.watched if h in watched]
            plan = plan_fetch(stored_etags, seen)
            unsynced = known.unsynced & set(watched)
            if nothing_new(plan, previous_end=known.window_end, window_end=end,
                           unsynced=unsynced):  # only the kept copy was behind
                return self._idle_poll(user, fresh, complete=watched == known.watched)

        fetched = {o.href: o for o in self.source.fetch_objects(creds, plan.changed)} \
            if plan.changed else {}
        gone = [h for h in plan.left if stored_etags[h][0] not in watched
                or not self.source.object_exists(creds, h)]
        moved_out = [h for h in plan.left if h not in gone]
        if moved_out:  # still exists, outside the window now: read it to tell where it went
            fetched.update({o.href: o for o in self.source.fetch_objects(creds, moved_out)})
        every = needs_every_copy(end, known.window_end, unsynced)
        stored = self.store.objects(user, None if every else [*plan.changed, *plan.left])
        facts = PollFacts(
            window=(start, end), previous_end=known.window_end, watched=watched,
            unsynced=unsynced, seen=seen, fetched=fetched, gone=gone, moved_out=moved_out,
            stored=stored, snapshot=self.store.snapshot(user))
        settings = account.notifications
        viewer = Viewer(tz=ZoneInfo(account.timezone), me=me_address(account.login),
                        lang=account.language, changes=settings.changes,
                        responses=settings.responses)
        changes = decide_changes(facts, viewer, now=now)
        for href in changes.skipped:
            log.warning("poll.ics_skipped user=%s href=%s", user, href)
        recorded = self.store.commit_poll(
            user, process_id=self.process_id, rev=known.rev, upsert=changes.upsert,
            delete=changes.delete, occurrences=changes.occurrences,
            replace_all=changes.replace_all, notices=changes.notices, synced_calendars=watched,
            window_end=end, now=now)
        log.info("poll.done user=%s changed=%d gone=%d notices=%d", user, len(plan.changed),
                 len(gone), len(recorded))
        return PollResult(True, len(recorded))
