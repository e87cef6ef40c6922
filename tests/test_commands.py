"""Command parsing: keywords, aliases, extra words, dates, ranges, bad input."""

import contextlib
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.commands import (
    parse_command,
    parse_date,
    parse_hhmm,
    parse_leads,
    parse_range,
    period_for,
)
from bot.errors import BadInput

TODAY = date(2026, 11, 27)


@pytest.mark.parametrize(
    ("text", "name", "args"),
    [
        ("help", "help", ()),
        ("INFO", "help", ()),
        ("помощь", "help", ()),
        ("show me today", "today", ()),
        ("what's on tomorrow?", "tomorrow", ()),
        ("Сегодня", "today", ()),
        ("что завтра?", "tomorrow", ()),
        ("неделя", "week", ()),
        ("month please", "month", ("please",)),
        ("connect ivan@ya.ru PaSsWoRd Europe/Moscow", "connect",
         ("ivan@ya.ru", "PaSsWoRd", "Europe/Moscow")),
        ("подключить ivan pw", "connect", ("ivan", "pw")),
        ("status", "check", ()),
        ("status on", "status", ("on",)),
        ("статус выкл", "status", ("выкл",)),
        ("check", "check", ()),
        ("проверка", "check", ()),
        ("calendars 1 3", "calendars", ("1", "3")),
        ("календари all", "calendars", ("all",)),
        ("next", "next", ()),
        ("daily 09:00 weekdays", "daily", ("09:00", "weekdays")),
        ("remind 10 1", "remind", ("10", "1")),
        ("language ru", "language", ("ru",)),
        ("язык en", "language", ("en",)),
        ("05.12.2026", "date", ("05.12.2026",)),
        ("date 2026-12-05", "date", ("2026-12-05",)),
        ("from 01.12.2026 to 15.12.2026", "range", ("01.12.2026", "15.12.2026")),
        ("с 01.12 по 05.12", "range", ("01.12", "05.12")),
        ("01.12.2026 - 05.12.2026", "range", ("01.12.2026", "05.12.2026")),
    ],
)
def test_parse_command(text: str, name: str, args: tuple[str, ...]) -> None:
    """Each form of the README's command table maps to its command, case preserved in arguments."""
    command = parse_command(text)
    assert (command.name, command.args) == (name, args)


def test_unknown_command_is_bad_input() -> None:
    """Text without a command word or a date is refused with the text quoted."""
    with pytest.raises(BadInput) as info:
        parse_command("make me a sandwich")
    assert info.value.key == "error.unknown_command"


def test_parse_date_forms() -> None:
    """dd.mm.yyyy, dd.mm (this year), dd.mm.yy and ISO all work."""
    assert parse_date("05.12.2026", TODAY) == date(2026, 12, 5)
    assert parse_date("5.12", TODAY) == date(2026, 12, 5)
    assert parse_date("05.12.27", TODAY) == date(2027, 12, 5)
    assert parse_date("2026-12-05", TODAY) == date(2026, 12, 5)


def test_impossible_date_is_refused() -> None:
    """31.02.2026 is a clear one-line error, not a traceback."""
    with pytest.raises(BadInput) as info:
        parse_date("31.02.2026", TODAY)
    assert info.value.key == "error.bad_date"
    assert info.value.params == {"value": "31.02.2026"}


def test_range_rules() -> None:
    """A reversed range and one over 366 days are refused; 366 days is fine."""
    with pytest.raises(BadInput) as info:
        parse_range(("10.12.2026", "01.12.2026"), TODAY)
    assert info.value.key == "error.range_reversed"
    with pytest.raises(BadInput) as info:
        parse_range(("01.01.2026", "02.01.2027"), TODAY)
    assert info.value.key == "error.range_too_long"
    assert parse_range(("01.01.2026", "01.01.2027"), TODAY) == (date(2026, 1, 1), date(2027, 1, 1))


def test_periods() -> None:
    """week is today + 6 days; month ends on the same day next month, clamped."""
    assert period_for("week", TODAY) == (TODAY, date(2026, 12, 3))
    assert period_for("month", TODAY) == (TODAY, date(2026, 12, 27))
    assert period_for("month", date(2027, 1, 31)) == (date(2027, 1, 31), date(2027, 2, 28))
    assert period_for("month", date(2026, 12, 15)) == (date(2026, 12, 15), date(2027, 1, 15))


def test_times_and_leads() -> None:
    """HH:MM is normalised; lead lists are distinct, sorted, bounded."""
    assert parse_hhmm("9:05") == "09:05"
    assert parse_hhmm("21.30") == "21:30"
    for bad in ("25:00", "9", "noon"):
        with pytest.raises(BadInput):
            parse_hhmm(bad)
    assert parse_leads(("10", "1", "10")) == (10, 1)
    assert parse_leads(("30,5",)) == (30, 5)
    for bad in (("-1",), ("abc",), ("2000",), ()):
        with pytest.raises(BadInput):
            parse_leads(bad)


@given(st.text(max_size=60))
def test_parser_never_crashes(text: str) -> None:
    """Any text yields a command or a BadInput, never another exception."""
    with contextlib.suppress(BadInput):
        parse_command(text)
