"""Address normalisation and join-link extraction (bot.core.links)."""

from __future__ import annotations

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.links import find_join_link, find_video_link, normalise_address
from tests.ics_fixtures import load_ics

FAST = settings(max_examples=60, deadline=None)


def _event(**props: str) -> icalendar.Event:
    event = icalendar.Event()
    for name, value in props.items():
        event.add(name.replace("_", "-"), value)
    return event


def _first_event(fixture: str) -> icalendar.Event:
    return icalendar.Calendar.from_ical(load_ics(fixture)).walk("VEVENT")[0]


# --- normalise_address ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("mailto:Me@Yandex.ru", "me@yandex.ru"),
        ("MAILTO:me@ya.ru", "me@yandex.ru"),
        ("MailTo: me@YANDEX.COM ", "me@yandex.ru"),
        ("me@yandex.by", "me@yandex.ru"),
        ("me@yandex.kz", "me@yandex.ru"),
        ("me@yandex.ua", "me@yandex.ru"),
        ("me@narod.ru", "me@yandex.ru"),
        ("me@company.ru", "me@company.ru"),
        ("me@mail.ya.ru", "me@mail.ya.ru"),
        ("<mailto:x@ya.ru>", "x@yandex.ru"),
        ("mailto:mailto:x@ya.ru", "x@yandex.ru"),
        ("", ""),
    ],
)
def test_normalise_address_examples(raw: str, expected: str) -> None:
    """mailto: goes, case folds, Yandex alias domains fold to yandex.ru."""
    assert normalise_address(raw) == expected


def test_normalise_address_accepts_vcaladdress() -> None:
    """An icalendar vCalAddress (what ORGANIZER/ATTENDEE parse to) normalises like text."""
    assert normalise_address(icalendar.vCalAddress("MAILTO:Alice@YA.RU")) == "alice@yandex.ru"


@FAST
@given(st.text(max_size=40))
def test_normalise_address_is_idempotent_on_any_text(value: str) -> None:
    """Normalising twice changes nothing, whatever the input."""
    once = normalise_address(value)
    assert normalise_address(once) == once


@FAST
@given(
    prefix=st.sampled_from(["", "mailto:", "MAILTO:", "MailTo:", " mailto: "]),
    local=st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True),
    domain=st.sampled_from(
        [
            "ya.ru",
            "YA.RU",
            "yandex.ru",
            "yandex.com",
            "Yandex.By",
            "yandex.kz",
            "yandex.ua",
            "narod.ru",
            "example.com",
        ]
    ),
)
def test_normalise_address_folds_yandex_aliases(prefix: str, local: str, domain: str) -> None:
    """Any spelling of a Yandex mailbox normalises to <local>@yandex.ru; others keep theirs."""
    result = normalise_address(f"{prefix}{local}@{domain}")
    expected_domain = "example.com" if domain == "example.com" else "yandex.ru"
    assert result == f"{local.lower()}@{expected_domain}"
    assert normalise_address(result) == result


# --- find_video_link -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://telemost.yandex.ru/j/123", "https://telemost.yandex.ru/j/123"),
        ("see https://telemost.360.yandex.ru/j/987.", "https://telemost.360.yandex.ru/j/987"),
        ("Zoom: https://us02web.zoom.us/j/855?pwd=ab,", "https://us02web.zoom.us/j/855?pwd=ab"),
        ("(https://zoom.us/j/1)", "https://zoom.us/j/1"),
        ("meet.google.com/abc-defg-hij", "https://meet.google.com/abc-defg-hij"),
        (
            "<https://teams.microsoft.com/l/meetup-join/19%3a>",
            "https://teams.microsoft.com/l/meetup-join/19%3a",
        ),
        ("https://teams.live.com/meet/9381", "https://teams.live.com/meet/9381"),
        ("https://meet.jit.si/Room!", "https://meet.jit.si/Room"),
        ("https://jitsi.example.org/Room", "https://jitsi.example.org/Room"),
        ("https://salutejazz.ru/calls/abc?psw=x;", "https://salutejazz.ru/calls/abc?psw=x"),
        ("**https://zoom.us/j/5**", "https://zoom.us/j/5"),
        ("[call](https://meet.google.com/x-y-z)", "https://meet.google.com/x-y-z"),
        ("https://example.com/a then https://zoom.us/j/2", "https://zoom.us/j/2"),
        ("https://calendar.yandex.ru/event?event_id=1", None),
        ("write to host@zoom.us/please", None),
        ("https://notzoom.us/j/1", None),
        ("https://zoom.us.evil.com/j/1", None),
        ("https://[broken/", None),
        ("", None),
        ("no links here.", None),
    ],
)
def test_find_video_link_examples(text: str, expected: str | None) -> None:
    """Known video hosts only; trailing punctuation stripped; bare links get https://."""
    assert find_video_link(text) == expected


def test_find_video_link_keeps_balanced_parentheses() -> None:
    """A closing parenthesis that belongs to the URL is kept."""
    assert find_video_link("go https://meet.jit.si/a(b) now") == "https://meet.jit.si/a(b)"


@FAST
@given(
    prose_before=st.text(alphabet="abc xyz,.!", max_size=20),
    prose_after=st.text(alphabet="abc xyz,.!", max_size=20),
    link=st.sampled_from(
        [
            "https://telemost.yandex.ru/j/12345678901234",
            "https://telemost.360.yandex.ru/j/555",
            "https://us06web.zoom.us/j/8551234?pwd=Qw1",
            "https://meet.google.com/abc-defg-hij",
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0",
            "https://meet.jit.si/TeamRoom",
            "https://salutejazz.ru/calls/room1",
        ]
    ),
    punct=st.sampled_from(["", ".", ",", ";", ":", "!", "?", ")", "...", "»"]),
)
def test_find_video_link_finds_link_in_any_prose(
    prose_before: str, prose_after: str, link: str, punct: str
) -> None:
    """A known link in prose is found exactly, whatever punctuation follows it."""
    text = f"{prose_before} {link}{punct} {prose_after}"
    assert find_video_link(text) == link


# --- find_join_link ------------------------------------------------------------------------


def test_join_link_prefers_telemost_property() -> None:
    """X-TELEMOST-CONFERENCE wins over links anywhere else."""
    event = _event(
        location="https://zoom.us/j/1",
        description="https://meet.google.com/a-b-c",
        x_telemost_conference="https://telemost.yandex.ru/j/42",
    )
    assert find_join_link(event) == "https://telemost.yandex.ru/j/42"


def test_join_link_property_order() -> None:
    """Without Telemost: CONFERENCE, then LOCATION, then DESCRIPTION, then URL."""
    full = {
        "conference": "https://meet.jit.si/conf",
        "location": "https://zoom.us/j/loc",
        "description": "https://meet.google.com/desc",
        "url": "https://teams.live.com/meet/url",
    }
    expected = list(full.values())
    for dropped in range(4):
        props = dict(list(full.items())[dropped:])
        assert find_join_link(_event(**props)) == expected[dropped]


def test_join_link_skips_non_video_values() -> None:
    """A LOCATION that is a room name is skipped and DESCRIPTION's link is used."""
    event = _event(location="Room 5", description="Dial in: https://zoom.us/j/9.")
    assert find_join_link(event) == "https://zoom.us/j/9"


def test_join_link_calendar_page_url_is_never_a_link() -> None:
    """The URL property pointing to calendar.yandex.ru is the event page, not a call."""
    event = _event(url="https://calendar.yandex.ru/event?event_id=1893760010")
    assert find_join_link(event) is None


def test_join_link_none_without_properties() -> None:
    """An event with no link-bearing property has no join link."""
    assert find_join_link(icalendar.Event()) is None


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("event_dt_telemost", "https://telemost.yandex.ru/j/54823016948213"),
        ("event_dt_zoom_in_description", "https://us02web.zoom.us/j/85512345678?pwd=aBcD1234"),
        ("event_dt_url_only", None),
        ("event_dt_utc", "https://meet.google.com/abc-defg-hij"),
        (
            "event_dt_windows_tz",
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjY2%40thread.v2/0?context=%7b%22Tid%22%3a%22x%22%7d",
        ),
    ],
)
def test_join_link_from_yandex_fixtures(fixture: str, expected: str | None) -> None:
    """Join links of the Yandex-shaped fixtures."""
    assert find_join_link(_first_event(fixture)) == expected
