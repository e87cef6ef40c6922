"""The fake Mattermost server speaks the real wire format, proven with the real mmpy_bot.Bot.

Tests marked ``e2e`` run an unmodified ``mmpy_bot.Bot`` (via ``tests.e2e_harness``); the others
talk to the fake with ``httpx``, a raw aiohttp websocket or a bare ``mattermostautodriver``
driver, to pin the server rules the bot code relies on.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
CAROL = "carol00000000000000000000a"
TOWN = "town0000000000000000000000"
VAULT = "vault000000000000000000000"


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


Reply = Callable[[str, Any], tuple[int, bytes]]


class Integration:
    """A tiny HTTP endpoint in a thread playing the bot's side of buttons and dialogs.

    ``reply(path, body) -> (status, bytes)`` decides each answer (default: 200 ``{}``);
    ``received`` lists ``(path, json_body, headers)`` of every POST.
    """

    def __init__(self) -> None:
        self.received: list[tuple[str, Any, dict[str, str]]] = []
        self.reply: Reply = lambda path, body: (200, b"{}")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                outer.received.append((self.path, body, dict(self.headers)))
                status, payload = outer.reply(self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a reply written after the fake gave up (timeout tests)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        """This endpoint's URL for ``path``."""
        return f"http://127.0.0.1:{self._server.server_port}{path}"

    def answer(self, data: Any, status: int = 200) -> None:
        """Answer every call with ``data`` as JSON (bytes are sent as they are)."""
        payload = data if isinstance(data, bytes) else json.dumps(data).encode()
        self.reply = lambda path, body: (status, payload)

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def integration() -> Iterator[Integration]:
    """A running ``Integration`` endpoint."""
    hook = Integration()
    try:
        yield hook
    finally:
        hook.close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def button_post(
    fake: FakeMattermost,
    url: str,
    context: dict[str, Any] | None = None,
    props: dict[str, Any] | None = None,
    channel_id: str = TOWN,
) -> dict[str, Any]:
    """Create (as the bot, over REST) a post with one button calling ``url``; return the answer."""
    action = {
        "name": "Join",
        "type": "button",
        "style": "primary",
        "integration": {"url": url, "context": context or {"secret": "s3cr3t"}},
    }
    attachment = {
        "text": "Stand-up in 10 minutes",
        "title": "Reminder",
        "fields": [{"title": "When", "value": "10:00", "short": True}],
        "actions": [action],
    }
    body = {
        "channel_id": channel_id,
        "message": "Meeting soon",
        "props": {**(props or {}), "attachments": [attachment]},
    }
    response = api(fake, "POST", "/posts", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def first_action_id(post: dict[str, Any]) -> str:
    """The id of the first action of the first attachment."""
    return post["props"]["attachments"][0]["actions"][0]["id"]


def open_dialog_via_click(
    fake: FakeMattermost, integration: Integration, dialog: dict[str, Any], user_id: str = ALICE
) -> dict[str, Any]:
    """Click a fresh button whose integration opens ``dialog``; return the dialog's record."""
    opened: list[httpx.Response] = []

    def reply(path: str, body: Any) -> tuple[int, bytes]:
        request = {
            "trigger_id": body["trigger_id"],
            "url": integration.url("/dialog"),
            "dialog": dialog,
        }
        opened.append(api(fake, "POST", "/actions/dialogs/open", json=request))
        return 200, b"{}"

    integration.reply = reply
    post = button_post(fake, integration.url())
    fake.click(post["id"], first_action_id(post), user_id)
    assert opened, "no call"
    assert opened[0].status_code == 200, opened[0].text
    integration.answer({})
    return fake.dialogs_opened[-1]


CONNECT_DIALOG: dict[str, Any] = {
    "callback_id": "connect",
    "title": "Connect calendar",
    "introduction_text": "Use an **app password**.",
    "elements": [
        {
            "display_name": "Login",
            "name": "login",
            "type": "text",
            "subtype": "email",
            "placeholder": "ivan@yandex.ru",
        },
        {
            "display_name": "App password",
            "name": "password",
            "type": "text",
            "subtype": "password",
            "help_text": "id.yandex.ru -> Security -> App passwords",
        },
        {"display_name": "Time zone", "name": "tz", "type": "text", "optional": True},
    ],
    "submit_label": "Connect",
    "notify_on_cancel": False,
    "state": "step-1",
}


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
        ("GET", "/users/me/channels", None, 200),
        ("POST", "/users/usernames", ["alice"], 200),
        ("GET", f"/channels/{TOWN}/posts", None, 200),
        ("PUT", "/posts/nosuchpost/patch", {"message": "x"}, 403),
        ("POST", "/posts/nosuchpost/actions/nosuchaction", None, 404),
        (
            "POST",
            "/actions/dialogs/open",
            {"trigger_id": "x", "url": "http://x", "dialog": {}},
            400,
        ),
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


def ws_url(fake: FakeMattermost) -> str:
    """The fake's websocket URL."""
    return f"ws://127.0.0.1:{fake.port}/api/v4/websocket"


async def _authenticated_ws(
    session: aiohttp.ClientSession, fake: FakeMattermost
) -> aiohttp.ClientWebSocketResponse:
    """Open a websocket, authenticate it and read hello + OK."""
    ws = await session.ws_connect(ws_url(fake))
    challenge = {"seq": 1, "action": "authentication_challenge", "data": {"token": fake.token}}
    await ws.send_str(json.dumps(challenge))
    await _read_json(ws)
    await _read_json(ws)
    return ws


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

    assert handshake[0]["event"] == "hello"
    assert handshake[0]["seq"] == 0
    assert "server_version" in handshake[0]["data"]
    assert handshake[1] == {"status": "OK", "seq_reply": 1}
    assert event["event"] == "posted"
    assert event["seq"] == 1
    data = event["data"]
    assert isinstance(data["post"], str)
    assert isinstance(data["mentions"], str)
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

    assert reply["status"] == "FAIL"
    assert reply["seq_reply"] == 1
    assert fake.ws_auth_count == 0


# ---------------------------------------------------------------- buttons and clicks


def test_button_integration_stays_server_side_and_every_client_copy_lacks_it(
    fake: FakeMattermost, integration: Integration
) -> None:
    """An action gets an id; REST answers and websocket events strip integration; fake keeps it."""

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with aiohttp.ClientSession() as session:
            ws = await _authenticated_ws(session, fake)
            created = await asyncio.to_thread(button_post, fake, integration.url())
            path = f"/posts/{created['id']}/patch"
            await asyncio.to_thread(api, fake, "PUT", path, json={"message": "Moved to 11:00"})
            events = [await _read_json(ws), await _read_json(ws)]
            await ws.close()
            return created, events

    created, events = asyncio.run(scenario())
    post_id, action_id = created["id"], first_action_id(created)
    reads = [
        created,
        api(fake, "GET", f"/posts/{post_id}").json(),
        api(fake, "GET", f"/posts/{post_id}/thread").json()["posts"][post_id],
        api(fake, "GET", f"/channels/{TOWN}/posts").json()["posts"][post_id],
        *(json.loads(e["data"]["post"]) for e in events),
    ]

    assert [e["event"] for e in events] == ["posted", "post_edited"]
    assert len(action_id) == 26
    for read in reads:
        action = read["props"]["attachments"][0]["actions"][0]
        assert action["id"] == action_id
        assert "integration" not in action
        assert action["name"] == "Join"
        assert action["style"] == "primary"
    stored = fake.post(post_id)["props"]["attachments"][0]
    assert stored["actions"][0]["integration"] == {
        "url": integration.url(),
        "context": {"secret": "s3cr3t"},
    }
    assert stored["fields"] == [{"title": "When", "value": "10:00", "short": True}]


def test_click_posts_the_servers_request_and_applies_update_ephemeral_and_goto(
    fake: FakeMattermost, integration: Integration
) -> None:
    """A click POSTs the server's body with a fresh trigger id; the answer updates the post."""
    post = button_post(fake, integration.url(), context={"action": "join", "secret": "s3cr3t"})
    action_id = first_action_id(post)
    replacement = {
        "id": action_id,
        "name": "Joined",
        "type": "button",
        "integration": {"url": integration.url("/again"), "context": {"action": "again"}},
    }
    integration.answer(
        {
            "update": {
                "message": "You joined",
                "props": {"attachments": [{"actions": [replacement]}]},
            },
            "ephemeral_text": "Opening the call",
            "goto_location": "https://telemost.yandex.ru/j/1",
        }
    )

    first = fake.click(post["id"], action_id, ALICE)
    second = fake.click(post["id"], action_id, ALICE)

    assert first["error"] is None
    assert first["api_status"] == 200
    assert first["status"] == 200
    assert second["error"] is None
    path, body, headers = integration.received[0]
    assert path == "/hook"
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "user_id": ALICE,
        "user_name": "alice",
        "channel_id": TOWN,
        "channel_name": "town",
        "team_id": fake.team_id,
        "team_domain": fake.team_name,
        "post_id": post["id"],
        "trigger_id": first["trigger_id"],
        "type": "button",
        "data_source": "",
        "context": {"action": "join", "secret": "s3cr3t"},
    }
    assert first["request"] == body
    assert integration.received[1][0] == "/again"  # the update's integration was kept
    assert integration.received[1][1]["context"] == {"action": "again"}
    assert first["trigger_id"] != second["trigger_id"]
    stored = fake.post(post["id"])
    assert stored["message"] == "You joined"
    assert stored["edit_at"] > 0
    assert stored["props"]["attachments"][0]["actions"][0]["integration"]["context"] == {
        "action": "again"
    }
    client_copy = api(fake, "GET", f"/posts/{post['id']}").json()
    assert "integration" not in client_copy["props"]["attachments"][0]["actions"][0]
    edited = [json.loads(e["data"]["post"]) for e in fake.events if e["event"] == "post_edited"]
    assert edited
    assert edited[0]["message"] == "You joined"
    assert "integration" not in edited[0]["props"]["attachments"][0]["actions"][0]
    ephemeral = fake.ephemeral_posts
    assert [e["user_id"] for e in ephemeral] == [ALICE, ALICE]
    assert ephemeral[0]["post"]["message"] == "Opening the call"
    assert ephemeral[0]["post"]["root_id"] == post["id"]
    assert ephemeral[0]["post"]["channel_id"] == TOWN
    assert first["goto_location"] == "https://telemost.yandex.ru/j/1"
    assert [c["trigger_id"] for c in fake.clicks] == [first["trigger_id"], second["trigger_id"]]


def test_click_update_keeps_props_without_props_blanks_message_without_message(
    fake: FakeMattermost, integration: Integration
) -> None:
    """Like the server: no props keeps them, no message blanks it, retained props survive."""
    post = button_post(fake, integration.url(), props={"override_username": "Calendar"})
    action_id = first_action_id(post)

    integration.answer({"update": {"message": "Done"}})
    fake.click(post["id"], action_id, ALICE)
    after_first = fake.post(post["id"])
    integration.answer({"update": {"props": {"override_username": "Spoofed", "x": 1}}})
    fake.click(post["id"], action_id, ALICE)
    after_second = fake.post(post["id"])
    gone = fake.click(post["id"], action_id, ALICE)

    assert after_first["message"] == "Done"
    assert after_first["props"] == fake.post_history(post["id"])[0]["props"]
    assert after_second["message"] == ""
    assert after_second["props"] == {"override_username": "Calendar", "x": 1}
    assert gone["api_status"] == 404
    assert gone["error_id"] == "api.post.do_action.action_id.app_error"
    assert len(integration.received) == 2


def test_events_addressed_to_another_user_are_recorded_but_not_sent_to_the_bot(
    fake: FakeMattermost, integration: Integration
) -> None:
    """A click's ephemeral_message and open_dialog go to the clicking user, not the bot's socket."""
    post = button_post(fake, integration.url())

    def reply(path: str, body: Any) -> tuple[int, bytes]:
        request = {
            "trigger_id": body["trigger_id"],
            "url": integration.url("/d"),
            "dialog": {"title": "T"},
        }
        api(fake, "POST", "/actions/dialogs/open", json=request)
        return 200, b'{"ephemeral_text": "only for alice"}'

    integration.reply = reply

    async def scenario() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            ws = await _authenticated_ws(session, fake)
            await asyncio.to_thread(fake.click, post["id"], first_action_id(post), ALICE)
            await asyncio.to_thread(fake.nudge_websockets)
            frame = await _read_json(ws)
            await ws.close()
            return frame

    frame = asyncio.run(scenario())

    assert frame["event"] == "status_change"  # the nudge came first: nothing else was sent
    addressed = {e["event"]: e["broadcast"]["user_id"] for e in fake.events}
    assert addressed["ephemeral_message"] == ALICE
    assert addressed["open_dialog"] == ALICE


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        ("http 500", 500),
        ("http 201", 201),
        ("not json", 200),
        ("json array", 200),
        ("update not an object", 200),
        ("timeout", None),
        ("refused", None),
    ],
)
def test_integration_failures_fail_the_click_and_are_recorded_never_raised(
    fake: FakeMattermost, integration: Integration, failure: str, status: int | None
) -> None:
    """Non-200, non-JSON, bad shapes, timeouts, refused connections: 400, post untouched."""
    fake.integration_timeout = 0.3
    replies: dict[str, Reply] = {
        "http 500": lambda path, body: (500, b'{"update": {"message": "ignored"}}'),
        "http 201": lambda path, body: (201, b'{"update": {"message": "ignored"}}'),
        "not json": lambda path, body: (200, b"<html>oops</html>"),
        "json array": lambda path, body: (200, b"[]"),
        "update not an object": lambda path, body: (200, b'{"update": "ignored"}'),
        "timeout": lambda path, body: (time.sleep(1.0), (200, b"{}"))[1],
    }
    integration.reply = replies.get(failure, integration.reply)
    url = closed_port_url() if failure == "refused" else integration.url()
    post = button_post(fake, url)

    result = fake.click(post["id"], first_action_id(post), ALICE)

    assert result["api_status"] == 400
    assert result["error_id"] == "api.post.do_action.action_integration.app_error"
    assert result["error"]
    assert result["status"] == status
    assert fake.post(post["id"])["message"] == "Meeting soon"
    assert fake.post(post["id"])["edit_at"] == 0
    assert fake.ephemeral_posts == []
    assert fake.clicks[-1] == result
    assert fake.handler_errors == []


def test_post_action_route_is_a_click_by_the_bot_in_mattermosts_shapes(
    fake: FakeMattermost, integration: Integration
) -> None:
    """POST /posts/{id}/actions/{id}: {status, trigger_id}; unknown post/action 404; failure 400."""
    post = button_post(fake, integration.url())
    action_id = first_action_id(post)
    driver = bare_driver(fake)

    answer = driver.posts.do_post_action(post["id"], action_id)
    integration.answer({}, status=503)
    failed = api(fake, "POST", f"/posts/{post['id']}/actions/{action_id}")
    no_action = api(fake, "POST", f"/posts/{post['id']}/actions/nosuchaction")
    no_post = api(fake, "POST", f"/posts/{'x' * 26}/actions/{action_id}")

    assert answer["status"] == "OK"
    assert answer["trigger_id"]
    assert answer["trigger_id"] == fake.clicks[0]["client_trigger_id"]
    assert integration.received[0][1]["user_id"] == fake.bot_user_id
    assert integration.received[0][1]["user_name"] == fake.bot_username
    assert [c["via"] for c in fake.clicks] == ["rest", "rest", "rest", "rest"]
    assert failed.status_code == 400
    assert failed.json()["id"] == "api.post.do_action.action_integration.app_error"
    assert failed.json()["detailed_error"] == "status=503"
    assert no_action.status_code == 404
    assert no_action.json()["id"] == "api.post.do_action.action_id.app_error"
    assert no_post.status_code == 404
    assert no_post.json()["id"] == "app.post.get.app_error"


# ---------------------------------------------------------------- dialogs


def test_click_trigger_opens_a_dialog_whose_submission_reaches_its_url(
    fake: FakeMattermost, integration: Integration
) -> None:
    """The integration opens a dialog with the click's trigger id; submit_dialog POSTs the body."""
    record = open_dialog_via_click(fake, integration, CONNECT_DIALOG)
    submission = {"login": "ivan@yandex.ru", "password": "abcdefghijklmnop", "tz": None}

    result = fake.submit_dialog(ALICE, submission)

    assert record["error_id"] is None
    assert record["problems"] == []
    assert record["open"] is True
    assert (record["user_id"], record["channel_id"], record["team_id"]) == (
        ALICE,
        TOWN,
        fake.team_id,
    )
    assert record["dialog"] == CONNECT_DIALOG
    path, body, _ = integration.received[-1]
    assert path == "/dialog"
    assert body == {
        "type": "dialog_submission",
        "callback_id": "connect",
        "state": "step-1",
        "user_id": ALICE,
        "channel_id": TOWN,
        "team_id": fake.team_id,
        "submission": submission,
        "cancelled": False,
    }
    assert result["sent"] is True
    assert result["status"] == 200
    assert result["response"] == {}
    assert result["open"] is False
    assert fake.dialogs_opened[-1]["open"] is False
    announced = [e for e in fake.events if e["event"] == "open_dialog"]
    assert announced[0]["broadcast"]["user_id"] == ALICE
    assert json.loads(announced[0]["data"]["dialog"])["dialog"]["callback_id"] == "connect"
    with pytest.raises(LookupError):
        fake.submit_dialog(ALICE, submission)


def test_dialog_open_needs_an_issued_fresh_unused_trigger_and_a_url(
    fake: FakeMattermost, integration: Integration
) -> None:
    """No url, a foreign, reused or expired trigger id: 400 with the server's ids; no token needed."""
    triggers: list[str] = []

    def remember(path: str, body: Any) -> tuple[int, bytes]:
        triggers.append(body["trigger_id"])
        return 200, b"{}"

    integration.reply = remember
    post = button_post(fake, integration.url())
    for _ in range(3):
        fake.click(post["id"], first_action_id(post), ALICE)
    dialog = {"title": "Confirm", "elements": []}

    def open_with(trigger: str, url: str = integration.url("/d"), **kwargs: Any) -> httpx.Response:
        body = {"trigger_id": trigger, "url": url, "dialog": dialog}
        return api(fake, "POST", "/actions/dialogs/open", json=body, **kwargs)

    no_url = open_with(triggers[0], url="")
    not_base64 = open_with("not base64 !")
    foreign = open_with(base64.b64encode(b"a:b").decode())
    forged = open_with(base64.b64encode(b"a:b:1:sig").decode())
    opened = open_with(triggers[0])
    reused = open_with(triggers[0])
    tokenless = httpx.post(
        f"{fake.url}:{fake.port}/api/v4/actions/dialogs/open",
        json={"trigger_id": triggers[2], "url": integration.url("/d"), "dialog": dialog},
    )
    fake.trigger_ttl = 0.1
    time.sleep(0.2)
    expired = open_with(triggers[1])

    assert no_url.status_code == 400
    assert no_url.json()["id"] == "api.context.invalid_body_param.app_error"
    assert [r.json()["id"] for r in (not_base64, foreign, forged)] == [
        "interactive_message.decode_trigger_id.base64_decode_failed",
        "interactive_message.decode_trigger_id.missing_data",
        "interactive_message.decode_trigger_id.verify_signature_failed",
    ]
    assert opened.status_code == 200
    assert opened.json() == {"status": "OK"}
    assert reused.status_code == 400
    assert reused.json()["id"] == "fake.trigger_id.already_used"
    assert tokenless.status_code == 200
    assert expired.status_code == 400
    assert expired.json()["id"] == "interactive_message.decode_trigger_id.expired"
    assert [d["open"] for d in fake.dialogs_opened] == [False] * 4 + [True, False, True, False]


def _text(name: str, **extra: Any) -> dict[str, Any]:
    return {"display_name": name.title(), "name": name, "type": "text", **extra}


@pytest.mark.parametrize(
    ("dialog", "problem"),
    [
        ({"title": "Подключить календарь", "elements": []}, "title"),  # 20 letters, 39 bytes
        ({"title": "", "elements": []}, "title"),
        ({"title": "Connect", "elements": [_text("login"), _text("login")]}, "duplicate"),
        ({"title": "Connect", "elements": [_text("pw", subtype="secret")]}, "subtype"),
        ({"title": "Connect", "elements": [_text("pw", display_name="")]}, "display_name"),
        (
            {"title": "Connect", "elements": [_text("pw", display_name="Пароль приложения")]},
            "display_name",
        ),
        ({"title": "Connect", "elements": [_text("pw", type="password")]}, "element type"),
        ({"title": "Connect", "elements": [_text("on", type="bool", default="yes")]}, "bool"),
        ({"title": "Connect", "elements": [_text("n", min_length=5)]}, "min length"),
        (
            {
                "title": "Connect",
                "elements": [
                    _text("cal", type="select", default="c", options=[{"text": "A", "value": "a"}])
                ],
            },
            "options",
        ),
    ],
)
def test_invalid_dialog_is_refused_when_strict_and_only_recorded_otherwise(
    fake: FakeMattermost, integration: Integration, dialog: dict[str, Any], problem: str
) -> None:
    """Dialog.IsValid problems: 400 fake.dialog.invalid when strict; accepted but noted when not."""
    triggers: list[str] = []

    def remember(path: str, body: Any) -> tuple[int, bytes]:
        triggers.append(body["trigger_id"])
        return 200, b"{}"

    integration.reply = remember
    post = button_post(fake, integration.url())
    fake.click(post["id"], first_action_id(post), ALICE)
    fake.click(post["id"], first_action_id(post), ALICE)

    def open_with(trigger: str) -> httpx.Response:
        body = {"trigger_id": trigger, "url": integration.url("/d"), "dialog": dialog}
        return api(fake, "POST", "/actions/dialogs/open", json=body)

    strict = open_with(triggers[0])
    fake.strict_dialogs = False
    lenient = open_with(triggers[1])

    assert strict.status_code == 400
    assert strict.json()["id"] == "fake.dialog.invalid"
    assert problem in strict.json()["detailed_error"]
    assert lenient.status_code == 200
    refused, accepted = fake.dialogs_opened
    assert refused["error_id"] == "fake.dialog.invalid"
    assert not refused["open"]
    assert accepted["open"]
    assert any(problem in p for p in accepted["problems"])


def test_dialog_has_no_element_count_limit(fake: FakeMattermost, integration: Integration) -> None:
    """The server's IsValid sets no maximum number of elements: eight text fields are fine."""
    dialog = {"title": "Settings", "elements": [_text(f"field{i}") for i in range(8)]}

    record = open_dialog_via_click(fake, integration, dialog)

    assert record["open"]
    assert record["problems"] == []


def test_dialog_errors_keep_it_open_and_cancel_is_sent_only_with_notify_on_cancel(
    fake: FakeMattermost, integration: Integration
) -> None:
    """errors/error/non-200 keep the dialog open; a non-JSON 200 closes it; cancels as the webapp."""
    record = open_dialog_via_click(fake, integration, CONNECT_DIALOG)
    answers = [
        (200, b'{"errors": {"password": "Yandex refused this password"}}'),
        (500, b"{}"),
        (200, b'{"error": "Yandex is unreachable, try later"}'),
        (200, b"not json"),
    ]
    results = []
    for status, payload in answers:
        integration.reply = lambda path, body, s=status, p=payload: (s, p)
        results.append(fake.submit_dialog(ALICE, {"login": "ivan", "password": "x"}, dialog=record))
    silent = open_dialog_via_click(fake, integration, CONNECT_DIALOG)
    calls_before_cancel = len(integration.received)
    silent_cancel = fake.submit_dialog(ALICE, {"login": "typed"}, cancelled=True)
    calls_after_silent_cancel = len(integration.received)
    notifying = open_dialog_via_click(
        fake, integration, {**CONNECT_DIALOG, "notify_on_cancel": True}
    )
    integration.answer({"errors": {"login": "ignored on cancel"}})
    notified_cancel = fake.submit_dialog(ALICE, {"login": "typed"}, cancelled=True)

    assert [r["open"] for r in results] == [True, True, True, False]
    assert results[0]["response"] == {"errors": {"password": "Yandex refused this password"}}
    assert results[1]["status"] == 500
    assert results[1]["error"] == "status=500"
    assert results[3]["response"] == {}
    assert silent_cancel["sent"] is False
    assert silent_cancel["open"] is False
    assert calls_after_silent_cancel == calls_before_cancel
    assert notified_cancel["sent"] is True
    assert notified_cancel["open"] is False
    assert integration.received[-1][1]["cancelled"] is True
    assert integration.received[-1][1]["submission"] == {}
    assert [d["open"] for d in fake.dialogs_opened] == [False, False, False]
    assert silent["id"] != notifying["id"]
    with pytest.raises(ValueError, match="not open"):
        fake.submit_dialog(ALICE, {}, dialog=record)


def test_submitted_values_never_reach_the_fakes_logs(
    fake: FakeMattermost, integration: Integration, caplog: pytest.LogCaptureFixture
) -> None:
    """Not even at DEBUG does the fake log a submitted app password; it logs field names only."""
    caplog.set_level(logging.DEBUG)
    open_dialog_via_click(fake, integration, CONNECT_DIALOG)
    integration.answer({"errors": {"password": "wrong"}})
    fake.submit_dialog(ALICE, {"login": "ivan@yandex.ru", "password": "hunter2-app-password"})
    integration.answer({})
    fake.submit_dialog(ALICE, {"login": "ivan@yandex.ru", "password": "hunter2-app-password"})

    assert "hunter2-app-password" not in caplog.text
    submitted = [r for r in caplog.records if "fake_mm.dialog_submitted" in r.getMessage()]
    assert len(submitted) == 2
    assert "'password'" in submitted[0].getMessage()
    assert all(r.levelno < logging.INFO for r in submitted)
    assert fake.dialog_submissions[0]["request"]["submission"]["password"] == "hunter2-app-password"


# ---------------------------------------------------------------- edits


def test_patch_and_update_edit_the_bots_post_broadcast_post_edited_and_keep_history(
    fake: FakeMattermost,
) -> None:
    """A patch changes only its fields, an update replaces the post; edit_at moves with the text."""
    driver = bare_driver(fake)
    post = driver.posts.create_post({"channel_id": TOWN, "message": "v1", "props": {"a": 1}})

    props_only = driver.posts.patch_post(post["id"], {"props": {"b": 2}})
    text_only = driver.posts.patch_post(post["id"], {"message": "v2"})
    updated = driver.posts.update_post(post["id"], {"id": post["id"], "message": "v3"})
    same_text = driver.posts.patch_post(post["id"], {"message": "v3"})

    assert props_only["message"] == "v1"
    assert props_only["props"] == {"b": 2}
    assert props_only["edit_at"] == 0
    assert props_only["update_at"] > post["update_at"]
    assert text_only["props"] == {"b": 2}
    assert text_only["edit_at"] > 0
    assert updated["message"] == "v3"
    assert updated["props"] == {}
    assert updated["edit_at"] > text_only["edit_at"]
    assert same_text["edit_at"] == updated["edit_at"]
    assert same_text["update_at"] > updated["update_at"]
    assert fake.post_history(post["id"]) == [
        {"message": "v1", "props": {"a": 1}},
        {"message": "v1", "props": {"b": 2}},
        {"message": "v2", "props": {"b": 2}},
        {"message": "v3", "props": {}},
        {"message": "v3", "props": {}},
    ]
    assert [e["via"] for e in fake.edits] == ["patch", "patch", "update", "patch"]
    assert {e["by"] for e in fake.edits} == {fake.bot_user_id}
    edited = [e for e in fake.events if e["event"] == "post_edited"]
    assert [json.loads(e["data"]["post"])["message"] for e in edited] == ["v1", "v2", "v3", "v3"]
    assert all(e["broadcast"]["channel_id"] == TOWN for e in edited)


def test_editing_others_or_deleted_posts_is_403_and_update_needs_the_matching_id(
    fake: FakeMattermost,
) -> None:
    """Others' posts need bot_can_edit_others; unknown or deleted 403; an id mismatch is 400."""
    driver = bare_driver(fake)
    alices = fake.user_says(ALICE, "hi", channel_id=TOWN)
    own = driver.posts.create_post({"channel_id": TOWN, "message": "mine"})

    with pytest.raises(NotEnoughPermissions):
        driver.posts.patch_post(alices, {"message": "edited by the bot"})
    with pytest.raises(InvalidOrMissingParameters):
        driver.posts.update_post(own["id"], {"id": alices, "message": "x"})
    fake.bot_can_edit_others = True
    driver.posts.patch_post(alices, {"message": "edited by the bot"})
    driver.posts.delete_post(own["id"])
    with pytest.raises(NotEnoughPermissions):
        driver.posts.patch_post(own["id"], {"message": "x"})
    with pytest.raises(NotEnoughPermissions):
        driver.posts.update_post("n" * 26, {"id": "n" * 26, "message": "x"})

    assert fake.post(alices)["message"] == "edited by the bot"
    assert fake.post(own["id"])["message"] == "mine"


# ---------------------------------------------------------------- catching up


def test_user_channels_are_dms_and_joined_channels_with_last_post_at(fake: FakeMattermost) -> None:
    """GET /users/me/channels lists the bot's DMs and joined channels; others' need an admin."""
    fake.add_channel(VAULT, "vault", "P", members=[BOB])
    said = fake.user_says(ALICE, "hello")
    quiet_dm = fake.dm_channel_id(BOB)
    fake.add_channel_member(TOWN, fake.bot_user_id)
    driver = bare_driver(fake)

    mine = driver.channels.get_channels_for_user("me")
    with pytest.raises(NotEnoughPermissions):
        driver.channels.get_channels_for_user(BOB)
    fake.update_user(fake.bot_user_id, roles="system_admin system_user")
    bobs = driver.channels.get_channels_for_user(BOB)

    assert [c["id"] for c in mine] == sorted([fake.dm_channel_id(ALICE), quiet_dm, TOWN])
    by_id = {c["id"]: c for c in mine}
    assert by_id[fake.dm_channel_id(ALICE)]["last_post_at"] == fake.post(said)["create_at"]
    assert by_id[quiet_dm]["last_post_at"] == 0
    assert by_id[TOWN]["type"] == "O"
    assert [c["id"] for c in bobs] == sorted([quiet_dm, VAULT])
    assert fake.channel_members(VAULT) == {BOB}


def test_user_says_works_with_no_socket_and_can_backdate_or_skip_the_event(
    fake: FakeMattermost,
) -> None:
    """With nobody connected a post is stored; at_ms sets create_at; broadcast=False sends none."""
    now = int(time.time() * 1000)

    late = fake.user_says(ALICE, "are you there?")
    missed = fake.user_says(ALICE, "missed", at_ms=now - 20 * 60_000)
    lost = fake.user_says(ALICE, "lost event", broadcast=False)

    assert fake.connected_sockets == 0
    assert fake.post(missed)["create_at"] == fake.post(missed)["update_at"] == now - 20 * 60_000
    assert [p["id"] for p in fake.posts_in(fake.dm_channel_id(ALICE))] == [missed, late, lost]
    posted = [json.loads(e["data"]["post"])["id"] for e in fake.events if e["event"] == "posted"]
    assert posted == [late, missed]


def test_channel_posts_since_returns_created_edited_and_deleted_posts_newest_first(
    fake: FakeMattermost,
) -> None:
    """since: every post updated after it (deleted ones too), newest first, reply roots in posts."""
    dm = fake.dm_channel_id(ALICE)
    now = int(time.time() * 1000)
    fake.user_says(ALICE, "an hour ago", at_ms=now - 60 * 60_000)
    root = fake.user_says(ALICE, "half an hour ago", at_ms=now - 30 * 60_000)
    typo = fake.user_says(ALICE, "typo", at_ms=now - 25 * 60_000)
    secret = fake.user_says(ALICE, "connect me pw", at_ms=now - 24 * 60_000)
    since = now - 20 * 60_000
    missed = fake.user_says(ALICE, "ten minutes ago", at_ms=now - 10 * 60_000)
    driver = bare_driver(fake)
    reply = driver.posts.create_post({"channel_id": dm, "message": "on it", "root_id": root})
    fake.bot_can_edit_others = True
    driver.posts.patch_post(typo, {"message": "fixed"})
    driver.posts.delete_post(secret)

    result = driver.posts.get_posts_for_channel(dm, params={"since": since})

    assert result["order"] == [reply["id"], missed, secret, typo]
    assert set(result["posts"]) == {reply["id"], missed, secret, typo, root}
    assert result["posts"][secret]["delete_at"] > 0
    assert result["posts"][typo]["message"] == "fixed"
    assert result["next_post_id"] == ""
    assert result["prev_post_id"] == ""
    assert driver.posts.get_posts_for_channel(dm, params={"since": now + 60_000})["order"] == []


def test_channel_posts_pages_newest_first_with_cursors_and_deleted_only_for_admins(
    fake: FakeMattermost,
) -> None:
    """page/per_page and before/after walk newest first with cursor ids; include_deleted needs admin."""
    ids = [fake.user_says(ALICE, f"m{i}", channel_id=TOWN) for i in range(5)]
    driver = bare_driver(fake)
    driver.posts.delete_post(ids[2])

    def get(**params: Any) -> dict[str, Any]:
        return driver.posts.get_posts_for_channel(TOWN, params=params)

    first, second = get(per_page=2), get(page=1, per_page=2)
    before, after = get(before=ids[3]), get(after=ids[1])
    with pytest.raises(NotEnoughPermissions):
        get(include_deleted="true")
    with pytest.raises(NotEnoughPermissions):
        driver.posts.get_posts_for_channel(fake.dm_channel_id(ALICE, BOB))
    with pytest.raises(ResourceNotFound):
        driver.posts.get_posts_for_channel("n" * 26)
    fake.update_user(fake.bot_user_id, roles="system_admin system_user")
    everything = get(include_deleted="true")

    assert (first["order"], first["next_post_id"], first["prev_post_id"]) == (
        [ids[4], ids[3]],
        "",
        ids[1],
    )
    assert (second["order"], second["next_post_id"], second["prev_post_id"]) == (
        [ids[1], ids[0]],
        ids[3],
        "",
    )
    assert (before["order"], before["next_post_id"]) == ([ids[1], ids[0]], ids[3])
    assert (after["order"], after["prev_post_id"]) == ([ids[4], ids[3]], ids[1])
    assert everything["order"] == ids[::-1]
    assert everything["posts"][ids[2]]["delete_at"] > 0
    assert get(per_page=1000)["order"] == [ids[4], ids[3], ids[1], ids[0]]


def test_pending_post_id_returns_the_first_post_until_the_ttl_passes(fake: FakeMattermost) -> None:
    """A repeat within pending_post_ttl gets the first post (201) and no new post or event."""
    fake.pending_post_ttl = 0.3
    body = {"channel_id": TOWN, "message": "Reminder", "pending_post_id": f"{fake.bot_user_id}:1"}
    too_long = {**body, "message": "x" * (MAX_POST_RUNES + 1), "pending_post_id": "retry:1"}

    first = api(fake, "POST", "/posts", json=body)
    again = api(fake, "POST", "/posts", json=body)
    refused = api(fake, "POST", "/posts", json=too_long)
    retried = api(fake, "POST", "/posts", json={**too_long, "message": "short"})
    time.sleep(0.4)
    later = api(fake, "POST", "/posts", json=body)

    assert (first.status_code, again.status_code, later.status_code) == (201, 201, 201)
    assert again.json() == first.json()
    assert refused.status_code == 400
    assert retried.status_code == 201
    assert later.json()["id"] != first.json()["id"]
    assert [p["message"] for p in fake.posts_in(TOWN)] == ["Reminder", "short", "Reminder"]
    assert len([e for e in fake.events if e["event"] == "posted"]) == 3


def test_users_have_email_and_roles_and_can_be_fetched_by_usernames(fake: FakeMattermost) -> None:
    """email defaults to <username>@example.com, admin=True sets roles, the bot is a bot."""
    fake.add_user(CAROL, "carol", email="carol@corp.example", admin=True)
    driver = bare_driver(fake)

    bob, carol, me = (
        driver.users.get_user(BOB),
        driver.users.get_user(CAROL),
        driver.users.get_user("me"),
    )
    found = driver.users.get_users_by_usernames(["carol", "nobody", "bob", "carol"])

    assert (bob["email"], bob["roles"], bob["is_bot"]) == ("bob@example.com", "system_user", False)
    assert (carol["email"], carol["roles"]) == ("carol@corp.example", "system_admin system_user")
    assert me["is_bot"] is True
    assert me["username"] == fake.bot_username
    assert [u["username"] for u in found] == ["carol", "bob"]
    for bad in ([], {"usernames": ["bob"]}, [1]):
        response = api(fake, "POST", "/users/usernames", json=bad)
        assert response.status_code == 400
        assert response.json()["id"] == "api.context.invalid_body_param.app_error"


# ---------------------------------------------------------------- outages


def test_set_down_answers_html_502_everywhere_and_closes_sockets_until_restored(
    fake: FakeMattermost, integration: Integration
) -> None:
    """Down: REST 502 text/html, upgrades 502, open sockets closed; back up, all works again."""
    post = button_post(fake, integration.url())
    driver = bare_driver(fake)

    async def scenario() -> tuple[aiohttp.WSMessage, int]:
        async with aiohttp.ClientSession() as session:
            ws = await _authenticated_ws(session, fake)
            await asyncio.to_thread(fake.set_down, True)
            closed = await ws.receive(timeout=5)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(ws_url(fake))
            return closed, refused.value.status

    closed, upgrade_status = asyncio.run(scenario())
    down = api(fake, "GET", "/users/me")
    with pytest.raises(httpx.HTTPStatusError) as raised:
        driver.posts.create_post({"channel_id": TOWN, "message": "while down"})
    with pytest.raises(RuntimeError, match="down"):
        fake.click(post["id"], first_action_id(post), ALICE)
    fake.set_down(False)
    up = api(fake, "GET", "/users/me")

    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert upgrade_status == 502
    assert down.status_code == 502
    assert down.headers["Content-Type"] == "text/html"
    assert "502 Bad Gateway" in down.text
    assert raised.value.response.status_code == 502
    assert ("POST", "/api/v4/posts", {"channel_id": TOWN, "message": "while down"}) in [
        (m, p, {k: b[k] for k in ("channel_id", "message")} if isinstance(b, dict) else b)
        for m, p, b in fake.requests
    ]
    assert up.status_code == 200
    assert fake.down is False
    assert fake.ws_refused_count == 1
    assert [p["message"] for p in fake.posts_in(TOWN)] == ["Meeting soon"]


def test_websocket_refused_closes_sockets_and_refuses_upgrades_while_rest_works(
    fake: FakeMattermost,
) -> None:
    """set_websocket_refused: upgrades 502, open sockets closed, REST untouched; False restores."""

    async def scenario() -> tuple[aiohttp.WSMessage, int, dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            ws = await _authenticated_ws(session, fake)
            await asyncio.to_thread(fake.set_websocket_refused, True)
            closed = await ws.receive(timeout=5)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(ws_url(fake))
            rest = await asyncio.to_thread(api, fake, "GET", "/users/me")
            await asyncio.to_thread(fake.set_websocket_refused, False)
            again = await _authenticated_ws(session, fake)
            post_id = await asyncio.to_thread(fake.user_says, ALICE, "ping")
            event = await _read_json(again)
            await again.close()
            assert json.loads(event["data"]["post"])["id"] == post_id
            return closed, refused.value.status, rest.json()

    closed, status, me = asyncio.run(scenario())

    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert status == 502
    assert me["id"] == fake.bot_user_id
    assert fake.ws_refused_count == 1
    assert fake.ws_auth_count == 2


# ---------------------------------------------------------------- the real driver, as mmpy-bot builds it


@pytest.mark.e2e
def test_new_routes_work_through_the_bots_own_driver(
    fake: FakeMattermost, running: RunningBot, integration: Integration
) -> None:
    """bot.driver: pending_post_id, patch_post, open_interactive_dialog, channel posts, channels, users."""
    driver = running.bot.driver
    started = int(time.time() * 1000) - 1
    body = {"channel_id": TOWN, "message": "Agenda", "pending_post_id": f"{fake.bot_user_id}:42"}
    triggers: list[str] = []

    def remember(path: str, payload: Any) -> tuple[int, bytes]:
        triggers.append(payload["trigger_id"])
        return 200, b"{}"

    integration.reply = remember

    first = driver.posts.create_post(body)
    again = driver.posts.create_post(body)
    patched = driver.posts.patch_post(first["id"], {"message": "Agenda (updated)"})
    button = button_post(fake, integration.url())
    fake.click(button["id"], first_action_id(button), ALICE)
    opened = driver.integration_actions.open_interactive_dialog(
        {"trigger_id": triggers[0], "url": integration.url("/dialog"), "dialog": CONNECT_DIALOG}
    )
    since = driver.posts.get_posts_for_channel(TOWN, params={"since": started})
    channels = driver.channels.get_channels_for_user("me")
    users = driver.users.get_users_by_usernames(["alice", "bob"])

    assert again["id"] == first["id"]
    assert len(fake.posts_in(TOWN)) == 2
    assert patched["message"] == "Agenda (updated)"
    assert patched["edit_at"] > 0
    assert opened == {"status": "OK"}
    assert fake.dialogs_opened[-1]["open"] is True
    assert since["order"] == [button["id"], first["id"]]
    assert (
        "integration" not in since["posts"][button["id"]]["props"]["attachments"][0]["actions"][0]
    )
    assert TOWN in [c["id"] for c in channels]
    assert [u["id"] for u in users] == [ALICE, BOB]


@pytest.mark.e2e
def test_bots_client_reconnects_once_websocket_upgrades_are_accepted_again(
    fake: FakeMattermost,
) -> None:
    """The real client retries refused upgrades and authenticates again when they work."""
    with run_bot(echo_bot_factory(fake), fake, keepalive_delay=0.2):
        auth_before = fake.ws_auth_count
        fake.set_websocket_refused(True)
        assert fake.wait_for(lambda: fake.ws_refused_count >= 2, timeout=10)
        assert fake.connected_sockets == 0
        fake.set_websocket_refused(False)
        assert fake.wait_for(lambda: fake.ws_auth_count > auth_before, timeout=10)
        post_id = fake.user_says(ALICE, "ping")

        reply = fake.wait_for_post(lambda p: p["root_id"] == post_id)

    assert reply["message"] == "pong"
