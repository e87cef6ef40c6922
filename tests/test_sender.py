"""The sender (``bot.engine.outbox.Sender``) on the real outbox, SQLite and PostgreSQL, with a
recording messenger: bounded attempts, permanent refusals, long notices resumed part by part,
posts that reached Mattermost without an answer, threads and their order, expiry."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.markdown import POST_LIMIT, split_message
from bot.core.model import CalendarInfo, Credentials, Notice, NotificationSettings
from bot.engine.outbox import MAX_ATTEMPTS, MAX_RETRY, NOTICE_PROP, PART_PROP, Sender, retry_delay
from bot.stores import NOTICE_HOLD
from storage.models import NoticeRow
from storage.outbox import ClaimedNotice, OutboxStore
from storage.repository import Repository
from tests.engine_kit import ManualClock, RecordingMessenger

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
USER = "u1"


class Kit:
    def __init__(self) -> None:
        self.clock = ManualClock(NOW)
        self.messenger = RecordingMessenger(clock=self.clock)
        self.outbox = OutboxStore()
        self.sender = Sender(store=self.outbox, messenger=self.messenger, clock=self.clock)

    def record(self, *notices: Notice) -> None:
        self.outbox.record({USER: list(notices)}, self.clock())

    def claim(self) -> list[ClaimedNotice]:
        return self.outbox.claim("proc", self.clock())

    def send_due(self) -> int:
        """Claim what is due now and send it; returns how many were claimed."""
        claimed = self.claim()
        for notice in claimed:
            self.sender.send(notice)
        return len(claimed)

    def row(self, notice_id: str) -> NoticeRow:
        return NoticeRow.get(NoticeRow.notice_id == notice_id)


@pytest.fixture
def kit(repo: Repository) -> Kit:
    repo.save_account(user_id=USER, creds=Credentials("ivan@yandex.ru", "pw"),
                      timezone="Europe/Moscow", language="en",
                      calendars=[CalendarInfo("/c/events-1/", "Work")],
                      notifications=NotificationSettings(), now=NOW)
    return Kit()


def test_retry_delay_grows_and_is_capped_without_overflow() -> None:
    """5 s, 10 s, 20 s … capped at 5 minutes, also for absurd attempt counts."""
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert retry_delay(100) == MAX_RETRY
    assert retry_delay(10**9) == MAX_RETRY
    assert retry_delay(0) == retry_delay(1)


def test_attempts_are_bounded_then_dropped_and_never_sent(
        kit: Kit, caplog: pytest.LogCaptureFixture) -> None:
    """After MAX_ATTEMPTS transient failures the notice is dropped (with a `notice.dropped`
    line) and never sent, even once Mattermost works again."""
    kit.messenger.fail_posts = 10**6
    kit.record(Notice("sys|1", "system", "hello"))
    caplog.set_level(logging.WARNING, logger="bot.engine.outbox")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert kit.send_due() == 1, attempt
        assert kit.row("sys|1").attempts == attempt
        kit.clock.advance(seconds=MAX_RETRY.total_seconds())
    row = kit.row("sys|1")
    assert row.dropped
    assert row.drop_reason == "attempts"
    assert row.sent_at is None
    assert [r for r in caplog.records if r.getMessage().startswith("notice.dropped")]
    kit.messenger.fail_posts = 0
    kit.clock.advance(hours=1)
    assert kit.outbox.retry_now(kit.clock()) == 0
    assert kit.send_due() == 0
    assert kit.messenger.posts == []


def test_backoff_between_attempts(kit: Kit) -> None:
    """A failed post is tried again after its backoff, not before."""
    kit.messenger.fail_posts = 2
    kit.record(Notice("sys|1", "system", "hello"))
    assert kit.send_due() == 1
    kit.clock.advance(seconds=4)
    assert kit.send_due() == 0
    kit.clock.advance(seconds=1)
    assert kit.send_due() == 1  # second failure: now 10 s
    kit.clock.advance(seconds=9)
    assert kit.send_due() == 0
    kit.clock.advance(seconds=1)
    assert kit.send_due() == 1
    assert kit.messenger.messages() == ["hello"]
    assert kit.row("sys|1").sent_at is not None


def test_permanent_refusal_drops_at_once(kit: Kit) -> None:
    """Mattermost refusing the post itself (403, 413…): dropped on the first attempt."""
    kit.messenger.script = ["refuse"]
    kit.record(Notice("sys|1", "system", "hello"))
    assert kit.send_due() == 1
    row = kit.row("sys|1")
    assert (row.dropped, row.drop_reason, row.attempts) == (True, "refused", 1)
    kit.clock.advance(hours=1)
    assert kit.send_due() == 0
    assert kit.messenger.posts == []


def _long_message() -> str:
    line = "x" * 90
    return "\n".join(f"{n:03d} {line}" for n in range(3 * POST_LIMIT // 90))


def test_long_notice_resumes_at_the_first_part_not_posted(kit: Kit) -> None:
    """A notice split into parts that fails midway goes on with the next part: every part is
    posted once, in order, and the notice is marked sent with its first post."""
    message = _long_message()
    parts = split_message(message)
    assert len(parts) >= 3
    kit.messenger.script = ["ok", "fail"]
    kit.record(Notice("agenda|2026-11-27", "agenda", message))
    kit.send_due()
    assert [p["message"] for p in kit.messenger.posts] == parts[:1]
    assert kit.row("agenda|2026-11-27").parts == kit.messenger.posts[0]["id"]
    kit.clock.advance(seconds=5)
    kit.send_due()
    assert [p["message"] for p in kit.messenger.posts] == parts
    assert [p["props"][PART_PROP] for p in kit.messenger.posts] == list(range(len(parts)))
    row = kit.row("agenda|2026-11-27")
    assert row.sent_at is not None
    assert row.post_id == kit.messenger.posts[0]["id"]
    assert row.parts.split(",") == [p["id"] for p in kit.messenger.posts]


def test_lost_answer_is_not_posted_again(kit: Kit) -> None:
    """A post that reached Mattermost but whose answer was lost is found on the retry (by the
    notice's row id in its props) and counted as posted: no second copy."""
    kit.messenger.lose_answers = 1
    kit.record(Notice("sys|1", "system", "hello"))
    kit.send_due()
    assert len(kit.messenger.posts) == 1
    assert kit.row("sys|1").sent_at is None
    kit.clock.advance(seconds=5)
    kit.send_due()
    assert kit.messenger.messages() == ["hello"]
    row = kit.row("sys|1")
    assert row.sent_at is not None
    assert row.post_id == kit.messenger.posts[0]["id"]


def test_lost_answer_midway_through_parts_resumes_after_it(kit: Kit) -> None:
    """The second part's answer lost: the retry takes it from the channel and posts only the
    rest."""
    message = _long_message()
    parts = split_message(message)
    kit.messenger.script = ["ok", "lose"]
    kit.record(Notice("agenda|d", "agenda", message))
    kit.send_due()
    kit.clock.advance(seconds=5)
    kit.send_due()
    assert [p["message"] for p in kit.messenger.posts] == parts


def test_posts_carry_pending_post_id_and_notice_props(kit: Kit) -> None:
    """Every part carries a pending_post_id of its own (Mattermost's de-duplication of a
    repeat) and the notice's row id."""
    kit.record(Notice("agenda|d", "agenda", _long_message()))
    kit.send_due()
    pk = str(kit.row("agenda|d").id)
    pending = [p["pending_post_id"] for p in kit.messenger.posts]
    assert all(pending)
    assert len(set(pending)) == len(pending)
    assert all(p.startswith(f"{kit.messenger.bot_user_id}:") for p in pending)
    assert {p["props"][NOTICE_PROP] for p in kit.messenger.posts} == {pk}


def test_answer_threads_under_the_change_and_waits_for_it(kit: Kit) -> None:
    """A change notice and then an answer notice about the same meeting: the answer goes out
    only after the change, as a reply in the change's thread."""
    key = "/c/events-1/|m1"
    kit.record(Notice("chg|1", "change", "moved", thread_keys=(key,)),
               Notice("resp|1", "response", "answers", thread_keys=(key,)))
    kit.messenger.fail_posts = 1  # the change fails once: the answer must still wait for it
    assert kit.send_due() == 1
    assert kit.messenger.posts == []
    assert kit.send_due() == 0
    kit.clock.advance(seconds=5)
    assert kit.send_due() == 1
    assert kit.send_due() == 1
    change, answer = kit.messenger.posts
    assert (change["message"], change["root_id"]) == ("moved", "")
    assert (answer["message"], answer["root_id"]) == ("answers", change["id"])


def test_expired_reminder_is_dropped_not_sent(kit: Kit) -> None:
    """A reminder whose meeting started before it could be sent is dropped."""
    kit.record(Notice("rem|a|10", "reminder", "soon", expires_at=NOW + timedelta(minutes=1)))
    kit.messenger.fail_posts = 1
    kit.send_due()
    kit.clock.advance(minutes=2)
    kit.send_due()
    row = kit.row("rem|a|10")
    assert row.dropped
    assert row.drop_reason == "expired"
    assert kit.messenger.posts == []


def test_a_notice_claimed_early_is_posted_at_its_due_time(kit: Kit) -> None:
    """A reminder decided two seconds ahead is claimed ahead, then the sender waits until its
    ``not_before`` before posting: not early, and not a tick late."""
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        kit.clock.advance(seconds=seconds)

    kit.sender.sleep = sleep
    due = NOW + timedelta(seconds=2)
    kit.record(Notice("rem|x|10", "reminder", "⏰ In 10 min: Standup", expires_at=due
                      + timedelta(minutes=10), not_before=due))
    assert kit.outbox.claim("proc", NOW) == []  # not due yet
    claimed = kit.outbox.claim("proc", NOW, ahead=timedelta(seconds=2))
    assert [c.not_before for c in claimed] == [due]
    kit.sender.send(claimed[0])
    assert waited == [2.0]
    assert kit.messenger.posts[0]["at"] == due


def test_a_reminder_held_by_a_dead_sender_still_goes_out_before_its_meeting(kit: Kit) -> None:
    """A process killed right after claiming a reminder one minute before its meeting: the
    claim lapses after NOTICE_HOLD, another sender takes the reminder and posts it, once,
    before the meeting starts (a claim held for minutes would have let it expire)."""
    start = NOW + timedelta(minutes=1)
    kit.record(Notice("rem|m|1", "reminder", "⏰ In 1 min: Standup", expires_at=start,
                      not_before=NOW))
    (held,) = kit.outbox.claim("dead", NOW)  # ... and the process dies here
    assert held.claimed_by == "dead"
    kit.clock.advance(seconds=NOTICE_HOLD.total_seconds() - 1)
    assert kit.outbox.claim("alive", kit.clock()) == []
    kit.clock.advance(seconds=2)
    (taken,) = kit.outbox.claim("alive", kit.clock())
    kit.sender.send(taken)
    assert kit.messenger.messages() == ["⏰ In 1 min: Standup"]
    assert kit.messenger.posts[0]["at"] < start
    assert kit.row("rem|m|1").sent_at is not None


def test_a_sender_whose_claim_was_taken_over_posts_nothing_more(
        kit: Kit, caplog: pytest.LogCaptureFixture) -> None:
    """A sender stalled past its claim (another sender took the notice over) posts no part
    of it and marks nothing: the new holder finishes it, every part once."""
    message = _long_message()
    parts = split_message(message)
    kit.record(Notice("agenda|slow", "agenda", message))
    (stalled,) = kit.outbox.claim("slow", NOW)
    kit.clock.advance(seconds=NOTICE_HOLD.total_seconds() + 1)
    (taken,) = kit.outbox.claim("fast", kit.clock())
    caplog.set_level(logging.WARNING, logger="bot.engine.outbox")
    kit.sender.send(stalled)
    assert kit.messenger.posts == []
    assert [r for r in caplog.records if r.getMessage().startswith("notice.claim_lost")]
    assert kit.row("agenda|slow").claimed_by == "fast"
    kit.sender.send(taken)
    assert [p["message"] for p in kit.messenger.posts] == parts
    assert kit.row("agenda|slow").sent_at is not None


def test_a_sender_renews_its_claim_part_by_part(kit: Kit) -> None:
    """Each part posted pushes the claim NOTICE_HOLD past that moment: a long notice sent
    slowly (each part taking most of the hold) is never taken over midway."""
    message = _long_message()
    parts = split_message(message)
    kit.record(Notice("agenda|steady", "agenda", message))
    (notice,) = kit.outbox.claim("proc", NOW)
    post = kit.messenger.post

    def slow_post(*args: object, **kwargs: object) -> str:
        kit.clock.advance(seconds=NOTICE_HOLD.total_seconds() - 5)
        assert kit.outbox.claim("other", kit.clock()) == []
        return post(*args, **kwargs)  # type: ignore[arg-type]

    kit.messenger.post = slow_post  # type: ignore[method-assign]
    kit.sender.send(notice)
    assert [p["message"] for p in kit.messenger.posts] == parts
    assert kit.row("agenda|steady").sent_at is not None
