"""End to end, buttons and dialogs: the fake Mattermost plays the server's side (it posts a
click to the action's URL, opens and submits dialogs), Radicale behind the Yandex middleware
holds the calendars, the real ``mmpy_bot.Bot`` from ``bot.app.create_bot`` runs with
``YC_ACTIONS_URL`` set."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e_world import World, both_databases
from tests.fake_mattermost import _client_post
from tests.ics_builder import event

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _buttons_on(world: World) -> None:
    """Every test here runs with buttons: Mattermost reaches the endpoint on loopback."""
    world.env["YC_ACTIONS_URL"] = f"http://127.0.0.1:{world.env['YC_ACTIONS_PORT']}"


def _endpoint(world: World) -> str:
    return world.env["YC_ACTIONS_URL"]


def _http(url: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=body, method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _buttons(post: dict[str, Any]) -> dict[str, str]:
    """name of each button → its action id, as a client sees the post."""
    found = {}
    for attachment in (post.get("props") or {}).get("attachments", []):
        for action in attachment.get("actions", []):
            found[action["name"]] = action["id"]
    return found


def _stored(world: World, href: str) -> tuple[int, str]:
    answer = world.radicale.request("GET", href, login=world.login, seed=True)
    return answer.status, answer.text


def _invite(world: World, uid: str, start: datetime, title: str) -> str:
    return world.radicale.put(world.login, world.calendar, f"{uid}.ics", event(
        uid, start, start + timedelta(minutes=30), title, organizer="boss@yandex.ru",
        attendees={"boss@yandex.ru": "ACCEPTED", world.login: "NEEDS-ACTION"}))


@both_databases
def test_invitation_with_buttons_decline_clicked(world: World) -> None:
    """An invitation arrives with Accept/Maybe/Decline; Decline clicked → Yandex (Radicale)
    drops alice's copy, the post says so, and no "cancelled" notice follows."""
    world.start()
    world.connect()
    world.wait_synced()
    start = datetime.now(UTC) + timedelta(days=20)
    href = _invite(world, "inv-1", start, "Quarterly planning")
    notice = world.fake.wait_for_post(lambda p: "Invitation" in p["message"]
                                      and "Quarterly planning" in p["message"], timeout=20)
    assert "Organizer: Boss" in notice["message"]
    buttons = _buttons(notice)
    assert set(buttons) == {"Accept", "Maybe", "Decline"}
    assert "integration" not in json.dumps(_client_post(notice))  # no token reaches clients
    click = world.fake.click(notice["id"], buttons["Decline"], world.user)
    assert click["api_status"] == 200, click
    assert _stored(world, href)[0] == 404  # Yandex removes a decliner's copy
    updated = world.fake.post(notice["id"])
    assert "You declined" in json.dumps(updated["props"], ensure_ascii=False)
    assert "the whole series" in json.dumps(updated["props"], ensure_ascii=False)
    before = len(world.bot_posts())
    world.fake.wait_for(lambda: False, timeout=4)  # a few polls
    assert not [p for p in world.bot_posts()[before:] if "Cancelled" in p["message"]]


def test_forged_click_by_another_user_changes_nothing(world: World) -> None:
    """Bob clicks Accept on alice's invitation: an ephemeral refusal, Radicale unchanged."""
    world.fake.add_user("bobuser", "bob", locale="en")
    world.start()
    world.connect()
    world.wait_synced()
    href = _invite(world, "inv-2", datetime.now(UTC) + timedelta(days=3), "Budget")
    notice = world.fake.wait_for_post(lambda p: "Budget" in p["message"], timeout=20)
    click = world.fake.click(notice["id"], _buttons(notice)["Accept"], "bobuser")
    assert "someone else's" in (click["response"] or {}).get("ephemeral_text", "")
    assert "PARTSTAT=NEEDS-ACTION" in _stored(world, href)[1]
    # an altered token posted straight to the endpoint is refused too
    token = "eyJ1IjoiYWxpY2UifQ.AAAAAAAAAAAAAAAAAAAAAA"
    status, answer = _http(_endpoint(world) + "/actions/answer", json.dumps(
        {"user_id": world.user, "post_id": notice["id"], "context": {"token": token}}).encode())
    assert status == 200
    assert "not valid" in answer["ephemeral_text"]
    assert "PARTSTAT=NEEDS-ACTION" in _stored(world, href)[1]


def test_accept_typed_in_a_reminders_thread_and_snooze(world: World) -> None:
    """A reminder of an invitation: `accept` typed in its thread answers that occurrence in
    Yandex; Snooze brings one more reminder before the start, and only one."""
    world.start()
    world.connect()
    world.wait_synced()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1, seconds=50)
    href = _invite(world, "inv-3", start, "Standup")
    reminder = world.fake.wait_for_post(lambda p: "⏰" in p["message"]
                                        and "Standup" in p["message"], timeout=20)
    assert {"Accept", "Maybe", "Decline", "Snooze 5 min"} <= set(_buttons(reminder))
    answer = world.say("accept", root_id=reminder["id"])
    assert "You accepted" in answer["message"]
    assert f"PARTSTAT=ACCEPTED;CN={world.login.split('@')[0]}" in _stored(world, href)[1] \
        or "PARTSTAT=ACCEPTED" in _stored(world, href)[1]
    click = world.fake.click(reminder["id"], _buttons(reminder)["Snooze 5 min"], world.user)
    assert "remind you again" in click["response"]["ephemeral_text"]
    assert "Snooze 5 min" not in _buttons(world.fake.post(reminder["id"]))  # used up
    # the old button replayed straight to the endpoint (its token still valid): refused
    first_version = world.fake.post_history(reminder["id"])[0]["props"]
    snooze = next(a for att in first_version["attachments"] for a in att["actions"]
                  if a["name"] == "Snooze 5 min")
    status, replay = _http(snooze["integration"]["url"], json.dumps(
        {"user_id": world.user, "post_id": reminder["id"],
         "context": snooze["integration"]["context"]}).encode())
    assert status == 200
    assert "snoozed already" in replay["ephemeral_text"]
    second = world.fake.wait_for_post(
        lambda p: "⏰" in p["message"] and "Standup" in p["message"] and p["id"] != reminder["id"],
        timeout=90)
    assert datetime.now(UTC) < start
    world.fake.wait_for(lambda: False, timeout=3)
    assert len([p for p in world.bot_posts() if "⏰" in p["message"]
                and "Standup" in p["message"]]) == 2
    assert second["create_at"] / 1000 < start.timestamp()


def test_connect_dialog_wrong_then_right_password(world: World) -> None:
    """`connect` alone gives a Connect button; its dialog refuses a wrong password beside the
    field and stores nothing; the right one connects; the password is in no post."""
    world.start()
    reply = world.say("connect")
    click = world.fake.click(reply["id"], _buttons(reply)["Connect"], world.user)
    assert click["api_status"] == 200
    opened = world.fake.dialogs_opened[-1]
    assert opened["error_id"] is None
    names = [e["name"] for e in opened["dialog"]["elements"]]
    assert names == ["login", "password", "timezone"]
    assert [e.get("subtype") for e in opened["dialog"]["elements"]][1] == "password"
    wrong = world.fake.submit_dialog(world.user, {"login": world.login,
                                                  "password": "wrong-pass-77", "timezone": ""})
    assert "refused" in wrong["response"]["errors"]["password"]
    assert "not connected" in world.say("check")["message"]
    right = world.fake.submit_dialog(world.user, {"login": world.login,
                                                  "password": world.password, "timezone": ""})
    assert right["response"] == {}
    world.fake.wait_for_post(lambda p: "Connected" in p["message"], timeout=15)
    assert all(world.password not in p["message"] and "wrong-pass-77" not in p["message"]
               for p in world.fake.posts)


def test_password_alone_opens_a_dialog_for_a_new_app_password(world: World) -> None:
    """`password` alone gives a button; its dialog asks only for the app password, refuses a
    wrong one beside the field (the old one keeps working) and stores a right one."""
    world.start()
    world.connect()
    reply = world.say("password")
    world.fake.click(reply["id"], _buttons(reply)["New app password"], world.user)
    opened = world.fake.dialogs_opened[-1]
    assert [e["name"] for e in opened["dialog"]["elements"]] == ["password"]
    assert world.login in opened["dialog"]["introduction_text"]
    wrong = world.fake.submit_dialog(world.user, {"password": "not-the-one-9"})
    assert "refused" in wrong["response"]["errors"]["password"]
    assert "**" in world.say("today")["message"] or "No meetings" in world.say("today")["message"]
    new = "app-pass-new-secret"
    world.radicale.add_user(world.login, new)  # the user made a new app password
    right = world.fake.submit_dialog(world.user, {"password": new})
    assert right["response"] == {}
    world.fake.wait_for_post(lambda p: "new app password" in p["message"].lower()
                             or ("password" in p["message"].lower() and p["id"] != reply["id"]
                             and p["user_id"] == world.fake.bot_user_id), timeout=15)
    assert all(new not in p["message"] and "not-the-one-9" not in p["message"]
               for p in world.fake.posts)


def test_click_after_disconnect_and_garbage_are_refused(world: World) -> None:
    """A click on a disconnected user's old button changes nothing; garbage gets 400 and the
    endpoint keeps answering."""
    world.start()
    world.connect()
    world.wait_synced()
    href = _invite(world, "inv-4", datetime.now(UTC) + timedelta(days=2), "Retro")
    notice = world.fake.wait_for_post(lambda p: "Retro" in p["message"], timeout=20)
    world.say("disconnect")
    click = world.fake.click(notice["id"], _buttons(notice)["Accept"], world.user)
    assert "not connected" in click["response"]["ephemeral_text"]
    assert "PARTSTAT=NEEDS-ACTION" in _stored(world, href)[1]
    url = _endpoint(world) + "/actions/answer"
    assert _http(url, b"not json")[0] == 400
    assert _http(url, b"[1, 2]")[0] == 400
    assert _http(url, json.dumps({"user_id": 5, "context": {}}).encode())[0] == 400
    assert _http(url, b'{"user_id": "x", "context": "' + b"a" * 70_000 + b'"}')[0] == 400
    assert _http(_endpoint(world) + "/healthz")[0] == 200


def test_healthz_and_metrics(world: World) -> None:
    """/healthz is 200 while the websocket is logged in and 503 once it is down; /metrics
    parses with the Prometheus client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    world.start()
    world.connect()
    world.wait_synced()
    status, details = _http(_endpoint(world) + "/healthz")
    assert status == 200
    assert details["websocket"]
    assert details["database"]
    with urllib.request.urlopen(_endpoint(world) + "/metrics", timeout=10) as answer:  # noqa: S310
        families = {f.name for f in text_string_to_metric_families(answer.read().decode())}
    assert {"yc_bot_polls", "yc_bot_notices", "yc_bot_caldav_requests"} <= families
    world.fake.set_websocket_refused(True)
    assert world.fake.wait_for(lambda: _http(_endpoint(world) + "/healthz")[0] == 503,
                               timeout=15)
    world.fake.set_websocket_refused(False)
    assert world.fake.wait_for(lambda: _http(_endpoint(world) + "/healthz")[0] == 200,
                               timeout=20)
