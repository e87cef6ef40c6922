"""End to end, the service side: commands posted while the bot was away, Mattermost down,
two months of horizon, `meet`, `stats` and `/metrics` — the fake Mattermost, Radicale behind
the Yandex middleware and the real ``mmpy_bot.Bot`` from ``bot.app.create_bot``."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e_world import World, both_databases
from tests.ics_builder import event

pytestmark = pytest.mark.e2e





def _settle(world: World, seconds: float = 3) -> None:
    world.fake.wait_for(lambda: False, timeout=seconds)


# -- nothing asked for is lost while the bot is away ---------------------------------------------

@both_databases
def test_command_posted_while_stopped_is_answered_after_start(world: World) -> None:
    """A command typed while the bot was stopped (and one 20 minutes ago, too old) is answered
    once after it starts; a restart does not answer it again."""
    world.fake.user_says(world.user, "help", at_ms=int((time.time() - 20 * 60) * 1000))
    missed = world.fake.user_says(world.user, "help")  # nobody connected: stored, not heard
    world.start()
    world.fake.wait_for_post(lambda p: p["props"].get("yc_reply_to") == missed, timeout=15)
    world.stop()
    world.start()
    _settle(world)
    replies = [p for p in world.bot_posts() if p["props"].get("yc_reply_to")]
    assert [p["props"]["yc_reply_to"] for p in replies] == [missed]


def test_mattermost_down_reconnects_and_delivers_what_fell_due(world: World) -> None:
    """Mattermost answers 502 for a while: the bot reconnects by itself (5 s apart, no spin),
    then posts the reminder that fell due meanwhile; a command typed meanwhile is answered."""
    world.env["YC_POLL_SECONDS"] = "1"
    world.start()
    world.connect()
    world.wait_synced()
    world.say("remind 10")
    start = datetime.now(UTC) + timedelta(minutes=10, seconds=8)
    world.radicale.put(world.login, world.calendar, "d.ics",
                       event("d", start, start + timedelta(minutes=30), "During outage"))
    _settle(world, 2)  # polled: the reminder is due in ~6 s
    world.fake.set_down(True)
    asked = world.fake.user_says(world.user, "today")  # stored while the server is "down"
    requests_before = len(world.fake.requests)
    _settle(world, 12)
    during = len(world.fake.requests) - requests_before
    assert during < 60, during  # a few log-in attempts and failed posts, not a spin
    world.fake.set_down(False)
    reminder = world.fake.wait_for_post(lambda p: "During outage" in p["message"]
                                        and "⏰" in p["message"], timeout=30)
    assert reminder["create_at"] / 1000 < start.timestamp()
    world.fake.wait_for_post(lambda p: p["props"].get("yc_reply_to") == asked, timeout=20)
    _settle(world)
    assert len([p for p in world.bot_posts() if "During outage" in p["message"]
                and "⏰" in p["message"]]) == 1


# -- every meeting within the horizon --------------------------------------------------------------

def test_far_invitation_moved_and_cancelled_meetings_are_announced(world: World) -> None:
    """An invitation 20 days out is announced once with its date; a meeting 40 days out moved,
    and another cancelled, are announced too."""
    far = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    world.radicale.put(world.login, world.calendar, "move.ics",
                       event("move", far, far + timedelta(hours=1), "Offsite"))
    world.radicale.put(world.login, world.calendar, "drop.ics",
                       event("drop", far, far + timedelta(hours=1), "Conference"))
    world.start()
    world.connect()
    world.wait_synced()
    base = len(world.fake.posts)
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=20)
    world.radicale.put(world.login, world.calendar, "inv.ics", event(
        "inv", soon, soon + timedelta(hours=1), "Board meeting", organizer="boss@yandex.ru",
        attendees={world.login: "NEEDS-ACTION"}))
    invitation = world.fake.wait_for_post(lambda p: "Board meeting" in p["message"], timeout=20)
    day = soon.astimezone(world_zone()).day
    assert f" {day} " in invitation["message"]
    assert "Invitation" in invitation["message"]
    later = far + timedelta(days=2)
    world.radicale.put(world.login, world.calendar, "move.ics",
                       event("move", later, later + timedelta(hours=1), "Offsite",
                             stamp="20261125T100000Z"))
    world.radicale.delete(world.login, world.calendar + "drop.ics")
    world.fake.wait_for_post(lambda p: ("Offsite" in p["message"] and "Moved" in p["message"])
                             or ("Offsite" in p["message"] and "changes" in p["message"]),
                             timeout=20)
    _settle(world)
    new = " ".join(p["message"] for p in world.bot_posts(base))
    assert "Moved" in new
    assert "Offsite" in new
    assert "Cancelled" in new
    assert "Conference" in new
    assert new.count("Board meeting") == 1


def world_zone():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Moscow")


def test_ten_changes_in_one_poll_arrive_as_one_message(world: World) -> None:
    """Ten invitations found in one poll make one message listing them, with a row of buttons
    for each (actions on)."""
    world.env["YC_POLL_SECONDS"] = "3"
    world.start()
    world.connect()
    world.wait_synced()
    base = len(world.fake.posts)
    world.radicale.quirks.latency(0)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    for n in range(10):
        at = start + timedelta(hours=n)
        world.radicale.put(world.login, world.calendar, f"team{n}.ics", event(
            f"team{n}", at, at + timedelta(minutes=30), f"Team import {n}",
            organizer="hr@yandex.ru", attendees={world.login: "NEEDS-ACTION"}))
    _settle(world, 6)
    posts = [p for p in world.bot_posts(base) if "Team import" in p["message"]]
    assert len(posts) == 1, [p["message"][:60] for p in posts]
    assert all(f"Team import {n}" in posts[0]["message"] for n in range(10))
    assert "10 changes" in posts[0]["message"]


# -- meet ---------------------------------------------------------------------------------------

@both_databases
def test_meet_creates_the_meeting_with_a_telemost_room_and_guests(world: World) -> None:
    """`meet tomorrow 15:00 45m Design review with @bob @carol`: the reply carries the
    minted Telemost link; Radicale holds the event with the organizer and the guests'
    addresses; no "added" notice comes back to the organizer."""
    world.fake.add_user("bob-id", "bob", email="Bob@Ya.ru")
    world.fake.add_user("carol-id", "carol", email="carol@example.com")
    world.start()
    world.connect()
    world.wait_synced()
    reply = world.say("meet tomorrow 15:00 45m Design review with @bob @carol")["message"]
    assert "Design review" in reply
    assert "15:00–15:45" in reply
    link = re.search(r"https://telemost\.yandex\.ru/j/\d{14}", reply)
    assert link, reply
    listing = world.radicale.request(
        "PROPFIND", world.calendar, login=world.login, seed=True,
        headers={"Depth": "1"}).text
    href = next(iter(re.findall(r">([^<>]+\.ics)<", listing)))
    stored = world.radicale.request("GET", href, login=world.login, seed=True).text
    stored = stored.replace("\r\n ", "")  # unfold (RFC 5545 §3.1)
    assert re.search(rf"ORGANIZER[^\n]*mailto:{re.escape(world.login)}", stored), stored
    assert "bob@yandex.ru" in stored.lower(), stored
    assert "carol@example.com" in stored, stored
    assert link.group(0) in stored
    _settle(world, 4)
    assert not [p for p in world.bot_posts() if "New meeting" in p["message"]]


def test_meet_link_that_yandex_adds_late_arrives_in_the_replys_thread(world: World) -> None:
    """Yandex slow to mint the room: the `meet` reply says the link will follow, and when a
    poll sees it, the link arrives in the reply's thread; the creation itself is never
    announced as a new meeting."""
    world.radicale.quirks.telemost_delay(12)
    world.start()
    world.connect()
    world.wait_synced()
    reply = world.say("meet tomorrow 11:00 Late room")
    assert "link is not there yet" in reply["message"]
    link = world.fake.wait_for_post(lambda p: "telemost.yandex.ru/j/" in p["message"]
                                    and p["root_id"] == reply["root_id"], timeout=40)
    assert "Late room" in link["message"]
    assert not [p for p in world.bot_posts() if "New meeting" in p["message"]]


def test_bad_meet_inputs_create_nothing(world: World) -> None:
    """Each bad `meet` gets one line with its reason and the right form; nothing is created."""
    world.fake.add_user("bob-id", "bob", email="bob@yandex.ru")
    world.fake.add_channel("town", "town-square", "O")
    world.start()
    world.connect()
    world.wait_synced()
    before = world.radicale.quirks.counters.by_method.get("PUT", 0)
    cases = {
        "meet yesterday 10:00 Review": "needs a day",
        "meet 01.01.2020 10:00 Review": "passed already",
        "meet tomorrow 25:00 Review": "not a time",
        "meet tomorrow 10:00 Review with @nobody": "don't know the user @\u200bnobody",
        "meet tomorrow 10:00 45m": "needs a title",
        "meet tomorrow 10:00 25h Marathon": "at most 24 hours",
    }
    for text, expected in cases.items():
        answer = world.say(text)["message"]
        assert expected in answer, (text, answer)
        assert "\n" not in answer
    world.fake.user_says(world.user, "meet tomorrow 10:00 Review with @bob", channel_id="town",
                         mention_bot=True)
    refused = world.fake.wait_for_post(lambda p: "direct message" in p["message"])
    assert refused["channel_id"] == "town"
    assert world.radicale.quirks.counters.by_method.get("PUT", 0) == before


# -- the admin's view ---------------------------------------------------------------------------

def test_stats_for_an_admin_only(world: World) -> None:
    """`stats` answers a system admin with the usage figures; anyone else gets the usual
    unknown-command line."""
    world.fake.add_user("admin-id", "root", admin=True)
    world.start()
    world.connect()
    world.wait_synced()
    assert "don't know the command" in world.say("stats")["message"]
    post = world.fake.user_says("admin-id", "stats")
    reply = world.fake.wait_for_post(lambda p: p["props"].get("yc_reply_to") == post)
    assert "Connected users: 1" in reply["message"]
    assert "reminders 1" in reply["message"]


def test_metrics_move_with_a_poll_a_notice_and_a_504(world: World) -> None:
    """/metrics parses with the Prometheus client's own parser, and its counters move when a
    poll, a notice and a CalDAV 504 happen."""
    from prometheus_client.parser import text_string_to_metric_families

    def scrape() -> dict[str, float]:
        url = f"http://127.0.0.1:{world.env['YC_ACTIONS_PORT']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            assert family.name.startswith("yc_bot_"), family.name
            for sample in family.samples:
                key = sample.name + json.dumps(sample.labels, sort_keys=True)
                values[key] = sample.value
        return values

    def total(values: dict[str, float], prefix: str, **labels: str) -> float:
        return sum(v for k, v in values.items() if k.startswith(prefix + "{")
                   and all(f'"{a}": "{b}"' in k for a, b in labels.items()))

    world.start()
    before = scrape()
    world.connect()
    world.wait_synced()
    at = datetime.now(UTC) + timedelta(days=2)
    world.radicale.put(world.login, world.calendar, "x.ics",
                       event("x", at, at + timedelta(hours=1), "Metrics meeting"))
    world.fake.wait_for_post(lambda p: "Metrics meeting" in p["message"], timeout=20)
    world.radicale.quirks.fail_every(2)
    _settle(world, 4)
    world.radicale.quirks.reset_faults()
    after = scrape()
    assert total(after, "yc_bot_polls_total") > total(before, "yc_bot_polls_total")
    assert total(after, "yc_bot_notices_total", kind="change", outcome="sent") \
        > total(before, "yc_bot_notices_total", kind="change", outcome="sent")
    assert total(after, "yc_bot_caldav_requests_total", result="5xx") \
        > total(before, "yc_bot_caldav_requests_total", result="5xx")
