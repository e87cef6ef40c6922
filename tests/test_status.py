"""The "In a meeting" custom status decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.core.model import CANCELLED, DECLINED, TENTATIVE, Occurrence
from bot.core.status import (
    STATUS_EMOJI,
    BotStatus,
    Clear,
    CurrentStatus,
    Keep,
    Set,
    busy_block_end,
    decide_status,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TEXT = "In a meeting"
EMPTY = CurrentStatus(presence="online", emoji=None, text=None, expires_at=None)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def meeting(uid: str, start: float, end: float, **fields: object) -> Occurrence:
    """A meeting from T0+start to T0+end minutes."""
    return Occurrence(
        calendar="/calendars/u/events-1/",
        uid=uid,
        recurrence_id="",
        start=at(start),
        end=at(end),
        all_day=False,
        title=uid,
        **fields,  # type: ignore[arg-type]
    )


def ours(expires_at: datetime, presence: str = "online") -> tuple[CurrentStatus, BotStatus]:
    """The bot's status as Mattermost shows it, and the bot's record of it."""
    mine = BotStatus(emoji=STATUS_EMOJI, text=TEXT, expires_at=expires_at)
    return CurrentStatus(presence, STATUS_EMOJI, TEXT, expires_at), mine


def decide(occurrences, now, current=EMPTY, last_set=None):
    return decide_status(occurrences, now=now, current=current, last_set=last_set, text=TEXT)


def test_sets_status_until_meeting_end():
    """One meeting in progress, empty status: set it, expiring at the end."""
    assert decide([meeting("a", 0, 30)], at(5)) == Set(STATUS_EMOJI, TEXT, at(30))


def test_no_meeting_no_status():
    """Free time with an empty status: nothing to do."""
    assert decide([meeting("a", 60, 90)], at(5)) == Keep()


def test_meeting_not_started_or_finished_is_not_busy():
    """Busy means start <= now < end."""
    items = [meeting("a", 0, 30)]
    assert busy_block_end(items, now=at(-1)) is None
    assert busy_block_end(items, now=at(0)) == at(30)
    assert busy_block_end(items, now=at(30)) is None


def test_overlapping_meetings_merge():
    """10:00–10:30 and 10:15–11:00 overlap: expiry 11:00."""
    items = [meeting("a", 0, 30), meeting("b", 15, 60)]
    assert decide(items, at(5)) == Set(STATUS_EMOJI, TEXT, at(60))


def test_back_to_back_chain_merges():
    """Three back-to-back meetings (and one a minute apart) make one block."""
    items = [meeting("c", 60, 90), meeting("a", 0, 30), meeting("b", 30, 60), meeting("d", 91, 120)]
    assert busy_block_end(items, now=at(10)) == at(120)


def test_gap_of_thirty_minutes_splits_block():
    """A 30-minute gap: expiry at the first meeting's end."""
    items = [meeting("a", 0, 30), meeting("b", 60, 90)]
    assert decide(items, at(5)) == Set(STATUS_EMOJI, TEXT, at(30))


def test_gap_just_over_a_minute_splits_block():
    """Gaps above one minute do not touch."""
    items = [meeting("a", 0, 30), meeting("b", 31.5, 60)]
    assert busy_block_end(items, now=at(5)) == at(30)


def test_nested_meeting_does_not_shorten_block():
    """A short meeting inside a long one keeps the long one's end."""
    items = [meeting("long", 0, 60), meeting("short", 10, 20)]
    assert busy_block_end(items, now=at(15)) == at(60)


def test_declined_transparent_all_day_cancelled_are_not_busy():
    """Only timed, opaque, not declined, not cancelled meetings set a status."""
    items = [
        meeting("declined", 0, 30, my_partstat=DECLINED),
        meeting("free", 0, 30, transparent=True),
        replace(meeting("allday", -600, 840), all_day=True),
        meeting("cancelled", 0, 30, status=CANCELLED),
    ]
    assert decide(items, at(5)) == Keep()


def test_tentative_meeting_is_busy():
    """A meeting I answered 'maybe' still counts as busy."""
    assert decide([meeting("a", 0, 30, my_partstat=TENTATIVE)], at(5)) == Set(
        STATUS_EMOJI, TEXT, at(30)
    )


def test_our_status_with_same_expiry_is_kept():
    """Already ours until the block's end: nothing to do."""
    current, mine = ours(at(30))
    assert decide([meeting("a", 0, 30)], at(5), current, mine) == Keep()


def test_expiry_compared_at_second_precision():
    """Sub-second differences from the RFC 3339 round trip are the same expiry."""
    current, mine = ours(at(30))
    current = replace(current, expires_at=at(30) - timedelta(microseconds=400_000))
    assert decide([meeting("a", 0, 30)], at(5), current, mine) == Keep()


def test_our_status_replaced_when_block_extends():
    """A meeting added right after: our status is set again with the later expiry."""
    current, mine = ours(at(30))
    items = [meeting("a", 0, 30), meeting("b", 30, 60)]
    assert decide(items, at(5), current, mine) == Set(STATUS_EMOJI, TEXT, at(60))


def test_our_status_shortened_when_meeting_moved_earlier():
    """The second meeting moved away: the expiry shrinks back to the first end."""
    current, mine = ours(at(60))
    assert decide([meeting("a", 0, 30)], at(5), current, mine) == Set(STATUS_EMOJI, TEXT, at(30))


def test_cancelled_meeting_in_progress_clears_our_status():
    """The running meeting got cancelled: our status goes early."""
    current, mine = ours(at(30))
    items = [meeting("a", 0, 30, status=CANCELLED)]
    assert decide(items, at(5), current, mine) == Clear()


def test_our_status_cleared_after_block_ends():
    """Block over but Mattermost still shows ours without expiry: clear it."""
    current, mine = ours(at(30))
    current = replace(current, expires_at=None)
    assert decide([meeting("a", 0, 30)], at(31), current, mine) == Clear()


def test_expired_status_reads_as_empty():
    """A status past its expires_at is no status: nothing to clear, a new block sets."""
    current, mine = ours(at(30))
    assert decide([meeting("a", 0, 30)], at(31), current, mine) == Keep()
    assert decide([meeting("b", 45, 60)], at(50), current, mine) == Set(STATUS_EMOJI, TEXT, at(60))


def test_users_own_status_left_alone_during_meeting():
    """The user's own 'Lunch' status is never overwritten."""
    current = CurrentStatus("online", "hamburger", "Lunch", None)
    _, mine = ours(at(30))
    assert decide([meeting("a", 0, 30)], at(5), current, mine) == Keep()
    assert decide([meeting("a", 0, 30)], at(5), current, None) == Keep()


def test_users_own_status_left_alone_after_meeting():
    """The user's own status is never cleared either."""
    current = CurrentStatus("online", "palm_tree", "Vacation", None)
    _, mine = ours(at(30))
    assert decide([], at(45), current, mine) == Keep()


def test_same_emoji_other_text_is_the_users():
    """Our emoji with the user's own words is the user's status."""
    current = CurrentStatus("online", STATUS_EMOJI, "Planning day", at(30))
    _, mine = ours(at(30))
    assert decide([], at(45), current, mine) == Keep()


def test_dnd_is_never_overridden():
    """During Do Not Disturb the bot sets nothing."""
    current = replace(EMPTY, presence="dnd")
    assert decide([meeting("a", 0, 30)], at(5), current) == Keep()


def test_dnd_does_not_extend_our_status():
    """During DND even our own status is not replaced."""
    current, mine = ours(at(30), presence="dnd")
    items = [meeting("a", 0, 30), meeting("b", 30, 60)]
    assert decide(items, at(5), current, mine) == Keep()


def test_dnd_still_clears_our_own_status_when_free():
    """Clearing the bot's own status is harmless during DND and is done."""
    current, mine = ours(at(30), presence="dnd")
    assert decide([meeting("a", 0, 30, status=CANCELLED)], at(5), current, mine) == Clear()


def test_user_cleared_our_status_during_block_is_respected():
    """The user removed our status mid-meeting: not put back for the same block."""
    _, mine = ours(at(30))
    assert decide([meeting("a", 0, 30)], at(10), EMPTY, mine) == Keep()


def test_user_cleared_status_returns_for_a_changed_block():
    """After the user removed it, a block with another end sets it again."""
    _, mine = ours(at(30))
    items = [meeting("a", 0, 30), meeting("b", 30, 60)]
    assert decide(items, at(10), EMPTY, mine) == Set(STATUS_EMOJI, TEXT, at(60))


def test_long_text_is_cut_like_mattermost_and_still_recognised():
    """Text over 100 characters is cut to 100; the cut text still counts as ours."""
    long_text = "x" * 150
    decision = decide_status(
        [meeting("a", 0, 30)], now=at(5), current=EMPTY, last_set=None, text=long_text
    )
    assert isinstance(decision, Set)
    assert len(decision.text) == 100
    mine = BotStatus(STATUS_EMOJI, long_text, at(30))
    current = CurrentStatus("online", STATUS_EMOJI, long_text[:100], at(30))
    assert decide_status([], now=at(26), current=current, last_set=mine, text=long_text) == Clear()
