"""The storage the engine and the services need, as Protocols, and the values that cross them.

``storage/`` implements them on Peewee (SQLite and PostgreSQL); the engine's modules and the
services are written against these Protocols only, so what they rely on is stated here: every
method is one statement or one transaction, and the guarantees (one row per notice id, one
claim per notice, one lease per account, one answer per post) come from the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.core.model import (
    Account,
    CalendarInfo,
    Credentials,
    MeetingRef,
    Notice,
    Occurrence,
    WatchedCalendar,
)
from bot.core.status import BotStatus
from bot.core.sync import ObjectCopy

# The kind of the rows recorded for reminders another one stood for (several lead times due at
# once): recorded as dropped, so they are never sent and never decided again.
COVERED = "covered"


@dataclass(frozen=True)
class PollState:
    """What a poll reads before it asks the server, in one query."""

    watched: list[str]  # hrefs of the watched calendars, in display order
    unsynced: set[str]  # calendars (watched or not) without a baseline
    window_end: datetime | None
    rev: int  # the snapshot revision the poll builds on


class StaleSnapshot(Exception):
    """The snapshot changed (or the lease moved) while the poll ran: nothing was stored."""


# How long a claimed notice is held before another sender may take it over. Short, so that a
# process killed while sending leaves a reminder stuck for seconds, not past its meeting's start;
# the sender renews it before each part it posts (one Mattermost call is bounded well below it).
NOTICE_HOLD = timedelta(seconds=30)


@dataclass(frozen=True)
class ClaimedNotice:
    """A notice this sender holds for a while; ``attempts`` counts this claim."""

    pk: int
    user_id: str
    notice_id: str
    kind: str
    message: str
    thread_keys: tuple[str, ...]
    expires_at: datetime | None
    attempts: int
    parts: tuple[str, ...]  # post ids of the parts already posted, in order
    refs: tuple[MeetingRef, ...]
    actions: tuple[str, ...]
    created_at: datetime
    not_before: datetime | None = None  # not to be posted before this (a reminder's due time)
    claimed_by: str = ""  # the process holding the claim ("" for a notice looked up, not claimed)


@dataclass(frozen=True)
class InboxPost:
    """A post whose claim this process won (or took over)."""

    post_id: str
    payload: dict[str, Any]
    taken_over: bool  # True: another process claimed it first and did not finish


class Accounts(Protocol):
    """Accounts, their calendars and settings (``storage.repository.Repository``)."""

    def account(self, user_id: str) -> Account | None: ...
    def accounts(self, users: Iterable[str] | None = None) -> list[Account]: ...
    def account_with_credentials(self, user_id: str) -> tuple[Account, Credentials] | None: ...
    def record_error(self, user_id: str, error_key: str, now: datetime) -> None: ...
    def replace_calendars(self, user_id: str,
                          found: list[CalendarInfo]) -> list[WatchedCalendar]: ...


class Snapshots(Protocol):
    """Per account: the copies of its calendar objects, the occurrence snapshot, the status
    marker and the 401 episode (``storage.engine_store.EngineStore``)."""

    def poll_state(self, user_id: str) -> PollState: ...
    def object_etags(self, user_id: str) -> dict[str, tuple[str, str]]: ...
    def objects(self, user_id: str,
                hrefs: Iterable[str] | None = None) -> dict[str, ObjectCopy]: ...
    def snapshot(self, user_id: str) -> dict[tuple[str, str, str], Occurrence]: ...
    def upcoming(self, users: Iterable[str], start: datetime,
                 end: datetime) -> dict[str, list[Occurrence]]: ...
    def commit_poll(self, user_id: str, *, process_id: str, rev: int,
                    upsert: Mapping[str, ObjectCopy], delete: Iterable[str],
                    occurrences: Mapping[str, list[Occurrence]], replace_all: bool,
                    notices: list[Notice], synced_calendars: Iterable[str],
                    window_end: datetime | None, now: datetime) -> list[str]:
        """Raises ``StaleSnapshot`` (storing nothing) when ``rev`` moved or the lease is not
        ``process_id``'s."""
        ...

    def touch_sync(self, users: Iterable[str], now: datetime) -> None: ...
    def apply_local_write(self, user_id: str, href: str, calendar: str,
                          stored: ObjectCopy | None, occurrences: list[Occurrence]) -> None: ...
    def status_marker(self, user_id: str) -> BotStatus | None: ...
    def status_markers(self, users: Iterable[str]) -> dict[str, BotStatus]: ...
    def swap_status_marker(self, user_id: str, old: BotStatus | None,
                           new: BotStatus | None) -> bool:
        """Compare-and-set: replaces the marker only if it is still ``old``."""
        ...

    def block_status(self, user_id: str) -> None: ...
    def record_auth_failure(self, user_id: str, error_key: str, now: datetime) -> bool: ...


class Notices(Protocol):
    """The outbox (``storage.outbox.OutboxStore``)."""

    def record(self, batch: Mapping[str, Sequence[Notice]],
               now: datetime) -> dict[str, list[str]]:
        """One transaction; an id already recorded for the account is left alone
        (``ON CONFLICT DO NOTHING``). Returns the ids newly recorded, per account."""
        ...

    def recorded_ids(self, users: Iterable[str], prefix: str,
                     since: datetime) -> dict[str, set[str]]: ...
    def claim(self, process_id: str, now: datetime, *, limit: int = 100,
              hold: timedelta = ..., ahead: timedelta = ...) -> list[ClaimedNotice]:
        """Notices due by ``now + ahead`` that nobody holds (or whose claim expired), an
        account's threaded ones only in order; no two senders get the same one."""
        ...

    def extend_claim(self, notice: ClaimedNotice, until: datetime) -> bool:
        """Keep holding a notice while it is being sent; False when this claim of it is over
        (it expired and another sender, of this process or another, took it; or the notice
        was sent or dropped). A claim is known by its holder and its attempt number."""
        ...

    def add_part(self, pk: int, post_id: str) -> None: ...
    def mark_sent(self, pk: int, post_id: str, now: datetime) -> None: ...
    def retry_at(self, pk: int, when: datetime) -> None: ...
    def drop(self, pk: int, reason: str) -> None: ...
    def retry_now(self, now: datetime) -> int: ...
    def thread_root(self, user_id: str, keys: Iterable[str]) -> str | None: ...
    def set_thread_root(self, user_id: str, keys: Iterable[str], post_id: str) -> None: ...
    def notice_of_post(self, user_id: str, post_id: str) -> ClaimedNotice | None: ...
    def prune(self, before: datetime) -> int: ...


class Coordination(Protocol):
    """Processes, account leases and the inbox (``storage.coordination.CoordinationStore``)."""

    def heartbeat(self, process_id: str, now: datetime) -> None: ...
    def live_processes(self, now: datetime, ttl: timedelta) -> int: ...
    def forget_process(self, process_id: str) -> None: ...
    def prune_processes(self, before: datetime) -> None: ...
    def account_count(self) -> int: ...
    def renew(self, process_id: str, until: datetime) -> set[str]: ...
    def acquire(self, process_id: str, now: datetime, until: datetime,
                limit: int) -> set[str]:
        """Takes free or expired leases; never one another process takes at the same time."""
        ...

    def release(self, process_id: str, users: set[str]) -> None: ...
    def take_dirty(self, process_id: str) -> set[str]: ...
    def take_poll_requests(self, process_id: str, now: datetime) -> set[str]: ...
    def claim_post(self, process_id: str, post_id: str, channel_id: str, created_at: datetime,
                   payload: dict[str, Any], now: datetime, hold: timedelta) -> bool:
        """True for exactly one process per post id."""
        ...

    def post_done(self, post_id: str, now: datetime) -> None: ...
    def known_posts(self, post_ids: list[str]) -> set[str]: ...
    def take_orphans(self, process_id: str, now: datetime, hold: timedelta,
                     limit: int = 20) -> list[InboxPost]: ...
    def prune_inbox(self, before: datetime) -> None: ...
