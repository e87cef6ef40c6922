"""End to end: the fake Mattermost server + Radicale behind the Yandex-quirk middleware + the
real, unmodified ``mmpy_bot.Bot`` built by ``bot.app.create_bot`` (what ``bot.py`` runs).
Assertions are on what reached the fake server."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e_world import World, both_databases
from tests.ics_builder import VTIMEZONE, event

pytestmark = pytest.mark.e2e
MSK = ZoneInfo("Europe/Moscow")

def _today_msk() -> datetime:
    return datetime.now(MSK).replace(hour=0, minute=0, second=0, microsecond=0)


# -- issue 2: a bot you can talk to -------------------------------------------------------------

def test_help_lists_commands(world: World) -> None:
    """`help` answers in the thread with every command and an example."""
    world.start()
    reply = world.say("help")
    for word in ("connect", "today", "calendars", "remind", "status on", "language"):
        assert word in reply["message"]


@both_databases
def test_connect_wrong_then_right_password(world: World, caplog: pytest.LogCaptureFixture) -> None:
    """A refused app password stores nothing; the right one connects; the password posts are
    deleted and no reply or log line ever quotes the password."""
    caplog.set_level("INFO")
    world.start()
    wrong = world.fake.user_says(world.user, f"connect {world.login} wrong-password-x")
    refusal = world.fake.wait_for_post(lambda p: "refused" in p["message"])
    assert "id.yandex.ru" in refusal["message"]
    assert world.fake.post(wrong)["delete_at"] > 0
    reply = world.say("check")
    assert "not connected" in reply["message"]
    world.connect()
    done = next(p for p in world.bot_posts() if "Connected" in p["message"])["message"]
    assert "Work" in done
    assert "Tasks" not in done
    assert "Europe/Moscow" in done
    assert "09:00" in done
    assert "10 min" in done
    assert all(world.password not in p["message"] and "wrong-password-x" not in p["message"]
               for p in world.bot_posts())
    assert any("deleted your message" in p["message"] for p in world.bot_posts())
    assert world.password not in caplog.text
    assert "wrong-password-x" not in caplog.text


def test_connect_in_a_channel_is_refused(world: World) -> None:
    """`connect` typed in a channel: refused, told to revoke, nothing stored."""
    world.fake.add_channel("town", "town-square", "O")
    world.start()
    world.fake.user_says(world.user, f"connect {world.login} {world.password}",
                         channel_id="town", mention_bot=True)
    reply = world.fake.wait_for_post(lambda p: "revoke" in p["message"])
    assert reply["channel_id"] == "town"
    assert world.say("check")["message"].startswith("Your Yandex Calendar is not connected")


def test_today_and_a_date_with_moved_occurrence_and_escaped_title(world: World) -> None:
    """`today` lists today's meetings in the user's zone with an escaped title; a date shows a
    moved occurrence of a weekly series at its new time and skips an EXDATE."""
    today = _today_msk()
    noon = today + timedelta(hours=12)
    world.radicale.put(world.login, world.calendar, "title.ics",
                       event("t1", noon, noon + timedelta(minutes=30), "@channel **x** Review"))
    first = today - timedelta(days=14) + timedelta(hours=10)
    moved_from = first + timedelta(days=21)
    moved_to = moved_from.replace(hour=15)
    excluded = first + timedelta(days=28)
    fmt = "%Y%m%dT%H%M%S"
    series = "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Yandex LLC//Yandex Calendar//EN", VTIMEZONE,
        "BEGIN:VEVENT", "UID:weekly-1", "DTSTAMP:20261101T000000Z",
        f"DTSTART;TZID=Europe/Moscow:{first.strftime(fmt)}",
        f"DTEND;TZID=Europe/Moscow:{(first + timedelta(hours=1)).strftime(fmt)}",
        "RRULE:FREQ=WEEKLY;COUNT=8", f"EXDATE;TZID=Europe/Moscow:{excluded.strftime(fmt)}",
        "SUMMARY:Weekly sync", "X-TELEMOST-CONFERENCE:https://telemost.yandex.ru/j/555",
        "END:VEVENT", "BEGIN:VEVENT", "UID:weekly-1", "DTSTAMP:20261101T000000Z",
        f"RECURRENCE-ID;TZID=Europe/Moscow:{moved_from.strftime(fmt)}",
        f"DTSTART;TZID=Europe/Moscow:{moved_to.strftime(fmt)}",
        f"DTEND;TZID=Europe/Moscow:{(moved_to + timedelta(hours=1)).strftime(fmt)}",
        "SUMMARY:Weekly sync", "END:VEVENT", "END:VCALENDAR", ""])
    world.radicale.put(world.login, world.calendar, "weekly.ics", series)
    world.start()
    world.connect()
    today_reply = world.say("what's on today?")["message"]
    assert "12:00–12:30" in today_reply
    assert "10:00–11:00 **Weekly sync**" in today_reply
    assert "@channel" not in today_reply
    assert "\\*\\*x\\*\\*" in today_reply
    moved = world.say(moved_to.strftime("%d.%m.%Y"))["message"]
    assert "15:00–16:00 **Weekly sync**" in moved
    assert "10:00" not in moved
    assert "telemost.yandex.ru/j/555" in moved  # the override inherits the series' link
    gone = world.say(f"date {excluded.strftime('%Y-%m-%d')}")["message"]
    assert "No meetings." in gone


def test_unreachable_server_at_connect_stores_nothing(world: World) -> None:
    """Yandex not answering at `connect`: one line saying so, no account stored."""
    world.start()
    world.radicale.quirks.fail_all(504)
    world.fake.user_says(world.user, f"connect {world.login} {world.password}")
    world.fake.wait_for_post(lambda p: "did not answer" in p["message"], timeout=30)
    world.radicale.quirks.reset_faults()
    assert "not connected" in world.say("today")["message"]


def test_russian_user_gets_russian_replies(world: World) -> None:
    """A user whose Mattermost locale is ru is answered in Russian."""
    world.fake.update_user(world.user, locale="ru")
    world.start()
    assert "Команды" in world.say("помощь")["message"]
    world.connect()
    assert "Встреч нет." in world.say("завтра")["message"] or "**" in world.say("завтра")["message"]
    assert "Не знаю команду" in world.say("абракадабра")["message"]


def test_bad_inputs_one_line_and_nothing_changed(world: World) -> None:
    """Bad dates, ranges, zones and calendar numbers get one line with the right form."""
    world.start()
    world.connect()
    cases = {
        "31.02.2026": "not a date",
        "10.12.2026 - 01.12.2026": "ends",
        "01.01.2026 - 05.01.2027": "366",
        "timezone Europe/Moskow": "did you mean `Europe/Moscow`",
        "calendars 9": "There is no calendar 9",
        "connect": "needs your login",
        "remind soon": "not a number",
    }
    for text, expected in cases.items():
        reply = world.say(text)["message"]
        assert expected in reply, (text, reply)
        assert "\n" not in reply
    # a lone argument may be a password typed without the login: deleted, answered at top level
    world.fake.user_says(world.user, "connect onlylogin")
    world.fake.wait_for_post(lambda p: "needs your login" in p["message"] and not p["root_id"])
    check = world.say("check")["message"]
    assert "Europe/Moscow" in check
    assert "reminders 10 min" in check


def test_disconnect_forgets_everything(world: World) -> None:
    """`disconnect` forgets the account; commands then ask to connect."""
    world.start()
    world.connect()
    assert "Disconnected" in world.say("disconnect")["message"]
    assert "not connected" in world.say("today")["message"]


# -- issue 3: notifications ---------------------------------------------------------------------

@both_databases
def test_reminder_with_telemost_link_once(world: World) -> None:
    """A meeting created a little over ten minutes ahead is reminded once with its Join link."""
    world.start()
    world.connect()
    world.say("remind 10")
    start = datetime.now(UTC) + timedelta(minutes=10, seconds=3)
    world.radicale.put(world.login, world.calendar, "soon.ics",
                       event("soon", start, start + timedelta(minutes=30), "Soon meeting",
                             telemost="https://telemost.yandex.ru/j/777"))
    # (between 09:00 and 11:00 in the user's zone the day's late agenda lists it too)
    def reminds(p: dict[str, Any]) -> bool:
        return "⏰" in p["message"] and "Soon meeting" in p["message"]

    reminder = world.fake.wait_for_post(reminds, timeout=20)
    assert "In 10 min" in reminder["message"]
    assert "[**Join**](https://telemost.yandex.ru/j/777)" in reminder["message"]
    world.fake.wait_for(lambda: False, timeout=2)
    assert len([p for p in world.bot_posts() if reminds(p)]) == 1


def test_status_put_with_block_expiry(world: World) -> None:
    """A meeting in progress sets "📆 In a meeting" expiring at its end."""
    world.start()
    world.connect()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    end = start + timedelta(minutes=45)
    world.radicale.put(world.login, world.calendar, "now.ics", event("now", start, end, "Now"))
    assert world.fake.wait_for(lambda: world.fake.custom_status(world.user), timeout=20)
    status = world.fake.custom_status(world.user)
    assert status["text"] == "In a meeting"
    assert status["emoji"] == "calendar"
    assert status["expires_at"].startswith(end.strftime("%Y-%m-%dT%H:%M:%S"))


@both_databases
def test_restart_between_poll_and_reminder(world: World) -> None:
    """The bot stopped after its poll and started again sends the reminder once."""
    world.start()
    world.connect()
    start = datetime.now(UTC) + timedelta(minutes=10, seconds=12)
    world.radicale.put(world.login, world.calendar, "r.ics",
                       event("r", start, start + timedelta(minutes=30), "Across restart"))
    world.fake.wait_for(lambda: False, timeout=4)  # a few polls store the meeting
    world.stop()
    world.start()
    world.fake.wait_for_post(lambda p: "Across restart" in p["message"], timeout=25)
    world.stop()
    world.start()
    world.fake.wait_for(lambda: False, timeout=2)
    assert len([p for p in world.bot_posts() if "Across restart" in p["message"]]) == 1


def test_401_gives_one_message_and_keeps_data(world: World) -> None:
    """A revoked app password: one message with the fix, nothing deleted."""
    world.start()
    world.connect()
    world.radicale.quirks.refuse_auth(world.login)
    world.fake.wait_for_post(lambda p: "refuses the stored app password" in p["message"],
                             timeout=15)
    world.fake.wait_for(lambda: False, timeout=3)
    told = [p for p in world.bot_posts() if "refuses the stored app password" in p["message"]]
    assert len(told) == 1
    check = world.say("check")["message"]
    assert world.login in check
    assert "Work" in check
    assert "password <new" in check


def test_504_every_second_request_does_not_stop_help(world: World) -> None:
    """CalDAV answering 504 to every second request: `help` still answers at once."""
    world.start()
    world.connect()
    world.radicale.quirks.fail_every(2)
    for _ in range(3):
        assert "connect" in world.say("help")["message"]
    assert "**" in world.say("today")["message"] or "No meetings" in world.say("today")["message"]


# -- issue 4: changes ---------------------------------------------------------------------------

@both_databases
def test_changes_after_connect(world: World) -> None:
    """No notices for existing meetings after connect; a move, a deletion, an addition and an
    attendee declining each give one message; touching only LAST-MODIFIED/DTSTAMP gives none."""
    tomorrow = _today_msk() + timedelta(days=1, hours=11)
    world.radicale.put(world.login, world.calendar, "m.ics",
                       event("m", tomorrow, tomorrow + timedelta(hours=1), "Move me"))
    world.radicale.put(world.login, world.calendar, "d.ics",
                       event("d", tomorrow, tomorrow + timedelta(hours=1), "Drop me"))
    mine = dict(organizer=world.login, attendees={world.login: "ACCEPTED",
                                                   "anna@ya.ru": "NEEDS-ACTION"})
    world.radicale.put(world.login, world.calendar, "o.ics",
                       event("o", tomorrow, tomorrow + timedelta(hours=1), "Mine", **mine))
    world.start()
    world.connect()
    world.say("remind off")
    world.say("status off")
    world.say("daily off")
    world.fake.wait_for(lambda: False, timeout=3)
    base = len(world.fake.posts)

    def settle() -> list[str]:
        nonlocal base
        world.fake.wait_for(lambda: False, timeout=3)
        new = [p["message"] for p in world.bot_posts(base)]
        base = len(world.fake.posts)
        return new

    assert settle() == []
    world.radicale.put(world.login, world.calendar, "m.ics",
                       event("m", tomorrow, tomorrow + timedelta(hours=1), "Move me",
                             stamp="20261126T120000Z"))
    assert settle() == []  # only DTSTAMP/LAST-MODIFIED changed
    later = tomorrow + timedelta(hours=3)
    world.radicale.put(world.login, world.calendar, "m.ics",
                       event("m", later, later + timedelta(hours=1), "Move me"))
    moved = settle()
    assert len(moved) == 1
    assert "Moved" in moved[0]
    assert "11:00–12:00" in moved[0]
    assert "14:00–15:00" in moved[0]
    world.radicale.delete(world.login, world.calendar + "d.ics")
    cancelled = settle()
    assert len(cancelled) == 1
    assert "Cancelled" in cancelled[0]
    assert "Drop me" in cancelled[0]
    world.radicale.put(world.login, world.calendar, "n.ics",
                       event("n", later, later + timedelta(hours=1), "Brand new"))
    added = settle()
    assert len(added) == 1
    assert "New meeting" in added[0]
    assert "Brand new" in added[0]
    mine["attendees"] = {world.login: "ACCEPTED", "anna@ya.ru": "DECLINED"}
    world.radicale.put(world.login, world.calendar, "o.ics",
                       event("o", tomorrow, tomorrow + timedelta(hours=1), "Mine", **mine))
    answered = settle()
    assert len(answered) == 1
    assert "anna" in answered[0]
    assert "declined" in answered[0]


def test_time_helper() -> None:
    """The test's own helper: midnight in Moscow."""
    assert _today_msk().time() == time(0)
