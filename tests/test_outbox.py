"""The outbox's storage contract, on SQLite and PostgreSQL: recording is idempotent, a due
notice is claimed by one sender only, claims expire and are released, threaded notices of an
account go out in order, parts accumulate."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.model import CalendarInfo, Credentials, MeetingRef, Notice, NotificationSettings
from bot.stores import NOTICE_HOLD
from storage.models import NoticeRow
from storage.outbox import OutboxStore
from storage.repository import Repository, from_db_time
from tests.engine_kit import race

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
HOLD = timedelta(minutes=2)


def _connect(repo: Repository, user: str = "u1") -> None:
    repo.save_account(user_id=user, creds=Credentials(f"{user}@yandex.ru", "pw"),
                      timezone="Europe/Moscow", language="en",
                      calendars=[CalendarInfo("/c/events-1/", "Work")],
                      notifications=NotificationSettings(), now=NOW)


def _notice(notice_id: str, kind: str = "system", **kw: object) -> Notice:
    return Notice(notice_id, kind, f"text of {notice_id}", **kw)  # type: ignore[arg-type]


@pytest.fixture
def outbox(repo: Repository) -> OutboxStore:
    _connect(repo, "u1")
    _connect(repo, "u2")
    return OutboxStore()


def _pk(notice_id: str) -> int:
    return int(NoticeRow.get(NoticeRow.notice_id == notice_id).id)


# -- recording ---------------------------------------------------------------------------------


def test_record_twice_keeps_one_row_and_reports_it_once(outbox: OutboxStore) -> None:
    """The same notice id recorded again is left alone, and only the first record names it."""
    first = outbox.record({"u1": [_notice("a"), _notice("b")]}, NOW)
    again = outbox.record({"u1": [_notice("a"), _notice("c")]}, NOW + timedelta(seconds=1))
    assert sorted(first["u1"]) == ["a", "b"]
    assert again["u1"] == ["c"]
    assert NoticeRow.select().where(NoticeRow.notice_id == "a").count() == 1
    assert NoticeRow.select().count() == 3


def test_same_id_for_two_accounts_is_two_notices(outbox: OutboxStore) -> None:
    """Notice ids are unique per account, not across accounts."""
    recorded = outbox.record({"u1": [_notice("a")], "u2": [_notice("a")]}, NOW)
    assert recorded == {"u1": ["a"], "u2": ["a"]}
    assert NoticeRow.select().count() == 2


def test_two_threads_recording_the_same_notice_make_one_row(outbox: OutboxStore) -> None:
    """Two writers deciding the same notice at once: one row, one of them is told it recorded."""
    results = race(4, lambda i: OutboxStore().record({"u1": [_notice("same")]}, NOW))
    assert sorted(len(r.get("u1", [])) for r in results) == [0, 0, 0, 1]
    assert NoticeRow.select().where(NoticeRow.notice_id == "same").count() == 1


# -- claiming ----------------------------------------------------------------------------------


def test_racing_claims_never_take_one_notice_twice(outbox: OutboxStore) -> None:
    """Senders of different processes claiming at once: every due notice goes to exactly one."""
    outbox.record({"u1": [_notice(f"n{i}") for i in range(30)]}, NOW)
    claims = race(4, lambda i: OutboxStore().claim(f"proc-{i}", NOW, limit=100, hold=HOLD))
    taken = [c.notice_id for claim in claims for c in claim]
    assert sorted(taken) == sorted(f"n{i}" for i in range(30))


def test_one_due_notice_is_claimed_once(outbox: OutboxStore) -> None:
    """Two senders (two process ids) racing for the only due notice: exactly one gets it."""
    outbox.record({"u1": [_notice("only")]}, NOW)
    claims = race(2, lambda i: OutboxStore().claim(f"proc-{i}", NOW, hold=HOLD))
    assert sorted(len(c) for c in claims) == [0, 1]
    (won,) = [c for claim in claims for c in claim]
    assert (won.notice_id, won.attempts, won.user_id) == ("only", 1, "u1")
    assert outbox.claim("proc-9", NOW + timedelta(seconds=1)) == []


def test_claim_skips_notices_being_claimed_without_waiting(db_url: str,
                                                          outbox: OutboxStore) -> None:
    """PostgreSQL: while one sender's transaction is claiming notices, another claims the
    rest at once instead of waiting for it (SKIP LOCKED)."""
    from tests.test_coordination import _holding_a_lock

    if db_url.startswith("sqlite"):
        pytest.skip("one process per SQLite file: its writers queue on one lock")
    outbox.record({"u1": [_notice(f"n{i}") for i in range(10)]}, NOW)
    first, release = _holding_a_lock(lambda: OutboxStore().claim("a", NOW, limit=5), 10)
    started = time.monotonic()
    second = OutboxStore().claim("b", NOW, limit=10)
    waited = time.monotonic() - started
    release.set()
    assert waited < 3
    assert len(second) == 5
    assert {c.pk for c in second}.isdisjoint({c.pk for c in first})  # type: ignore[attr-defined]


def test_expired_claim_is_taken_over(outbox: OutboxStore) -> None:
    """A sender that died holds its claim until it expires; then another takes the notice."""
    outbox.record({"u1": [_notice("a")]}, NOW)
    (first,) = outbox.claim("dead", NOW, hold=HOLD)
    assert outbox.claim("alive", NOW + HOLD - timedelta(seconds=1), hold=HOLD) == []
    (second,) = outbox.claim("alive", NOW + HOLD + timedelta(seconds=1), hold=HOLD)
    assert second.pk == first.pk
    assert second.attempts == 2
    assert NoticeRow.get_by_id(first.pk).claimed_by == "alive"


def test_claim_respects_next_attempt_and_not_before(outbox: OutboxStore) -> None:
    """A notice is claimable only from its ``not_before`` on."""
    outbox.record({"u1": [_notice("later", not_before=NOW + timedelta(minutes=5))]}, NOW)
    assert outbox.claim("p", NOW) == []
    assert [c.notice_id for c in outbox.claim("p", NOW + timedelta(minutes=5))] == ["later"]


def test_mark_sent_retry_and_drop_release_the_claim(outbox: OutboxStore) -> None:
    """Sent and dropped notices are never claimed again; a retry is claimable at its time."""
    outbox.record({"u1": [_notice("sent"), _notice("retry"), _notice("drop")]}, NOW)
    claimed = {c.notice_id: c for c in outbox.claim("p", NOW, hold=HOLD)}
    outbox.mark_sent(claimed["sent"].pk, "post-1", NOW)
    outbox.retry_at(claimed["retry"].pk, NOW + timedelta(seconds=30))
    outbox.drop(claimed["drop"].pk, "refused")
    for name in ("sent", "retry", "drop"):
        row = NoticeRow.get_by_id(claimed[name].pk)
        assert (row.claimed_by, row.claim_until) == (None, None), name
    sent = NoticeRow.get_by_id(claimed["sent"].pk)
    assert sent.post_id == "post-1"
    assert sent.sent_at is not None
    assert NoticeRow.get_by_id(claimed["drop"].pk).drop_reason == "refused"
    assert outbox.claim("q", NOW + timedelta(seconds=29)) == []
    later = outbox.claim("q", NOW + timedelta(hours=1))
    assert [(c.notice_id, c.attempts) for c in later] == [("retry", 2)]
    assert outbox.pending_count() == 1


def test_retry_now_makes_backed_off_notices_due(outbox: OutboxStore) -> None:
    """Mattermost is back: a notice waiting out its backoff is due at once; one never tried
    (a snooze's time still ahead) is not moved."""
    outbox.record({"u1": [_notice("failed"),
                          _notice("snoozed", not_before=NOW + timedelta(minutes=10))]}, NOW)
    (failed,) = outbox.claim("p", NOW)
    outbox.retry_at(failed.pk, NOW + timedelta(minutes=5))
    assert outbox.claim("p", NOW + timedelta(seconds=1)) == []
    assert outbox.retry_now(NOW + timedelta(seconds=1)) == 1
    assert [c.notice_id for c in outbox.claim("p", NOW + timedelta(seconds=1))] == ["failed"]


def test_threaded_notices_of_an_account_go_out_in_order(outbox: OutboxStore) -> None:
    """An account's second threaded notice waits until the first is sent or dropped;
    unthreaded notices and other accounts' are not held back."""
    outbox.record({"u1": [_notice("chg-1", "change", thread_keys=("m",))]}, NOW)
    outbox.record({"u1": [_notice("resp-1", "response", thread_keys=("m",)),
                          _notice("chg-2", "change", thread_keys=("k",)),
                          _notice("rem-1", "reminder")],
                   "u2": [_notice("chg-x", "change", thread_keys=("m",))]}, NOW)
    first = {c.notice_id: c for c in outbox.claim("p", NOW, hold=HOLD)}
    assert set(first) == {"chg-1", "rem-1", "chg-x"}
    for name in ("rem-1", "chg-x"):
        outbox.mark_sent(first[name].pk, f"post-{name}", NOW)
    # chg-1's claim expired: it is taken again, the ones behind it still wait
    assert [c.notice_id for c in outbox.claim("p", NOW + 2 * HOLD)] == ["chg-1"]
    outbox.retry_at(first["chg-1"].pk, NOW + 3 * HOLD)  # failed: a retry still comes first
    assert outbox.claim("p", NOW + 2 * HOLD + timedelta(seconds=1)) == []
    (again,) = outbox.claim("p", NOW + 3 * HOLD)
    outbox.mark_sent(again.pk, "post-1", NOW + 3 * HOLD)
    (resp,) = outbox.claim("p", NOW + 3 * HOLD)
    assert resp.notice_id == "resp-1"
    outbox.drop(resp.pk, "refused")
    assert [c.notice_id for c in outbox.claim("p", NOW + 3 * HOLD)] == ["chg-2"]


def test_threaded_order_holds_for_racing_claims(outbox: OutboxStore) -> None:
    """Senders racing over a queue of one account's threaded notices take only its head."""
    outbox.record({"u1": [_notice(f"t{i}", "change", thread_keys=("m",)) for i in range(5)]},
                  NOW)
    claims = race(3, lambda i: OutboxStore().claim(f"proc-{i}", NOW, hold=HOLD))
    assert [c.notice_id for claim in claims for c in claim] == ["t0"]


def test_covered_reminder_is_recorded_dropped(outbox: OutboxStore) -> None:
    """A reminder id another one stood for is recorded as dropped: never claimed."""
    outbox.record({"u1": [Notice("rem|x|10", "covered", "")]}, NOW)
    assert outbox.claim("p", NOW) == []
    assert outbox.pending_count() == 0
    assert outbox.recorded_ids(["u1"], "rem|", NOW - timedelta(days=1)) == {"u1": {"rem|x|10"}}


# -- parts and what a claim carries ------------------------------------------------------------


def test_parts_accumulate_and_a_claim_carries_them(outbox: OutboxStore) -> None:
    """Each posted part is added in order; the notice claimed again carries them, and its
    meeting refs, thread keys and actions."""
    ref = MeetingRef("/c/events-1/", "/c/events-1/a.ics", "a", None, NOW, "Sync")
    outbox.record({"u1": [_notice("long", "reminder", thread_keys=("t",), refs=(ref,),
                                  actions=("snooze",), expires_at=NOW + timedelta(hours=1))]},
                  NOW)
    (claimed,) = outbox.claim("p", NOW, hold=HOLD)
    assert claimed.parts == ()
    outbox.add_part(claimed.pk, "post-1")
    outbox.add_part(claimed.pk, "post-2")
    outbox.retry_at(claimed.pk, NOW)
    (again,) = outbox.claim("p", NOW + timedelta(seconds=1), hold=HOLD)
    assert again.parts == ("post-1", "post-2")
    assert (again.thread_keys, again.refs, again.actions) == (("t",), (ref,), ("snooze",))
    assert again.expires_at == NOW + timedelta(hours=1)
    assert again.created_at == NOW
    assert outbox.notice_of_post("u1", "post-2") is not None
    assert outbox.notice_of_post("u2", "post-2") is None


def test_thread_root_is_shared_only_when_every_key_has_the_same(outbox: OutboxStore) -> None:
    """A notice replies under a thread only when all its meetings share that one thread."""
    outbox.set_thread_root("u1", ["a", "b"], "root-1")
    outbox.set_thread_root("u1", ["a", "c"], "root-2")  # a keeps its root, c gets root-2
    assert outbox.thread_root("u1", ["a", "b"]) == "root-1"
    assert outbox.thread_root("u1", ["a", "c"]) is None
    assert outbox.thread_root("u1", ["c"]) == "root-2"
    assert outbox.thread_root("u1", ["a", "z"]) is None
    assert outbox.thread_root("u2", ["a"]) is None


def test_prune_forgets_only_finished_old_notices(outbox: OutboxStore) -> None:
    """Pruning removes old sent/dropped notices, never pending ones."""
    outbox.record({"u1": [_notice("sent"), _notice("pending")]}, NOW)
    (sent,) = [c for c in outbox.claim("p", NOW) if c.notice_id == "sent"]
    outbox.mark_sent(sent.pk, "post", NOW)
    assert outbox.prune(NOW + timedelta(days=4)) == 1
    assert [r.notice_id for r in NoticeRow.select()] == ["pending"]


def test_extend_claim_only_for_the_holder_of_an_open_notice(outbox: OutboxStore) -> None:
    """The holder keeps its claim; another process, a later claim by the same process (a
    second sender of it took the notice over), or a notice already sent get False and change
    nothing."""
    outbox.record({"u1": [_notice("a")]}, NOW)
    (claimed,) = outbox.claim("p", NOW)
    assert claimed.claimed_by == "p"
    assert from_db_time(NoticeRow.get_by_id(claimed.pk).claim_until) == NOW + NOTICE_HOLD
    later = NOW + timedelta(minutes=5)
    assert not outbox.extend_claim(dataclasses.replace(claimed, claimed_by="q"), later)
    assert outbox.extend_claim(claimed, later)
    assert outbox.claim("q", NOW + timedelta(minutes=4)) == []
    (again,) = outbox.claim("p", later + timedelta(seconds=1))  # lapsed; the same process again
    assert not outbox.extend_claim(claimed, later + timedelta(minutes=5))
    assert outbox.extend_claim(again, later + timedelta(minutes=5))
    outbox.mark_sent(again.pk, "post-1", later)
    assert not outbox.extend_claim(again, later + timedelta(minutes=10))
