"""ICS → occurrences (bot.core.ical) on Yandex-shaped fixtures, plus invariants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.ical import parse_objects, parse_occurrences
from bot.core.model import (
    ACCEPTED,
    CANCELLED,
    CONFIRMED,
    DECLINED,
    NEEDS_ACTION,
    TENTATIVE,
    Attendee,
    Occurrence,
    RawObject,
)
from bot.errors import IcsError
from tests.ics_fixtures import fixture_names, load_ics

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ME = "me@ya.ru"  # Yandex stores it as me@yandex.ru
FAST = settings(max_examples=40, deadline=None)

# A window covering every fixture.
ALL_START = datetime(2026, 10, 1, tzinfo=UTC)
ALL_END = datetime(2027, 1, 1, tzinfo=UTC)


def parse(
    fixture: str,
    start: datetime = ALL_START,
    end: datetime = ALL_END,
    *,
    tz: ZoneInfo = MSK,
    me: str = ME,
    ics: str | None = None,
) -> list[Occurrence]:
    return parse_occurrences(
        load_ics(fixture) if ics is None else ics,
        calendar="/calendars/me%40yandex.ru/events-1/",
        href=f"/calendars/me%40yandex.ru/events-1/{fixture}.ics",
        start=start,
        end=end,
        tz=tz,
        me=me,
    )


def only(fixture: str, **kwargs: object) -> Occurrence:
    occurrences = parse(fixture, **kwargs)  # type: ignore[arg-type]
    assert len(occurrences) == 1, occurrences
    return occurrences[0]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)  # type: ignore[misc]


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


def msk_day(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=MSK)
    return start, start + timedelta(days=1)


# --- single timed events -------------------------------------------------------------------


def test_event_dt_telemost() -> None:
    """A plain Yandex meeting: UTC instants, Telemost link, people, page URL ignored."""
    occ = only("event_dt_telemost")
    assert occ.calendar == "/calendars/me%40yandex.ru/events-1/"
    assert occ.href.endswith("event_dt_telemost.ics")
    assert occ.uid == "4sjn1f7eyandex.ru"
    assert occ.recurrence_id == ""  # a single event: keyed by UID alone
    assert (occ.start, occ.end) == (utc(2026, 11, 3, 7, 0), utc(2026, 11, 3, 7, 30))
    assert occ.start.tzinfo is UTC
    assert occ.end.tzinfo is UTC
    assert not occ.all_day
    assert occ.title == "Планёрка команды"
    assert occ.location == "Переговорная «Сатурн»"
    assert occ.link == "https://telemost.yandex.ru/j/54823016948213"
    assert occ.status == CONFIRMED
    assert not occ.cancelled
    assert not occ.transparent
    assert occ.organizer == "sokolova@yandex.ru"
    assert occ.organizer_name == "Ирина Соколова"
    assert occ.my_partstat == ACCEPTED
    assert not occ.organized_by_me
    assert occ.attendees == (
        Attendee("me@yandex.ru", "Me Myself", ACCEPTED),
        Attendee("ivanov@yandex.ru", "Пётр Иванов", NEEDS_ACTION),
    )


def test_moved_single_event_keeps_its_key() -> None:
    """Rescheduling a single event changes its times, not its key."""
    before = only("event_dt_telemost")
    ics = load_ics("event_dt_telemost").replace("20261103T10", "20261104T16")
    after = only("event_dt_telemost", ics=ics)
    assert after.key == before.key
    assert after.start == utc(2026, 11, 4, 13)


def test_single_event_replaced_by_override_keeps_single_key() -> None:
    """A non-recurring master with an override for its own start stays keyed as single."""
    ics = load_ics("event_dt_telemost")
    block = ics[ics.index("BEGIN:VEVENT") : ics.index("END:VEVENT") + len("END:VEVENT\n")]
    override = block.replace("20261103T10", "20261103T12").replace(
        "SEQUENCE:0\n", "SEQUENCE:1\nRECURRENCE-ID;TZID=Europe/Moscow:20261103T100000\n"
    )
    occ = only("event_dt_telemost", ics=ics.replace("END:VCALENDAR", override + "END:VCALENDAR"))
    assert occ.recurrence_id == ""
    assert occ.start == utc(2026, 11, 3, 9)


def test_event_dt_utc() -> None:
    """DTSTART in UTC ('Z') stays the same instant; Meet link in LOCATION."""
    occ = only("event_dt_utc")
    assert (occ.start, occ.end) == (utc(2026, 12, 4, 12), utc(2026, 12, 4, 13))
    assert occ.link == "https://meet.google.com/abc-defg-hij"
    assert occ.organizer is None
    assert occ.organizer_name == ""


def test_event_dt_floating_uses_viewer_zone() -> None:
    """A floating time is wall-clock time in the viewer's zone."""
    in_moscow = only("event_dt_floating", tz=MSK)
    in_new_york = only("event_dt_floating", tz=NEW_YORK)
    assert in_moscow.start == utc(2026, 12, 2, 6, 0)
    assert in_moscow.end == utc(2026, 12, 2, 6, 30)
    assert in_new_york.start == utc(2026, 12, 2, 14, 0)


def test_floating_series_keys_do_not_depend_on_viewer_zone() -> None:
    """A floating series is keyed by its wall-clock slot, the same from every zone."""
    ics = load_ics("event_dt_floating").replace(
        "DTEND:20261202T093000\n", "DTEND:20261202T093000\nRRULE:FREQ=WEEKLY;COUNT=3\n"
    )
    keys = {tz.key: [o.recurrence_id for o in parse("f", tz=tz, ics=ics)] for tz in (MSK, NEW_YORK)}
    assert (
        keys["Europe/Moscow"]
        == keys["America/New_York"]
        == [
            "2026-12-02T09:00:00",
            "2026-12-09T09:00:00",
            "2026-12-16T09:00:00",
        ]
    )


def test_event_dt_windows_tz_with_inline_vtimezone() -> None:
    """A Windows TZID with Outlook's VTIMEZONE block is honoured."""
    occ = only("event_dt_windows_tz")
    assert (occ.start, occ.end) == (utc(2026, 11, 10, 7), utc(2026, 11, 10, 8))
    assert occ.link is not None
    assert occ.link.startswith("https://teams.microsoft.com/l/")


def test_event_dt_windows_tz_mapped_without_vtimezone() -> None:
    """Without a VTIMEZONE, icalendar 7 maps 'Russian Standard Time' to Europe/Moscow."""
    ics = load_ics("event_dt_windows_tz")
    head, _, rest = ics.partition("BEGIN:VTIMEZONE")
    _, _, tail = rest.partition("END:VTIMEZONE\n")
    occ = only("event_dt_windows_tz", ics=head + tail)
    assert occ.start == utc(2026, 11, 10, 7)


def test_windows_zone_with_dst_is_mapped() -> None:
    """'Eastern Standard Time' maps to America/New_York, DST included."""
    ics = load_ics("event_dt_utc").replace(
        "DTSTART:20261204T120000Z\nDTEND:20261204T130000Z",
        "DTSTART;TZID=Eastern Standard Time:20261030T090000\n"
        "DTEND;TZID=Eastern Standard Time:20261030T100000",
    )
    assert only("event_dt_utc", ics=ics).start == utc(2026, 10, 30, 13)


def test_event_dt_duration_and_missing_end() -> None:
    """DURATION gives the end; a timed event without DTEND/DURATION lasts zero time."""
    with_duration, without_end = parse("event_dt_duration")
    assert with_duration.end - with_duration.start == timedelta(minutes=45)
    assert without_end.start == without_end.end == utc(2026, 12, 9, 9)


def test_zero_length_event_counts_when_it_starts_in_window() -> None:
    """A zero-length event is in [start, end) iff it starts there."""
    at = utc(2026, 12, 9, 9)
    titles = lambda s, e: [o.title for o in parse("event_dt_duration", s, e)]  # noqa: E731
    assert "No end at all" in titles(at, at + timedelta(minutes=1))
    assert "No end at all" not in titles(at - timedelta(minutes=1), at)


def test_event_dt_markdown_title_kept_verbatim() -> None:
    """Markdown and mentions in titles are data: kept verbatim here, escaped when shown."""
    occ = only("event_dt_markdown_title")
    assert occ.title == "@channel **urgent** _x_ [link](http://a) `rm -rf /` ```code```"
    assert occ.location == "@here <!channel> ~town-square"
    assert occ.link is None  # http://a is not a video link


def test_event_dt_cancelled() -> None:
    """STATUS:CANCELLED is reported as cancelled, still listed."""
    occ = only("event_dt_cancelled")
    assert occ.status == CANCELLED
    assert occ.cancelled


def test_event_dt_transparent() -> None:
    """TRANSP:TRANSPARENT marks a free-time event; no organizer means not invited."""
    occ = only("event_dt_transparent")
    assert occ.transparent
    assert occ.my_partstat is None
    assert not occ.organized_by_me


def test_event_dt_declined_by_me() -> None:
    """My own DECLINED answer is found through the folded address."""
    occ = only("event_dt_declined_by_me")
    assert occ.my_partstat == DECLINED
    assert occ.declined


def test_event_dt_zoom_in_description() -> None:
    """A Zoom link in DESCRIPTION prose is the join link, without trailing punctuation."""
    assert only("event_dt_zoom_in_description").link == (
        "https://us02web.zoom.us/j/85512345678?pwd=aBcD1234"
    )


def test_event_dt_url_only() -> None:
    """Only the calendar page URL: no join link."""
    assert only("event_dt_url_only").link is None


# --- people ----------------------------------------------------------------------------------


def test_event_dt_attendees_answers_for_organizer() -> None:
    """Every answer is read; missing PARTSTAT = NEEDS-ACTION; @ya.ru folds; I organise."""
    occ = only("event_dt_attendees_answers")
    assert {a.email: a.partstat for a in occ.attendees} == {
        "me@yandex.ru": ACCEPTED,
        "alice.smirnova@yandex.ru": ACCEPTED,
        "bob@example.com": DECLINED,
        "carol@yandex.ru": TENTATIVE,
        "dave@yandex.ru": NEEDS_ACTION,
    }
    assert occ.attendees[1].name == "Алиса Смирнова"
    assert occ.organizer == "me@yandex.ru"
    assert occ.organized_by_me
    assert occ.my_partstat == ACCEPTED


@pytest.mark.parametrize(
    ("me", "partstat"),
    [
        ("carol@yandex.ru", TENTATIVE),
        ("mailto:BOB@example.com", DECLINED),
        ("dave@yandex.com", NEEDS_ACTION),
        ("alice.smirnova@yandex.ru", ACCEPTED),
        ("stranger@example.com", None),
    ],
)
def test_event_dt_attendees_answers_as_attendee(me: str, partstat: str | None) -> None:
    """my_partstat is my own entry, matched on normalised addresses; None if not listed."""
    occ = only("event_dt_attendees_answers", me=me)
    assert occ.my_partstat == partstat
    assert not occ.organized_by_me


def test_organizer_not_among_attendees_counts_as_accepted() -> None:
    """An organizer missing from ATTENDEE (as Yandex writes it) has my_partstat ACCEPTED."""
    occ = only("event_dt_telemost", me="Sokolova@ya.ru")
    assert occ.organized_by_me
    assert occ.my_partstat == ACCEPTED


def test_duplicate_attendee_under_alias_is_merged() -> None:
    """The same person under @ya.ru and @yandex.ru is listed once, with their answer."""
    ics = load_ics("event_dt_telemost").replace(
        "ATTENDEE;PARTSTAT=NEEDS-ACTION;CN=Пётр Иванов:mailto:ivanov@yandex.ru",
        "ATTENDEE;PARTSTAT=NEEDS-ACTION;CN=Пётр Иванов:mailto:ivanov@yandex.ru\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:Ivanov@ya.ru",
    )
    occ = only("event_dt_telemost", ics=ics)
    assert occ.attendees[1] == Attendee("ivanov@yandex.ru", "Пётр Иванов", ACCEPTED)
    assert len(occ.attendees) == 2


# --- all-day ---------------------------------------------------------------------------------


def test_event_d_allday() -> None:
    """An all-day date becomes midnight-to-midnight in the viewer's zone."""
    occ = only("event_d_allday")
    assert occ.all_day
    assert occ.start == datetime(2026, 12, 1, tzinfo=MSK)
    assert occ.end == datetime(2026, 12, 2, tzinfo=MSK)
    assert occ.recurrence_id == ""
    assert occ.transparent


def test_event_d_allday_follows_viewer_zone() -> None:
    """The same all-day event viewed from New York is New York's midnight."""
    occ = only("event_d_allday", tz=NEW_YORK)
    assert occ.start == datetime(2026, 12, 1, tzinfo=NEW_YORK)


def test_event_d_allday_not_in_adjacent_day() -> None:
    """An all-day event does not leak into the day before or after in the viewer's zone."""
    for day, expected in [(date(2026, 11, 30), 0), (date(2026, 12, 1), 1), (date(2026, 12, 2), 0)]:
        assert len(parse("event_d_allday", *msk_day(day))) == expected, day


def test_event_d_allday_missing_dtend_is_one_day() -> None:
    """An all-day event without DTEND lasts one day."""
    ics = load_ics("event_d_allday").replace("DTEND;VALUE=DATE:20261202\n", "")
    occ = only("event_d_allday", ics=ics)
    assert occ.end - occ.start == timedelta(days=1)


def test_event_d_allday_multiday() -> None:
    """A multi-day event ends exclusively at midnight after its last day."""
    occ = only("event_d_allday_multiday")
    assert occ.start == datetime(2026, 12, 7, tzinfo=MSK)
    assert occ.end == datetime(2026, 12, 11, tzinfo=MSK)
    assert occ.location == "Москва, Сколково"
    for day, expected in [(date(2026, 12, 6), 0), (date(2026, 12, 9), 1), (date(2026, 12, 11), 0)]:
        assert len(parse("event_d_allday_multiday", *msk_day(day))) == expected, day


def test_event_d_rr_allday_weekly() -> None:
    """All-day series: EXDATE by date, override moves a Friday to Saturday, date keys."""
    occurrences = parse("event_d_rr_allday_weekly")
    assert [(o.recurrence_id, o.start.date()) for o in occurrences] == [
        ("2026-12-04", date(2026, 12, 4)),
        ("2026-12-18", date(2026, 12, 19)),
        ("2026-12-25", date(2026, 12, 25)),
    ]
    assert all(o.all_day for o in occurrences)


# --- series --------------------------------------------------------------------------------


WEEKLY = "event_dt_rr_weekly_moved_exdate"


def test_weekly_series_expanded_with_exdate_and_override() -> None:
    """Weekly series: Nov 17 excluded, Nov 24 moved to Nov 26 15:00 MSK, keys stay slots."""
    occurrences = parse(WEEKLY)
    assert [o.start for o in occurrences] == [
        utc(2026, 11, 3, 7),
        utc(2026, 11, 10, 7),
        utc(2026, 11, 26, 12),
        *[utc(2026, 12, d, 7) for d in (1, 8, 15, 22, 29)],
    ]
    moved = occurrences[2]
    assert moved.recurrence_id == "2026-11-24T07:00:00+00:00"
    assert moved.end == utc(2026, 11, 26, 13)
    assert len({o.key for o in occurrences}) == len(occurrences)


def test_override_without_telemost_inherits_series_link() -> None:
    """Yandex overrides lack X-TELEMOST-CONFERENCE: the series link is inherited."""
    assert {o.link for o in parse(WEEKLY)} == {"https://telemost.yandex.ru/j/71102938475620"}


def test_override_own_link_wins_over_inherited() -> None:
    """An override carrying its own Telemost link keeps it."""
    ics = load_ics(WEEKLY).replace(
        "SEQUENCE:3\n", "SEQUENCE:3\nX-TELEMOST-CONFERENCE:https://telemost.yandex.ru/j/999\n"
    )
    moved = [o for o in parse(WEEKLY, ics=ics) if o.start.day == 26]
    assert moved[0].link == "https://telemost.yandex.ru/j/999"


def test_override_moves_occurrence_out_of_and_into_window() -> None:
    """The moved occurrence is on its new day only, not on the day of its old slot."""
    assert parse(WEEKLY, *msk_day(date(2026, 11, 24))) == []
    moved = parse(WEEKLY, *msk_day(date(2026, 11, 26)))
    assert [o.recurrence_id for o in moved] == ["2026-11-24T07:00:00+00:00"]
    assert parse(WEEKLY, *msk_day(date(2026, 11, 17))) == []


def test_override_key_equals_master_occurrence_key() -> None:
    """Before and after the override exists, the Nov 24 slot has the same key."""
    ics = load_ics(WEEKLY)
    master_only = ics[: ics.rindex("BEGIN:VEVENT")] + "END:VCALENDAR\n"
    before = {o.key: o for o in parse(WEEKLY, ics=master_only)}
    after = {o.key: o for o in parse(WEEKLY)}
    key = ("/calendars/me%40yandex.ru/events-1/", "9kq2mrt0yandex.ru", "2026-11-24T07:00:00+00:00")
    assert before[key].start == utc(2026, 11, 24, 7)
    assert after[key].start == utc(2026, 11, 26, 12)
    assert set(before) == set(after)


def test_recurrence_id_stable_across_windows_and_polls() -> None:
    """The same occurrence gets the same key from different windows and repeated parses."""
    whole = {o.key: o for o in parse(WEEKLY)}
    for day in (date(2026, 11, 10), date(2026, 11, 26), date(2026, 12, 29)):
        for occ in parse(WEEKLY, *msk_day(day)):
            assert whole[occ.key] == occ


def test_recurrence_id_independent_of_override_zone_spelling() -> None:
    """An override whose RECURRENCE-ID is written in UTC matches the zoned series slot."""
    ics = load_ics(WEEKLY).replace(
        "RECURRENCE-ID;TZID=Europe/Moscow:20261124T100000", "RECURRENCE-ID:20261124T070000Z"
    )
    assert [o.key for o in parse(WEEKLY, ics=ics)] == [o.key for o in parse(WEEKLY)]


def test_exdate_written_in_utc_excludes_zoned_slot() -> None:
    """An EXDATE in UTC removes the same instant of a Moscow series."""
    ics = load_ics(WEEKLY).replace(
        "EXDATE;TZID=Europe/Moscow:20261117T100000", "EXDATE:20261117T070000Z,20261201T070000Z"
    )
    starts = {o.start for o in parse(WEEKLY, ics=ics)}
    assert utc(2026, 11, 17, 7) not in starts
    assert utc(2026, 12, 1, 7) not in starts
    assert len(starts) == 7


def test_event_dt_rr_cancelled_override() -> None:
    """One daily instance cancelled via an override: listed as cancelled, others confirmed."""
    occurrences = parse("event_dt_rr_cancelled_override")
    assert [o.status for o in occurrences] == [
        CONFIRMED,
        CONFIRMED,
        CANCELLED,
        CONFIRMED,
        CONFIRMED,
    ]
    assert occurrences[2].recurrence_id == "2026-11-18T06:30:00+00:00"
    assert occurrences[2].link == "https://telemost.360.yandex.ru/j/88001234567890"


def test_event_dt_rr_orphan_override() -> None:
    """Invited to one instance only: the override alone is an occurrence keyed by its slot."""
    occ = only("event_dt_rr_orphan_override")
    assert occ.recurrence_id == "2026-12-01T12:00:00+00:00"
    assert occ.start == utc(2026, 12, 1, 13)
    assert occ.my_partstat == NEEDS_ACTION


def test_weekly_series_across_new_york_dst_change() -> None:
    """A 09:00 New York series keeps local time over the Nov 1 DST change (UTC shifts)."""
    occurrences = parse("event_dt_rr_weekly_new_york_dst", tz=BERLIN)
    assert [o.start for o in occurrences] == [
        utc(2026, 10, 22, 13),
        utc(2026, 10, 29, 13),
        utc(2026, 11, 5, 14),
        utc(2026, 11, 12, 14),
    ]
    assert all(o.start.astimezone(NEW_YORK).hour == 9 for o in occurrences)
    assert occurrences[0].link == "https://meet.jit.si/NyOfficeHours"


def test_floating_time_on_berlin_dst_day() -> None:
    """A floating 09:00 on Berlin's DST change day is 09:00 CET, the day before 09:00 CEST."""
    ics = load_ics("event_dt_floating")
    before = ics.replace("20261202T09", "20261024T09").replace("20261202T093", "20261024T093")
    after = ics.replace("20261202T09", "20261025T09").replace("20261202T093", "20261025T093")
    assert only("event_dt_floating", ics=before, tz=BERLIN).start == utc(2026, 10, 24, 7)
    assert only("event_dt_floating", ics=after, tz=BERLIN).start == utc(2026, 10, 25, 8)


THIS_AND_FUTURE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:taf
DTSTAMP:20261001T000000Z
DTSTART;TZID=Europe/Moscow:20261102T100000
DTEND;TZID=Europe/Moscow:20261102T110000
RRULE:FREQ=DAILY;COUNT=5
SUMMARY:Daily
END:VEVENT
BEGIN:VEVENT
UID:taf
DTSTAMP:20261001T000000Z
RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Europe/Moscow:20261104T100000
DTSTART;TZID=Europe/Moscow:20261104T120000
DTEND;TZID=Europe/Moscow:20261104T130000
SUMMARY:Daily later
END:VEVENT
END:VCALENDAR
"""


def test_this_and_future_override_keeps_distinct_slot_keys() -> None:
    """RANGE=THISANDFUTURE shifts later instances; each keeps its own original slot key."""
    occurrences = parse("inline", ics=THIS_AND_FUTURE)
    assert [o.recurrence_id for o in occurrences] == [
        f"2026-11-0{d}T07:00:00+00:00" for d in range(2, 7)
    ]
    assert [o.start.hour for o in occurrences] == [7, 7, 9, 9, 9]


# --- floating series with zoned values -------------------------------------------------------
#
# A floating series is wall time in the viewer's zone; a UTC or zoned value inside it names an
# instant, which counts at the wall time that instant shows in the viewer's zone.

FLOATING_EXCEPTIONS = "event_dt_rr_floating_zoned_exdate_rdate"


def test_floating_series_with_zoned_exdate_and_rdate_keeps_wall_time() -> None:
    """UTC and Berlin EXDATEs remove the 09:00 Moscow slots they denote, UTC RDATEs (one a
    PERIOD) add their instants, and the series stays at 09:00 in the viewer's zone."""
    occurrences = parse(FLOATING_EXCEPTIONS)
    assert [(o.start, o.end) for o in occurrences] == [
        (msk(2026, 12, 9, 9), msk(2026, 12, 9, 9, 30)),
        (msk(2026, 12, 17, 15), msk(2026, 12, 17, 15, 30)),
        (msk(2026, 12, 18, 13), msk(2026, 12, 18, 14)),
        (msk(2026, 12, 30, 9), msk(2026, 12, 30, 9, 30)),
    ]
    assert [o.recurrence_id for o in occurrences] == [
        "2026-12-09T09:00:00",
        "2026-12-17T15:00:00",
        "2026-12-18T13:00:00",
        "2026-12-30T09:00:00",
    ]


def test_floating_series_with_zoned_exdate_seen_from_new_york() -> None:
    """From New York the series is at 09:00 New York time; the excluded instants are 01:00
    there, no slot of the series, so nothing is removed; the RDATEs keep their instants."""
    occurrences = parse(FLOATING_EXCEPTIONS, tz=NEW_YORK)
    assert [o.start for o in occurrences] == [
        ny(2026, 12, 9, 9),
        ny(2026, 12, 16, 9),
        utc(2026, 12, 17, 12),
        utc(2026, 12, 18, 10),
        ny(2026, 12, 23, 9),
        ny(2026, 12, 30, 9),
    ]


def test_floating_series_date_exdate_next_to_zoned_exdate() -> None:
    """An EXDATE;VALUE=DATE on a timed floating series removes that day's occurrence, also
    when other EXDATEs of the series are zoned."""
    ics = load_ics(FLOATING_EXCEPTIONS).replace(
        "RDATE:20261217", "EXDATE;VALUE=DATE:20261230\nRDATE:20261217"
    )
    starts = [o.start for o in parse(FLOATING_EXCEPTIONS, ics=ics)]
    assert starts == [msk(2026, 12, 9, 9), msk(2026, 12, 17, 15), msk(2026, 12, 18, 13)]


def test_floating_series_until_in_utc() -> None:
    """UNTIL given in UTC for a floating series ends it at that instant in the viewer's zone:
    06:00Z is 09:00 in Moscow (Dec 30 included) but 01:00 in New York (Dec 30 excluded)."""
    name = "event_dt_rr_floating_utc_until"
    assert [o.start for o in parse(name)] == [msk(2026, 12, d, 9) for d in (9, 16, 23, 30)]
    assert [o.start for o in parse(name, tz=NEW_YORK)] == [ny(2026, 12, d, 9) for d in (9, 16, 23)]


def test_floating_start_with_utc_end() -> None:
    """A floating DTSTART with a DTEND in UTC starts at the viewer's wall time and ends at the
    DTEND instant; the start does not take the end's zone."""
    occurrences = parse("event_dt_rr_floating_utc_dtend")
    assert [(o.start, o.end) for o in occurrences] == [
        (msk(2026, 12, 9, 9), msk(2026, 12, 9, 10)),
        (msk(2026, 12, 16, 9), msk(2026, 12, 16, 10)),
    ]


FLOATING_OVERRIDES = "event_dt_rr_floating_zoned_recurrence_id"


def test_floating_series_overrides_with_zoned_recurrence_id_replace_their_slots() -> None:
    """Overrides whose RECURRENCE-ID is in UTC or in Moscow time (one of them zoned itself)
    replace the floating slot that instant shows in the viewer's zone, under its key."""
    occurrences = parse(FLOATING_OVERRIDES)
    assert [(o.recurrence_id, o.start) for o in occurrences] == [
        ("2026-12-09T09:00:00", msk(2026, 12, 9, 9)),
        ("2026-12-16T09:00:00", msk(2026, 12, 16, 12)),
        ("2026-12-23T09:00:00", msk(2026, 12, 23, 15)),
        ("2026-12-30T09:00:00", msk(2026, 12, 30, 9)),
    ]
    ics = load_ics(FLOATING_OVERRIDES)
    master_only = ics[: ics.index("BEGIN:VEVENT", ics.index("END:VEVENT"))] + "END:VCALENDAR\n"
    assert [o.key for o in parse(FLOATING_OVERRIDES, ics=master_only)] == [
        o.key for o in occurrences
    ]


def test_floating_series_zoned_this_and_future_override() -> None:
    """A THISANDFUTURE override at 10:00 Berlin moves its slot and the later ones to 12:00 in
    the viewer's (Moscow) zone, each keeping its own slot key."""
    occurrences = parse("event_dt_rr_floating_zoned_thisandfuture")
    assert [(o.recurrence_id, o.start) for o in occurrences] == [
        ("2026-12-09T09:00:00", msk(2026, 12, 9, 9)),
        ("2026-12-16T09:00:00", msk(2026, 12, 16, 12)),
        ("2026-12-23T09:00:00", msk(2026, 12, 23, 12)),
        ("2026-12-30T09:00:00", msk(2026, 12, 30, 12)),
    ]


def test_zoned_series_override_with_floating_recurrence_id_keeps_slot_key() -> None:
    """An override of a Moscow series whose RECURRENCE-ID is written floating names the slot
    in the series' zone: it replaces that slot and keeps the slot's key."""
    name = "event_dt_rr_zoned_floating_recurrence_id"
    ics = load_ics(name)
    master_only = ics[: ics.index("BEGIN:VEVENT", ics.index("END:VEVENT"))] + "END:VCALENDAR\n"
    before = parse(name, ics=master_only)
    after = parse(name)
    assert [o.key for o in after] == [o.key for o in before]
    assert after[1].recurrence_id == "2026-12-16T07:00:00+00:00"
    assert after[1].start == msk(2026, 12, 16, 14)


# --- shapes and errors -----------------------------------------------------------------------


def test_event_dt_two_uids() -> None:
    """An object with two VEVENTs of different UIDs yields both."""
    assert [(o.uid, o.title) for o in parse("event_dt_two_uids")] == [
        ("tw0a0000yandex.ru", "First of two"),
        ("tw0b0000yandex.ru", "Second of two"),
    ]


def test_todo_only() -> None:
    """VTODO-only objects yield nothing and raise nothing."""
    assert parse("todo_only") == []


def test_event_with_todo_skips_todo() -> None:
    """A VTODO next to a VEVENT is ignored."""
    todo = load_ics("todo_only")
    block = todo[todo.index("BEGIN:VTODO") : todo.index("END:VTODO") + len("END:VTODO\n")]
    ics = load_ics("event_dt_utc").replace("END:VCALENDAR", block + "END:VCALENDAR")
    assert [o.title for o in parse("event_dt_utc", ics=ics)] == ["Synced from CalDAV client"]


def test_event_broken_raises_one_line_ics_error() -> None:
    """An unreadable DTSTART raises IcsError with one line and no calendar data."""
    with pytest.raises(IcsError) as info:
        parse("event_broken")
    message = str(info.value)
    assert "\n" not in message
    assert "event_broken" in message  # the href
    assert "Broken start" not in message
    assert "2026-11-31" not in message


X_COMPONENT = "event_dt_vevent_inside_x_component"


def test_vevent_inside_x_component_is_ignored() -> None:
    """Only VEVENTs directly in VCALENDAR count; one inside an unknown component is ignored
    (RFC 5545 §3.6); the direct event, which holds a VALARM, is listed once and its custom
    TZID is still resolved through the inline VTIMEZONE (+05:00)."""
    occ = only(X_COMPONENT)
    assert occ.title == "Direct child of VCALENDAR"
    assert (occ.start, occ.end) == (utc(2026, 12, 10, 6), utc(2026, 12, 10, 7))


def test_broken_vevent_inside_x_component_does_not_break_object() -> None:
    """A VEVENT inside an unknown component is not read at all, so a broken one is harmless."""
    ics = load_ics(X_COMPONENT).replace(
        "DTSTART;TZID=Custom Yekaterinburg:20261210T130000", "DTSTART:20261231T250000"
    )
    assert only(X_COMPONENT, ics=ics).title == "Direct child of VCALENDAR"


@pytest.mark.parametrize(
    "ics",
    [
        "",
        "garbage",
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nSUMMARY:secret title\n",  # truncated
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nSUMMARY:secret title\nEND:VEVENT\nEND:VCALENDAR\n",
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nSUMMARY:secret title\nDTSTART:20261110T100000Z\n"
        "RRULE:FREQ=BOGUS\nEND:VEVENT\nEND:VCALENDAR\n",
    ],
    ids=["empty", "garbage", "truncated", "no-dtstart", "bad-rrule"],
)
def test_unparseable_objects_raise_ics_error(ics: str) -> None:
    """Unreadable data raises IcsError whose text holds no calendar content."""
    with pytest.raises(IcsError) as info:
        parse("inline", ics=ics)
    assert "secret" not in str(info.value)
    assert "\n" not in str(info.value)


def test_odd_properties_do_not_crash() -> None:
    """Unknown X- properties, broken optional values and odd params are tolerated."""
    ics = load_ics("event_dt_telemost").replace(
        "SEQUENCE:0\n",
        "SEQUENCE:zero\nX-YANDEX-FOO;X-BAR=1:baz\nCLASS:PRIVATE\nPRIORITY:high\n"
        "STATUS:weird\nTRANSP:\nGEO:not;geo\nCATEGORIES:a,b\nATTENDEE:\n",
    )
    occ = only("event_dt_telemost", ics=ics)
    assert occ.status == CONFIRMED
    assert occ.title == "Планёрка команды"


def test_missing_summary_is_empty_title() -> None:
    """No SUMMARY gives an empty title, not None."""
    ics = load_ics("event_dt_utc").replace("SUMMARY:Synced from CalDAV client\n", "")
    assert only("event_dt_utc", ics=ics).title == ""


def test_naive_window_is_rejected() -> None:
    """Window bounds must be aware."""
    with pytest.raises(ValueError, match="must be aware"):
        parse("event_dt_utc", datetime(2026, 12, 1), datetime(2026, 12, 31))


def test_empty_window_is_empty() -> None:
    """A window with end <= start holds nothing."""
    assert parse("event_dt_utc", utc(2026, 12, 4, 12), utc(2026, 12, 4, 12)) == []


def test_parse_objects_skips_broken_and_reports_href() -> None:
    """One broken object is reported via on_error and does not hide the others."""
    names = ["event_dt_utc", "event_broken", "event_d_allday", "todo_only", WEEKLY]
    objects = [
        RawObject(href=f"/c/{n}.ics", etag=f'"{i}"', ics=load_ics(n)) for i, n in enumerate(names)
    ]
    errors: list[tuple[str, Exception]] = []
    result = parse_objects(
        objects,
        calendar="/c/",
        start=ALL_START,
        end=ALL_END,
        tz=MSK,
        me=ME,
        on_error=lambda href, exc: errors.append((href, exc)),
    )
    assert [href for href, _ in errors] == ["/c/event_broken.ics"]
    assert isinstance(errors[0][1], IcsError)
    assert {o.href for o in result} == {
        "/c/event_dt_utc.ics",
        "/c/event_d_allday.ics",
        f"/c/{WEEKLY}.ics",
    }
    assert [(o.start, o.title) for o in result] == sorted((o.start, o.title) for o in result)
    assert all(o.calendar == "/c/" for o in result)


def test_parse_objects_without_callback_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Without on_error a broken object is logged with a stable key and its href only."""
    objects = [RawObject(href="/c/bad.ics", etag='"1"', ics=load_ics("event_broken"))]
    with caplog.at_level("WARNING", logger="bot.core.ical"):
        assert (
            parse_objects(objects, calendar="/c/", start=ALL_START, end=ALL_END, tz=MSK, me=ME)
            == []
        )
    assert any(
        r.getMessage().startswith("ical.skip_object href=/c/bad.ics") for r in caplog.records
    )
    assert not any("Broken start" in r.getMessage() for r in caplog.records)


def test_parse_objects_sorts_same_start_by_title() -> None:
    """Occurrences starting together are ordered by title."""
    ics_b = load_ics("event_dt_utc")
    ics_a = ics_b.replace("UID:utc0", "UID:other").replace("SUMMARY:Synced", "SUMMARY:A Synced")
    objects = [RawObject("/c/b.ics", '"1"', ics_b), RawObject("/c/a.ics", '"2"', ics_a)]
    result = parse_objects(objects, calendar="/c/", start=ALL_START, end=ALL_END, tz=MSK, me=ME)
    assert [o.title for o in result] == ["A Synced from CalDAV client", "Synced from CalDAV client"]


@pytest.mark.parametrize("name", [n for n in fixture_names() if n != "event_broken.ics"])
def test_every_fixture_parses_in_any_zone(name: str) -> None:
    """Every good fixture parses from several viewer zones; timed results are UTC."""
    for tz in (MSK, BERLIN, NEW_YORK, ZoneInfo("Asia/Kamchatka")):
        for occ in parse(name.removesuffix(".ics"), tz=tz):
            assert occ.start <= occ.end
            if not occ.all_day:
                assert occ.start.tzinfo is UTC


# --- properties --------------------------------------------------------------------------------

PROPERTY_FIXTURES = [
    WEEKLY,
    "event_dt_rr_cancelled_override",
    "event_d_rr_allday_weekly",
    "event_d_allday_multiday",
    "event_dt_duration",
    "event_dt_rr_weekly_new_york_dst",
    "event_dt_floating",
    "event_dt_rr_floating_zoned_exdate_rdate",
    "event_dt_rr_floating_zoned_recurrence_id",
    "event_dt_rr_floating_zoned_thisandfuture",
]
ZONES = [MSK, BERLIN, NEW_YORK, UTC, ZoneInfo("Asia/Kamchatka"), ZoneInfo("Pacific/Honolulu")]
ICS_BY_NAME = {name: load_ics(name) for name in PROPERTY_FIXTURES}

# Windows inside Oct 2026 – Jan 2027 at 15-minute resolution, up to ~40 days long.
offsets = st.integers(min_value=0, max_value=100 * 96)
lengths = st.integers(min_value=0, max_value=40 * 96)


def _window(offset: int, length: int) -> tuple[datetime, datetime]:
    start = utc(2026, 10, 1) + timedelta(minutes=15 * offset)
    return start, start + timedelta(minutes=15 * length)


@FAST
@given(
    name=st.sampled_from(PROPERTY_FIXTURES),
    tz=st.sampled_from(ZONES),
    offset=offsets,
    length=lengths,
)
def test_property_every_occurrence_overlaps_window_and_is_sorted(
    name: str, tz: ZoneInfo, offset: int, length: int
) -> None:
    """For any window, each returned occurrence overlaps it and the list is sorted by start."""
    start, end = _window(offset, length)
    occurrences = parse(name, start, end, tz=tz, ics=ICS_BY_NAME[name])
    for occ in occurrences:
        if occ.end > occ.start:
            assert occ.start < end
            assert occ.end > start
        else:
            assert start <= occ.start < end
    assert [o.start for o in occurrences] == sorted(o.start for o in occurrences)


@FAST
@given(
    name=st.sampled_from(PROPERTY_FIXTURES),
    tz=st.sampled_from(ZONES),
    offset=offsets,
    length=lengths,
    cut=st.floats(min_value=0, max_value=1),
)
def test_property_split_window_union_equals_whole(
    name: str, tz: ZoneInfo, offset: int, length: int, cut: float
) -> None:
    """Splitting [a, c) at any b: occurrences of [a, b) ∪ [b, c) equal those of [a, c).

    Sound for every b: an occurrence overlapping [a, c) overlaps at least one half, one cut
    by b appears in both halves with the same key and value, and nothing outside [a, c) can
    overlap a half."""
    start, end = _window(offset, length)
    middle = start + (end - start) * cut
    ics = ICS_BY_NAME[name]
    whole = {o.key: o for o in parse(name, start, end, tz=tz, ics=ics)}
    halves = {o.key: o for o in parse(name, start, middle, tz=tz, ics=ics)}
    halves.update({o.key: o for o in parse(name, middle, end, tz=tz, ics=ics)})
    assert halves == whole


@FAST
@given(
    name=st.sampled_from(
        [WEEKLY, "event_dt_rr_weekly_new_york_dst", "event_dt_rr_cancelled_override"]
    ),
    tz_a=st.sampled_from(ZONES),
    tz_b=st.sampled_from(ZONES),
)
def test_property_zoned_events_do_not_depend_on_viewer_zone(
    name: str, tz_a: ZoneInfo, tz_b: ZoneInfo
) -> None:
    """Zoned timed occurrences are the same instants and keys from any viewer zone."""
    a = parse(name, tz=tz_a, ics=ICS_BY_NAME[name])
    b = parse(name, tz=tz_b, ics=ICS_BY_NAME[name])
    assert a == b


def _weekly_ics(first: datetime, count: int, excluded: list[int], zone: str) -> str:
    fmt = "%Y%m%dT%H%M%S"
    exdates = "".join(
        f"EXDATE;TZID={zone}:{(first + timedelta(weeks=i)).strftime(fmt)}\n" for i in excluded
    )
    return (
        "BEGIN:VCALENDAR\nPRODID:-//Yandex LLC//Yandex Calendar//EN\nVERSION:2.0\n"
        "BEGIN:VEVENT\nUID:weekly@test\nDTSTAMP:20261001T000000Z\n"
        f"DTSTART;TZID={zone}:{first.strftime(fmt)}\n"
        f"DTEND;TZID={zone}:{(first + timedelta(minutes=30)).strftime(fmt)}\n"
        f"RRULE:FREQ=WEEKLY;COUNT={count}\n{exdates}SUMMARY:Weekly\n"
        "END:VEVENT\nEND:VCALENDAR\n"
    )


@FAST
@given(
    count=st.integers(min_value=1, max_value=30),
    data=st.data(),
    day=st.integers(min_value=0, max_value=60),
    hour=st.integers(min_value=0, max_value=23),
    zone=st.sampled_from(["Europe/Moscow", "Europe/Berlin", "America/New_York"]),
    viewer=st.sampled_from(ZONES),
)
def test_property_weekly_count_minus_exdates(
    count: int, data: st.DataObject, day: int, hour: int, zone: str, viewer: ZoneInfo
) -> None:
    """A weekly RRULE with COUNT=N and k EXDATEs yields N - k occurrences, one week apart
    in local time, with distinct keys."""
    excluded = data.draw(st.lists(st.integers(0, count - 1), unique=True, max_size=count))
    first = datetime(2026, 10, 1, hour) + timedelta(days=day)  # wall time
    ics = _weekly_ics(first, count, excluded, zone)
    occurrences = parse("inline", utc(2026, 9, 1), utc(2027, 12, 31), tz=viewer, ics=ics)
    assert len(occurrences) == count - len(excluded)
    assert len({o.key for o in occurrences}) == len(occurrences)
    local = ZoneInfo(zone)
    expected = [
        (first + timedelta(weeks=i)).replace(tzinfo=local).astimezone(UTC)
        for i in range(count)
        if i not in excluded
    ]
    assert [o.start for o in occurrences] == expected
