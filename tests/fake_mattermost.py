"""A small fake Mattermost server (REST API v4 + websocket) for tests.

No Mattermost server can run on our machines and no package emulates one, so the end-to-end
tests drive the real, unmodified ``mmpy_bot.Bot`` (and its ``mattermostautodriver`` client)
against this server. It speaks the wire format those libraries send and parse; see
``/work/shared/notes/mattermost.md`` for the facts it is built on.

Usage::

    fake = FakeMattermost().start()          # own thread, own event loop, 127.0.0.1:<free port>
    fake.add_user("alice0000000000000000000000", "alice", timezone="Europe/Moscow")
    post_id = fake.user_says("alice0000000000000000000000", "ping")   # DM to the bot
    reply = fake.wait_for_post(lambda p: p["root_id"] == post_id)
    fake.stop()

What it serves (every REST call needs ``Authorization: Bearer <fake.token>``):

==========  ======================================  ==========================================
method      path                                    notes
==========  ======================================  ==========================================
GET         /api/v4/users/{id|me}                   user object; ``props`` omitted when empty
GET         /api/v4/users/username/{username}       user object
GET         /api/v4/users/{id|me}/status            ``{user_id, status, manual, ...}``
PUT         /api/v4/users/{id|me}/status/custom     validated like the server, see below
DELETE      /api/v4/users/{id|me}/status/custom     sets ``props.customStatus`` to ``""``
POST        /api/v4/channels/direct                 ``[id1, id2]`` -> one stable "D" channel, 201
GET         /api/v4/channels/{id}                   channel object
POST        /api/v4/posts                           201; broadcasts a websocket ``posted`` event
POST        /api/v4/posts/ephemeral                 201; recorded in ``ephemeral_posts`` only
GET         /api/v4/posts/{id}                      404 once deleted
GET         /api/v4/posts/{id}/thread               ``{order, posts, ...}``
DELETE      /api/v4/posts/{id}                      others' posts need ``bot_can_delete_others``
GET (ws)    /api/v4/websocket                       authentication_challenge, hello, events
==========  ======================================  ==========================================

Anything else answers 404 (405 for a known path with another method) in Mattermost's error
shape ``{id, message, detailed_error, request_id, status_code}`` and is listed in
``unknown_requests``. Every REST call, known or not, authorised or not, is appended to
``requests`` as ``(method, path, json_body)``.

Every JSON response carries ``Content-Type: application/json`` exactly: the driver's ``get()``
compares the header with ``!=`` and hands back the raw ``httpx.Response`` otherwise, which
breaks ``Driver.login()`` (aiohttp's ``json_response`` would add ``; charset=utf-8``).

Server rules copied on purpose (from the Mattermost server source):

* custom status (``api4/status.go``, ``model/custom_status.go``): 501 first when the feature is
  off; then 400 unless the body decodes, emoji or text is non-empty, ``expires_at`` is a strict
  RFC 3339 string (or absent/null) and ``duration``/``expires_at`` agree (a non-empty
  ``duration`` needs a future ``expires_at``; an empty one with a future ``expires_at`` becomes
  ``date_and_time``); then 403 without permission; text is cut to 100 characters.
* posts: unknown channel -> 403 (the server checks ``create_post`` permission first); a
  ``root_id`` that is unknown, deleted, in another channel or itself a reply -> 400; a message
  over 16383 characters -> 400 ``model.post.is_valid.message_length.app_error`` (the real
  status; the driver maps 413 to ``ContentTooLarge``, but the server does not send 413 here —
  set ``post_too_long_status`` to change it).
* delete: an unknown or already deleted post -> 403 (the server hides existence); someone
  else's post -> 403 unless ``bot_can_delete_others``; deleting a root deletes its replies.
* ``posted`` events: ``data.post`` and ``data.mentions`` are JSON *strings*; ``mentions`` is
  present only when someone is mentioned (in a DM: the other member; elsewhere: ``@username``
  in the text); ``team_id`` is ``""`` for DMs; ``sender_name`` is ``"@username"``.

Simplifications: no channel membership (every authenticated socket gets every event, and every
known user can be mentioned anywhere); no ``@channel``/``@all``; no file uploads; ``expires_at``
is stored as sent instead of being re-rendered by Go's time formatter.

Threading: the server runs in a daemon thread with its own asyncio loop. Every public method is
safe to call from any thread except the server's own. ``user_says``, ``nudge_websockets`` and
``drop_websockets`` block until their frames are written.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

log = logging.getLogger(__name__)

API = "/api/v4"
WEBSOCKET_PATH = f"{API}/websocket"
JSON_CONTENT_TYPE = "application/json"
MAX_POST_RUNES = 16383  # model.PostMessageMaxRunesV2
CUSTOM_STATUS_TEXT_MAX_RUNES = 100  # model.CustomStatusTextMaxRunes
CUSTOM_STATUS_DURATIONS = frozenset(
    {"thirty_minutes", "one_hour", "four_hours", "today", "this_week", "date_and_time"}
)
USER_STATUSES = frozenset({"online", "away", "dnd", "offline"})
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
# Go's strict RFC 3339 (time.Time.UnmarshalJSON since Go 1.20): "T", seconds, a zone.
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})\Z")
_INVALID_JSON = object()  # marks a request body that is not JSON
# Where the middleware leaves the parsed body for handlers (RequestKey exists from aiohttp 3.13).
_BODY_KEY: Any = (
    web.RequestKey("fake_mm_body", object) if hasattr(web, "RequestKey") else "fake_mm_body"
)


def new_id() -> str:
    """Return a Mattermost-style id: 26 lowercase base32 characters."""
    return base64.b32encode(uuid.uuid4().bytes).decode("ascii").lower().rstrip("=")


def _json_response(data: Any, status: int = 200, request_id: str = "") -> web.Response:
    """A JSON response whose Content-Type is exactly ``application/json`` (no charset)."""
    headers = {"Content-Type": JSON_CONTENT_TYPE, "X-Version-Id": "fake"}
    if request_id:
        headers["X-Request-Id"] = request_id
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return web.Response(body=body, status=status, headers=headers)


def _dumps_compact(data: Any) -> str:
    """JSON as Go's ``json.Marshal`` writes it: compact, UTF-8 kept as is."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _parse_rfc3339(value: str) -> datetime | None:
    """Parse a strict RFC 3339 timestamp; None when it is not one."""
    match = _RFC3339.match(value)
    if not match:
        return None
    day, clock, fraction, zone = match.groups()
    fraction = f".{fraction[:6]}" if fraction else ""  # Python keeps microseconds only
    zone = "+00:00" if zone == "Z" else zone
    try:
        return datetime.fromisoformat(f"{day}T{clock}{fraction}{zone}")
    except ValueError:
        return None


class ApiError(Exception):
    """An error answered in Mattermost's shape ``{id, message, detailed_error, ...}``."""

    def __init__(self, status: int, error_id: str, message: str, detailed: str = "") -> None:
        super().__init__(f"{status} {error_id}: {message}")
        self.status = status
        self.error_id = error_id
        self.message = message
        self.detailed = detailed

    def body(self, request_id: str) -> dict[str, Any]:
        """The JSON body the real server sends for this error."""
        return {
            "id": self.error_id,
            "message": self.message,
            "detailed_error": self.detailed,
            "request_id": request_id,
            "status_code": self.status,
        }


def _permission_error(user_id: str, permission: str) -> ApiError:
    return ApiError(
        403,
        "api.context.permissions.app_error",
        "You do not have the appropriate permissions.",
        f"userId={user_id}, permission={permission}",
    )


def _invalid_body(param: str) -> ApiError:
    return ApiError(
        400,
        "api.context.invalid_body_param.app_error",
        f"Invalid or missing {param} in request body.",
    )


@dataclass
class _Failure:
    """A one-shot (or n-shot) error injected with ``fail_next``."""

    method: str
    path: re.Pattern[str]
    status: int
    times: int
    error_id: str
    message: str


@dataclass(eq=False)
class _Socket:
    """One websocket connection and its per-connection event sequence."""

    ws: web.WebSocketResponse
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    authenticated: bool = False
    seq: int = 0


class FakeMattermost:
    """A Mattermost server double on 127.0.0.1: REST v4 + websocket, real wire format.

    Attributes tests read or set:

    * ``url`` (``"http://127.0.0.1"``), ``port`` (0 until started), ``token``: what the bot's
      ``Settings`` need (``MATTERMOST_URL``, ``MATTERMOST_PORT``, ``BOT_TOKEN``).
    * ``bot_user_id``, ``bot_username``, ``team_id``.
    * ``bot_can_delete_others`` (default True): False -> deleting another user's post is 403.
    * ``custom_status_error``: None (default), 501 (feature switched off, for every user), 403
      (the bot may not edit *other* users; its own status still works) or any other status
      (returned for every user after validation).
    * ``post_too_long_status`` (default 400, what the server sends).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_username: str = "calendar-bot",
        bot_user_id: str | None = None,
        server_version: str = "9.11.0",
    ) -> None:
        self.url = "http://127.0.0.1"
        self.port = 0
        self.token = token or f"fake-token-{new_id()}"
        self.bot_user_id = bot_user_id or new_id()
        self.bot_username = bot_username
        self.team_id = new_id()
        self.server_version = server_version
        self.bot_can_delete_others = True
        self.custom_status_error: int | None = None
        self.post_too_long_status = 400

        self._lock = threading.RLock()
        self._users: dict[str, dict[str, Any]] = {}
        self._statuses: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._dm_members: dict[str, tuple[str, str]] = {}
        self._dm_by_pair: dict[frozenset[str], str] = {}
        self._posts: list[dict[str, Any]] = []
        self._posts_by_id: dict[str, dict[str, Any]] = {}
        self._ephemeral: list[dict[str, Any]] = []
        self._requests: list[tuple[str, str, Any]] = []
        self._unknown: list[tuple[str, str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._handler_errors: list[str] = []
        self._failures: list[_Failure] = []
        self._sockets: set[_Socket] = set()
        self._ws_auth_count = 0
        self._last_millis = 0

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._start_error: BaseException | None = None

        self.add_user(self.bot_user_id, bot_username, roles="system_user", is_bot=True)

    def __repr__(self) -> str:
        return f"<FakeMattermost {self.url}:{self.port} bot=@{self.bot_username}>"

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> FakeMattermost:
        """Start serving in a daemon thread; a restart reuses the previous port."""
        if self._thread is not None:
            raise RuntimeError("FakeMattermost is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        self._start_error = None
        self._thread = threading.Thread(
            target=self._serve, args=(sock, ready), name=f"fake-mattermost:{self.port}", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout) or self._start_error is not None:
            error = self._start_error
            self.stop()
            raise RuntimeError(f"fake mattermost did not start: {error!r}") from error
        log.info("fake_mm.started port=%s", self.port)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every websocket, stop the server and join its thread."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and self._stop_requested is not None and thread.is_alive():
            loop.call_soon_threadsafe(self._stop_requested.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("fake mattermost thread did not stop")
        self._thread = None
        self._loop = None
        log.info("fake_mm.stopped port=%s", self.port)

    def __enter__(self) -> FakeMattermost:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._run_server(sock, ready))
        except BaseException as error:  # noqa: BLE001 - reported to start()
            self._start_error = error
            log.exception("fake_mm.crashed port=%s", self.port)
        finally:
            ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    async def _run_server(self, sock: socket.socket, ready: threading.Event) -> None:
        self._stop_requested = asyncio.Event()
        runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
            ready.set()
            await self._stop_requested.wait()
            await self._close_sockets(WSCloseCode.GOING_AWAY, b"server shutdown")
        finally:
            await runner.cleanup()
            sock.close()

    def _in_loop(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        """Run a coroutine on the server loop from another thread and wait for its result."""
        loop = self._loop
        if loop is None or not self.running:
            coro.close()
            raise RuntimeError("FakeMattermost is not running: call start() first")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("blocking fake call from the fake's own loop would deadlock")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    # ------------------------------------------------------------------ test-side API: data

    def add_user(
        self,
        user_id: str,
        username: str,
        locale: str = "en",
        timezone: str | dict[str, str] | None = None,
        roles: str = "system_user",
        *,
        props: dict[str, str] | None = None,
        is_bot: bool = False,
        status: str = "online",
    ) -> dict[str, Any]:
        """Create a user and return (a copy of) its user object.

        ``timezone``: None -> automatic with no zone known (a new user's default); a zone name
        -> automatic time zone set to it; a dict -> used as given (e.g. ``{"useAutomaticTimezone":
        "false", "automaticTimezone": "", "manualTimezone": "Asia/Tokyo"}``). Values are the
        strings the server sends.
        """
        if timezone is None:
            tz = {"useAutomaticTimezone": "true", "automaticTimezone": "", "manualTimezone": ""}
        elif isinstance(timezone, str):
            tz = {
                "useAutomaticTimezone": "true",
                "automaticTimezone": timezone,
                "manualTimezone": "",
            }
        else:
            tz = dict(timezone)
        now = self._millis()
        user: dict[str, Any] = {
            "id": user_id,
            "create_at": now,
            "update_at": now,
            "delete_at": 0,
            "username": username,
            "auth_data": "",
            "auth_service": "",
            "email": f"{username}@example.test",
            "nickname": "",
            "first_name": "",
            "last_name": "",
            "position": "",
            "roles": roles,
            "props": dict(props or {}),
            "notify_props": {"desktop": "mention", "email": "true", "push": "mention"},
            "last_password_update": now,
            "locale": locale,
            "timezone": tz,
            "is_bot": is_bot,
            "disable_welcome_email": False,
        }
        with self._lock:
            if user_id in self._users:
                raise ValueError(f"user {user_id} already exists")
            if any(u["username"] == username for u in self._users.values()):
                raise ValueError(f"username {username} already taken")
            self._users[user_id] = user
            self._statuses[user_id] = {
                "user_id": user_id,
                "status": "online",
                "manual": False,
                "last_activity_at": now,
                "dnd_end_time": 0,
            }
        if status != "online":
            self.set_user_status(user_id, status)
        return self.user(user_id)

    def update_user(self, user_id: str, **fields: Any) -> dict[str, Any]:
        """Overwrite fields of a user object (e.g. ``locale="ru"``); return the new copy."""
        with self._lock:
            user = self._require_user(user_id)
            user.update(copy.deepcopy(fields))
            user["update_at"] = self._millis()
        return self.user(user_id)

    def user(self, user_id: str) -> dict[str, Any]:
        """The stored user object (a copy, ``props`` included even when empty)."""
        with self._lock:
            return copy.deepcopy(self._require_user(user_id))

    def add_channel(
        self,
        channel_id: str,
        name: str,
        type: str = "O",  # noqa: A002 - the server's field name
        *,
        display_name: str | None = None,
    ) -> dict[str, Any]:
        """Create a team channel ("O" public, "P" private, "G" group); return a copy."""
        if type not in {"O", "P", "G"}:
            raise ValueError("use dm_channel_id() for direct channels")
        with self._lock:
            if channel_id in self._channels:
                raise ValueError(f"channel {channel_id} already exists")
            channel = self._new_channel(
                channel_id, name, type, display_name or name, self.team_id if type != "G" else ""
            )
            return copy.deepcopy(channel)

    def dm_channel_id(self, user_id: str, other_id: str | None = None) -> str:
        """Id of the DM channel between ``user_id`` and the bot (or ``other_id``), made once."""
        with self._lock:
            return self._direct_channel(user_id, other_id or self.bot_user_id)["id"]

    def set_user_status(self, user_id: str, status: str, dnd_end_time: int = 0) -> None:
        """Set a user's presence: online, away, dnd or offline (as if set by hand)."""
        if status not in USER_STATUSES:
            raise ValueError(f"status must be one of {sorted(USER_STATUSES)}")
        with self._lock:
            self._require_user(user_id)
            self._statuses[user_id].update(
                status=status,
                manual=True,
                last_activity_at=self._millis(),
                dnd_end_time=dnd_end_time if status == "dnd" else 0,
            )

    def set_custom_status(
        self,
        user_id: str,
        text: str,
        emoji: str = "",
        *,
        duration: str = "",
        expires_at: str = GO_ZERO_TIME,
    ) -> None:
        """Give a user a custom status as if they set it by hand (no validation)."""
        value = {"emoji": emoji, "text": text, "duration": duration, "expires_at": expires_at}
        with self._lock:
            user = self._require_user(user_id)
            user["props"]["customStatus"] = _dumps_compact(value)
            user["update_at"] = self._millis()

    def custom_status(self, user_id: str) -> dict[str, Any] | None:
        """The user's custom status (parsed ``props.customStatus``), None when unset."""
        with self._lock:
            raw = self._require_user(user_id)["props"].get("customStatus", "")
        return json.loads(raw) if raw else None

    def user_status(self, user_id: str) -> dict[str, Any]:
        """The user's presence record, as ``GET /users/{id}/status`` returns it."""
        with self._lock:
            self._require_user(user_id)
            return dict(self._statuses[user_id])

    # ------------------------------------------------------------------ test-side API: traffic

    def user_says(
        self,
        user_id: str,
        text: str,
        channel_id: str | None = None,
        root_id: str = "",
        mention_bot: bool = False,
    ) -> str:
        """Post ``text`` as ``user_id`` and broadcast it like the server; return the post id.

        ``channel_id`` None means the user's DM with the bot. ``mention_bot`` prefixes
        ``@<bot_username>`` (unless the text already mentions it), which fills ``mentions``.
        Blocks until the ``posted`` event was written to every authenticated socket.
        """
        if mention_bot and not re.search(rf"@{re.escape(self.bot_username)}\b", text):
            text = f"@{self.bot_username} {text}"
        with self._lock:
            self._require_user(user_id)
            if channel_id is None:
                channel_id = self._direct_channel(user_id, self.bot_user_id)["id"]
        return self._in_loop(self._user_says(user_id, text, channel_id, root_id))

    async def _user_says(self, user_id: str, text: str, channel_id: str, root_id: str) -> str:
        try:
            post = self._create_post(user_id, channel_id, text, root_id, {}, [])
        except ApiError as error:
            raise ValueError(f"user_says rejected like the server would: {error}") from None
        await self._broadcast_posted(post)
        return post["id"]

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        times: int = 1,
        error_id: str = "fake.injected_error",
        message: str = "Injected failure.",
    ) -> None:
        """Answer the next ``times`` matching REST calls with ``status`` in Mattermost's shape.

        ``method`` is an HTTP method or ``"*"``; ``path_regex`` must match the whole path
        (``re.fullmatch``), e.g. ``r"/api/v4/posts"``. Checked after authentication.
        """
        failure = _Failure(method.upper(), re.compile(path_regex), status, times, error_id, message)
        with self._lock:
            self._failures.append(failure)

    def nudge_websockets(self) -> int:
        """Send a harmless event to every authenticated socket; return how many got it.

        mattermostautodriver blocks in ``receive_str()``; after ``driver.disconnect()`` only an
        incoming frame lets its loop see ``_alive == False`` and return (closing the socket
        instead makes ``receive_str`` raise, and the client sleeps 5 s and reconnects).
        """
        if not self.running:
            return 0
        event = {
            "event": "status_change",
            "data": {"status": "online", "user_id": self.bot_user_id},
            "broadcast": self._broadcast_scope(user_id=self.bot_user_id),
        }
        return self._in_loop(self._broadcast(event, record=False))

    def drop_websockets(self) -> None:
        """Close every websocket from the server side (the client reconnects after 5 s)."""
        if self.running:
            self._in_loop(self._close_sockets(WSCloseCode.GOING_AWAY, b"dropped by test"))

    # ------------------------------------------------------------------ test-side API: reading

    @property
    def posts(self) -> list[dict[str, Any]]:
        """Every post created so far (deleted ones keep ``delete_at`` > 0), oldest first."""
        with self._lock:
            return copy.deepcopy(self._posts)

    def posts_in(self, channel_id: str, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Posts of one channel, oldest first; deleted ones only when asked."""
        return [
            p
            for p in self.posts
            if p["channel_id"] == channel_id and (include_deleted or not p["delete_at"])
        ]

    def posts_by(self, user_id: str) -> list[dict[str, Any]]:
        """Posts written by one user (the bot: ``fake.bot_user_id``), oldest first."""
        return [p for p in self.posts if p["user_id"] == user_id]

    def post(self, post_id: str) -> dict[str, Any]:
        """One stored post (a copy), deleted or not."""
        with self._lock:
            if post_id not in self._posts_by_id:
                raise KeyError(post_id)
            return copy.deepcopy(self._posts_by_id[post_id])

    @property
    def ephemeral_posts(self) -> list[dict[str, Any]]:
        """Bodies of ``POST /posts/ephemeral`` calls with the ids the server gave them."""
        with self._lock:
            return copy.deepcopy(self._ephemeral)

    @property
    def requests(self) -> list[tuple[str, str, Any]]:
        """Every REST call as ``(method, path, json_body)``; body None when empty."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def requests_to(self, method: str, path_regex: str) -> list[tuple[str, str, Any]]:
        """Recorded calls with this method (or ``"*"``) whose path fully matches the regex."""
        pattern = re.compile(path_regex)
        return [r for r in self.requests if method in ("*", r[0]) and pattern.fullmatch(r[1])]

    @property
    def unknown_requests(self) -> list[tuple[str, str, Any]]:
        """REST calls that matched no route (answered 404/405)."""
        with self._lock:
            return copy.deepcopy(self._unknown)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Websocket events broadcast so far (without per-connection ``seq``)."""
        with self._lock:
            return copy.deepcopy(self._events)

    @property
    def handler_errors(self) -> list[str]:
        """Exceptions raised inside the fake's handlers (bugs in the fake; answered 500)."""
        with self._lock:
            return list(self._handler_errors)

    @property
    def ws_auth_count(self) -> int:
        """How many websocket authentications succeeded since the fake was created."""
        with self._lock:
            return self._ws_auth_count

    @property
    def connected_sockets(self) -> int:
        """Websockets open and authenticated right now."""
        with self._lock:
            return sum(1 for s in self._sockets if s.authenticated)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> bool:
        """Poll ``predicate`` until it is truthy; False when ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Wait until at least one websocket is open and authenticated."""
        return self.wait_for(lambda: self.connected_sockets > 0, timeout)

    def wait_for_post(
        self, pred: Callable[[dict[str, Any]], Any], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Return the first post (oldest first) matching ``pred``; AssertionError on timeout."""
        found: list[dict[str, Any]] = []

        def match() -> bool:
            found[:] = [p for p in self.posts if pred(p)][:1]
            return bool(found)

        if self.wait_for(match, timeout):
            return found[0]
        seen = "\n".join(
            f"  {p['id']} user={p['user_id']} channel={p['channel_id']} root={p['root_id']!r} "
            f"deleted={bool(p['delete_at'])} message={p['message'][:120]!r}"
            for p in self.posts
        )
        raise AssertionError(f"no matching post within {timeout}s; posts seen:\n{seen or '  none'}")

    # ------------------------------------------------------------------ state helpers (locked)

    def _millis(self) -> int:
        """Strictly increasing epoch milliseconds, so ordering by create_at is stable."""
        with self._lock:
            self._last_millis = max(int(time.time() * 1000), self._last_millis + 1)
            return self._last_millis

    def _require_user(self, user_id: str) -> dict[str, Any]:
        user = self._users.get(user_id)
        if user is None:
            raise KeyError(f"unknown user {user_id}")
        return user

    def _resolve_user(self, user_id: str) -> str:
        return self.bot_user_id if user_id == "me" else user_id

    def _new_channel(
        self, channel_id: str, name: str, type_: str, display_name: str, team_id: str
    ) -> dict[str, Any]:
        now = self._millis()
        channel = {
            "id": channel_id,
            "create_at": now,
            "update_at": now,
            "delete_at": 0,
            "team_id": team_id,
            "type": type_,
            "display_name": display_name,
            "name": name,
            "header": "",
            "purpose": "",
            "last_post_at": 0,
            "total_msg_count": 0,
            "extra_update_at": 0,
            "creator_id": "",
        }
        self._channels[channel_id] = channel
        return channel

    def _direct_channel(self, user_a: str, user_b: str) -> dict[str, Any]:
        """The DM channel of two users, created on first use (name: sorted ids joined by __)."""
        with self._lock:
            self._require_user(user_a)
            self._require_user(user_b)
            pair = frozenset((user_a, user_b))
            channel_id = self._dm_by_pair.get(pair)
            if channel_id is None:
                low, high = sorted((user_a, user_b))
                channel = self._new_channel(new_id(), f"{low}__{high}", "D", "", "")
                channel_id = channel["id"]
                self._dm_by_pair[pair] = channel_id
                self._dm_members[channel_id] = (low, high)
            return self._channels[channel_id]

    def _create_post(
        self,
        user_id: str,
        channel_id: Any,
        message: Any,
        root_id: Any,
        props: Any,
        file_ids: Any,
        pending_post_id: str = "",
    ) -> dict[str, Any]:
        """Validate and store a post like ``app.CreatePost``; return a copy. Raises ApiError."""
        if not isinstance(message, str) or not isinstance(root_id, str):
            raise _invalid_body("post")
        if not isinstance(props, dict) or not isinstance(file_ids, list):
            raise _invalid_body("post")
        with self._lock:
            channel = self._channels.get(channel_id) if isinstance(channel_id, str) else None
            if channel is None:
                raise _permission_error(user_id, "create_post")
            if root_id:
                root = self._posts_by_id.get(root_id)
                if root is None or root["delete_at"] or root["root_id"]:
                    raise ApiError(
                        400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter."
                    )
                if root["channel_id"] != channel_id:
                    raise ApiError(
                        400,
                        "api.post.create_post.channel_root_id.app_error",
                        "Invalid ChannelId for RootId parameter.",
                    )
            if len(message) > MAX_POST_RUNES:
                raise ApiError(
                    self.post_too_long_status,
                    "model.post.is_valid.message_length.app_error",
                    "Post Message property is longer than the maximum permitted length.",
                    f"Length={len(message)}, MaxLength={MAX_POST_RUNES}",
                )
            now = self._millis()
            post: dict[str, Any] = {
                "id": new_id(),
                "create_at": now,
                "update_at": now,
                "edit_at": 0,
                "delete_at": 0,
                "is_pinned": False,
                "user_id": user_id,
                "channel_id": channel_id,
                "root_id": root_id,
                "original_id": "",
                "message": message,
                "type": "",
                "props": copy.deepcopy(props),
                "hashtags": "",
                "pending_post_id": pending_post_id,
                "reply_count": 0,
                "last_reply_at": 0,
                "participants": None,
                "metadata": {},
            }
            if file_ids:
                post["file_ids"] = list(file_ids)
            if root_id:
                root = self._posts_by_id[root_id]
                root["reply_count"] += 1
                root["last_reply_at"] = now
            channel["last_post_at"] = now
            channel["total_msg_count"] += 1
            self._posts.append(post)
            self._posts_by_id[post["id"]] = post
            log.debug("fake_mm.post id=%s user=%s channel=%s", post["id"], user_id, channel_id)
            return copy.deepcopy(post)

    def _mentions(self, post: dict[str, Any], channel: dict[str, Any]) -> list[str]:
        """Who a post mentions: the other member of a DM, else every ``@username`` in it."""
        sender = post["user_id"]
        if channel["type"] == "D":
            return [m for m in self._dm_members.get(channel["id"], ()) if m != sender][:1]
        mentioned = []
        for user_id, user in self._users.items():
            name = re.escape(user["username"])
            if user_id != sender and re.search(
                rf"(?<![\w@])@{name}(?![\w-]|\.\w)", post["message"], re.IGNORECASE
            ):
                mentioned.append(user_id)
        return mentioned

    @staticmethod
    def _broadcast_scope(
        channel_id: str = "", user_id: str = "", team_id: str = ""
    ) -> dict[str, Any]:
        return {
            "omit_users": None,
            "user_id": user_id,
            "channel_id": channel_id,
            "team_id": team_id,
            "connection_id": "",
            "omit_connection_id": "",
        }

    # ------------------------------------------------------------------ websocket

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None, autoping=True, timeout=2.0)
        await ws.prepare(request)
        conn = _Socket(ws)
        with self._lock:
            self._sockets.add(conn)
        try:
            # The real server also authenticates a socket whose upgrade carries the token.
            if self._authorized(request):
                await self._authenticate(conn, seq_reply=None)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_ws_text(conn, msg.data)
        finally:
            with self._lock:
                self._sockets.discard(conn)
        return ws

    async def _on_ws_text(self, conn: _Socket, text: str) -> None:
        try:
            request = json.loads(text)
            seq = request.get("seq")
            action = request.get("action")
        except (ValueError, AttributeError):
            return  # the server drops undecodable frames
        if action == "authentication_challenge":
            token = (request.get("data") or {}).get("token")
            if token == self.token:
                await self._authenticate(conn, seq_reply=seq)
            else:
                await self._send(conn, self._ws_fail(seq))
        elif conn.authenticated:
            await self._send(conn, {"status": "OK", "seq_reply": seq})
        else:
            await self._send(conn, self._ws_fail(seq))

    @staticmethod
    def _ws_fail(seq: Any) -> dict[str, Any]:
        return {
            "status": "FAIL",
            "seq_reply": seq,
            "error": {
                "id": "api.web_socket_router.not_authenticated.app_error",
                "message": "We could not authenticate the websocket connection.",
                "detailed_error": "",
                "request_id": "",
                "status_code": 401,
            },
        }

    async def _authenticate(self, conn: _Socket, seq_reply: Any) -> None:
        """Send ``hello`` (seq 0) then ``{"status": "OK", "seq_reply": n}``, like the server."""
        hello = {
            "event": "hello",
            "data": {
                "server_version": self.server_version,
                "connection_id": new_id(),
                "server_hostname": "fake-mattermost",
            },
            "broadcast": self._broadcast_scope(user_id=self.bot_user_id),
        }
        async with conn.send_lock:
            if not conn.authenticated:
                hello["seq"] = conn.seq
                conn.seq += 1
                await conn.ws.send_str(json.dumps(hello, ensure_ascii=False))
                conn.authenticated = True
                with self._lock:
                    self._ws_auth_count += 1
        if seq_reply is not None:
            await self._send(conn, {"status": "OK", "seq_reply": seq_reply})
        log.debug("fake_mm.ws_authenticated sockets=%s", self.connected_sockets)

    async def _send(self, conn: _Socket, payload: dict[str, Any], event: bool = False) -> bool:
        """Write one frame; events get the connection's next ``seq``. False if it failed."""
        async with conn.send_lock:
            if event:
                payload = {**payload, "seq": conn.seq}
                conn.seq += 1
            try:
                await conn.ws.send_str(json.dumps(payload, ensure_ascii=False))
            except (ConnectionError, RuntimeError):
                return False
            return True

    async def _broadcast(self, event: dict[str, Any], record: bool = True) -> int:
        with self._lock:
            targets = [s for s in self._sockets if s.authenticated and not s.ws.closed]
            if record:
                self._events.append(copy.deepcopy(event))
        results = await asyncio.gather(*(self._send(s, event, event=True) for s in targets))
        return sum(results)

    async def _broadcast_posted(self, post: dict[str, Any]) -> None:
        with self._lock:
            channel = self._channels[post["channel_id"]]
            sender = self._users.get(post["user_id"], {})
            sender_name = f"@{sender.get('username', post['user_id'])}"
            data: dict[str, Any] = {
                "channel_display_name": sender_name
                if channel["type"] == "D"
                else channel["display_name"],
                "channel_name": channel["name"],
                "channel_type": channel["type"],
                "post": _dumps_compact(post),
                "sender_name": sender_name,
                "set_online": True,
                "team_id": channel["team_id"],
            }
            mentions = self._mentions(post, channel)
            if mentions:
                data["mentions"] = _dumps_compact(mentions)
        await self._broadcast(
            {"event": "posted", "data": data, "broadcast": self._broadcast_scope(channel["id"])}
        )

    async def _close_sockets(self, code: int, message: bytes) -> None:
        with self._lock:
            sockets = list(self._sockets)
        await asyncio.gather(
            *(s.ws.close(code=code, message=message) for s in sockets), return_exceptions=True
        )

    # ------------------------------------------------------------------ REST plumbing

    def _build_app(self) -> web.Application:
        @web.middleware
        async def mattermost_middleware(
            request: web.Request, handler: Callable[[web.Request], Any]
        ) -> web.StreamResponse:
            if request.path == WEBSOCKET_PATH and request.method == "GET":
                return await handler(request)
            return await self._handle_rest(request, handler)

        app = web.Application(middlewares=[mattermost_middleware])
        app.router.add_get(WEBSOCKET_PATH, self._ws_handler)
        add = app.router.add_route
        add("GET", f"{API}/users/username/{{username}}", self._get_user_by_username)
        add("GET", f"{API}/users/{{user_id}}", self._get_user)
        add("GET", f"{API}/users/{{user_id}}/status", self._get_status)
        add("PUT", f"{API}/users/{{user_id}}/status/custom", self._put_custom_status)
        add("DELETE", f"{API}/users/{{user_id}}/status/custom", self._delete_custom_status)
        add("POST", f"{API}/channels/direct", self._post_direct_channel)
        add("GET", f"{API}/channels/{{channel_id}}", self._get_channel)
        add("POST", f"{API}/posts", self._post_post)
        add("POST", f"{API}/posts/ephemeral", self._post_ephemeral)
        add("GET", f"{API}/posts/{{post_id}}", self._get_post)
        add("DELETE", f"{API}/posts/{{post_id}}", self._delete_post)
        add("GET", f"{API}/posts/{{post_id}}/thread", self._get_thread)
        return app

    async def _handle_rest(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        """Record, route-check, authenticate, inject failures, then run the handler."""
        raw = await request.read()
        body: Any
        if not raw:
            body = None
        else:
            try:
                body = json.loads(raw)
            except ValueError:
                body = _INVALID_JSON
        recorded = raw.decode("utf-8", "replace") if body is _INVALID_JSON else body
        entry = (request.method, request.path, copy.deepcopy(recorded))
        with self._lock:
            self._requests.append(entry)
        request[_BODY_KEY] = body
        request_id = new_id()
        try:
            route_error = request.match_info.http_exception
            if route_error is not None:
                with self._lock:
                    self._unknown.append(entry)
                if route_error.status == 405:
                    raise ApiError(405, "api.context.405.app_error", "Method not allowed.")
                raise ApiError(
                    404,
                    "api.context.404.app_error",
                    "Sorry, we could not find the page.",
                    f"There doesn't appear to be an api call for the url='{request.path}'.",
                )
            if not self._authorized(request):
                raise ApiError(
                    401,
                    "api.context.session_expired.app_error",
                    "Invalid or expired session, please login again.",
                    "token missing or not valid",
                )
            self._take_failure(request.method, request.path)
            response = await handler(request)
        except ApiError as error:
            log.debug("fake_mm.error %s %s -> %s", request.method, request.path, error)
            return _json_response(error.body(request_id), error.status, request_id)
        except Exception as error:  # noqa: BLE001 - a bug in the fake: say so loudly
            log.exception("fake_mm.handler_crashed %s %s", request.method, request.path)
            with self._lock:
                self._handler_errors.append(f"{request.method} {request.path}: {error!r}")
            failure = ApiError(500, "fake.handler_crashed", "Fake handler crashed.", repr(error))
            return _json_response(failure.body(request_id), 500, request_id)
        response.headers["X-Request-Id"] = request_id
        return response

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.token

    def _take_failure(self, method: str, path: str) -> None:
        with self._lock:
            for failure in self._failures:
                if failure.method in ("*", method) and failure.path.fullmatch(path):
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    raise ApiError(failure.status, failure.error_id, failure.message)

    # ------------------------------------------------------------------ REST handlers: users

    def _public_user(self, user_id: str) -> dict[str, Any]:
        """The user as the API returns it: ``props`` omitted when empty (Go ``omitempty``)."""
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                raise ApiError(404, "app.user.missing_account.const", "Unable to find the user.")
            result = copy.deepcopy(user)
        if not result["props"]:
            del result["props"]
        return result

    async def _get_user(self, request: web.Request) -> web.Response:
        user_id = self._resolve_user(request.match_info["user_id"])
        return _json_response(self._public_user(user_id))

    async def _get_user_by_username(self, request: web.Request) -> web.Response:
        name = request.match_info["username"]
        with self._lock:
            ids = [uid for uid, u in self._users.items() if u["username"] == name]
        if not ids:
            raise ApiError(
                404,
                "app.user.get_by_username.app_error",
                "Unable to find an existing account matching your username.",
            )
        return _json_response(self._public_user(ids[0]))

    async def _get_status(self, request: web.Request) -> web.Response:
        user_id = self._resolve_user(request.match_info["user_id"])
        with self._lock:
            status = self._statuses.get(user_id)
            if status is None:
                raise ApiError(404, "api.status.user_not_found.app_error", "Unable to find user.")
            return _json_response(dict(status))

    def _custom_status_gate(self, target: str, after_validation: bool) -> None:
        """Apply ``custom_status_error`` at the point where the server would refuse."""
        error = self.custom_status_error
        if error is None:
            return
        if error == 501 and not after_validation:
            raise ApiError(
                501,
                "api.custom_status.disabled",
                "Custom status feature has been disabled. Please contact your system "
                "administrator for details.",
            )
        if error == 403 and after_validation and target != self.bot_user_id:
            raise _permission_error(self.bot_user_id, "edit_other_users")
        if error not in (403, 501) and after_validation:
            raise ApiError(error, "fake.custom_status_error", "Injected custom status error.")

    @staticmethod
    def _decode_custom_status(body: Any) -> dict[str, str]:
        """Decode and validate a custom status body like the server; raise 400 otherwise."""
        if body is None:
            body = {}  # Go decodes an empty body as an error; a null one as zero values
        if not isinstance(body, dict):
            raise _invalid_body("custom_status")
        values: dict[str, str] = {}
        for key in ("emoji", "text", "duration"):
            value = body.get(key)
            if value is not None and not isinstance(value, str):
                raise _invalid_body("custom_status")
            values[key] = value or ""
        raw_expiry = body.get("expires_at")
        expires: datetime | None = None
        if raw_expiry is not None:
            if not isinstance(raw_expiry, str):
                raise _invalid_body("custom_status")
            expires = _parse_rfc3339(raw_expiry)
            if expires is None:
                raise _invalid_body("custom_status")
        if values["emoji"] == "" and values["text"] == "":
            raise _invalid_body("custom_status")
        zero = expires is None or expires.year == 1
        in_future = not zero and expires is not None and expires >= datetime.now(UTC)
        valid = (values["duration"] == "" and (zero or in_future)) or (
            values["duration"] in CUSTOM_STATUS_DURATIONS and in_future
        )
        if not valid:
            raise _invalid_body("custom_status")
        # PreSave: an empty duration with a future expiry means "date_and_time".
        if values["duration"] == "" and in_future:
            values["duration"] = "date_and_time"
        values["text"] = values["text"][:CUSTOM_STATUS_TEXT_MAX_RUNES]
        values["expires_at"] = GO_ZERO_TIME if zero or raw_expiry is None else raw_expiry
        return values

    async def _put_custom_status(self, request: web.Request) -> web.Response:
        target = self._resolve_user(request.match_info["user_id"])
        self._custom_status_gate(target, after_validation=False)
        body = request[_BODY_KEY]
        if body is _INVALID_JSON:
            raise _invalid_body("custom_status")
        status = self._decode_custom_status(body)
        self._custom_status_gate(target, after_validation=True)
        with self._lock:
            user = self._users.get(target)
            if user is None:
                raise ApiError(404, "app.user.missing_account.const", "Unable to find the user.")
            user["props"]["customStatus"] = _dumps_compact(status)
            user["update_at"] = self._millis()
        return _json_response({"status": "OK"})

    async def _delete_custom_status(self, request: web.Request) -> web.Response:
        target = self._resolve_user(request.match_info["user_id"])
        self._custom_status_gate(target, after_validation=False)
        self._custom_status_gate(target, after_validation=True)
        with self._lock:
            user = self._users.get(target)
            if user is None:
                raise ApiError(404, "app.user.missing_account.const", "Unable to find the user.")
            user["props"]["customStatus"] = ""  # model.User.ClearCustomStatus
            user["update_at"] = self._millis()
        return _json_response({"status": "OK"})

    # ------------------------------------------------------------------ REST handlers: channels

    async def _post_direct_channel(self, request: web.Request) -> web.Response:
        body = request[_BODY_KEY]
        if (
            not isinstance(body, list)
            or len(body) != 2
            or not all(isinstance(i, str) and i for i in body)
        ):
            raise ApiError(
                400,
                "api.context.invalid_body_param.app_error",
                "Invalid or missing user_ids in request body.",
            )
        if self.bot_user_id not in body:
            raise _permission_error(self.bot_user_id, "manage_system")
        with self._lock:
            if not all(i in self._users for i in body):
                raise ApiError(
                    400,
                    "api.channel.create_direct_channel.invalid_user.app_error",
                    "Invalid user ID for direct channel creation.",
                )
            channel = copy.deepcopy(self._direct_channel(body[0], body[1]))
        return _json_response(channel, 201)

    async def _get_channel(self, request: web.Request) -> web.Response:
        with self._lock:
            channel = self._channels.get(request.match_info["channel_id"])
            if channel is None:
                raise ApiError(
                    404,
                    "app.channel.get.existing.app_error",
                    "Unable to find the existing channel.",
                )
            return _json_response(copy.deepcopy(channel))

    # ------------------------------------------------------------------ REST handlers: posts

    async def _post_post(self, request: web.Request) -> web.Response:
        body = request[_BODY_KEY]
        if not isinstance(body, dict):
            raise _invalid_body("post")
        post = self._create_post(
            self.bot_user_id,
            body.get("channel_id"),
            body.get("message") or "",
            body.get("root_id") or "",
            body.get("props") or {},
            body.get("file_ids") or [],
            pending_post_id=str(body.get("pending_post_id") or ""),
        )
        await self._broadcast_posted(post)
        return _json_response(post, 201)

    async def _post_ephemeral(self, request: web.Request) -> web.Response:
        body = request[_BODY_KEY]
        if not isinstance(body, dict) or not isinstance(body.get("post"), dict):
            raise _invalid_body("ephemeral_post")
        inner = body["post"]
        with self._lock:
            if inner.get("channel_id") not in self._channels:
                raise _permission_error(self.bot_user_id, "create_post_ephemeral")
            now = self._millis()
            post = {
                **copy.deepcopy(inner),
                "id": new_id(),
                "create_at": now,
                "update_at": now,
                "user_id": self.bot_user_id,
                "type": "system_ephemeral",
            }
            self._ephemeral.append({"user_id": body.get("user_id"), "post": post})
        return _json_response(post, 201)

    def _live_post(self, post_id: str) -> dict[str, Any]:
        with self._lock:
            post = self._posts_by_id.get(post_id)
            if post is None or post["delete_at"]:
                raise ApiError(404, "app.post.get.app_error", "Unable to get the post.")
            return copy.deepcopy(post)

    async def _get_post(self, request: web.Request) -> web.Response:
        return _json_response(self._live_post(request.match_info["post_id"]))

    async def _get_thread(self, request: web.Request) -> web.Response:
        post = self._live_post(request.match_info["post_id"])
        root_id = post["root_id"] or post["id"]
        with self._lock:
            thread = [
                copy.deepcopy(p)
                for p in self._posts
                if not p["delete_at"] and (p["id"] == root_id or p["root_id"] == root_id)
            ]
        return _json_response(
            {
                "order": [p["id"] for p in thread],
                "posts": {p["id"]: p for p in thread},
                "next_post_id": "",
                "prev_post_id": "",
                "has_next": False,
            }
        )

    async def _delete_post(self, request: web.Request) -> web.Response:
        post_id = request.match_info["post_id"]
        with self._lock:
            post = self._posts_by_id.get(post_id)
            if post is None or post["delete_at"]:
                raise _permission_error(self.bot_user_id, "delete_post")
            if post["user_id"] != self.bot_user_id and not self.bot_can_delete_others:
                raise _permission_error(self.bot_user_id, "delete_others_posts")
            now = self._millis()
            for p in self._posts:
                if p["id"] == post_id or (p["root_id"] == post_id and not p["delete_at"]):
                    p["delete_at"] = now
                    p["update_at"] = now
            deleted = copy.deepcopy(post)
        await self._broadcast(
            {
                "event": "post_deleted",
                "data": {"post": _dumps_compact(deleted), "delete_by": self.bot_user_id},
                "broadcast": self._broadcast_scope(deleted["channel_id"]),
            }
        )
        return _json_response({"status": "OK"})
