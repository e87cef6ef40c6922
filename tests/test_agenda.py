"""Agenda messages (what each meeting line shows) rendered from Yandex-shaped ICS fixtures."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.agenda import (
    next_occurrence,
    range_bounds,
    render_agenda,
    render_line,
    render_next,
)
from bot.core.ical import parse_objects
from bot.core.markdown import POST_LIMIT, ZWSP, split_message
from bot.core.model import CANCELLED, CONFIRMED, Occurrence, RawObject
from bot.core.texts import day_title
from tests.ics_fixtures import fixture_names, load_ics

MSK = ZoneInfo("Europe/Moscow")
YEKT = ZoneInfo("Asia/Yekaterinburg")  # UTC+5, two hours ahead of Moscow
CALENDAR = "/calendars/me%40yandex.ru/events-1/"
ME = "me@yandex.ru"
TODAY = date(2026, 11, 27)  # a Friday
FAST = settings(max_examples=40, deadline=None)

TELEMOST_PLANNING = "https://telemost.yandex.ru/j/54823016948213"
TELEMOST_WEEKLY = "https://telemost.yandex.ru/j/71102938475620"
TELEMOST_DAILY = "https://telemost.360.yandex.ru/j/88001234567890"
ALL_FIXTURES = tuple(n for n in fixture_names() if n != "event_broken.ics")


# --- helpers -------------------------------------------------------------------------------


def variant(fixture: str, *replacements: tuple[str, str]) -> str:
    """A fixture's text with exact substitutions; each original must be present."""
    text = load_ics(fixture)
    for old, new in replacements:
        assert old in text, (fixture, old)
        text = text.replace(old, new)
    return text


def parse(
    *sources: str, first: date, last: date, tz: ZoneInfo = MSK
) -> list[Occurrence]:
    """Occurrences of fixtures (by name) or ICS texts in the local days [first, last]."""
    start, end = range_bounds(first, last, tz)
    objects = [
        RawObject(
            href=f"{CALENDAR}{index}.ics",
            etag=f'"{index}"',
            ics=src if src.startswith("BEGIN:VCALENDAR") else load_ics(src),
        )
        for index, src in enumerate(sources)
    ]
    errors: list[str] = []
    found = parse_objects(
        objects, calendar=CALENDAR, start=start, end=end, tz=tz, me=ME,
        on_error=lambda href, exc: errors.append(href),
    )
    assert errors == []
    return found


def agenda(
    *sources: str,
    first: date,
    last: date | None = None,
    tz: ZoneInfo = MSK,
    lang: str = "en",
    today: date = TODAY,
) -> str:
    last = first if last is None else last
    occurrences = parse(*sources, first=first, last=last, tz=tz)
    return render_agenda(occurrences, first=first, last=last, tz=tz, lang=lang, today=today)


def msk(prop: str, stamp: str) -> str:
    """A Moscow-time DTSTART/DTEND content line as Yandex writes it."""
    return f"{prop};TZID=Europe/Moscow:{stamp}"


def headings(text: str) -> list[str]:
    """Day titles of an agenda, in order."""
    return re.findall(r"^\*\*(.+)\*\*$", text, flags=re.MULTILINE)


def meeting_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.startswith("- ")]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def unescaped(text: str, chars: str) -> list[str]:
    """Characters of ``chars`` in ``text`` that no backslash escapes."""
    found = []
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] in chars:
            found.append(text[index])
        index += 1
    return found


# --- times in the user's zone --------------------------------------------------------------


def test_moscow_meeting_seen_from_moscow() -> None:
    """A Telemost meeting at 10:00 MSK: time span, title, location and a Join link."""
    text = agenda("event_dt_telemost", first=date(2026, 11, 3))
    assert text == (
        "**Tuesday, 3 November**\n"
        "- 10:00–10:30 **Планёрка команды** · Переговорная «Сатурн» · "
        f"[**Join**]({TELEMOST_PLANNING})"
    )


def test_same_moscow_meeting_seen_from_yekaterinburg() -> None:
    """The same meeting shows two hours later for a user in Yekaterinburg."""
    text = agenda("event_dt_telemost", first=date(2026, 11, 3), tz=YEKT, lang="ru")
    assert text == (
        "**Вторник, 3 ноября**\n"
        "- 12:00–12:30 **Планёрка команды** · Переговорная «Сатурн» · "
        f"[**Подключиться**]({TELEMOST_PLANNING})"
    )


def test_late_moscow_meeting_is_tomorrow_in_yekaterinburg() -> None:
    """22:30 MSK on Friday is 00:30 on Saturday in Yekaterinburg: grouped under Saturday."""
    late = variant(
        "event_dt_telemost",
        (msk("DTSTART", "20261103T100000"), msk("DTSTART", "20261127T223000")),
        (msk("DTEND", "20261103T103000"), msk("DTEND", "20261127T233000")),
    )
    in_moscow = agenda(late, first=TODAY, last=TODAY + timedelta(days=1))
    assert headings(in_moscow) == ["Today, Friday, 27 November"]
    assert "- 22:30–23:30 **Планёрка команды**" in in_moscow
    in_yekaterinburg = agenda(late, first=TODAY, last=TODAY + timedelta(days=1), tz=YEKT)
    assert headings(in_yekaterinburg) == ["Tomorrow, Saturday, 28 November"]
    assert "- 00:30–01:30 **Планёрка команды**" in in_yekaterinburg
    assert agenda(late, first=TODAY, tz=YEKT) == "**Today, Friday, 27 November**\nNo meetings."


def test_new_york_series_moves_for_moscow_when_new_york_leaves_summer_time() -> None:
    """09:00 New York is 16:00 MSK in October and 17:00 MSK after 1 November; a location that
    is the join link is not repeated."""
    text = agenda("event_dt_rr_weekly_new_york_dst", first=date(2026, 10, 22),
                  last=date(2026, 11, 12))
    assert meeting_lines(text) == [
        "- 16:00–16:30 **NY office hours** · [**Join**](https://meet.jit.si/NyOfficeHours)",
        "- 16:00–16:30 **NY office hours** · [**Join**](https://meet.jit.si/NyOfficeHours)",
        "- 17:00–17:30 **NY office hours** · [**Join**](https://meet.jit.si/NyOfficeHours)",
        "- 17:00–17:30 **NY office hours** · [**Join**](https://meet.jit.si/NyOfficeHours)",
    ]


def test_event_page_url_is_not_a_join_link() -> None:
    """An event with only the calendar page URL gets no Join link."""
    text = agenda("event_dt_url_only", first=date(2026, 11, 20))
    assert meeting_lines(text) == ["- 10:00–11:00 **Без ссылки**"]


def test_zoom_link_from_description_and_windows_zone() -> None:
    """Links found in prose become Join links; a Windows TZID is Moscow time."""
    zoom = agenda("event_dt_zoom_in_description", first=date(2026, 11, 19))
    assert meeting_lines(zoom) == [
        "- 17:00–18:00 **Partner call** · Online · "
        "[**Join**](https://us02web.zoom.us/j/85512345678?pwd=aBcD1234)"
    ]
    outlook = agenda("event_dt_windows_tz", first=date(2026, 11, 10))
    assert meeting_lines(outlook)[0].startswith(
        "- 10:00–11:00 **Imported from Outlook** · Microsoft Teams Meeting · "
        "[**Join**](https://teams.microsoft.com/"
    )


def test_event_without_end_shows_its_start_only() -> None:
    """DURATION gives an end; an event without DTEND or DURATION shows only its start."""
    text = agenda("event_dt_duration", first=date(2026, 12, 9))
    assert meeting_lines(text) == ["- 10:00–10:45 **With DURATION**", "- 12:00 **No end at all**"]


def test_zero_length_meeting_at_midnight_belongs_to_its_own_day() -> None:
    """A point-in-time event at 00:00 is listed on the day it starts, not the day before."""
    midnight = variant(
        "event_dt_duration",
        (msk("DTSTART", "20261209T120000"), msk("DTSTART", "20261209T000000")),
    )
    text = agenda(midnight, first=date(2026, 12, 8), last=date(2026, 12, 9))
    assert headings(text) == ["Wednesday, 9 December"]
    assert meeting_lines(text) == ["- 00:00 **No end at all**", "- 10:00–10:45 **With DURATION**"]


# --- the user's own answer -----------------------------------------------------------------

MY_DECLINED = "ATTENDEE;PARTSTAT=DECLINED;CN=Me Myself:mailto:me@yandex.ru"


@pytest.mark.parametrize(
    ("attendee", "lang", "answer"),
    [
        (MY_DECLINED, "en", "_you declined_"),
        (MY_DECLINED, "ru", "_вы отказались_"),
        ("ATTENDEE;PARTSTAT=TENTATIVE;CN=Me Myself:mailto:me@yandex.ru", "en", "_you said maybe_"),
        ("ATTENDEE;PARTSTAT=TENTATIVE;CN=Me Myself:mailto:me@yandex.ru", "ru", "_вы под вопросом_"),
        ("ATTENDEE;PARTSTAT=NEEDS-ACTION;CN=Me Myself:mailto:me@yandex.ru", "en",
         "_you have not answered_"),
        ("ATTENDEE;PARTSTAT=NEEDS-ACTION;CN=Me Myself:mailto:me@yandex.ru", "ru",
         "_вы не ответили_"),
        # A missing PARTSTAT means NEEDS-ACTION; Yandex may write me as @ya.ru.
        ("ATTENDEE;CN=Me Myself:mailto:Me@ya.ru", "en", "_you have not answered_"),
    ],
)
def test_my_answer_is_shown_when_not_accepted(attendee: str, lang: str, answer: str) -> None:
    """Declined, tentative and unanswered invitations say so, in English and Russian."""
    ics = variant("event_dt_declined_by_me", (MY_DECLINED, attendee))
    occ, = parse(ics, first=date(2026, 11, 23), last=date(2026, 11, 23))
    line = render_line(occ, MSK, lang)
    assert line.startswith("- 16:00–17:00 **Optional demo** · [**")
    assert line.endswith(f"(https://telemost.yandex.ru/j/12093847561203) · {answer}")


def test_accepted_meeting_shows_no_answer() -> None:
    """An accepted invitation has no answer note."""
    accepted = MY_DECLINED.replace("DECLINED", "ACCEPTED")
    ics = variant("event_dt_declined_by_me", (MY_DECLINED, accepted))
    occ, = parse(ics, first=date(2026, 11, 23), last=date(2026, 11, 23))
    assert render_line(occ, MSK, "en") == (
        "- 16:00–17:00 **Optional demo** · [**Join**](https://telemost.yandex.ru/j/12093847561203)"
    )


def test_organizer_and_uninvited_events_show_no_answer() -> None:
    """My own meeting and an event I am not an attendee of carry no answer note."""
    mine = agenda("event_dt_attendees_answers", first=date(2026, 11, 5))
    assert meeting_lines(mine) == [
        "- 14:00–15:00 **Обзор квартала** · [**Join**](https://telemost.yandex.ru/j/30495817263548)"
    ]
    lunch = agenda("event_dt_transparent", first=date(2026, 11, 25), lang="ru")
    assert meeting_lines(lunch) == ["- 13:00–14:00 **Обед**"]


def test_orphan_override_invitation_not_answered() -> None:
    """Invited to one instance of somebody's series: shown with its link and 'not answered'."""
    text = agenda("event_dt_rr_orphan_override", first=date(2026, 12, 1), lang="ru")
    assert meeting_lines(text) == [
        "- 16:00–17:00 **Invited to one instance** · "
        "[**Подключиться**](https://telemost.yandex.ru/j/44012398475601) · _вы не ответили_"
    ]


# --- all-day events ------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "words"), [("en", "all day"), ("ru", "весь день")])
def test_all_day_event_listed_first(lang: str, words: str) -> None:
    """An all-day event says "all day" and comes before the day's timed meetings."""
    text = agenda("event_d_allday", "event_dt_rr_weekly_moved_exdate", first=date(2026, 12, 1),
                  lang=lang)
    lines = meeting_lines(text)
    assert lines[0] == f"- {words} **День рождения компании**"
    assert lines[1].startswith("- 10:00–11:00 **Weekly sync** · [**")
    assert len(lines) == 2


@pytest.mark.parametrize("tz", [MSK, YEKT, ZoneInfo("America/New_York")])
def test_multi_day_all_day_event_on_each_of_its_days(tz: ZoneInfo) -> None:
    """7–10 December (DTEND 11th, exclusive) shows on each of its four days in any zone."""
    text = agenda("event_d_allday_multiday", first=date(2026, 12, 6), last=date(2026, 12, 12),
                  tz=tz)
    assert headings(text) == [
        "Monday, 7 December",
        "Tuesday, 8 December",
        "Wednesday, 9 December",
        "Thursday, 10 December",
    ]
    assert meeting_lines(text) == ["- all day **Конференция HighLoad** · Москва, Сколково"] * 4


def test_weekly_all_day_series_with_exdate_and_moved_day() -> None:
    """The all-day Friday series skips its EXDATE and shows the override on its new day."""
    text = agenda("event_d_rr_allday_weekly", first=date(2026, 12, 1), last=date(2026, 12, 31))
    assert headings(text) == [
        "Friday, 4 December",
        "Saturday, 19 December",
        "Friday, 25 December",
    ]
    assert meeting_lines(text) == [
        "- all day **Day off Friday**",
        "- all day **Day off Saturday instead**",
        "- all day **Day off Friday**",
    ]


# --- empty days and ranges -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "**Tomorrow, Saturday, 28 November**\nNo meetings."),
        ("ru", "**Завтра, суббота, 28 ноября**\nВстреч нет."),
    ],
)
def test_empty_day_says_so(lang: str, expected: str) -> None:
    """A day without meetings (all fixtures loaded) says so under its title."""
    assert agenda(*ALL_FIXTURES, first=date(2026, 11, 28), lang=lang) == expected


def test_week_lists_only_days_with_meetings() -> None:
    """`week` from Friday 27 November: only Tuesday and Wednesday have meetings."""
    text = agenda(*ALL_FIXTURES, first=TODAY, last=TODAY + timedelta(days=6))
    assert headings(text) == ["Tuesday, 1 December", "Wednesday, 2 December"]
    assert "No meetings" not in text
    assert [re.findall(r"\*\*(.+?)\*\*", line)[0] for line in meeting_lines(text)] == [
        "День рождения компании",
        "Weekly sync",
        "Invited to one instance",
        "Floating standup",
    ]


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "No meetings from 28.11.2026 to 30.11.2026."),
        ("ru", "Нет встреч с 28.11.2026 по 30.11.2026."),
    ],
)
def test_range_without_meetings_says_so(lang: str, expected: str) -> None:
    """A weekend range with nothing in it is one line."""
    text = agenda(*ALL_FIXTURES, first=date(2026, 11, 28), last=date(2026, 11, 30), lang=lang)
    assert text == expected


def test_unreadable_events_are_counted() -> None:
    """Objects that could not be parsed are mentioned under the agenda."""
    text = render_agenda([], first=TODAY, last=TODAY, tz=MSK, lang="en", today=TODAY, skipped=2)
    assert text == (
        "**Today, Friday, 27 November**\nNo meetings.\n\n"
        "(2 event(s) could not be read and are not shown.)"
    )


# --- cancelled -----------------------------------------------------------------------------


def test_cancelled_meeting_struck_through_without_join_link() -> None:
    """A STATUS:CANCELLED meeting stays listed, marked cancelled, with no Join link."""
    text = agenda("event_dt_cancelled", first=date(2026, 11, 12))
    assert text == "**Thursday, 12 November**\n- ~~11:00–12:00 Отменённая встреча~~ · cancelled"
    assert "telemost" not in text


def test_cancelled_occurrence_of_a_daily_series() -> None:
    """One cancelled day of a daily stand-up: that day says cancelled, the others have Join."""
    text = agenda("event_dt_rr_cancelled_override", first=date(2026, 11, 17),
                  last=date(2026, 11, 19), lang="ru")
    assert text == (
        "**Вторник, 17 ноября**\n"
        f"- 09:30–09:45 **Daily** · [**Подключиться**]({TELEMOST_DAILY})\n\n"
        "**Среда, 18 ноября**\n"
        "- ~~09:30–09:45 Daily~~ · отменена\n\n"
        "**Четверг, 19 ноября**\n"
        f"- 09:30–09:45 **Daily** · [**Подключиться**]({TELEMOST_DAILY})"
    )


# --- calendar text is data -----------------------------------------------------------------


def test_markdown_and_mentions_in_title_show_literally() -> None:
    """`@channel **urgent** …` pings nobody and adds no formatting of its own."""
    text = agenda("event_dt_markdown_title", first=date(2026, 11, 6))
    line, = meeting_lines(text)
    assert "@channel" not in text
    assert "@here" not in text
    assert re.search(f"@(?!{ZWSP})", text) is None
    assert f"@{ZWSP}channel" in line
    assert f"@{ZWSP}here" in line
    assert "\\*\\*urgent\\*\\*" in line
    assert "[link](http://a)" not in line
    # The only live Markdown is ours: the bold around the title.
    assert unescaped(line, "*") == ["*"] * 4
    assert unescaped(line, "`_[]()~") == []
    assert line.startswith("- 12:00–12:30 **@")


# --- recurring series ----------------------------------------------------------------------


def test_weekly_series_moved_occurrence_and_exdate() -> None:
    """Weekly Tuesday sync: 17 Nov excluded, 24 Nov moved to Thursday 26 Nov 15:00 and still
    joinable through the series' Telemost link."""
    text = agenda("event_dt_rr_weekly_moved_exdate", first=date(2026, 11, 9),
                  last=date(2026, 12, 1))
    assert headings(text) == [
        "Tuesday, 10 November",
        "Thursday, 26 November",
        "Tuesday, 1 December",
    ]
    join = f"[**Join**]({TELEMOST_WEEKLY})"
    assert meeting_lines(text) == [
        f"- 10:00–11:00 **Weekly sync** · {join}",
        f"- 15:00–16:00 **Weekly sync** · {join}",
        f"- 10:00–11:00 **Weekly sync** · {join}",
    ]


def test_excluded_and_moved_days_are_empty() -> None:
    """The EXDATE day and the moved occurrence's original day say "No meetings."."""
    for day in (date(2026, 11, 17), date(2026, 11, 24)):
        text = agenda("event_dt_rr_weekly_moved_exdate", first=day)
        assert text.endswith("\nNo meetings."), day


# --- day titles ----------------------------------------------------------------------------


def test_russian_day_titles() -> None:
    """Сегодня/Завтра in front, weekday in lower case after them, months in the genitive."""
    today = variant(
        "event_dt_telemost",
        (msk("DTSTART", "20261103T100000"), msk("DTSTART", "20261127T100000")),
        (msk("DTEND", "20261103T103000"), msk("DTEND", "20261127T103000")),
    )
    tomorrow = variant(
        "event_dt_transparent",
        (msk("DTSTART", "20261125T130000"), msk("DTSTART", "20261128T130000")),
        (msk("DTEND", "20261125T140000"), msk("DTEND", "20261128T140000")),
    )
    text = agenda(today, tomorrow, "event_d_allday", first=TODAY, last=date(2026, 12, 1),
                  lang="ru")
    assert headings(text) == [
        "Сегодня, пятница, 27 ноября",
        "Завтра, суббота, 28 ноября",
        "Вторник, 1 декабря",
    ]
    january = render_agenda([], first=date(2027, 1, 4), last=date(2027, 1, 4), tz=MSK, lang="ru",
                            today=TODAY)
    assert january == "**Понедельник, 4 января 2027**\nВстреч нет."


# --- long answers --------------------------------------------------------------------------


def daily_series(uid: str, title: str, hour: int) -> str:
    """A Yandex daily series from 27 November at ``hour`` MSK with a Telemost link."""
    return variant(
        "event_dt_telemost",
        ("UID:4sjn1f7eyandex.ru", f"UID:{uid}yandex.ru"),
        ("SUMMARY:Планёрка команды", f"SUMMARY:{title}"),
        (msk("DTSTART", "20261103T100000"),
         f"DTSTART;TZID=Europe/Moscow:20261127T{hour:02d}0000"),
        (msk("DTEND", "20261103T103000"),
         f"DTEND;TZID=Europe/Moscow:20261127T{hour:02d}3000\nRRULE:FREQ=DAILY;COUNT=40"),
    )


def test_month_of_meetings_splits_below_post_limit() -> None:
    """`month` with five meetings a day: several posts, each under the limit, each starting
    with a day title, and every line kept in order."""
    series = [daily_series(f"s{hour}", f"Встреча {hour}", hour) for hour in range(9, 14)]
    text = agenda(*series, first=TODAY, last=date(2026, 12, 27), lang="ru")
    assert len(headings(text)) == 31
    assert len(meeting_lines(text)) == 31 * 5
    assert len(text) > POST_LIMIT
    posts = split_message(text)
    assert len(posts) > 1
    assert all(len(post) <= POST_LIMIT for post in posts)
    assert all(post.startswith("**") for post in posts)  # a day never continues headless
    kept = [line for post in posts for line in post.split("\n") if line.strip()]
    assert kept == [line for line in text.split("\n") if line.strip()]


# --- next meeting --------------------------------------------------------------------------


def next_from(now: datetime, *sources: str) -> Occurrence | None:
    occurrences = parse(*sources, first=date(2026, 10, 1), last=date(2026, 12, 31))
    return next_occurrence(occurrences, now)


def test_next_skips_a_started_meeting() -> None:
    """At 17:30 MSK the 17:00 partner call has started: next is the 09:30 stand-up."""
    occ = next_from(utc(2026, 11, 19, 14, 30), *ALL_FIXTURES)
    assert occ is not None
    assert (occ.title, occ.start) == ("Daily", utc(2026, 11, 20, 6, 30))


def test_next_skips_cancelled_and_excluded() -> None:
    """09:45 MSK on 17 Nov: the weekly 10:00 is excluded, the 18th's stand-up cancelled."""
    occ = next_from(utc(2026, 11, 17, 6, 45), *ALL_FIXTURES)
    assert occ is not None
    assert (occ.title, occ.start) == ("Daily", utc(2026, 11, 19, 6, 30))


def test_next_skips_a_declined_meeting() -> None:
    """The declined 16:00 demo is skipped; next is Wednesday's lunch."""
    occ = next_from(utc(2026, 11, 23, 10, 0), *ALL_FIXTURES)
    assert occ is not None
    assert (occ.title, occ.start) == ("Обед", utc(2026, 11, 25, 10, 0))


def test_next_meeting_message() -> None:
    """`next` on Monday 30 Nov: tomorrow's 10:00 weekly sync, not the all-day birthday."""
    now = utc(2026, 11, 30, 9, 0)
    occ = next_from(now, *ALL_FIXTURES)
    assert occ is not None
    assert render_next(occ, MSK, "en", date(2026, 11, 30)) == (
        "**Tomorrow, Tuesday, 1 December**\n"
        f"- 10:00–11:00 **Weekly sync** · [**Join**]({TELEMOST_WEEKLY})"
    )
    assert render_next(occ, YEKT, "ru", date(2026, 11, 30)) == (
        "**Завтра, вторник, 1 декабря**\n"
        f"- 12:00–13:00 **Weekly sync** · [**Подключиться**]({TELEMOST_WEEKLY})"
    )


def test_next_falls_back_to_a_running_all_day_event_shown_under_today() -> None:
    """Only all-day events left: the conference that began yesterday is shown under today."""
    now = utc(2026, 12, 8, 9, 0)
    occ = next_from(now, "event_d_allday_multiday", "event_d_rr_allday_weekly")
    assert occ is not None
    assert occ.title == "Конференция HighLoad"
    assert render_next(occ, MSK, "en", date(2026, 12, 8)) == (
        "**Today, Tuesday, 8 December**\n- all day **Конференция HighLoad** · Москва, Сколково"
    )


def test_next_skips_a_declined_all_day_event() -> None:
    """A declined all-day event is not "next"; the following all-day one is."""
    declined = variant(
        "event_d_allday",
        ("ORGANIZER;CN=Ирина Соколова:mailto:sokolova@yandex.ru",
         "ORGANIZER;CN=Ирина Соколова:mailto:sokolova@yandex.ru\n"
         "ATTENDEE;PARTSTAT=DECLINED;CN=Me Myself:mailto:me@yandex.ru"),
    )
    occ = next_from(utc(2026, 11, 30, 9, 0), declined, "event_d_rr_allday_weekly")
    assert occ is not None
    assert occ.title == "Day off Friday"


def test_no_next_meeting() -> None:
    """After the last fixture meeting there is nothing next."""
    assert next_from(utc(2026, 12, 31, 20, 0), *ALL_FIXTURES) is None


# --- properties ----------------------------------------------------------------------------

ZONES = [MSK, YEKT, ZoneInfo("America/New_York"), ZoneInfo("America/Santiago"),
         ZoneInfo("Asia/Kathmandu"), ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Pacific/Chatham")]
# 25 Oct – 8 Nov 2026 holds the European and US autumn DST changes.
BASE = utc(2026, 10, 24, 0, 0)
FIRST = date(2026, 10, 25)
LAST = date(2026, 11, 7)


def occurrence(index: int, start: datetime, end: datetime, *, all_day: bool, title: str,
               location: str = "", cancelled: bool = False) -> Occurrence:
    return Occurrence(
        calendar=CALENDAR, uid=f"u{index}", recurrence_id="", start=start, end=end,
        all_day=all_day, title=title, location=location,
        status=CANCELLED if cancelled else CONFIRMED,
    )


@st.composite
def schedules(draw: st.DrawFn) -> tuple[ZoneInfo, list[Occurrence]]:
    tz = draw(st.sampled_from(ZONES))
    items: list[Occurrence] = []
    for index in range(draw(st.integers(0, 12))):
        if draw(st.booleans()):
            first = FIRST + timedelta(days=draw(st.integers(-2, 15)))
            days = draw(st.integers(1, 4))
            start = datetime.combine(first, time(0), tzinfo=tz)
            end = datetime.combine(first + timedelta(days=days), time(0), tzinfo=tz)
            all_day = True
        else:
            start = BASE + timedelta(minutes=draw(st.integers(0, 17 * 24 * 60)))
            end = start + timedelta(minutes=draw(st.sampled_from([0, 15, 30, 60, 600, 2000])))
            all_day = False
        items.append(occurrence(index, start, end, all_day=all_day, title=f"m{index}z",
                                cancelled=draw(st.booleans())))
    return tz, items


def local_days(occ: Occurrence, tz: ZoneInfo) -> set[date]:
    """Local dates an occurrence touches, computed from UTC instants ([start, end))."""
    first = occ.start.astimezone(tz).date()
    if occ.end <= occ.start:
        return {first}
    last = (occ.end.astimezone(UTC) - timedelta(microseconds=1)).astimezone(tz).date()
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


@FAST
@given(schedules(), st.sampled_from(["en", "ru"]))
def test_every_occurrence_listed_once_per_day_it_overlaps(
    schedule: tuple[ZoneInfo, list[Occurrence]], lang: str
) -> None:
    """Each occurrence appears exactly once under every day of the range it overlaps, and
    only days with meetings get a title."""
    tz, items = schedule
    text = render_agenda(items, first=FIRST, last=LAST, tz=tz, lang=lang, today=FIRST)
    titles = {day_title(FIRST + timedelta(days=n), lang, FIRST): FIRST + timedelta(days=n)
              for n in range((LAST - FIRST).days + 1)}
    seen: dict[date, list[int]] = {}
    for block in text.split("\n\n"):
        head, *lines = block.split("\n")
        if head.startswith("**"):
            day = titles[head.strip("*")]
            seen[day] = sorted(int(n) for line in lines for n in re.findall(r"\bm(\d+)z\b", line))
    expected: dict[date, list[int]] = {}
    for index, occ in enumerate(items):
        for day in local_days(occ, tz):
            if FIRST <= day <= LAST:
                expected.setdefault(day, []).append(index)
    assert seen == expected
    if not expected:
        assert "\n" not in text


# Mostly Markdown and mention syntax, with any other character mixed in.
CALENDAR_TEXT = st.text(
    alphabet=st.one_of(st.sampled_from("@*_`[]()#|>~\\!:<-. \n\tachnel"), st.characters()),
    max_size=40,
)


@FAST
@given(
    st.lists(st.tuples(CALENDAR_TEXT, CALENDAR_TEXT), min_size=1, max_size=8),
    st.sampled_from(["en", "ru"]),
)
def test_calendar_text_never_pings_or_breaks_lines(
    texts: list[tuple[str, str]], lang: str
) -> None:
    """Whatever a title or location holds: no live @mention, one line per meeting, and the
    title adds no unescaped Markdown."""
    items = [
        occurrence(index, BASE + timedelta(hours=30 + 24 * index, minutes=1),
                   BASE + timedelta(hours=31 + 24 * index), all_day=False, title=title,
                   location=location)
        for index, (title, location) in enumerate(texts)
    ]
    text = render_agenda(items, first=FIRST, last=LAST, tz=MSK, lang=lang, today=FIRST)
    assert re.search(f"@(?!{ZWSP})", text) is None
    lines = meeting_lines(text)
    assert len(lines) == len(items)
    for line in lines:
        title_part = line.split(" · ")[0].split(" **", 1)[1]
        assert title_part.endswith("**")
        assert unescaped(title_part[:-2], "*_`[]()#|>~\\") == []


@FAST
@given(schedules(), st.integers(120, POST_LIMIT))
def test_split_agenda_keeps_every_line(
    schedule: tuple[ZoneInfo, list[Occurrence]], limit: int
) -> None:
    """Splitting an agenda at any limit keeps every non-blank line, in order, within the limit."""
    tz, items = schedule
    text = render_agenda(items, first=FIRST, last=LAST, tz=tz, lang="ru", today=FIRST)
    posts = split_message(text, limit)
    assert all(len(post) <= limit for post in posts)
    kept = [line for post in posts for line in post.split("\n") if line.strip()]
    assert kept == [line for line in text.split("\n") if line.strip()]
