"""One account's poll: the cheap ETag listing, fetches of what changed, then the change set
decided by ``bot.core.sync`` and stored with its notices in one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

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
from bot.stores import Accounts, Snapshots

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollResult:
    changed: bool  # a new snapshot was stored (the planner re-reads it)
    notices: int  # notices newly recorded


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

    def poll(self, user: str, now: datetime) -> PollResult:
        """Raises ``AuthRefused`` / ``CalendarError`` (the engine backs off) and
        ``StaleSnapshot`` (someone else wrote meanwhile: the next poll starts over)."""
        try:
            found = self.repo.account_with_credentials(user)
        except ValueError:
            # the stored app password does not decrypt with the configured keys (a key was
            # rotated away): the user is asked for a new one, like after a refused login
            raise AuthRefused(reason="undecryptable") from None
        if found is None:
            return PollResult(False, 0)
        account, creds = found
        start, end = poll_window(now, self.horizon_days)
        known = self.store.poll_state(user)
        watched = list(known.watched)
        stored_etags = self.store.object_etags(user)
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
            self.store.touch_sync(user, now)
            return PollResult(False, 0)

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
