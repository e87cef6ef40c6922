"""Change detection between snapshots: bot.core.changes (pure, no I/O)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.changes import (
    Answer,
    Change,
    Diff,
    diff_snapshots,
    fingerprint,
    thread_key,
)
from bot.core.model import (
    ACCEPTED,
    CANCELLED,
    DECLINED,
    NEEDS_ACTION,
    TENTATIVE,
    Attendee,
    Occurrence,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday
WINDOW_END = NOW + timedelta(days=21)
ME = "me@yandex.ru"
CAL = "/calendars/me%40yandex.ru/events-1/"
MSK = ZoneInfo("Europe/Moscow")


def occ(
    uid: str = "u1",
    start: datetime = NOW + timedelta(days=1),
    *,
    minutes: int = 30,
    series: bool = False,
    rid: str | None = None,
    calendar: str = CAL,
    **kw: object,
) -> Occurrence:
    """A test occurrence; a series occurrence's RECURRENCE-ID defaults to its start."""
    if rid is None:
        rid = start.isoformat() if series else ""
    kw.setdefault("title", "Sync")
    return Occurrence(
        calendar=calendar,
        uid=uid,
        recurrence_id=rid,
        start=start,
        end=start + timedelta(minutes=minutes),
        all_day=False,
        **kw,  # type: ignore[arg-type]
    )


def weekly(uid: str = "w1", first: datetime = NOW + timedelta(days=1), n: int = 2, **kw: object):
    """``n`` weekly occurrences of one series, as a snapshot."""
    return snap(*(occ(uid, first + timedelta(weeks=i), series=True, **kw) for i in range(n)))


def snap(*occs: Occurrence) -> dict[tuple[str, str, str], Occurrence]:
    return {o.key: o for o in occs}


def diff(old, new, **kw) -> Diff:
    kw.setdefault("now", NOW)
    kw.setdefault("window_end", WINDOW_END)
    kw.setdefault("me", ME)
    return diff_snapshots(old, new, **kw)


def att(email: str, partstat: str = NEEDS_ACTION, name: str = "") -> Attendee:
    return Attendee(email=email, name=name or email.split("@")[0].title(), partstat=partstat)


def mine(**kw: object) -> dict[str, object]:
    """Keyword arguments of a meeting the user organizes."""
    return {"organizer": ME, "organized_by_me": True, "my_partstat": ACCEPTED, **kw}


def kinds(d: Diff) -> list[tuple[str, int]]:
    return [(c.kind, c.count) for c in d.changes]


# --- fingerprint -----------------------------------------------------------------------------


def test_fingerprint_ignores_whitespace_href_zone_and_attendee_order():
    """Re-wrapped title, new href, another tzinfo for the same instant, shuffled attendees."""
    a = occ(
        title="Team  sync",
        location=" Room 1 ",
        href="/a.ics",
        attendees=(att("bob@yandex.ru", ACCEPTED), att("eve@yandex.ru")),
    )
    b = dataclasses.replace(
        a,
        title="Team sync\n",
        location="Room 1",
        href="/b.ics",
        start=a.start.astimezone(MSK),
        end=a.end.astimezone(MSK),
        attendees=(att("eve@yandex.ru", ""), att("BOB@yandex.ru", ACCEPTED, name="Bobby")),
    )
    assert fingerprint(a) == fingerprint(b)


def test_fingerprint_sees_every_visible_fact():
    """Start, end, title, location, link, status, organizer and answers all count."""
    a = occ(attendees=(att("bob@yandex.ru"),), organizer="x@yandex.ru")
    variants = [
        dataclasses.replace(a, start=a.start + timedelta(minutes=5)),
        dataclasses.replace(a, end=a.end + timedelta(minutes=5)),
        dataclasses.replace(a, title="Other"),
        dataclasses.replace(a, location="Room 2"),
        dataclasses.replace(a, link="https://telemost.yandex.ru/j/1"),
        dataclasses.replace(a, status=CANCELLED),
        dataclasses.replace(a, organizer="y@yandex.ru"),
        dataclasses.replace(a, attendees=(att("bob@yandex.ru", DECLINED),)),
    ]
    assert all(fingerprint(v) != fingerprint(a) for v in variants)


def test_thread_key_is_shared_by_a_series():
    """Every occurrence of a series threads under one id."""
    a, b = weekly().values()
    assert thread_key(a) == thread_key(b) == f"{CAL}|w1"


# --- noise -----------------------------------------------------------------------------------


def test_recreated_meeting_with_same_visible_facts_is_silent():
    """Yandex rewriting an event (new object, href, padding) produces nothing."""
    a = occ(
        title="Sync",
        href="/1.ics",
        organizer=ME,
        organized_by_me=True,
        attendees=(att("bob@yandex.ru", ACCEPTED),),
    )
    b = dataclasses.replace(
        a,
        title=" Sync ",
        href="/2.ics",
        transparent=True,
        attendees=(att("Bob@Yandex.ru", ACCEPTED),),
    )
    assert diff(snap(a), snap(b)).empty


def test_naive_now_is_refused():
    """Times are aware, always."""
    with pytest.raises(ValueError, match="needs aware datetimes"):
        diff({}, {}, now=NOW.replace(tzinfo=None))


# --- each kind -------------------------------------------------------------------------------


def test_new_meeting_is_added():
    """A key only in the new snapshot is an added meeting."""
    new = occ("n1")
    d = diff({}, snap(new))
    assert d.changes == [Change("added", new.key, None, new, (), 1, (new.key,))]


def test_vanished_meeting_is_cancelled():
    """A key gone from the new snapshot is a cancelled meeting."""
    gone = occ("g1")
    (c,) = diff(snap(gone), {}).changes
    assert (c.kind, c.old, c.new, c.occurrence) == ("cancelled", gone, None, gone)


def test_status_cancelled_is_cancelled():
    """STATUS:CANCELLED kept in the calendar means cancelled too."""
    a = occ()
    b = dataclasses.replace(a, status=CANCELLED)
    (c,) = diff(snap(a), snap(b)).changes
    assert (c.kind, c.old, c.new) == ("cancelled", a, b)


def test_reinstated_meeting_is_added_and_cancelled_ones_stay_silent():
    """Un-cancelling announces the meeting; a cancelled one appearing or leaving says nothing."""
    a = occ(status=CANCELLED)
    b = dataclasses.replace(a, status="CONFIRMED")
    assert kinds(diff(snap(a), snap(b))) == [("added", 1)]
    assert diff({}, snap(a)).empty
    assert diff(snap(a), {}).empty


def test_moved_single_meeting_reports_old_and_new_time():
    """A single event keeps its key when moved; the change carries both times."""
    a = occ(start=NOW + timedelta(days=1))
    b = dataclasses.replace(a, start=a.start + timedelta(hours=2), end=a.end + timedelta(hours=2))
    (c,) = diff(snap(a), snap(b)).changes
    assert (c.kind, c.old.start, c.new.start, c.fields) == ("moved", a.start, b.start, ())


def test_renamed_relocated_and_relinked_meeting_is_updated_with_fields():
    """Title, location and link changes are one "updated" naming the fields."""
    a = occ(title="Sync", location="Room 1", link=None)
    b = dataclasses.replace(
        a, title="Sync v2", location="Room 2", link="https://telemost.yandex.ru/j/42"
    )
    (c,) = diff(snap(a), snap(b)).changes
    assert (c.kind, c.fields) == ("updated", ("title", "location", "link"))


def test_move_and_rename_in_one_poll_make_one_notice():
    """Several changes to one meeting within a poll are one "moved" notice with fields."""
    a = occ()
    b = dataclasses.replace(
        a, title="Moved sync", start=a.start + timedelta(days=1), end=a.end + timedelta(days=1)
    )
    (c,) = diff(snap(a), snap(b)).changes
    assert (c.kind, c.fields) == ("moved", ("title",))


def test_attendee_changes_on_someone_elses_meeting_are_not_a_change():
    """Other people's answers change the fingerprint but make no notice."""
    a = occ(attendees=(att("bob@yandex.ru"),), organizer="boss@yandex.ru")
    b = dataclasses.replace(a, attendees=(att("bob@yandex.ru", DECLINED),))
    assert diff(snap(a), snap(b)).empty


def test_all_day_events_are_included():
    """All-day events are added and moved like any other."""
    day = datetime(2025, 3, 5, tzinfo=MSK)
    a = dataclasses.replace(occ("d1", day, minutes=24 * 60), all_day=True)
    b = dataclasses.replace(a, start=a.start + timedelta(days=1), end=a.end + timedelta(days=1))
    assert kinds(diff({}, snap(a))) == [("added", 1)]
    assert kinds(diff(snap(a), snap(b))) == [("moved", 1)]


def test_all_day_event_seen_from_a_new_zone_has_not_moved():
    """A user changing time zone moves all-day midnights, not the dates."""
    a = dataclasses.replace(
        occ("d1", datetime(2025, 3, 5, tzinfo=MSK), minutes=24 * 60), all_day=True
    )
    berlin = ZoneInfo("Europe/Berlin")
    b = dataclasses.replace(
        a, start=datetime(2025, 3, 5, tzinfo=berlin), end=datetime(2025, 3, 6, tzinfo=berlin)
    )
    assert diff(snap(a), snap(b)).empty


def test_declined_meeting_is_silent_unless_the_answer_changed():
    """Meetings I declined on both sides make no notice; if I accepted since, they do."""
    a = occ(my_partstat=DECLINED)
    moved = dataclasses.replace(
        a, start=a.start + timedelta(hours=1), end=a.end + timedelta(hours=1)
    )
    assert diff(snap(a), snap(moved)).empty
    assert diff({}, snap(a)).empty
    assert diff(snap(a), {}).empty
    assert kinds(diff(snap(a), snap(dataclasses.replace(moved, my_partstat=ACCEPTED)))) == [
        ("moved", 1)
    ]


# --- series ----------------------------------------------------------------------------------


def test_one_occurrence_of_a_series_moved_is_one_change():
    """An override moves one occurrence: exactly one change, for that occurrence."""
    old = weekly(n=3)
    second = list(old.values())[1]
    moved = dataclasses.replace(
        second, start=second.start + timedelta(hours=3), end=second.end + timedelta(hours=3)
    )
    (c,) = diff(old, {**old, moved.key: moved}).changes
    assert (c.kind, c.key, c.count) == ("moved", second.key, 1)


def test_one_occurrence_of_a_series_cancelled_is_one_change():
    """An EXDATE removes one occurrence: exactly one cancellation, for that occurrence."""
    old = weekly(n=3)
    second = list(old.values())[1]
    new = {k: o for k, o in old.items() if k != second.key}
    (c,) = diff(old, new).changes
    assert (c.kind, c.key, c.count) == ("cancelled", second.key, 1)


def test_whole_series_renamed_is_one_change_with_count():
    """Editing the master's title renames every occurrence: one notice, count = occurrences."""
    old = weekly(n=2)
    new = weekly(n=2, title="Weekly planning")
    (c,) = diff(old, new).changes
    first = min(old.values(), key=lambda o: o.start)
    assert (c.kind, c.fields, c.count, c.key) == ("updated", ("title",), 2, first.key)
    assert set(c.keys) == set(old)


def test_whole_series_retimed_is_one_moved_change():
    """Moving the master's DTSTART changes every RECURRENCE-ID: still one "moved" notice."""
    old = weekly(n=2)
    new = weekly(n=2, first=NOW + timedelta(days=1, hours=1))
    (c,) = diff(old, new).changes
    assert (c.kind, c.count) == ("moved", 2)
    assert c.new.start - c.old.start == timedelta(hours=1)
    assert set(c.keys) == set(old) | set(new)


def test_series_shifted_past_the_window_edge_is_not_cancelled():
    """An occurrence whose shifted twin lies beyond the window joins the series' move."""
    first = WINDOW_END - timedelta(days=8)
    old = weekly(first=first, n=2)  # the second is 1 day before the window end
    new = {
        k: o
        for k, o in weekly(first=first + timedelta(days=2), n=2).items()
        if o.start < WINDOW_END
    }
    (c,) = diff(old, new).changes
    assert (c.kind, c.count) == ("moved", 2)


def test_series_moved_across_a_dst_switch_is_moved_not_cancelled():
    """Saturday → Sunday over Berlin's DST night: shifts differ by an hour, still moves."""
    berlin = ZoneInfo("Europe/Berlin")
    sat, sun = datetime(2025, 3, 29, 10, tzinfo=berlin), datetime(2025, 3, 30, 10, tzinfo=berlin)
    old = snap(*(occ("w", (sat + timedelta(weeks=i)).astimezone(UTC), series=True) for i in (0, 1)))
    new = snap(*(occ("w", (sun + timedelta(weeks=i)).astimezone(UTC), series=True) for i in (0, 1)))
    d = diff(old, new, now=sat - timedelta(days=1), window_end=sat + timedelta(days=14))
    assert [c.kind for c in d.changes] == ["moved", "moved"]


def test_single_event_keyed_by_its_start_still_moves():
    """Should a single event's key hold its start, a move is still one "moved" notice."""
    a = occ(rid=(NOW + timedelta(days=1)).isoformat())
    later = NOW + timedelta(days=2)
    b = dataclasses.replace(
        a, recurrence_id=later.isoformat(), start=later, end=later + timedelta(minutes=30)
    )
    (c,) = diff(snap(a), snap(b)).changes
    assert (c.kind, c.old, c.new, c.key) == ("moved", a, b, b.key)


def test_whole_series_deleted_is_one_cancellation():
    """Deleting a series is one cancellation with a count."""
    old = weekly(n=2)
    assert kinds(diff(old, {})) == [("cancelled", 2)]


def test_new_series_is_one_addition():
    """A new weekly meeting is one "added" notice, shown at its first occurrence."""
    new = weekly(n=2)
    (c,) = diff({}, new).changes
    assert (c.kind, c.count, c.new.start) == ("added", 2, NOW + timedelta(days=1))


def test_changes_are_ordered_by_start():
    """Notices come in the order of the meetings."""
    late, early = occ("late", NOW + timedelta(days=3)), occ("early", NOW + timedelta(days=2))
    gone = occ("gone", NOW + timedelta(days=1))
    d = diff(snap(gone), snap(late, early))
    assert [c.key[1] for c in d.changes] == ["gone", "early", "late"]


# --- the window ------------------------------------------------------------------------------


def test_past_meetings_are_ignored():
    """A meeting that has ended is history: no notice of any kind."""
    past = occ("p", NOW - timedelta(hours=2), **mine(attendees=(att("bob@yandex.ru"),)))
    changed = dataclasses.replace(past, title="Retro", attendees=(att("bob@yandex.ru", ACCEPTED),))
    assert diff(snap(past), {}).empty
    assert diff({}, snap(past)).empty
    assert diff(snap(past), snap(changed)).empty


def test_running_meeting_still_counts():
    """A meeting under way (started, not ended) is still reported."""
    running = occ("r", NOW - timedelta(minutes=10), minutes=60)
    assert kinds(diff(snap(running), {})) == [("cancelled", 1)]


def test_meeting_beyond_the_window_end_is_neither_cancelled_nor_added():
    """Keys out of view at the window's end are not announced."""
    beyond = occ("b", WINDOW_END + timedelta(hours=1))
    edge = occ("e", WINDOW_END)
    assert diff(snap(beyond, edge), {}).empty
    assert diff({}, snap(beyond, edge)).empty


def test_meeting_moved_out_of_view_is_moved_not_cancelled():
    """When the caller still has the moved occurrence, leaving the window is a move."""
    a = occ()
    b = dataclasses.replace(
        a, start=WINDOW_END + timedelta(days=3), end=WINDOW_END + timedelta(days=3, minutes=30)
    )
    assert kinds(diff(snap(a), snap(b))) == [("moved", 1)]


def test_unchanged_calendars_are_left_out():
    """A calendar not re-read this poll announces nothing for its missing keys."""
    other = occ("x", calendar="/calendars/me/events-2/")
    assert diff(snap(other), {}, unchanged_calendars={other.calendar}).empty


# --- attendees' answers ----------------------------------------------------------------------


def test_attendee_answers_to_one_meeting_make_one_response():
    """Two attendees answering my meeting in one poll: one ResponseChange, both answers."""
    a = occ(**mine(attendees=(att("bob@yandex.ru"), att("eve@yandex.ru"), att("ann@yandex.ru"))))
    b = dataclasses.replace(
        a,
        attendees=(
            att("bob@yandex.ru", DECLINED),
            att("eve@yandex.ru", TENTATIVE),
            att("ann@yandex.ru"),
        ),
    )
    d = diff(snap(a), snap(b))
    assert d.changes == []
    (r,) = d.responses
    assert (r.key, r.count) == (a.key, 1)
    assert r.answers == (
        Answer("bob@yandex.ru", "Bob", NEEDS_ACTION, DECLINED),
        Answer("eve@yandex.ru", "Eve", NEEDS_ACTION, TENTATIVE),
    )


def test_series_answer_is_one_response_at_the_next_occurrence():
    """Declining a weekly meeting's series is one response, not one per week."""
    old = weekly(n=3, **mine(attendees=(att("bob@yandex.ru", ACCEPTED),)))
    new = weekly(n=3, **mine(attendees=(att("bob@yandex.ru", DECLINED),)))
    (r,) = diff(old, new).responses
    assert (r.occurrence.start, r.count) == (NOW + timedelta(days=1), 3)
    assert r.answers == (Answer("bob@yandex.ru", "Bob", ACCEPTED, DECLINED),)


def test_answers_to_different_occurrences_stay_apart():
    """Bob declining the series and Eve accepting one week: two responses, each once."""
    people = (att("bob@yandex.ru", ACCEPTED), att("eve@yandex.ru"))
    old = weekly(n=3, **mine(attendees=people))
    new = weekly(n=3, **mine(attendees=(att("bob@yandex.ru", DECLINED), att("eve@yandex.ru"))))
    third = sorted(new.values(), key=lambda o: o.start)[2]
    new[third.key] = dataclasses.replace(
        third, attendees=(att("bob@yandex.ru", DECLINED), att("eve@yandex.ru", ACCEPTED))
    )
    bob, eve = diff(old, new).responses
    assert ([a.email for a in bob.answers], bob.count) == (["bob@yandex.ru"], 3)
    assert ([a.email for a in eve.answers], eve.key) == (["eve@yandex.ru"], third.key)


def test_my_own_answer_is_ignored():
    """The user's own answers (as attendee or organizer) never notify the user."""
    a = occ(**mine(attendees=(att(ME, NEEDS_ACTION), att("bob@yandex.ru"))))
    b = dataclasses.replace(a, attendees=(att("Me@Yandex.ru", ACCEPTED), att("bob@yandex.ru")))
    assert diff(snap(a), snap(b)).empty


def test_no_responses_when_someone_else_organizes():
    """Answers on a meeting organized by someone else are not reported."""
    a = occ(organizer="boss@yandex.ru", attendees=(att("bob@yandex.ru"),))
    b = dataclasses.replace(a, attendees=(att("bob@yandex.ru", ACCEPTED),))
    assert diff(snap(a), snap(b)).responses == []


def test_new_attendee_is_reported_only_once_they_answer():
    """An added attendee who has not answered is silent; one who already answered is not."""
    a = occ(**mine(attendees=(att("bob@yandex.ru"),)))
    silent = dataclasses.replace(a, attendees=(att("bob@yandex.ru"), att("eve@yandex.ru")))
    answered = dataclasses.replace(
        a, attendees=(att("bob@yandex.ru"), att("eve@yandex.ru", ACCEPTED))
    )
    assert diff(snap(a), snap(silent)).empty
    (r,) = diff(snap(a), snap(answered)).responses
    assert r.answers == (Answer("eve@yandex.ru", "Eve", None, ACCEPTED),)


def test_occurrence_entering_a_series_does_not_repeat_standing_answers():
    """A new occurrence of my series compares answers with its siblings, not with nothing."""
    people = (att("bob@yandex.ru", ACCEPTED),)
    old = weekly(n=2, **mine(attendees=people))
    new = weekly(n=3, **mine(attendees=people))
    d = diff(old, new)
    assert d.responses == []
    assert kinds(d) == [("added", 1)]


# --- properties ------------------------------------------------------------------------------

CALS = ("/c/events-1/", "/c/events-2/")
PEOPLE = ("bob@yandex.ru", "eve@yandex.ru", ME)
PARTSTATS = (ACCEPTED, DECLINED, TENTATIVE, NEEDS_ACTION)


@st.composite
def occurrences(draw: st.DrawFn) -> Occurrence:
    """A random occurrence from a small universe, so keys and series collide often."""
    start = NOW + timedelta(hours=draw(st.integers(-30, 24 * 23)))
    series = draw(st.booleans())
    rid = ""
    if series:
        rid = (NOW + timedelta(hours=draw(st.integers(-30, 24 * 23)))).isoformat()
    emails = draw(st.lists(st.sampled_from(PEOPLE), max_size=3, unique=True))
    organized = draw(st.booleans())
    return Occurrence(
        calendar=draw(st.sampled_from(CALS)),
        uid=draw(st.sampled_from(("a", "b", "c"))),
        recurrence_id=rid,
        start=start,
        end=start + timedelta(minutes=draw(st.sampled_from((0, 30, 60, 24 * 60)))),
        all_day=draw(st.booleans()),
        title=draw(st.sampled_from(("Sync", " Sync", "Retro"))),
        location=draw(st.sampled_from(("", "Room 1"))),
        link=draw(st.sampled_from((None, "https://telemost.yandex.ru/j/1"))),
        status=draw(st.sampled_from(("CONFIRMED", CANCELLED))),
        organizer=ME if organized else "boss@yandex.ru",
        organized_by_me=organized,
        attendees=tuple(Attendee(e, "", draw(st.sampled_from(PARTSTATS))) for e in emails),
        my_partstat=draw(st.sampled_from((None, ACCEPTED, DECLINED))),
    )


snapshots = st.lists(occurrences(), max_size=8).map(lambda occs: snap(*occs))


@settings(max_examples=80, deadline=None)
@given(snapshots)
def test_a_snapshot_diffed_with_itself_is_empty(a):
    """diff(a, a) is empty for any snapshot."""
    assert diff(a, a).empty
    assert diff(a, dict(reversed(list(a.items())))).empty


@settings(max_examples=150, deadline=None)
@given(snapshots, snapshots)
def test_every_key_difference_in_view_is_explained(a, b):
    """Each upcoming key present on one side only is covered by a change, or its meeting is
    on the other side unchanged under another key; nothing past is ever reported."""
    d = diff(a, b)
    covered = {k for c in d.changes for k in c.keys}

    def in_view(o: Occurrence) -> bool:
        return o.start < WINDOW_END and o.end > NOW and not o.cancelled and not o.declined

    for side, other in ((a, b), (b, a)):
        for k in side.keys() - other.keys():
            o = side[k]
            twin = any(
                fingerprint(t) == fingerprint(o) and t.key[:2] == k[:2] for t in other.values()
            )
            assert not in_view(o) or k in covered or twin, (k, d)
    for c in d.changes:
        assert c.count >= 1
        assert c.key in c.keys
        assert any(o is not None and o.end > NOW for o in (c.old, c.new))
    for r in d.responses:
        assert r.occurrence.organized_by_me
        assert r.occurrence.end > NOW
        assert all(ans.email != ME for ans in r.answers)


# --- the organizer, and the fingerprint deciding --------------------------------------------


def test_new_organizer_is_an_update_naming_it():
    """A meeting handed to another organizer is one "updated" with the organizer field."""
    a = occ(organizer="boss@yandex.ru", organizer_name="Boss")
    b = dataclasses.replace(a, organizer="anna@yandex.ru", organizer_name="Anna")
    (c,) = diff(snap(a), snap(b)).changes
    assert (c.kind, c.fields, c.old, c.new) == ("updated", ("organizer",), a, b)


def test_organizer_change_of_a_series_is_one_notice():
    """Every occurrence of a series handed over in one poll: one notice with the count."""
    a = weekly(n=3, organizer="boss@yandex.ru")
    b = {k: dataclasses.replace(o, organizer="anna@yandex.ru") for k, o in a.items()}
    assert [(c.kind, c.count, c.fields) for c in diff(a, b).changes] == [
        ("updated", 3, ("organizer",))]


def test_organizer_renamed_or_recased_is_not_a_change():
    """The same organizer address (another display name, other letter case) is no change:
    equal fingerprints are silent."""
    a = occ(organizer="boss@yandex.ru", organizer_name="Boss")
    b = dataclasses.replace(a, organizer="Boss@Yandex.ru", organizer_name="The Boss")
    assert fingerprint(a) == fingerprint(b)
    assert diff(snap(a), snap(b)).empty


def test_move_with_a_new_organizer_names_it():
    """A move and a hand-over in one poll: one "moved" naming the organizer too."""
    a = occ(organizer="boss@yandex.ru")
    b = dataclasses.replace(a, organizer="anna@yandex.ru", start=a.start + timedelta(hours=1),
                            end=a.end + timedelta(hours=1))
    (c,) = diff(snap(a), snap(b)).changes
    assert (c.kind, c.fields) == ("moved", ("organizer",))


def test_organizer_change_message_shows_old_and_new():
    """The notice says who organized it before and who does now, in both languages."""
    from bot.core.markdown import escape
    from bot.core.notices import change_message

    a = occ(organizer="boss@yandex.ru", organizer_name="Boss")
    b = dataclasses.replace(a, organizer="anna@yandex.ru", organizer_name="")
    (c,) = diff(snap(a), snap(b)).changes
    anna = escape("anna@yandex.ru")  # addresses are shown defused, never as a mention
    assert f"Organizer: Boss → {anna}" in change_message(c, MSK, "en")
    assert f"Организатор: Boss → {anna}" in change_message(c, MSK, "ru")


_MUTATIONS = {
    "title": lambda o: dataclasses.replace(o, title=o.title + " v2"),
    "location": lambda o: dataclasses.replace(o, location="Room 9"),
    "link": lambda o: dataclasses.replace(o, link="https://telemost.yandex.ru/j/99"),
    "organizer": lambda o: dataclasses.replace(o, organizer="anna@yandex.ru"),
    "time": lambda o: dataclasses.replace(o, start=o.start + timedelta(hours=1),
                                          end=o.end + timedelta(hours=1)),
    "answers": lambda o: dataclasses.replace(o, attendees=(att("bob@yandex.ru", DECLINED),)),
}


@settings(max_examples=120, deadline=None)
@given(st.sets(st.sampled_from(sorted(_MUTATIONS))), st.booleans())
def test_the_notice_names_exactly_what_changed(mutated, organized):
    """Whatever visible facts of a meeting change together, the diff makes one notice naming
    exactly those fields ("moved" when the time changed); only the answers changing, or
    nothing, is no change of the meeting."""
    kw = mine() if organized else {"organizer": "boss@yandex.ru"}
    a = occ(attendees=(att("bob@yandex.ru", ACCEPTED),), **kw)
    b = a
    for name in sorted(mutated):
        b = _MUTATIONS[name](b)
    d = diff(snap(a), snap(b))
    fields = tuple(f for f in ("title", "location", "link", "organizer") if f in mutated)
    if not mutated - {"answers"}:
        assert d.changes == []
        return
    (c,) = d.changes
    assert (c.kind, c.fields) == ("moved" if "time" in mutated else "updated", fields)
