"""Writing calendar objects: answers (PARTSTAT) and new meetings, read back by the parser."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from bot.core.ical import parse_occurrences
from bot.core.ical_write import (
    BOT_PRODID,
    NoSuchOccurrence,
    NotInvited,
    new_meeting,
    partstat_of,
    set_partstat,
)
from bot.core.model import Occurrence
from bot.errors import IcsError
from tests.ics_builder import MSK, event
from tests.ics_fixtures import load_ics

NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
ME = "me@yandex.ru"
NOV = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
WEEKLY = "event_dt_rr_weekly_moved_exdate"  # Tuesdays 10:00 MSK, 17 Nov excluded, 24 Nov moved


def occurrences(ics: str, *, me: str = ME, tz: ZoneInfo = MSK,
                window: tuple[datetime, datetime] = NOV) -> list[Occurrence]:
    """Every occurrence of one object in the window, as the bot reads it."""
    return parse_occurrences(ics, calendar="/cal/", href="/cal/x.ics", start=window[0],
                             end=window[1], tz=tz, me=me)


def answers(ics: str, me: str = ME) -> dict[str, str | None]:
    """recurrence_id → my_partstat for every occurrence."""
    return {o.recurrence_id: o.my_partstat for o in occurrences(ics, me=me)}


def without(text: str, pattern: str) -> str:
    """The text without the lines matching ``pattern`` (to compare the rest byte for byte)."""
    return "".join(line for line in text.splitlines(True) if not re.search(pattern, line))


def utc_key(local: datetime) -> str:
    """The recurrence_id the parser gives a Moscow-time slot."""
    return local.replace(tzinfo=MSK).astimezone(UTC).isoformat()


# -- the whole series or a single event ------------------------------------------------------


def test_series_answer_changes_master_and_every_override_and_nothing_else() -> None:
    """Answering a series changes my line in the master and in the moved override only."""
    ics = load_ics(WEEKLY)

    out = set_partstat(ics, ME, "TENTATIVE", None, now=NOW)

    assert set(answers(ics).values()) == {"ACCEPTED"}
    assert set(answers(out).values()) == {"TENTATIVE"}
    assert out.count("PARTSTAT=TENTATIVE;CN=Me Myself:mailto:me@yandex.ru") == 2
    assert without(out, "mailto:me@") == without(ics, "mailto:me@")  # the rest is byte-stable


def test_single_event_accept_drops_rsvp_and_keeps_crlf() -> None:
    """A CRLF single event: my line gets PARTSTAT=ACCEPTED without RSVP=TRUE; CRLF stays."""
    start = datetime(2026, 11, 5, 11, 0, tzinfo=UTC)
    ics = event("one@yandex.ru", start, start + timedelta(hours=1),
                attendees={"boss@yandex.ru": "ACCEPTED", ME: "NEEDS-ACTION"})
    ics = ics.replace("PARTSTAT=NEEDS-ACTION;", "PARTSTAT=NEEDS-ACTION;RSVP=TRUE;")

    out = set_partstat(ics, ME, "accepted", None, now=NOW)

    assert "ATTENDEE;PARTSTAT=ACCEPTED;CN=me:mailto:me@yandex.ru\r\n" in out
    assert "RSVP" not in out
    # The builder's VTIMEZONE has bare LF lines inside a CRLF document: each line keeps its own.
    assert out.count("\r\n") == ics.count("\r\n")
    assert out.count("\n") == ics.count("\n")
    (occurrence,) = occurrences(out)
    assert occurrence.my_partstat == "ACCEPTED"


def test_alias_address_and_missing_partstat() -> None:
    """me@ya.ru matches me@yandex.ru; a line without PARTSTAT gets one in front."""
    ics = load_ics("event_dt_attendees_answers")

    out = set_partstat(ics, "Dave@YA.ru", "DECLINED", None, now=NOW)

    assert "ATTENDEE;PARTSTAT=DECLINED;CN=Dave Null:mailto:dave@yandex.ru" in out
    assert partstat_of(out, "dave@yandex.ru", None) == "DECLINED"
    assert partstat_of(ics, "dave@yandex.ru", None) == "NEEDS-ACTION"
    assert partstat_of(out, "alice.smirnova@yandex.ru", None) == "ACCEPTED"


def test_quoted_parameters_and_long_lines_are_kept_and_refolded() -> None:
    """A quoted CN with ';' and ':' survives; a changed long line is folded at 75 octets."""
    start = datetime(2026, 11, 5, 11, 0, tzinfo=UTC)
    long_name = "Очень Длинное Имя Участника Встречи; отдел: разработка"
    ics = event("q@yandex.ru", start, start + timedelta(hours=1), extra=(
        f'ATTENDEE;PARTSTAT=NEEDS-ACTION;CN="{long_name}";ROLE=REQ-PARTICIPANT:mailto:{ME}'))

    out = set_partstat(ics, ME, "TENTATIVE", None, now=NOW)

    assert all(len(line.encode()) <= 75 for line in re.split(r"\r?\n", out))
    (occurrence,) = occurrences(out)
    (mine,) = [a for a in occurrence.attendees if a.email == ME]
    assert mine.partstat == "TENTATIVE"
    assert mine.name == long_name


def test_setting_the_same_answer_twice_changes_nothing_more() -> None:
    """set_partstat is idempotent."""
    ics = load_ics(WEEKLY)
    once = set_partstat(ics, ME, "DECLINED", None, now=NOW)

    assert set_partstat(once, ME, "DECLINED", None, now=NOW) == once


# -- one occurrence ------------------------------------------------------------------------


def test_one_occurrence_gets_a_new_override_and_the_others_stay() -> None:
    """Declining 10 Nov adds an override for that slot only; every other answer is unchanged."""
    ics = load_ics(WEEKLY)
    key = utc_key(datetime(2026, 11, 10, 10, 0))
    before = {o.recurrence_id: o for o in occurrences(ics)}

    out = set_partstat(ics, ME, "DECLINED", key, now=NOW)

    after = {o.recurrence_id: o for o in occurrences(out)}
    assert set(after) == set(before)
    assert after[key].my_partstat == "DECLINED"
    assert (after[key].start, after[key].end, after[key].title, after[key].link) == (
        before[key].start, before[key].end, before[key].title, before[key].link)
    assert {k: o.my_partstat for k, o in after.items() if k != key} == {
        k: o.my_partstat for k, o in before.items() if k != key}
    assert partstat_of(out, ME, key) == "DECLINED"
    assert partstat_of(out, ME, None) == "ACCEPTED"
    assert out.startswith(ics[: ics.rindex("END:VCALENDAR")])  # the old text is untouched


def test_new_override_is_a_copy_of_the_master_at_that_occurrence() -> None:
    """RECURRENCE-ID and DTSTART in the master's zone, DTEND shifted, DTSTAMP=now, no rules."""
    ics = load_ics(WEEKLY)

    out = set_partstat(ics, ME, "TENTATIVE", utc_key(datetime(2026, 12, 1, 10, 0)), now=NOW)

    block = out[out.rindex("BEGIN:VEVENT"):]
    assert block.startswith(
        "BEGIN:VEVENT\nRECURRENCE-ID;TZID=Europe/Moscow:20261201T100000\n"
        "DTSTART;TZID=Europe/Moscow:20261201T100000\n"
        "DTEND;TZID=Europe/Moscow:20261201T110000\nDTSTAMP:20261101T093000Z\n")
    added = icalendar.Calendar.from_ical(out).walk("VEVENT")[-1]
    assert int(added["SEQUENCE"]) == 2
    assert not {"RRULE", "RDATE", "EXDATE"} & set(added)
    assert str(added["UID"]) == "9kq2mrt0yandex.ru"


def test_existing_override_is_changed_in_place() -> None:
    """The moved 24 Nov occurrence already has an override: it changes, no VEVENT is added."""
    ics = load_ics(WEEKLY)
    key = utc_key(datetime(2026, 11, 24, 10, 0))

    out = set_partstat(ics, ME, "DECLINED", key, now=NOW)

    assert out.count("BEGIN:VEVENT") == ics.count("BEGIN:VEVENT")
    moved = next(o for o in occurrences(out) if o.recurrence_id == key)
    assert moved.my_partstat == "DECLINED"
    assert moved.start == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # still moved


def test_all_day_series_occurrence_uses_a_date_recurrence_id() -> None:
    """An all-day series: the override's RECURRENCE-ID, DTSTART and DTEND are dates."""
    ics = load_ics("event_d_rr_allday_weekly").replace(
        "TRANSP:TRANSPARENT\nEND:VEVENT", f"TRANSP:TRANSPARENT\nATTENDEE:mailto:{ME}\nEND:VEVENT", 1)

    out = set_partstat(ics, ME, "ACCEPTED", "2026-12-25", now=NOW)

    assert "RECURRENCE-ID;VALUE=DATE:20261225\nDTSTART;VALUE=DATE:20261225\n" in out
    assert "DTEND;VALUE=DATE:20261226\n" in out
    by_key = answers(out)
    assert by_key["2026-12-25"] == "ACCEPTED"
    assert by_key["2026-12-04"] == "NEEDS-ACTION"


def test_occurrence_after_a_dst_change_keeps_its_local_time() -> None:
    """New York weekly at 09:00: the slot after the November change is written at 09:00 EST."""
    ny = ZoneInfo("America/New_York")
    ics = load_ics("event_dt_rr_weekly_new_york_dst").replace(
        "LOCATION:", f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{ME}\nLOCATION:", 1)
    slot = datetime(2026, 11, 5, 9, 0, tzinfo=ny)
    window = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))

    out = set_partstat(ics, ME, "ACCEPTED", slot.astimezone(UTC).isoformat(), now=NOW)

    assert "RECURRENCE-ID;TZID=America/New_York:20261105T090000" in out
    assert "DTEND;TZID=America/New_York:20261105T093000" in out
    read = {o.recurrence_id: o for o in occurrences(out, tz=ny, window=window)}
    assert read[slot.astimezone(UTC).isoformat()].my_partstat == "ACCEPTED"
    assert read[slot.astimezone(UTC).isoformat()].start == slot.astimezone(UTC)
    assert sum(o.my_partstat == "ACCEPTED" for o in read.values()) == 1


def test_invited_to_one_instance_only_answers_that_override() -> None:
    """An object holding only an override (no master): both forms answer it."""
    ics = load_ics("event_dt_rr_orphan_override")
    key = utc_key(datetime(2026, 12, 1, 15, 0))

    assert partstat_of(set_partstat(ics, ME, "ACCEPTED", None, now=NOW), ME, None) == "ACCEPTED"
    assert partstat_of(set_partstat(ics, ME, "DECLINED", key, now=NOW), ME, key) == "DECLINED"


# -- refusals --------------------------------------------------------------------------------


def test_not_an_attendee_is_not_invited() -> None:
    """Somebody who is not listed cannot answer (the organizer alone is not an attendee)."""
    start = datetime(2026, 11, 5, 11, 0, tzinfo=UTC)
    ics = event("x@yandex.ru", start, start + timedelta(hours=1), organizer=ME,
                attendees={"guest@yandex.ru": "NEEDS-ACTION"})

    with pytest.raises(NotInvited):
        set_partstat(ics, ME, "ACCEPTED", None, now=NOW)
    with pytest.raises(NotInvited):
        set_partstat(load_ics(WEEKLY), "stranger@yandex.ru", "ACCEPTED",
                     utc_key(datetime(2026, 11, 10, 10, 0)), now=NOW)
    assert partstat_of(ics, ME, None) is None


def test_excluded_or_made_up_occurrence_is_refused() -> None:
    """The EXDATE'd 17 Nov, a Wednesday and a single event's 'occurrence' are no occurrences."""
    ics = load_ics(WEEKLY)

    for local in (datetime(2026, 11, 17, 10, 0), datetime(2026, 11, 11, 10, 0)):
        with pytest.raises(NoSuchOccurrence):
            set_partstat(ics, ME, "ACCEPTED", utc_key(local), now=NOW)
    with pytest.raises(NoSuchOccurrence):
        set_partstat(load_ics("event_dt_windows_tz"), ME, "ACCEPTED",
                     utc_key(datetime(2026, 11, 10, 10, 0)), now=NOW)


def test_bad_arguments_and_unreadable_objects() -> None:
    """Unknown PARTSTAT or naive now → ValueError; garbage → IcsError without its text."""
    ics = load_ics(WEEKLY)

    with pytest.raises(ValueError, match="unknown PARTSTAT"):
        set_partstat(ics, ME, "MAYBE", None, now=NOW)
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        set_partstat(ics, ME, "ACCEPTED", None, now=datetime(2026, 11, 1))
    with pytest.raises(IcsError) as info:
        set_partstat("BEGIN:VCALENDAR\nsecret stuff", ME, "ACCEPTED", None, now=NOW)
    assert "secret" not in str(info.value)


# -- new meetings ----------------------------------------------------------------------------


def meeting(**overrides: object) -> str:
    """A new meeting on 5 Nov 2026, 15:00-15:45 Moscow time, with two guests."""
    options: dict[str, object] = {
        "uid": "bot-123@yc-bot", "start": datetime(2026, 11, 5, 12, 0, tzinfo=UTC),
        "end": datetime(2026, 11, 5, 12, 45, tzinfo=UTC), "title": "Plan; Q4, *review*",
        "organizer": "Me@ya.ru", "organizer_name": "Me Myself",
        "guests": ["alice@yandex.ru", "bob@example.com", "ALICE@ya.ru", "me@yandex.ru"],
        "tz": MSK, "now": NOW,
    }
    options.update(overrides)
    return new_meeting(**options)  # type: ignore[arg-type]


def test_new_meeting_parses_with_organizer_guests_and_time_in_its_zone() -> None:
    """The bot's meeting reads back with its organizer, guests, title and zone-local times."""
    ics = meeting()

    (occurrence,) = occurrences(ics)

    assert occurrence.title == "Plan; Q4, *review*"
    assert occurrence.start == datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
    assert occurrence.end == datetime(2026, 11, 5, 12, 45, tzinfo=UTC)
    assert occurrence.organizer == ME
    assert occurrence.organized_by_me
    assert occurrence.organizer_name == "Me Myself"
    assert [(a.email, a.partstat) for a in occurrence.attendees] == [
        (ME, "ACCEPTED"), ("alice@yandex.ru", "NEEDS-ACTION"), ("bob@example.com", "NEEDS-ACTION")]
    assert occurrence.my_partstat == "ACCEPTED"
    assert "DTSTART;TZID=Europe/Moscow:20261105T150000" in ics
    assert "BEGIN:VTIMEZONE\r\nTZID:Europe/Moscow" in ics
    assert "SUMMARY:Plan\\; Q4\\, *review*" in ics


def test_new_meeting_asks_for_telemost_and_invites_with_rsvp() -> None:
    """X-TELEMOST-REQUIRED:TRUE when asked; guests get RSVP=TRUE; PRODID is the bot's."""
    cal = icalendar.Calendar.from_ical(meeting(description="Agenda:\n1. numbers"))
    (vevent,) = cal.walk("VEVENT")

    assert str(vevent["X-TELEMOST-REQUIRED"]) == "TRUE"
    assert str(cal["PRODID"]) == BOT_PRODID
    assert str(vevent["DESCRIPTION"]) == "Agenda:\n1. numbers"
    guests = [a for a in vevent["ATTENDEE"] if a.params["PARTSTAT"] == "NEEDS-ACTION"]
    assert [str(a.params["RSVP"]) for a in guests] == ["TRUE", "TRUE"]
    assert vevent["DTSTAMP"].dt == NOW
    assert "X-TELEMOST-REQUIRED" not in meeting(telemost=False)


def test_new_meeting_in_a_dst_zone_and_refusals() -> None:
    """A New York meeting is written in EST with its VTIMEZONE; bad times are refused."""
    ny = ZoneInfo("America/New_York")
    start = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    ics = meeting(start=start, end=start + timedelta(hours=1), tz=ny)

    assert "DTSTART;TZID=America/New_York:20261201T090000" in ics
    (occurrence,) = occurrences(ics, window=(start - timedelta(days=1), start + timedelta(days=1)))
    assert occurrence.start == start
    with pytest.raises(ValueError, match="must end after it starts"):
        meeting(end=datetime(2026, 11, 5, 12, 0, tzinfo=UTC))
    with pytest.raises(ValueError, match="must be aware datetimes"):
        meeting(start=datetime(2026, 11, 5, 12, 0))
    assert date(2026, 12, 1) == occurrence.start.astimezone(ny).date()
