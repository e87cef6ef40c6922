"""The fake Mattermost server speaks the real wire format, proven with the real mmpy_bot.Bot.

Tests marked ``e2e`` run an unmodified ``mmpy_bot.Bot`` (via ``tests.e2e_harness``); the others
talk to the fake with ``httpx``, a raw aiohttp websocket or a bare ``mattermostautodriver``
driver, to pin the server rules the bot code relies on.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import mattermostautodriver
import pytest
from mattermostautodriver.exceptions import (
    FeatureDisabled,
    InvalidOrMissingParameters,
    NoAccessTokenProvided,
    NotEnoughPermissions,
    ResourceNotFound,
)
from mmpy_bot import Bot, Plugin, listen_to
from mmpy_bot.wrappers import Message

from tests.e2e_harness import (
    RunningBot,
    bot_settings,
    fake_mattermost,  # noqa: F401 - pytest fixture
    run_bot,
    scrub_mattermost_env,
)
from tests.fake_mattermost import MAX_POST_RUNES, FakeMattermost

ALICE = "alice000000000000000000000"
BOB = "bob00000000000000000000000"
TOWN = "town0000000000000000000000"


class Echo(Plugin):
    """Tiny plugin for the tests.

    The handlers are coroutines on purpose: mmpy-bot runs them in order on the websocket
    loop, so after the reply to a later message exists, an earlier message's handler has
    certainly finished (sync handlers race on a thread pool).
    """

    @listen_to("^ping")
    async def ping(self, message: Message) -> None:
        self.driver.reply_to(message, "pong")

    @listen_to("^hello", needs_mention=True)
    async def hello(self, message: Message) -> None:
        self.driver.reply_to(message, "hi")


def echo_bot_factory(fake: FakeMattermost, **overrides: Any) -> Callable[[], Bot]:
    """A factory building the real Bot with only the Echo plugin, pointed at ``fake``."""
    settings = bot_settings(fake, **overrides)
    return lambda: Bot(settings=settings, plugins=[Echo()], enable_logging=False)


@pytest.fixture
def fake(fake_mattermost: FakeMattermost) -> FakeMattermost:  # noqa: F811
    """A running fake with users alice and bob and a public channel 'town'."""
    fake_mattermost.add_user(ALICE, "alice", locale="ru", timezone="Europe/Moscow")
    fake_mattermost.add_user(BOB, "bob")
    fake_mattermost.add_channel(TOWN, "town", display_name="Town Square")
    return fake_mattermost


@pytest.fixture
def running(fake: FakeMattermost) -> Iterator[RunningBot]:
    """The real mmpy_bot.Bot with the Echo plugin, connected to ``fake``."""
    with run_bot(echo_bot_factory(fake), fake) as running_bot:
        yield running_bot


def api(fake: FakeMattermost, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One authenticated REST call to the fake."""
    headers = {"Authorization": f"Bearer {fake.token}", **kwargs.pop("headers", {})}
    url = f"{fake.url}:{fake.port}/api/v4{path}"
    return httpx.request(method, url, headers=headers, timeout=5, **kwargs)


def bare_driver(fake: FakeMattermost) -> mattermostautodriver.Driver:
    """A logged-in mattermostautodriver Driver, without mmpy-bot."""
    driver = mattermostautodriver.Driver(
        {"url": "127.0.0.1", "port": fake.port, "scheme": "http", "token": fake.token}
    )
    driver.login()
    return driver


def in_an_hour() -> str:
    """An RFC 3339 timestamp one hour ahead."""
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- end to end with mmpy_bot.Bot


@pytest.mark.e2e
def test_dm_ping_is_answered_in_the_thread_of_the_users_post(
    fake: FakeMattermost, running: RunningBot
) -> None:
    """A DM 'ping' gets 'pong' in the same DM channel, threaded under the user's post."""
    post_id = fake.user_says(ALICE, "ping")

    reply = fake.wait_for_post(lambda p: p["user_id"] == fake.bot_user_id)

    assert reply["message"] == "pong"
    assert reply["root_id"] == post_id
    assert reply["channel_id"] == fake.dm_channel_id(ALICE)
    assert ("POST", "/api/v4/posts") in [(m, p) for m, p, _ in fake.requests]


@pytest.mark.e2e
def test_needs_mention_listener_ignores_unmentioned_channel_message_and_answers_mention(
    fake: FakeMattermost, running: RunningBot
) -> None:
    """In a channel, 'hello' without @bot is ignored; with @bot it is answered in thread."""
    ignored = fake.user_says(ALICE, "hello", channel_id=TOWN)
    mentioned = fake.user_says(ALICE, "hello", channel_id=TOWN, mention_bot=True)

    reply = fake.wait_for_post(lambda p: p["root_id"] == mentioned)

    assert reply["message"] == "hi"
    assert reply["channel_id"] == TOWN
    assert not [p for p in fake.posts if p["root_id"] == ignored]


@pytest.mark.e2e
def test_custom_status_round_trip_through_the_bot_driver(
    fake: FakeMattermost, running: RunningBot
) -> None:
    """PUT then DELETE of a custom status via bot.driver lands in the user's props."""
    driver = running.bot.driver
    expires = in_an_hour()

    answer = driver.status.update_user_custom_status(
        ALICE,
        {
            "emoji": "calendar",
            "text": "In a meeting",
            "duration": "date_and_time",
            "expires_at": expires,
        },
    )

    assert answer == {"status": "OK"}
    expected = {
        "emoji": "calendar",
        "text": "In a meeting",
        "duration": "date_and_time",
        "expires_at": expires,
    }
    assert fake.custom_status(ALICE) == expected
    assert json.loads(driver.users.get_user(ALICE)["props"]["customStatus"]) == expected

    driver.status.unset_user_custom_status(ALICE)

    assert fake.custom_status(ALICE) is None
    assert driver.users.get_user(ALICE)["props"]["customStatus"] == ""
    assert ("DELETE", f"/api/v4/users/{ALICE}/status/custom", None) in fake.requests


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("mode", "exception"), [(403, NotEnoughPermissions), (501, FeatureDisabled)]
)
def test_custom_status_error_modes_raise_the_driver_exceptions(
    fake: FakeMattermost, running: RunningBot, mode: int, exception: type[Exception]
) -> None:
    """custom_status_error 403/501 surface as NotEnoughPermissions/FeatureDisabled."""
    fake.custom_status_error = mode
    status = {
        "emoji": "calendar",
        "text": "In a meeting",
        "duration": "date_and_time",
        "expires_at": in_an_hour(),
    }

    with pytest.raises(exception):
        running.bot.driver.status.update_user_custom_status(ALICE, status)
    with pytest.raises(exception):
        running.bot.driver.status.unset_user_custom_status(ALICE)

    assert fake.custom_status(ALICE) is None


@pytest.mark.e2e
def test_deleting_someone_elses_post_is_forbidden_until_permission_is_granted(
    fake: FakeMattermost, running: RunningBot
) -> None:
    """Without delete_others_posts the delete is 403; with it the post is gone (404)."""
    post_id = fake.user_says(BOB, "secret", channel_id=TOWN)
    driver = running.bot.driver
    fake.bot_can_delete_others = False

    with pytest.raises(NotEnoughPermissions):
        driver.posts.delete_post(post_id)
    assert fake.post(post_id)["delete_at"] == 0

    fake.bot_can_delete_others = True
    assert driver.posts.delete_post(post_id) == {"status": "OK"}
    with pytest.raises(ResourceNotFound):
        driver.posts.get_post(post_id)
    assert fake.post(post_id)["delete_at"] > 0


@pytest.mark.e2e
def test_wrong_token_makes_bot_construction_fail_at_login(
    fake: FakeMattermost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bot() logs in in its constructor: a wrong token raises NoAccessTokenProvided."""
    with pytest.raises(NoAccessTokenProvided):
        run_bot(echo_bot_factory(fake, BOT_TOKEN="wrong"), fake)


@pytest.mark.e2e
def test_start_and_stop_twice_leaves_no_threads_or_listening_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fake and bot start/stop twice (fake restarted on its port); nothing is left over."""
    scrub_mattermost_env(monkeypatch)
    threads_before = set(threading.enumerate())
    fake = FakeMattermost()
    fake.add_user(ALICE, "alice")
    ports = []
    for _ in range(2):
        fake.start()
        ports.append(fake.port)
        with run_bot(echo_bot_factory(fake), fake):
            post_id = fake.user_says(ALICE, "ping")
            assert fake.wait_for_post(lambda p, pid=post_id: p["root_id"] == pid)
        assert fake.connected_sockets == 0 or fake.wait_for(lambda: fake.connected_sockets == 0)
        fake.stop()

    assert ports[0] == ports[1]
    assert fake.wait_for(lambda: set(threading.enumerate()) <= threads_before, timeout=5), (
        set(threading.enumerate()) - threads_before
    )
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ports[0]), timeout=2).close()


# ---------------------------------------------------------------- REST wire format


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/users/me", None, 200),
        ("GET", f"/users/{ALICE}", None, 200),
        ("GET", f"/users/{ALICE}/status", None, 200),
        ("GET", f"/channels/{TOWN}", None, 200),
        ("POST", "/posts", {"channel_id": TOWN, "message": "x"}, 201),
        ("POST", "/channels/direct", "pair", 201),
        ("PUT", f"/users/{ALICE}/status/custom", {"emoji": "calendar", "text": "busy"}, 200),
        ("DELETE", f"/users/{ALICE}/status/custom", None, 200),
        ("GET", "/users/nobody", None, 404),
        ("GET", "/no/such/route", None, 404),
        ("POST", "/posts", {"channel_id": "nowhere", "message": "x"}, 403),
    ],
)
def test_every_json_response_has_content_type_exactly_application_json(
    fake: FakeMattermost, method: str, path: str, body: Any, status: int
) -> None:
    """Success and error responses alike say 'application/json' with no charset."""
    if body == "pair":
        body = [fake.bot_user_id, ALICE]

    response = api(fake, method, path, json=body)

    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    response.json()


def test_missing_or_wrong_token_is_401_in_mattermost_error_shape(fake: FakeMattermost) -> None:
    """Calls without the bearer token get 401 {id, message, detailed_error, ...}."""
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = httpx.get(f"{fake.url}:{fake.port}/api/v4/users/me", headers=headers)

        assert response.status_code == 401
        body = response.json()
        assert set(body) == {"id", "message", "detailed_error", "request_id", "status_code"}
        assert body["status_code"] == 401
        assert body["id"] == "api.context.session_expired.app_error"


def test_unknown_route_is_404_and_recorded(fake: FakeMattermost) -> None:
    """An unknown route answers Mattermost's 404 and is listed in unknown_requests."""
    response = api(fake, "POST", "/files", json={"a": 1})

    assert response.status_code == 404
    assert response.json()["id"] == "api.context.404.app_error"
    assert fake.unknown_requests == [("POST", "/api/v4/files", {"a": 1})]
    assert fake.requests[-1] == ("POST", "/api/v4/files", {"a": 1})


def test_user_object_has_timezone_locale_and_custom_status_as_json_string(
    fake: FakeMattermost,
) -> None:
    """GET /users/{id}: timezone strings, locale, props.customStatus as a JSON string."""
    driver = bare_driver(fake)
    assert "props" not in driver.users.get_user(BOB)  # Go omits empty props

    fake.set_custom_status(ALICE, "On vacation", "palm_tree")
    user = driver.users.get_user(ALICE)

    assert user["locale"] == "ru"
    assert user["timezone"] == {
        "useAutomaticTimezone": "true",
        "automaticTimezone": "Europe/Moscow",
        "manualTimezone": "",
    }
    assert isinstance(user["props"]["customStatus"], str)
    assert json.loads(user["props"]["customStatus"])["text"] == "On vacation"
    assert driver.users.get_user("me")["id"] == fake.bot_user_id


def test_presence_status_reports_what_the_test_set(fake: FakeMattermost) -> None:
    """GET /users/{id}/status returns online by default and dnd once set."""
    driver = bare_driver(fake)
    assert driver.status.get_user_status(ALICE)["status"] == "online"

    fake.set_user_status(ALICE, "dnd")

    status = driver.status.get_user_status(ALICE)
    assert status["user_id"] == ALICE
    assert status["status"] == "dnd"


@pytest.mark.parametrize(
    "body",
    [
        {"emoji": "calendar", "text": "x", "duration": "date_and_time"},  # no expiry
        {"emoji": "calendar", "text": "x", "expires_at": "2001-01-01T00:00:00Z"},  # past
        {
            "emoji": "calendar",
            "text": "x",
            "duration": "date_and_time",
            "expires_at": "2999-01-01 10:00:00",
        },  # not RFC 3339
        {"emoji": "calendar", "text": "x", "expires_at": ""},  # Go cannot parse ""
        {
            "emoji": "calendar",
            "text": "x",
            "duration": "forever",
            "expires_at": "2999-01-01T00:00:00Z",
        },  # unknown duration
        {"emoji": "", "text": ""},  # nothing to show
    ],
)
def test_invalid_custom_status_is_400_and_changes_nothing(
    fake: FakeMattermost, body: dict[str, str]
) -> None:
    """The server's custom status validation rejects the body with 400."""
    with pytest.raises(InvalidOrMissingParameters):
        bare_driver(fake).status.update_user_custom_status(ALICE, body)

    assert fake.custom_status(ALICE) is None


def test_custom_status_text_is_cut_and_future_expiry_implies_date_and_time(
    fake: FakeMattermost,
) -> None:
    """Text is cut to 100 characters; an empty duration with expiry becomes date_and_time."""
    bare_driver(fake).status.update_user_custom_status(
        ALICE, {"emoji": "calendar", "text": "ж" * 150, "expires_at": "2999-01-01T00:00:00+03:00"}
    )

    status = fake.custom_status(ALICE)
    assert status is not None
    assert status["text"] == "ж" * 100
    assert status["duration"] == "date_and_time"
    assert status["expires_at"] == "2999-01-01T00:00:00+03:00"


def test_bot_may_set_its_own_custom_status_in_403_mode(fake: FakeMattermost) -> None:
    """Mode 403 models a missing edit_other_users permission: the bot's own status works."""
    fake.custom_status_error = 403

    bare_driver(fake).status.update_user_custom_status("me", {"emoji": "robot", "text": "hi"})

    assert fake.custom_status(fake.bot_user_id) == {
        "emoji": "robot",
        "text": "hi",
        "duration": "",
        "expires_at": "0001-01-01T00:00:00Z",
    }


def test_direct_channel_is_stable_per_pair(fake: FakeMattermost) -> None:
    """POST /channels/direct returns the same 'D' channel for a pair in either order."""
    driver = bare_driver(fake)

    first = driver.channels.create_direct_channel([fake.bot_user_id, ALICE])
    second = driver.channels.create_direct_channel([ALICE, fake.bot_user_id])

    assert first["id"] == second["id"] == fake.dm_channel_id(ALICE)
    assert first["type"] == "D"
    assert first["name"] == "__".join(sorted([fake.bot_user_id, ALICE]))
    assert driver.channels.get_channel(first["id"])["id"] == first["id"]


def test_post_validation_follows_the_server(fake: FakeMattermost) -> None:
    """Unknown channel 403, bad root 400, reply to a reply 400, over 16383 chars 400."""
    driver = bare_driver(fake)
    root = driver.posts.create_post({"channel_id": TOWN, "message": "root"})
    reply = driver.posts.create_post({"channel_id": TOWN, "message": "r", "root_id": root["id"]})

    with pytest.raises(NotEnoughPermissions):
        driver.posts.create_post({"channel_id": "nowhere", "message": "x"})
    with pytest.raises(InvalidOrMissingParameters):
        driver.posts.create_post({"channel_id": TOWN, "message": "x", "root_id": "nope"})
    with pytest.raises(InvalidOrMissingParameters):
        driver.posts.create_post({"channel_id": TOWN, "message": "x", "root_id": reply["id"]})
    with pytest.raises(InvalidOrMissingParameters):
        driver.posts.create_post({"channel_id": TOWN, "message": "x" * (MAX_POST_RUNES + 1)})
    longest = driver.posts.create_post({"channel_id": TOWN, "message": "ж" * MAX_POST_RUNES})

    assert [p["id"] for p in fake.posts_in(TOWN)] == [root["id"], reply["id"], longest["id"]]
    assert fake.post(root["id"])["reply_count"] == 1


def test_fail_next_answers_one_matching_call_then_recovers(fake: FakeMattermost) -> None:
    """fail_next injects exactly one error in Mattermost's shape for a matching call."""
    driver = bare_driver(fake)
    fake.fail_next("POST", r"/api/v4/posts", 500)

    with pytest.raises(httpx.HTTPStatusError):
        driver.posts.create_post({"channel_id": TOWN, "message": "first"})
    driver.posts.create_post({"channel_id": TOWN, "message": "second"})

    assert [p["message"] for p in fake.posts] == ["second"]


# ---------------------------------------------------------------- websocket wire format


async def _read_json(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    return json.loads(await ws.receive_str(timeout=5))


def test_websocket_handshake_then_posted_event_in_wire_format(fake: FakeMattermost) -> None:
    """Auth challenge -> hello (seq 0) -> OK; a DM 'posted' carries JSON-string fields."""

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        url = f"ws://127.0.0.1:{fake.port}/api/v4/websocket"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str(
                json.dumps(
                    {"seq": 1, "action": "authentication_challenge", "data": {"token": fake.token}}
                )
            )
            handshake = [await _read_json(ws), await _read_json(ws)]
            post_id = await asyncio.to_thread(fake.user_says, ALICE, "ping")
            return handshake, await _read_json(ws), post_id

    handshake, event, post_id = asyncio.run(scenario())

    assert handshake[0]["event"] == "hello" and handshake[0]["seq"] == 0
    assert "server_version" in handshake[0]["data"]
    assert handshake[1] == {"status": "OK", "seq_reply": 1}
    assert event["event"] == "posted" and event["seq"] == 1
    data = event["data"]
    assert isinstance(data["post"], str) and isinstance(data["mentions"], str)
    assert json.loads(data["post"])["id"] == post_id
    assert json.loads(data["mentions"]) == [fake.bot_user_id]
    assert data["channel_type"] == "D"
    assert data["sender_name"] == "@alice"
    assert data["team_id"] == ""
    assert data["channel_name"] == "__".join(sorted([fake.bot_user_id, ALICE]))


def test_websocket_with_wrong_token_gets_fail_and_no_events(fake: FakeMattermost) -> None:
    """A bad authentication challenge is answered FAIL and the socket stays unauthenticated."""

    async def scenario() -> dict[str, Any]:
        url = f"ws://127.0.0.1:{fake.port}/api/v4/websocket"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str(
                json.dumps(
                    {"seq": 1, "action": "authentication_challenge", "data": {"token": "wrong"}}
                )
            )
            return await _read_json(ws)

    reply = asyncio.run(scenario())

    assert reply["status"] == "FAIL" and reply["seq_reply"] == 1
    assert fake.ws_auth_count == 0
