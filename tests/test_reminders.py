"""Due reminders: scenarios and an exactly-once property over tick sequences."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.model import CANCELLED, DECLINED, TENTATIVE, NotificationSettings, Occurrence
from bot.core.reminders import (
    Reminder,
    due_reminders,
    is_remindable,
    next_reminder,
    notice_id,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday; meetings start here by default


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def occurrence(
    uid: str = "m1",
    start: datetime = T0,
    length: int = 30,
    *,
    title: str = "Standup",
    calendar: str = "/calendars/u/events-1/",
    recurrence_id: str = "",
    **fields: object,
) -> Occurrence:
    return Occurrence(
        calendar=calendar,
        uid=uid,
        recurrence_id=recurrence_id,
        start=start,
        end=start + minutes(length),
        all_day=False,
        title=title,
        **fields,  # type: ignore[arg-type]
    )


def test_reminder_due_at_start_of_lead_window():
    """Exactly at start - lead the reminder is due, on time, quoting the lead."""
    meeting = occurrence()
    [reminder] = due_reminders([meeting], leads=[10], now=T0 - minutes(10), already=())
    assert reminder.lead_minutes == 10
    assert reminder.due_at == T0 - minutes(10)
    assert reminder.late is False
    assert reminder.covers == (reminder.notice_id,)
    assert reminder.minutes_left(T0 - minutes(10)) == 10


def test_nothing_before_lead_window():
    """One second before the window opens nothing is due."""
    assert (
        due_reminders(
            [occurrence()], leads=[10], now=T0 - minutes(10) - timedelta(seconds=1), already=()
        )
        == []
    )


def test_meeting_already_started_gets_nothing():
    """At and after the start no reminder is sent, however late the bot is."""
    meeting = occurrence()
    assert due_reminders([meeting], leads=[10], now=T0, already=()) == []
    assert due_reminders([meeting], leads=[10], now=T0 + minutes(5), already=()) == []


def test_notice_id_format_is_stable():
    """The id names calendar, uid, recurrence id, UTC start and lead."""
    meeting = occurrence(recurrence_id="2026-03-02T10:00:00+00:00")
    assert notice_id(meeting, 10) == (
        "rem|/calendars/u/events-1/|m1|2026-03-02T10:00:00+00:00|2026-03-02T10:00:00+00:00|10"
    )


def test_notice_id_is_zone_independent():
    """The same instant written in another zone gives the same id."""
    moscow = T0.astimezone(ZoneInfo("Europe/Moscow"))
    assert notice_id(occurrence(start=moscow), 5) == notice_id(occurrence(), 5)


def test_notice_id_escapes_separator():
    """A '|' inside a uid cannot make two keys share an id."""
    a = occurrence(uid="x|y", calendar="c")
    b = occurrence(uid="y", calendar="c|x")
    assert notice_id(a, 10) != notice_id(b, 10)


def test_sent_reminder_is_not_repeated():
    """An id in ``already`` is not returned again on the next tick."""
    meeting = occurrence()
    [first] = due_reminders([meeting], leads=[10], now=T0 - minutes(10), already=())
    again = due_reminders([meeting], leads=[10], now=T0 - minutes(9), already=set(first.covers))
    assert again == []


def test_moved_meeting_is_reminded_again_at_new_time():
    """A meeting moved to 11:00 after its 10:00 reminder is reminded before 11:00."""
    meeting = occurrence()
    [first] = due_reminders([meeting], leads=[10], now=T0 - minutes(10), already=())
    moved = replace(meeting, start=T0 + minutes(60), end=T0 + minutes(90))
    sent = set(first.covers)
    assert due_reminders([moved], leads=[10], now=T0 - minutes(5), already=sent) == []
    [second] = due_reminders([moved], leads=[10], now=T0 + minutes(50), already=sent)
    assert second.notice_id != first.notice_id
    assert second.occurrence.key == first.occurrence.key


def test_meeting_moved_back_is_not_reminded_twice():
    """Same start means same id forever: moving away and back does not repeat."""
    meeting = occurrence()
    [first] = due_reminders([meeting], leads=[10], now=T0 - minutes(10), already=())
    assert (
        due_reminders([meeting], leads=[10], now=T0 - minutes(3), already=set(first.covers)) == []
    )


def test_cancelled_meeting_gets_no_reminder():
    """STATUS:CANCELLED never reminds."""
    meeting = occurrence(status=CANCELLED)
    assert due_reminders([meeting], leads=[10], now=T0 - minutes(5), already=()) == []


def test_declined_meeting_gets_no_reminder():
    """A meeting I declined never reminds; a tentative one does."""
    declined = occurrence("d", my_partstat=DECLINED)
    tentative = occurrence("t", my_partstat=TENTATIVE)
    due = due_reminders([declined, tentative], leads=[10], now=T0 - minutes(5), already=())
    assert [r.occurrence.uid for r in due] == ["t"]


def test_all_day_event_gets_no_reminder():
    """All-day events are listed but never reminded."""
    meeting = replace(occurrence(length=24 * 60), all_day=True)
    assert not is_remindable(meeting)
    assert due_reminders([meeting], leads=[10], now=T0 - minutes(5), already=()) == []


def test_downtime_catch_up_sends_once_and_says_late():
    """Bot down through 09:50: at 09:55:30 one late reminder says 'in 5 minutes', then none."""
    meeting = occurrence()
    now = T0 - minutes(4.5)
    [reminder] = due_reminders([meeting], leads=[10], now=now, already=())
    assert reminder.late is True
    assert reminder.minutes_left(now) == 5
    later = due_reminders([meeting], leads=[10], now=T0 - minutes(2), already=set(reminder.covers))
    assert later == []


def test_within_tick_tolerance_is_not_late():
    """Up to 60 s after the due moment the reminder still counts as on time."""
    [reminder] = due_reminders([occurrence()], leads=[10], now=T0 - minutes(9), already=())
    assert reminder.late is False
    [reminder] = due_reminders(
        [occurrence()], leads=[10], now=T0 - minutes(9) + timedelta(seconds=1), already=()
    )
    assert reminder.late is True


def test_several_due_leads_collapse_into_smallest():
    """Leads 15 and 10 both due after downtime: one reminder for 10 covering both ids."""
    meeting = occurrence()
    [reminder] = due_reminders([meeting], leads=[15, 10], now=T0 - minutes(10), already=())
    assert reminder.lead_minutes == 10
    assert reminder.late is False
    assert reminder.covers == (notice_id(meeting, 10), notice_id(meeting, 15))


def test_duplicate_leads_give_one_reminder():
    """`remind 10 10` reminds once."""
    [reminder] = due_reminders([occurrence()], leads=[10, 10], now=T0 - minutes(10), already=())
    assert len(reminder.covers) == 1


def test_second_lead_fires_after_first():
    """Leads 10 and 1: 10 fires at 09:50, then 1 fires at 09:59 on its own."""
    meeting = occurrence()
    [first] = due_reminders([meeting], leads=[1, 10], now=T0 - minutes(10), already=())
    [second] = due_reminders(
        [meeting], leads=[1, 10], now=T0 - minutes(1), already=set(first.covers)
    )
    assert (first.lead_minutes, second.lead_minutes) == (10, 1)
    assert second.covers == (notice_id(meeting, 1),)


def test_larger_lead_after_smaller_one_sent_is_suppressed():
    """Leads changed from 1 to 10 after the 1-minute reminder: no late 'in 10 minutes'."""
    meeting = occurrence()
    sent = {notice_id(meeting, 1)}
    assert due_reminders([meeting], leads=[1, 10], now=T0 - minutes(0.5), already=sent) == []


def test_non_positive_leads_are_ignored():
    """A zero lead has an empty window and is dropped."""
    assert due_reminders([occurrence()], leads=[0], now=T0 - minutes(0.1), already=()) == []


def test_order_is_by_start_then_title():
    """Results are sorted by start, then title, whatever the input order."""
    items = [
        occurrence("c", T0 + minutes(5), title="Alpha"),
        occurrence("b", T0, title="Zulu"),
        occurrence("a", T0, title="Beta"),
    ]
    due = due_reminders(items, leads=[30], now=T0 - minutes(1), already=())
    assert [r.occurrence.uid for r in due] == ["a", "b", "c"]


def test_duplicate_input_occurrence_reminds_once():
    """The same occurrence passed twice yields one reminder."""
    due = due_reminders([occurrence(), occurrence()], leads=[10], now=T0 - minutes(5), already=())
    assert len(due) == 1


def test_hand_built_reminder_covers_itself():
    """A Reminder built without covers still covers its own id."""
    reminder = Reminder("rem|x", occurrence(), 10, T0 - minutes(10), late=False)
    assert reminder.covers == ("rem|x",)


def test_next_reminder_is_the_earliest_future_one():
    """`check` shows the next lead of the nearest meeting, as it will fire."""
    items = [occurrence("late", T0 + minutes(60)), occurrence("soon", T0)]
    upcoming = next_reminder(items, leads=[10, 1], now=T0 - minutes(30), already=())
    assert upcoming is not None
    assert (upcoming.occurrence.uid, upcoming.lead_minutes) == ("soon", 10)
    assert upcoming.due_at == T0 - minutes(10)
    assert upcoming.late is False


def test_next_reminder_skips_sent_ones():
    """After the 10-minute reminder was sent the next one is the 1-minute one."""
    meeting = occurrence()
    upcoming = next_reminder(
        [meeting], leads=[10, 1], now=T0 - minutes(8), already={notice_id(meeting, 10)}
    )
    assert upcoming is not None
    assert upcoming.lead_minutes == 1


def test_next_reminder_prefers_one_due_now():
    """A pending reminder that is already due is the next one."""
    upcoming = next_reminder([occurrence()], leads=[10], now=T0 - minutes(5), already=())
    assert upcoming is not None
    assert upcoming.late is True


def test_next_reminder_none_when_nothing_left():
    """Nothing upcoming: None."""
    items = [occurrence(status=CANCELLED), occurrence("past", T0 - minutes(60))]
    assert next_reminder(items, leads=[10], now=T0 - minutes(30), already=()) is None


# --- property: exactly once per (occurrence key, start, lead) ------------------------------


@dataclass(frozen=True)
class Spec:
    """One generated meeting; ``move`` = (at second offset, new start minute offset)."""

    index: int
    start_minute: int
    kind: str
    title: str
    move: tuple[int, int] | None

    def at(self, instant: datetime) -> Occurrence:
        """The version of this meeting the calendar shows at ``instant``."""
        start = self.start_minute
        if self.move is not None and instant >= T0 + timedelta(seconds=self.move[0]):
            start = self.move[1]
        base = occurrence(f"u{self.index}", T0 + minutes(start), title=self.title)
        if self.kind == "all_day":
            return replace(base, all_day=True)
        if self.kind == "cancelled":
            return replace(base, status=CANCELLED)
        if self.kind == "declined":
            return replace(base, my_partstat=DECLINED)
        return base


@st.composite
def specs(draw: st.DrawFn) -> list[Spec]:
    count = draw(st.integers(0, 6))
    return [
        Spec(
            index=i,
            start_minute=draw(st.integers(0, 120)),
            kind=draw(st.sampled_from(["normal"] * 5 + ["all_day", "cancelled", "declined"])),
            title=draw(st.sampled_from(["A", "B"])),
            move=draw(st.none() | st.tuples(st.integers(-3600, 7200), st.integers(0, 120))),
        )
        for i in range(count)
    ]


ticks_strategy = st.lists(
    st.tuples(st.integers(-2 * 3600, 3 * 3600), st.booleans()), max_size=60
).map(sorted)


@settings(max_examples=300, deadline=None, database=None)
@given(
    meetings=specs(),
    leads=st.lists(st.integers(1, 60), min_size=1, max_size=4),
    ticks=ticks_strategy,
)
def test_each_notice_sent_exactly_once_over_any_tick_sequence(meetings, leads, ticks):
    """Invariant over non-decreasing ticks (gaps, duplicates, restarts keeping only
    ``already``; meetings may move mid-run), with every tick's ``covers`` added to
    ``already``:
    (1) no notice id is covered twice; (2) every reminder is for a remindable version
    with start - lead <= tick < start, for the smallest lead due at that tick, covering
    exactly the due ids not yet sent, with at most one reminder per meeting per tick;
    (3) for every version (key, start) and lead L, its id is covered iff some tick at
    which that version was shown fell in [start - L, start) and it is remindable.
    Hence each (key, start) is reminded at least once iff some tick fell in
    [start - max(lead), start), and never more than once per distinct lead."""
    lead_set = sorted(set(leads))
    persisted: frozenset[str] = frozenset()
    already: set[str] = set()
    covered_count: dict[str, int] = {}
    shown: dict[tuple[tuple[str, str, str], datetime], list[datetime]] = {}
    versions: dict[tuple[tuple[str, str, str], datetime], Occurrence] = {}
    reminders_per_version: dict[tuple[tuple[str, str, str], datetime], int] = {}

    for seconds, restart in ticks:
        now = T0 + timedelta(seconds=seconds)
        current = [spec.at(now) for spec in meetings]
        if restart:  # only the database survives; the calendar comes back in another order
            already = set(persisted)
            current.reverse()
        for version in current:
            version_key = (version.key, version.start)
            shown.setdefault(version_key, []).append(now)
            versions[version_key] = version

        result = due_reminders(current, leads=leads, now=now, already=already)

        assert len({r.occurrence.key for r in result}) == len(result)
        for reminder in result:
            o = reminder.occurrence
            assert is_remindable(o)
            due = [lead for lead in lead_set if o.start - minutes(lead) <= now < o.start]
            assert reminder.lead_minutes == due[0]
            assert reminder.covers == tuple(
                nid for lead in due if (nid := notice_id(o, lead)) not in already
            )
            assert reminder.late == (now - reminder.due_at > timedelta(seconds=60))
            version_key = (o.key, o.start)
            reminders_per_version[version_key] = reminders_per_version.get(version_key, 0) + 1
            for nid in reminder.covers:
                covered_count[nid] = covered_count.get(nid, 0) + 1
            already.update(reminder.covers)
        persisted = frozenset(already)  # the shell commits each tick's covers

    assert all(count == 1 for count in covered_count.values())
    for version_key, instants in shown.items():
        version = versions[version_key]
        start = version.start
        for lead in lead_set:
            expected = is_remindable(version) and any(
                start - minutes(lead) <= t < start for t in instants
            )
            assert (notice_id(version, lead) in already) == expected
        in_window = any(start - minutes(lead_set[-1]) <= t < start for t in instants)
        count = reminders_per_version.get(version_key, 0)
        assert (count >= 1) == (is_remindable(version) and in_window)
        assert count <= len(lead_set)


def test_plan_tick_decides_a_reminder_within_the_lookahead_with_its_due_time() -> None:
    """With a lookahead, a reminder due in one second is decided now and carries its due
    time as ``not_before``; the next wake-up comes a lookahead before the next due time."""
    from bot.core.model import Account
    from bot.core.plan import AccountState, plan_tick

    start = datetime(2026, 11, 27, 8, 10, tzinfo=UTC)
    occ = Occurrence(calendar="/c/", uid="u", recurrence_id="", start=start,
                     end=start + timedelta(minutes=30), all_day=False, title="Standup")
    account = Account(user_id="u1", login="i@yandex.ru", timezone="Europe/Moscow",
                      language="en", notifications=NotificationSettings(daily_at=None,
                                                                         leads=(10, 1)))
    state = AccountState(account, [occ], set(), None, None, fresh=True)
    now = start - timedelta(minutes=10, seconds=1)
    early = plan_tick(state, now, lookahead=timedelta(seconds=2))
    assert [n.not_before for n in early.notices] == [start - timedelta(minutes=10)]
    assert plan_tick(state, now).notices == []
    assert early.wake_at == start - timedelta(minutes=1, seconds=2)
