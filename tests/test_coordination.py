"""Coordination of several processes on one database, on SQLite and PostgreSQL: account leases,
the flags a lease holder re-reads, the inbox of chat posts, a poll's commit checked against the
snapshot revision and the lease, and the status marker's compare-and-set."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.model import CalendarInfo, Credentials, Notice, NotificationSettings, Occurrence
from bot.core.status import BotStatus
from bot.core.sync import ObjectCopy
from storage.coordination import CoordinationStore
from storage.db import write_transaction
from storage.engine_store import EngineStore, StaleSnapshot
from storage.models import (
    AccountRow,
    InboxRow,
    NoticeRow,
    ObjectRow,
    OccurrenceRow,
    ProcessRow,
    database,
)
from storage.repository import Repository, to_db_time
from tests.engine_kit import race

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)
CAL = "/c/events-1/"


def _connect(repo: Repository, user: str) -> None:
    repo.save_account(user_id=user, creds=Credentials(f"{user}@yandex.ru", "pw"),
                      timezone="Europe/Moscow", language="en",
                      calendars=[CalendarInfo(CAL, "Work")],
                      notifications=NotificationSettings(), now=NOW)


@pytest.fixture
def coord(repo: Repository) -> CoordinationStore:
    for n in range(10):
        _connect(repo, f"u{n}")
    return CoordinationStore()


def _owners() -> dict[str, str | None]:
    return {r.mm_user_id: r.owner for r in AccountRow.select()}


# -- leases ------------------------------------------------------------------------------------


def test_racing_acquires_share_the_accounts(coord: CoordinationStore) -> None:
    """Two processes taking their share at once: no account twice, none left over."""
    taken = race(2, lambda i: CoordinationStore().acquire(f"p{i}", NOW, NOW + TTL, 5))
    assert taken[0].isdisjoint(taken[1])
    assert taken[0] | taken[1] == {f"u{n}" for n in range(10)}
    assert all(owner in ("p0", "p1") for owner in _owners().values())


def test_racing_greedy_acquires_never_double_take(coord: CoordinationStore) -> None:
    """Three processes each asking for every account: each account goes to exactly one."""
    taken = race(3, lambda i: CoordinationStore().acquire(f"p{i}", NOW, NOW + TTL, 10))
    assert sum(len(t) for t in taken) == 10
    assert set().union(*taken) == {f"u{n}" for n in range(10)}
    for i, accounts in enumerate(taken):
        assert all(_owners()[u] == f"p{i}" for u in accounts)


class _Release:
    """Ends the held transaction and waits for its thread: nothing of it runs on into the next
    test (which may point the database elsewhere)."""

    def __init__(self, event: threading.Event, thread: threading.Thread) -> None:
        self._event, self._thread = event, thread

    def set(self) -> None:
        self._event.set()
        self._thread.join(30)


def _holding_a_lock(take: Callable[[], object], seconds: float) -> tuple[object, _Release]:
    """Run ``take`` inside a write transaction on another thread and keep that transaction
    open (its row locks held) until the returned release is set, at most ``seconds``."""
    got: list[object] = []
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with write_transaction():
                got.append(take())
                taken.set()
                release.wait(seconds)
        finally:
            database.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(10)
    return got[0], _Release(release, thread)


def test_acquire_skips_accounts_being_taken_without_waiting(db_url: str,
                                                            coord: CoordinationStore) -> None:
    """PostgreSQL: while one process's transaction is taking accounts, another takes the
    others at once instead of waiting for it (SKIP LOCKED)."""
    if db_url.startswith("sqlite"):
        pytest.skip("one process per SQLite file: its writers queue on one lock")
    first, release = _holding_a_lock(
        lambda: CoordinationStore().acquire("a", NOW, NOW + TTL, 5), seconds=10)
    started = time.monotonic()
    second = CoordinationStore().acquire("b", NOW, NOW + TTL, 10)
    waited = time.monotonic() - started
    release.set()
    assert waited < 3
    assert len(second) == 5
    assert second.isdisjoint(first)  # type: ignore[arg-type]


def test_renew_returns_only_own_accounts(coord: CoordinationStore) -> None:
    """Renewing extends this process's leases and names only them."""
    mine = coord.acquire("a", NOW, NOW + TTL, 3)
    theirs = coord.acquire("b", NOW, NOW + TTL, 3)
    assert coord.renew("a", NOW + 2 * TTL) == mine
    assert coord.renew("b", NOW + 2 * TTL) == theirs
    assert coord.renew("nobody", NOW + 2 * TTL) == set()
    until = {r.mm_user_id: r.lease_until for r in AccountRow.select()}
    assert all(until[u] == to_db_time(NOW + 2 * TTL) for u in mine)


def test_expired_lease_is_taken_live_one_is_not(coord: CoordinationStore) -> None:
    """A holder that stopped renewing loses its accounts after the lease ran out."""
    held = coord.acquire("dead", NOW, NOW + TTL, 10)
    assert len(held) == 10
    assert coord.acquire("alive", NOW + TTL - timedelta(seconds=1), NOW + 2 * TTL, 10) == set()
    assert coord.acquire("alive", NOW + TTL + timedelta(seconds=1), NOW + 3 * TTL, 10) == held
    assert coord.renew("dead", NOW + 4 * TTL) == set()


def test_release_and_forget_process_free_leases(coord: CoordinationStore) -> None:
    """Released leases are free at once; a clean stop frees all and forgets the process."""
    held = coord.acquire("a", NOW, NOW + TTL, 4)
    coord.heartbeat("a", NOW)
    coord.heartbeat("b", NOW)
    give = set(sorted(held)[:2])
    coord.release("a", give)
    coord.release("b", held - give)  # not b's: nothing happens
    assert coord.renew("a", NOW + TTL) == held - give
    assert coord.acquire("b", NOW, NOW + TTL, 2) == give
    assert coord.live_processes(NOW, TTL) == 2
    coord.forget_process("a")
    assert all(owner in (None, "b") for owner in _owners().values())
    assert [r.process_id for r in ProcessRow.select()] == ["b"]
    assert coord.live_processes(NOW, TTL) == 1


def test_heartbeats_count_live_processes(coord: CoordinationStore) -> None:
    """A process whose heartbeat is older than the TTL no longer counts; pruning drops it."""
    coord.heartbeat("old", NOW)
    coord.heartbeat("new", NOW + TTL)
    coord.heartbeat("new", NOW + 2 * TTL)
    assert coord.live_processes(NOW + 2 * TTL, TTL) == 1
    coord.prune_processes(NOW + TTL)
    assert [r.process_id for r in ProcessRow.select()] == ["new"]


def test_take_dirty_returns_and_clears_own_flags(coord: CoordinationStore, repo: Repository) -> None:
    """Changed settings are handed to their lease holder once, and to nobody else."""
    mine = coord.acquire("a", NOW, NOW + TTL, 5)
    theirs = coord.acquire("b", NOW, NOW + TTL, 5)
    one, other = sorted(mine)[0], sorted(theirs)[0]
    repo.set_language(one, "ru")
    repo.set_language(other, "ru")
    assert coord.take_dirty("a") == {one}
    assert coord.take_dirty("a") == set()
    assert coord.take_dirty("b") == {other}


def test_take_poll_requests_returns_due_ones_and_clears(coord: CoordinationStore) -> None:
    """A poll asked for (password fixed, zone changed) is handed out once it is due."""
    mine = sorted(coord.acquire("a", NOW, NOW + TTL, 10))
    coord.take_poll_requests("a", NOW + timedelta(days=1))  # the requests of `connect`
    AccountRow.update(poll_due_at=to_db_time(NOW)).where(AccountRow.mm_user_id == mine[0]).execute()
    AccountRow.update(poll_due_at=to_db_time(NOW + timedelta(minutes=1))).where(
        AccountRow.mm_user_id == mine[1]).execute()
    assert coord.take_poll_requests("b", NOW) == set()
    assert coord.take_poll_requests("a", NOW) == {mine[0]}
    assert coord.take_poll_requests("a", NOW) == set()
    assert coord.take_poll_requests("a", NOW + timedelta(minutes=1)) == {mine[1]}


# -- the inbox ---------------------------------------------------------------------------------


def _claim(store: CoordinationStore, process: str, post: str, now: datetime = NOW) -> bool:
    return store.claim_post(process, post, "dm-1", NOW, {"data": {"post": {"id": post}}}, now,
                            timedelta(seconds=60))


def test_one_process_wins_a_post(coord: CoordinationStore) -> None:
    """Every process hears the post; exactly one of them answers it."""
    wins = race(3, lambda i: _claim(CoordinationStore(), f"p{i}", "post-1"))
    assert sorted(wins) == [False, False, True]
    assert InboxRow.select().count() == 1
    assert coord.known_posts(["post-1", "post-2"]) == {"post-1"}


def test_orphans_only_after_the_claim_expired_and_not_done(coord: CoordinationStore) -> None:
    """A post whose process died unanswered is taken over after its claim ran out; a post
    answered in time, or still within its claim, is not."""
    assert _claim(coord, "dead", "orphan")
    assert _claim(coord, "dead", "answered")
    coord.post_done("answered", NOW + timedelta(seconds=5))
    assert coord.take_orphans("alive", NOW + timedelta(seconds=59), timedelta(seconds=60)) == []
    taken = coord.take_orphans("alive", NOW + timedelta(seconds=61), timedelta(seconds=60))
    assert [(o.post_id, o.taken_over) for o in taken] == [("orphan", True)]
    assert taken[0].payload == {"data": {"post": {"id": "orphan"}}}
    # now claimed by the new process: not an orphan again until that claim expires too
    assert coord.take_orphans("third", NOW + timedelta(seconds=62), timedelta(seconds=60)) == []


def test_racing_orphan_takeovers_take_each_post_once(coord: CoordinationStore) -> None:
    """Two survivors sweeping at once split the orphans between them."""
    for n in range(6):
        _claim(coord, "dead", f"post-{n}")
    later = NOW + timedelta(minutes=5)
    swept = race(2, lambda i: CoordinationStore().take_orphans(f"p{i}", later,
                                                                timedelta(seconds=60)))
    ids = [o.post_id for found in swept for o in found]
    assert sorted(ids) == [f"post-{n}" for n in range(6)]


# -- a poll's commit ---------------------------------------------------------------------------


def _occ(uid: str, href: str) -> Occurrence:
    start = NOW + timedelta(hours=3)
    return Occurrence(CAL, uid, "", start, start + timedelta(hours=1), False, "Sync", href=href)


def _commit(store: EngineStore, user: str, process: str, rev: int) -> list[str]:
    href = CAL + "a.ics"
    return store.commit_poll(
        user, process_id=process, rev=rev,
        upsert={href: ObjectCopy(CAL, "etag-1", "BEGIN:VCALENDAR")}, delete=[],
        occurrences={href: [_occ("a", href)]}, replace_all=False,
        notices=[Notice("chg|1", "change", "moved", thread_keys=("t",))],
        synced_calendars=[CAL], window_end=NOW + timedelta(days=8), now=NOW)


def _stored(user: str) -> tuple[int, int, int]:
    account = AccountRow.get(AccountRow.mm_user_id == user)
    return (ObjectRow.select().where(ObjectRow.account == account).count(),
            OccurrenceRow.select().where(OccurrenceRow.account == account).count(),
            NoticeRow.select().where(NoticeRow.account == account).count())


def test_commit_poll_stores_everything_when_current(coord: CoordinationStore) -> None:
    """The lease holder committing on the revision it read stores copies, occurrences and
    notices, and moves the revision."""
    coord.acquire("a", NOW, NOW + TTL, 10)
    store = EngineStore()
    rev = store.poll_state("u0").rev
    assert _commit(store, "u0", "a", rev) == ["chg|1"]
    assert _stored("u0") == (1, 1, 1)
    state = store.poll_state("u0")
    assert state.rev == rev + 1
    assert state.unsynced == set()
    assert [o.uid for o in store.snapshot("u0").values()] == ["a"]


def test_commit_poll_on_a_moved_revision_stores_nothing(coord: CoordinationStore) -> None:
    """A write from the chat between the poll's read and its commit: StaleSnapshot, and no
    object, occurrence, notice or sync time is stored."""
    coord.acquire("a", NOW, NOW + TTL, 10)
    store = EngineStore()
    rev = store.poll_state("u0").rev
    store.apply_local_write("u0", CAL + "b.ics", CAL, ObjectCopy(CAL, "e", "X"), [])
    before = _stored("u0")
    with pytest.raises(StaleSnapshot):
        _commit(store, "u0", "a", rev)
    assert _stored("u0") == before == (1, 0, 0)
    assert AccountRow.get(AccountRow.mm_user_id == "u0").last_sync_at is None


def test_commit_poll_without_the_lease_stores_nothing(coord: CoordinationStore) -> None:
    """A process that lost the account's lease while polling stores nothing."""
    coord.acquire("other", NOW, NOW + TTL, 10)
    store = EngineStore()
    rev = store.poll_state("u0").rev
    with pytest.raises(StaleSnapshot):
        _commit(store, "u0", "a", rev)
    assert _stored("u0") == (0, 0, 0)
    assert store.poll_state("u0").rev == rev


def test_racing_commits_on_one_revision_store_once(coord: CoordinationStore) -> None:
    """Two polls of the same revision committing at once: one stores, the other is stale."""
    coord.acquire("a", NOW, NOW + TTL, 10)
    rev = EngineStore().poll_state("u0").rev

    def commit(_: int) -> str:
        try:
            _commit(EngineStore(), "u0", "a", rev)
            return "stored"
        except StaleSnapshot:
            return "stale"

    assert sorted(race(2, commit)) == ["stale", "stored"]
    assert _stored("u0") == (1, 1, 1)


# -- the status marker -------------------------------------------------------------------------


def test_swap_status_marker_is_compare_and_set(coord: CoordinationStore) -> None:
    """The marker is replaced only if it is still the expected one."""
    store = EngineStore()
    one = BotStatus("calendar", "In a meeting", NOW + timedelta(minutes=30))
    two = BotStatus("calendar", "In a meeting", NOW + timedelta(minutes=50))
    assert store.swap_status_marker("u0", None, one)
    assert not store.swap_status_marker("u0", None, two)
    assert store.status_marker("u0") == one
    assert not store.swap_status_marker("u0", two, None)
    assert store.swap_status_marker("u0", one, two)
    assert store.status_markers(["u0", "u1"]) == {"u0": two}
    assert store.swap_status_marker("u0", two, None)
    assert store.status_marker("u0") is None


def test_racing_status_swaps_from_one_value_one_wins(coord: CoordinationStore) -> None:
    """Two checks swapping from the same old marker at once: exactly one succeeds, and the
    marker is the winner's."""
    store = EngineStore()
    old = BotStatus("calendar", "In a meeting", NOW + timedelta(minutes=10))
    store.swap_status_marker("u0", None, old)
    new = [BotStatus("calendar", "In a meeting", NOW + timedelta(minutes=20 + 10 * i))
           for i in range(2)]
    won = race(2, lambda i: EngineStore().swap_status_marker("u0", old, new[i]))
    assert sorted(won) == [False, True]
    assert store.status_marker("u0") == new[won.index(True)]
