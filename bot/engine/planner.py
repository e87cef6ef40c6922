"""Each tick, for the accounts this process holds: reminders, the morning agenda and the
wanted status, decided by ``bot.core.plan`` from the stored state, recorded in one
transaction.

The planner keeps a small view per held account (its stored occurrences from a day back to
two days ahead, the reminders and the agenda already recorded, the status marker), read from
the database when the lease is taken and again whenever a poll stored a new snapshot or a
setting changed. The view only saves reads: what is decided is recorded with ``INSERT … ON
CONFLICT DO NOTHING`` on ids that say what the notice is, so a second decision of the same
reminder (a restart, a takeover by another process) records nothing.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.core.model import Account, Notice, Occurrence
from bot.core.plan import AccountState, plan_tick
from bot.core.status import BotStatus
from bot.stores import COVERED, Accounts, Notices, Snapshots

log = logging.getLogger(__name__)

VIEW_BACK = timedelta(hours=26)
VIEW_AHEAD = timedelta(hours=50)
RELOAD_AFTER = timedelta(hours=6)  # the view's span moves with time: re-read it this often
KEEP_DECIDED = timedelta(days=3)  # notices recorded this long ago still count as decided
STATUS_RECHECK = timedelta(minutes=5)  # a status we could not change is looked at again after


@dataclass
class _View:
    account: Account
    upcoming: list[Occurrence]
    reminded: set[str]
    agenda_last: date | None
    marker: BotStatus | None  # as stored, also once expired (a status check swaps from it)
    loaded_at: datetime
    fresh: bool = False
    wake_at: datetime | None = None
    status_checked: tuple[datetime | None, datetime] | None = None  # (wanted end, when)
    status_busy: bool = False
    load_seq: int = 0  # which load read it (a load that started later read newer rows)


@dataclass(frozen=True)
class StatusCheck:
    account: Account
    occurrences: list[Occurrence]
    marker: BotStatus | None


class Planner:
    def __init__(self, *, repo: Accounts, store: Snapshots, outbox: Notices,
                 clock: Callable[[], datetime], lookahead: timedelta = timedelta(0)) -> None:
        self.lookahead = lookahead
        self.repo = repo
        self.store = store
        self.outbox = outbox
        self.clock = clock
        self._views: dict[str, _View] = {}
        self._lock = threading.Lock()
        self._loads = itertools.count(1)

    # -- the views ----------------------------------------------------------------------------
    def load(self, users: Iterable[str], now: datetime, *, refresh: bool = False) -> None:
        """(Re-)read the views of these accounts from the database, in a few bulk queries.

        Loads run on the tick and on the poll workers at once. A load that began before
        another one stored its view read older rows (it may predate a poll's commit): it does
        not overwrite that view. ``refresh``: only re-read views that exist (a poll that ends
        after its account's lease was lost does not bring the account back)."""
        wanted = list(users)
        if not wanted:
            return
        with self._lock:
            seq = next(self._loads)
        accounts = {a.user_id: a for a in self.repo.accounts(wanted)}
        upcoming = self.store.upcoming(accounts, now - VIEW_BACK, now + VIEW_AHEAD)
        reminded = self.outbox.recorded_ids(accounts, "rem|", now - KEEP_DECIDED)
        agendas = self.outbox.recorded_ids(accounts, "agenda|", now - KEEP_DECIDED)
        markers = self.store.status_markers(accounts)
        with self._lock:
            for user, account in accounts.items():
                old = self._views.get(user)
                if (old is None and refresh) or (old is not None and old.load_seq > seq):
                    continue  # not held any more, or a later load already stored newer rows
                days = [date.fromisoformat(i.split("|", 1)[1]) for i in agendas[user]]
                self._views[user] = _View(
                    account=account, upcoming=upcoming[user], reminded=reminded[user],
                    agenda_last=max(days, default=None), marker=markers.get(user),
                    loaded_at=now, fresh=old.fresh if old else False,
                    status_checked=old.status_checked if old else None, load_seq=seq)
            for user in set(wanted) - set(accounts):  # disconnected meanwhile
                if (old := self._views.get(user)) is None or old.load_seq < seq:
                    self._views.pop(user, None)

    def forget(self, users: Iterable[str]) -> None:
        with self._lock:
            for user in users:
                self._views.pop(user, None)

    def polled(self, user: str, now: datetime, *, changed: bool) -> None:
        """A poll of this account finished: the agenda may go out now; a new snapshot is read."""
        if changed:
            self.load([user], now, refresh=True)
        with self._lock:
            view = self._views.get(user)
            if view is not None:
                view.fresh = True
                view.wake_at = None

    def held(self) -> list[str]:
        with self._lock:
            return list(self._views)

    def view_account(self, user: str) -> Account | None:
        with self._lock:
            view = self._views.get(user)
            return view.account if view else None

    # -- the tick -----------------------------------------------------------------------------
    def tick(self, now: datetime) -> list[StatusCheck]:
        """Decide and record; returns the status checks to run (off this thread)."""
        stale = [u for u, v in self._snapshot() if now - v.loaded_at >= RELOAD_AFTER]
        if stale:
            self.load(stale, now)
        decided: dict[str, list[Notice]] = {}
        checks: list[StatusCheck] = []
        for user, view in self._snapshot():
            if view.wake_at is not None and now < view.wake_at:
                continue
            try:
                plan = plan_tick(AccountState(view.account, view.upcoming, view.reminded,
                                              view.agenda_last, _live(view.marker, now),
                                              view.fresh), now, lookahead=self.lookahead)
            except Exception:
                log.exception("plan.failed user=%s", user)
                continue
            notices = plan.notices + [Notice(c, COVERED, "", expires_at=now) for c in plan.covered]
            if notices:
                decided[user] = notices
            wake = plan.wake_at or now + STATUS_RECHECK
            check = self._status_wanted(view, plan.status_end, now)
            if check is not None:
                checks.append(check)  # status_done() has the account looked at again
            elif view.status_checked and plan.status_end != _expiry(_live(view.marker, now)):
                wake = min(wake, view.status_checked[1] + STATUS_RECHECK)
            view.wake_at = wake
        if decided:
            self._record(decided, now)
        return checks

    def _snapshot(self) -> list[tuple[str, _View]]:
        with self._lock:
            return list(self._views.items())

    def _record(self, decided: dict[str, list[Notice]], now: datetime) -> None:
        try:
            self.outbox.record(decided, now)
        except Exception:
            log.exception("plan.record_failed users=%d", len(decided))
            with self._lock:  # not recorded: decide them again on the next tick
                for user in decided:
                    if (view := self._views.get(user)) is not None:
                        view.wake_at = None
            return
        with self._lock:
            for user, notices in decided.items():
                view = self._views.get(user)
                if view is None:
                    continue
                for notice in notices:
                    if notice.kind in ("reminder", COVERED):
                        view.reminded.add(notice.notice_id)
                    elif notice.kind == "agenda":
                        view.agenda_last = date.fromisoformat(notice.notice_id.split("|", 1)[1])
                # forget reminders of meetings long past: the set stays the size of the view
                if len(view.reminded) > 4 * len(view.upcoming) + 50:
                    view.reminded = self.outbox.recorded_ids(
                        [user], "rem|", now - KEEP_DECIDED)[user]

    def _status_wanted(self, view: _View, wanted: datetime | None,
                       now: datetime) -> StatusCheck | None:
        """A status check is handed out only when the wanted expiry differs from what the bot
        last set; one that changed nothing (the user's own status, DND) waits a while."""
        # Mattermost removed an expired status by itself: as a wanted state it counts as none.
        # The check still gets the stored marker: its compare-and-set expects what is stored.
        if wanted == _expiry(_live(view.marker, now)) or view.status_busy:
            return None
        checked = view.status_checked
        if checked and checked[0] == wanted and now - checked[1] < STATUS_RECHECK:
            return None
        view.status_checked = (wanted, now)
        view.status_busy = True
        return StatusCheck(view.account, list(view.upcoming), view.marker)

    def status_done(self, user: str, marker: BotStatus | None) -> None:
        with self._lock:
            view = self._views.get(user)
            if view is not None:
                view.marker = marker
                view.status_busy = False
                view.wake_at = None


def _expiry(marker: BotStatus | None) -> datetime | None:
    return marker.expires_at if marker else None


def _live(marker: BotStatus | None, now: datetime) -> BotStatus | None:
    """The marker unless it expired (then Mattermost has removed the status by itself)."""
    return marker if marker is not None and marker.expires_at > now else None
