"""A small fake Mattermost server (REST API v4 + websocket) for tests.

No Mattermost server can run on our machines and no package emulates one, so the end-to-end
tests drive the real, unmodified ``mmpy_bot.Bot`` (and its ``mattermostautodriver`` client)
against this server. It speaks the wire format those libraries send and parse: REST calls carry
``Authorization: Bearer <token>`` and get JSON back (errors as ``{id, message, detailed_error,
request_id, status_code}``); the websocket sends ``hello`` (seq 0) after an
``authentication_challenge``, then events whose ``data.post`` is a JSON *string*.

Usage::

    fake = FakeMattermost().start()          # own thread, own event loop, 127.0.0.1:<free port>
    fake.add_user("alice0000000000000000000000", "alice", timezone="Europe/Moscow")
    post_id = fake.user_says("alice0000000000000000000000", "ping")   # DM to the bot
    reply = fake.wait_for_post(lambda p: p["root_id"] == post_id)
    fake.stop()

What it serves (every REST call needs ``Authorization: Bearer <fake.token>`` except where noted):

==========  ======================================  ==========================================
method      path                                    notes
==========  ======================================  ==========================================
GET         /api/v4/users/{id|me}                   user object (``email``, ``roles``,
                                                    ``is_bot``); ``props`` omitted when empty
GET         /api/v4/users/username/{username}       user object
POST        /api/v4/users/usernames                 ``[name, ...]`` -> users; unknown omitted
GET         /api/v4/users/{id|me}/status            ``{user_id, status, manual, ...}``
PUT         /api/v4/users/{id|me}/status/custom     validated like the server, see below
DELETE      /api/v4/users/{id|me}/status/custom     sets ``props.customStatus`` to ``""``
GET         /api/v4/users/{id|me}/channels          channels the user is a member of
POST        /api/v4/channels/direct                 ``[id1, id2]`` -> one stable "D" channel, 201
GET         /api/v4/channels/{id}                   channel object
GET         /api/v4/channels/{id}/posts             ``since`` / ``page`` / ``before`` / ``after``
POST        /api/v4/posts                           201; ``posted`` event; ``pending_post_id``
POST        /api/v4/posts/ephemeral                 201; recorded in ``ephemeral_posts`` only
GET         /api/v4/posts/{id}                      404 once deleted
GET         /api/v4/posts/{id}/thread               ``{order, posts, ...}``
PUT         /api/v4/posts/{id}                      update (body ``id`` = URL id); ``post_edited``
PUT         /api/v4/posts/{id}/patch                patch (``message``, ``props``, ...)
DELETE      /api/v4/posts/{id}                      others' posts need ``bot_can_delete_others``
POST        /api/v4/posts/{id}/actions/{action_id}  a click by the bot (see ``click``)
POST        /api/v4/actions/dialogs/open            no token needed (server: ``APIHandler``)
GET (ws)    /api/v4/websocket                       authentication_challenge, hello, events
==========  ======================================  ==========================================

Anything else answers 404 (405 for a known path with another method) in Mattermost's error
shape ``{id, message, detailed_error, request_id, status_code}`` and is listed in
``unknown_requests``. Every REST call, known or not, authorised or not, down or not, is appended
to ``requests`` as ``(method, path, json_body)``.

Every JSON response carries ``Content-Type: application/json`` exactly: the driver's ``get()``
compares the header with ``!=`` and hands back the raw ``httpx.Response`` otherwise, which
breaks ``Driver.login()`` (aiohttp's ``json_response`` would add ``; charset=utf-8``).

The test side plays the parts no bot can: users (``user_says``, also backdated with ``at_ms``
and without any socket connected), a user's click on a button (``click``), a user filling in a
dialog (``submit_dialog``), and the outage of the server behind its reverse proxy
(``set_down``, ``set_websocket_refused``). Calls to integrations (button and dialog URLs) leave
from the fake's own loop with aiohttp's client, as the server's own HTTP client would.

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
* ``pending_post_id`` (``app/post.go`` ``deduplicateCreatePost``): a create whose
  ``pending_post_id`` was used by a successful create in the last 30 s (``pending_post_ttl``)
  answers 201 with that first post as it is now, creates nothing and broadcasts nothing; the id
  is remembered from the end of the first create; a failed create remembers nothing. (The
  server's 500 ``api.post.deduplicate_create_post.pending`` for a duplicate arriving while the
  first is still being saved cannot happen here: a create is atomic on the fake's loop.)
* message attachments (``model/integration_action.go``): an action without ``id`` gets one when
  the post is saved (created, updated, patched; ``PreCommit``); every post a client reads (REST
  answers of every kind and ``posted``/``post_edited``/``post_deleted`` events) has
  ``integration`` stripped from its actions (``Post.EncodeJSON``/``ToJSON``), so an action's
  ``context`` may hold a secret. ``fake.posts``/``fake.post()`` keep the full, server-side copy.
* clicks (``app/integration_action.go`` ``DoPostActionWithCookie``/``DoActionRequest``): the
  server POSTs ``{user_id, user_name, channel_id, channel_name, team_id, team_domain, post_id,
  trigger_id, type, data_source, context}`` (``type`` is the action's type, ``"button"``;
  ``context`` omitted when empty) with a fresh ``trigger_id``; anything but HTTP 200, a
  connection error, a timeout or a non-empty body that is not a JSON object -> the click fails
  with 400 ``api.post.do_action.action_integration.app_error`` and nothing is applied; an empty
  body is fine. Then ``update`` replaces the post's message (an update without ``message``
  blanks it, as Go's zero value does; ``edit_at`` is set when the text changes) and, when it
  has ``props``, its props (keeping ``from_webhook``/``override_username``/
  ``override_icon_url`` as they were; without ``props`` the old props stay); ``post_edited`` is
  broadcast. ``ephemeral_text`` becomes an ephemeral post to the clicking user, in the thread of
  the clicked post, with ``user_id`` = the clicking user (as the server builds it). Unknown or
  deleted post -> 404 ``app.post.get.app_error``; no such action, or one without
  ``integration`` -> 404 ``api.post.do_action.action_id.app_error``. ``goto_location`` is only
  recorded: the server has no such field for button answers (it belongs to slash commands).
* dialogs (``api4/integration_action.go`` ``openDialog``, ``app`` ``OpenInteractiveDialog``,
  ``model`` ``DecodeAndVerifyTriggerId``, ``Dialog.IsValid``): no ``url`` -> 400; a trigger id
  that is not one the fake issued -> 400 ``interactive_message.decode_trigger_id.*``; older than
  ``trigger_ttl`` (3 s, the documented limit; newer servers allow
  ``OutgoingIntegrationRequestsTimeout``, 30 s by default) -> 400 ``...expired``. The server only
  *logs* an invalid dialog; the fake answers 400 ``fake.dialog.invalid`` (``strict_dialogs``,
  default True) so the bot's mistake shows: title 1..24 **bytes** (Cyrillic counts 2), element
  ``display_name`` 1..24 bytes, ``name`` 1..300 and unique, ``help_text`` <= 150, ``type`` one
  of text/textarea/select/bool/radio/date/datetime, text ``subtype`` one of "", text, email,
  number, tel, url, password, text ``default``/``placeholder`` <= 150 (textarea/select 3000), a
  bool ``default`` "", "true" or "false", a select/radio ``default`` among its options,
  ``0 <= min_length <= max_length``. There is no limit on the number of elements. Every open is
  recorded in ``dialogs_opened`` (with ``problems``); an accepted one is also sent as an
  ``open_dialog`` event to the clicking user (recorded, not sent to the bot's sockets).
* dialog submissions (``SubmitInteractiveDialog``, the webapp): ``{type: "dialog_submission",
  callback_id, state, user_id, channel_id, team_id, submission, cancelled}`` goes to the
  dialog's url; a cancel is sent only when the dialog has ``notify_on_cancel``; a non-200 answer
  or a failed call keeps the dialog open; a 200 answer is decoded leniently (not JSON = ``{}``);
  ``{"errors": {...}}`` or ``{"error": "..."}`` keeps it open, anything else closes it.
  Submitted values are kept in memory for the test but never logged.
* edits (``api4/post.go`` ``patchPost``/``updatePost``, ``app.UpdatePost``, ``Post.Patch``):
  unknown or deleted post -> 403 ``edit_post``; someone else's post -> 403
  ``edit_others_posts`` unless ``bot_can_edit_others``; ``PUT /posts/{id}`` needs the body's
  ``id`` to equal the URL's (400) and replaces message, props and ``is_pinned`` (absent =
  empty); a patch changes only the fields it has, and its ``props`` replace the old ones whole
  (no merge); ``edit_at`` is set only when the message changes; ``update_at`` always. Every
  edit is recorded (``edits``, ``post_history``).
* channel posts (``getPostsForChannel``, ``SqlPostStore.GetPostsSince``/``GetPostsPage``,
  ``AddCursorIdsForPostList``): ``{order (newest first), posts, next_post_id, prev_post_id}``;
  ``posts`` also holds the thread roots of replies in ``order``. ``since`` > 0: every post with
  ``update_at`` > since (created, edited **or deleted**: deleted ones come back with
  ``delete_at`` > 0, whatever ``include_deleted`` says), at most 1000, no cursors. Otherwise
  ``page``/``per_page`` (default 60, at most 200) or ``before``/``after`` a post id, deleted
  posts only with ``include_deleted``, which needs a system admin (403
  ``read_deleted_posts``). Unknown channel -> 404; a D/G/P channel the bot is not a member of ->
  403 ``read_channel_content`` (unless the bot is a system admin).
* ``GET /users/{id}/channels`` for another user needs ``edit_other_users`` (403 unless the bot
  is a system admin); channels ordered by id, each with ``last_post_at``.
* delete: an unknown or already deleted post -> 403 (the server hides existence); someone
  else's post -> 403 unless ``bot_can_delete_others``; deleting a root deletes its replies.
* ``posted`` events: ``data.post`` and ``data.mentions`` are JSON *strings*; ``mentions`` is
  present only when someone is mentioned (in a DM: the other member; elsewhere: ``@username``
  in the text); ``team_id`` is ``""`` for DMs; ``sender_name`` is ``"@username"``.
* down (``set_down``): what a reverse proxy answers in front of a stopped server: every REST
  call 502 with an HTML body (``Content-Type: text/html``), websocket upgrades 502, open
  sockets closed. ``set_websocket_refused``: REST works, upgrades 502, open sockets closed.

Simplifications: membership is a plain set per channel (DM members; ``add_channel(members=)``,
``add_channel_member``; posting in a channel joins it) and is only consulted by
``/users/{id}/channels`` and channel posts, not by posting; every authenticated socket gets
every event except those addressed to another user (``broadcast.user_id``), which are only
recorded; every known user can be mentioned anywhere; no ``@channel``/``@all``; no file
uploads; no action cookies (ephemeral posts' buttons cannot be clicked) and no select menus;
the server's refusal to call private addresses (``AllowedUntrustedInternalConnections``) is not
modelled; an edit keeps no hidden "old version" post (the server stores one, deleted, which a
``since`` query also returns); ``expires_at`` is stored as sent instead of being re-rendered
by Go's time formatter.

Threading: the server runs in a daemon thread with its own asyncio loop. Every public method is
safe to call from any thread except the server's own. ``user_says``, ``nudge_websockets``,
``drop_websockets``, ``click``, ``submit_dialog`` and ``set_down`` block until done.
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
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
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
PENDING_POST_TTL = 30.0  # app.pendingPostIDsCacheTTL, seconds
TRIGGER_ID_TTL = 3.0  # the documented trigger_id lifetime, seconds
INTEGRATION_TIMEOUT = 5.0  # the server's OutgoingIntegrationRequestsTimeout is 30 s by default
PER_PAGE_DEFAULT = 60  # web.PerPageDefault
PER_PAGE_MAX = 200  # web.PerPageMaximum
POSTS_SINCE_LIMIT = 1000  # the LIMIT of SqlPostStore.GetPostsSince
# model.PostActionRetainPropKeys: kept from the old post when an action's update replaces props.
RETAINED_PROP_KEYS = ("from_webhook", "override_username", "override_icon_url")
# Limits of model.Dialog.IsValid / DialogElement.IsValid (Go's len(): bytes, not characters).
DIALOG_TITLE_MAX_BYTES = 24
DIALOG_ELEMENT_DISPLAY_NAME_MAX_BYTES = 24
DIALOG_ELEMENT_NAME_MAX_BYTES = 300
DIALOG_ELEMENT_HELP_TEXT_MAX_BYTES = 150
DIALOG_TEXT_MAX_BYTES = 150
DIALOG_TEXTAREA_MAX_BYTES = 3000
DIALOG_SELECT_MAX_BYTES = 3000
DIALOG_BOOL_MAX_BYTES = 150
DIALOG_TEXT_SUBTYPES = frozenset({"", "text", "email", "number", "tel", "url", "password"})
DIALOG_ELEMENT_TYPES = frozenset(
    {"text", "textarea", "select", "bool", "radio", "date", "datetime"}
)
# What nginx answers for a stopped upstream.
BAD_GATEWAY_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_NO_AUTH_PATHS = frozenset({f"{API}/actions/dialogs/open"})  # api4 registers it with APIHandler
_ID_RE = re.compile(r"[a-z0-9]{26}\Z")  # model.IsValidId


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


def _bad_gateway() -> web.Response:
    """The HTML 502 a reverse proxy sends when the server behind it is down."""
    return web.Response(body=BAD_GATEWAY_HTML, status=502, headers={"Content-Type": "text/html"})


def _actions(props: Any) -> Iterable[dict[str, Any]]:
    """Every action dict in ``props.attachments[].actions[]`` (malformed entries skipped)."""
    if not isinstance(props, dict) or not isinstance(props.get("attachments"), list):
        return
    for attachment in props["attachments"]:
        if isinstance(attachment, dict) and isinstance(attachment.get("actions"), list):
            yield from (a for a in attachment["actions"] if isinstance(a, dict))


def _assign_action_ids(props: Any) -> None:
    """``Post.GenerateActionIds``: give every action without an ``id`` a new one (in place)."""
    for action in _actions(props):
        if not action.get("id"):
            action["id"] = new_id()


def _client_post(post: dict[str, Any]) -> dict[str, Any]:
    """A copy of a post as clients see it: ``integration`` stripped from every action."""
    result = copy.deepcopy(post)
    for action in _actions(result.get("props")):
        action.pop("integration", None)
    return result


def _parse_bool(value: str) -> bool | None:
    """Go's ``strconv.ParseBool``; None when the text is not a boolean."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def _int_param(query: Any, name: str, default: int, maximum: int | None = None) -> int:
    """A paging parameter read like ``web.ParamsFromRequest``: bad or negative -> default."""
    try:
        value = int(query.get(name, ""))
    except ValueError:
        return default
    if value < 0:
        return default
    return min(value, maximum) if maximum is not None else value


def _go_len(value: Any) -> int:
    """Go's ``len()`` of a string: its UTF-8 bytes."""
    return len(value.encode("utf-8")) if isinstance(value, str) else 0


def _dialog_problems(dialog: dict[str, Any]) -> list[str]:
    """What ``model.Dialog.IsValid`` would complain about (empty when the dialog is valid)."""
    problems: list[str] = []
    title = dialog.get("title")
    if not isinstance(title, str) or not title or _go_len(title) > DIALOG_TITLE_MAX_BYTES:
        problems.append(f"invalid dialog title {title!r} (1..{DIALOG_TITLE_MAX_BYTES} bytes)")
    icon = dialog.get("icon_url")
    if icon and not (isinstance(icon, str) and icon.startswith(("http://", "https://"))):
        problems.append("invalid icon url")
    elements = dialog.get("elements") or []
    if not isinstance(elements, list):
        return [*problems, "elements is not a list"]
    seen: set[Any] = set()
    for element in elements:
        if not isinstance(element, dict):
            problems.append("an element is not an object")
            continue
        name = element.get("name")
        if name in seen:
            problems.append(f"duplicate dialog element {name!r}")
        seen.add(name)
        problems.extend(f"{name!r} field is not valid: {p}" for p in _element_problems(element))
    return problems


def _element_problems(element: dict[str, Any]) -> list[str]:
    """What ``model.DialogElement.IsValid`` would complain about."""
    problems: list[str] = []

    def check(field_name: str, max_bytes: int, required: bool = False) -> None:
        value = element.get(field_name) or ""
        if not isinstance(value, str):
            problems.append(f"{field_name} is not a string")
        elif required and not value:
            problems.append(f"{field_name} cannot be empty")
        elif _go_len(value) > max_bytes:
            problems.append(f"{field_name} cannot be longer than {max_bytes} bytes")

    min_length = element.get("min_length") or 0
    max_length = element.get("max_length") or 0
    if not isinstance(min_length, int) or not isinstance(max_length, int):
        problems.append("min_length/max_length must be integers")
    elif min_length < 0:
        problems.append(f"min length cannot be a negative number, got {min_length}")
    elif min_length > max_length:
        problems.append(
            f"min length should be less then max length, got {min_length} > {max_length}"
        )
    check("display_name", DIALOG_ELEMENT_DISPLAY_NAME_MAX_BYTES, required=True)
    check("name", DIALOG_ELEMENT_NAME_MAX_BYTES, required=True)
    check("help_text", DIALOG_ELEMENT_HELP_TEXT_MAX_BYTES)
    kind = element.get("type")
    if element.get("multiselect") and kind != "select":
        problems.append("multiselect can only be used with select elements")
    options = [o.get("value") for o in element.get("options") or [] if isinstance(o, dict)]
    default = element.get("default") or ""
    if kind in ("text", "textarea"):
        limit = DIALOG_TEXT_MAX_BYTES if kind == "text" else DIALOG_TEXTAREA_MAX_BYTES
        check("default", limit)
        check("placeholder", limit)
        if (element.get("subtype") or "") not in DIALOG_TEXT_SUBTYPES:
            problems.append(f"invalid subtype {element.get('subtype')!r}")
    elif kind == "select":
        check("default", DIALOG_SELECT_MAX_BYTES)
        check("placeholder", DIALOG_SELECT_MAX_BYTES)
        source = element.get("data_source") or ""
        if source not in ("", "users", "channels", "dynamic"):
            problems.append(f"invalid data source {source!r}")
        if source == "" and not element.get("multiselect") and default and default not in options:
            problems.append(f"default value {default!r} doesn't exist in options")
    elif kind == "bool":
        if default not in ("", "true", "false"):
            problems.append("invalid default of bool")
        check("placeholder", DIALOG_BOOL_MAX_BYTES)
    elif kind == "radio":
        if default and default not in options:
            problems.append(f"default value {default!r} doesn't exist in options")
    elif kind in ("date", "datetime"):
        check("default", DIALOG_TEXT_MAX_BYTES)
        check("placeholder", DIALOG_TEXT_MAX_BYTES)
    else:
        problems.append(f"invalid element type: {kind!r}")
    return problems


def _action_answer_problem(answer: dict[str, Any] | None) -> str | None:
    """Why Go could not decode this answer into ``PostActionIntegrationResponse``, if it can't."""
    if answer is None:
        return None
    update = answer.get("update")
    if update is not None and not isinstance(update, dict):
        return "update is not an object"
    if isinstance(update, dict):
        if update.get("message") is not None and not isinstance(update["message"], str):
            return "update.message is not a string"
        if update.get("props") is not None and not isinstance(update["props"], dict):
            return "update.props is not an object"
    text = answer.get("ephemeral_text")
    if text is not None and not isinstance(text, str):
        return "ephemeral_text is not a string"
    return None


def _trigger_error(trigger_id: str) -> ApiError:
    """The error ``DecodeAndVerifyTriggerId`` gives for a trigger id the fake never issued."""
    try:
        parts = base64.b64decode(trigger_id, validate=True).decode("utf-8").split(":")
    except (ValueError, UnicodeDecodeError):
        return ApiError(
            400,
            "interactive_message.decode_trigger_id.base64_decode_failed",
            "Failed to decode base64 for trigger ID for interactive dialog.",
        )
    if len(parts) != 4:
        return ApiError(
            400,
            "interactive_message.decode_trigger_id.missing_data",
            "Trigger ID missing required data for interactive dialog.",
        )
    return ApiError(
        400,
        "interactive_message.decode_trigger_id.verify_signature_failed",
        "Signature verification failed of trigger ID for interactive dialog.",
    )


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


@dataclass
class _Trigger:
    """A trigger id issued for a click: who clicked where, and when (``time.monotonic``)."""

    client_trigger_id: str
    user_id: str
    channel_id: str
    team_id: str
    issued: float
    used: bool = False


class FakeMattermost:
    """A Mattermost server double on 127.0.0.1: REST v4 + websocket, real wire format.

    Attributes tests read or set:

    * ``url`` (``"http://127.0.0.1"``), ``port`` (0 until started), ``token``: what the bot's
      ``Settings`` need (``MATTERMOST_URL``, ``MATTERMOST_PORT``, ``BOT_TOKEN``).
    * ``bot_user_id``, ``bot_username``, ``team_id``, ``team_name`` (the ``team_domain`` of
      clicks).
    * ``bot_can_delete_others`` (default True): False -> deleting another user's post is 403.
    * ``bot_can_edit_others`` (default False, a member bot): True -> the bot may edit others'
      posts (``edit_others_posts``, e.g. a System Admin bot).
    * ``custom_status_error``: None (default), 501 (feature switched off, for every user), 403
      (the bot may not edit *other* users; its own status still works) or any other status
      (returned for every user after validation).
    * ``post_too_long_status`` (default 400, what the server sends).
    * ``pending_post_ttl`` (30 s): how long a ``pending_post_id`` is remembered.
    * ``trigger_ttl`` (3 s): how long a click's trigger id opens a dialog;
      ``trigger_id_single_use`` (default True; the server does not check this, the fake does,
      so a bot that opens two dialogs from one click is caught).
    * ``strict_dialogs`` (default True): an invalid dialog is 400 instead of only recorded.
    * ``integration_timeout`` (5 s): how long a call to a button's or dialog's URL may take.

    The bot's own roles (``system_user``) decide ``include_deleted`` and reading other users'
    channels: ``fake.update_user(fake.bot_user_id, roles="system_admin system_user")``.
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
        self.team_name = "team"
        self.bot_can_delete_others = True
        self.bot_can_edit_others = False
        self.custom_status_error: int | None = None
        self.post_too_long_status = 400
        self.pending_post_ttl = PENDING_POST_TTL
        self.trigger_ttl = TRIGGER_ID_TTL
        self.trigger_id_single_use = True
        self.strict_dialogs = True
        self.integration_timeout = INTEGRATION_TIMEOUT

        self._lock = threading.RLock()
        self._users: dict[str, dict[str, Any]] = {}
        self._statuses: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._dm_members: dict[str, tuple[str, str]] = {}
        self._dm_by_pair: dict[frozenset[str], str] = {}
        self._members: dict[str, set[str]] = {}
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
        self._ws_refused_count = 0
        self._last_millis = 0
        self._pending_posts: dict[str, tuple[float, str]] = {}  # id -> (monotonic, post id)
        self._edits: list[dict[str, Any]] = []
        self._clicks: list[dict[str, Any]] = []
        self._triggers: dict[str, _Trigger] = {}
        self._dialogs: list[dict[str, Any]] = []
        self._submissions: list[dict[str, Any]] = []
        self._down = False
        self._ws_refused = False
        self._http: aiohttp.ClientSession | None = None

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
        except BaseException as error:  # reported to start()
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
        # The server's own HTTP client, for calls to integrations (buttons, dialogs).
        self._http = aiohttp.ClientSession()
        try:
            await web.SockSite(runner, sock).start()
            ready.set()
            await self._stop_requested.wait()
            await self._close_sockets(WSCloseCode.GOING_AWAY, b"server shutdown")
        finally:
            await self._http.close()
            self._http = None
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
        email: str | None = None,
        admin: bool = False,
    ) -> dict[str, Any]:
        """Create a user and return (a copy of) its user object.

        ``timezone``: None -> automatic with no zone known (a new user's default); a zone name
        -> automatic time zone set to it; a dict -> used as given (e.g. ``{"useAutomaticTimezone":
        "false", "automaticTimezone": "", "manualTimezone": "Asia/Tokyo"}``). Values are the
        strings the server sends. ``email`` defaults to ``<username>@example.com``; ``admin``
        makes ``roles`` ``"system_admin system_user"``.
        """
        if admin:
            roles = "system_admin system_user"
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
            "email": email if email is not None else f"{username}@example.com",
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
        type: str = "O",  # the server's field name
        *,
        display_name: str | None = None,
        members: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Create a team channel ("O" public, "P" private, "G" group); return a copy.

        ``members``: user ids that have joined it (the bot's id included, if it has).
        """
        if type not in {"O", "P", "G"}:
            raise ValueError("use dm_channel_id() for direct channels")
        members = list(members)
        with self._lock:
            if channel_id in self._channels:
                raise ValueError(f"channel {channel_id} already exists")
            for user_id in members:
                self._require_user(user_id)
            channel = self._new_channel(
                channel_id, name, type, display_name or name, self.team_id if type != "G" else ""
            )
            self._members[channel_id].update(members)
            return copy.deepcopy(channel)

    def add_channel_member(self, channel_id: str, user_id: str) -> None:
        """Make ``user_id`` a member of a channel (as if they joined it)."""
        with self._lock:
            self._require_user(user_id)
            if channel_id not in self._channels:
                raise KeyError(f"unknown channel {channel_id}")
            self._members[channel_id].add(user_id)

    def channel_members(self, channel_id: str) -> set[str]:
        """User ids that are members of a channel."""
        with self._lock:
            return set(self._members.get(channel_id, ()))

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
        *,
        at_ms: int | None = None,
        broadcast: bool = True,
    ) -> str:
        """Post ``text`` as ``user_id`` and broadcast it like the server; return the post id.

        ``channel_id`` None means the user's DM with the bot. ``mention_bot`` prefixes
        ``@<bot_username>`` (unless the text already mentions it), which fills ``mentions``.
        Blocks until the ``posted`` event was written to every authenticated socket; with no
        socket connected (the bot away) the post is simply stored, to be found later through
        ``GET /channels/{id}/posts``. ``at_ms`` backdates it (``create_at`` = ``update_at`` =
        that epoch millisecond, e.g. "20 minutes ago"); ``broadcast=False`` stores it without
        any event, as if the bot's socket had missed it.
        """
        if mention_bot and not re.search(rf"@{re.escape(self.bot_username)}\b", text):
            text = f"@{self.bot_username} {text}"
        with self._lock:
            self._require_user(user_id)
            if channel_id is None:
                channel_id = self._direct_channel(user_id, self.bot_user_id)["id"]
        return self._in_loop(self._user_says(user_id, text, channel_id, root_id, at_ms, broadcast))

    async def _user_says(
        self,
        user_id: str,
        text: str,
        channel_id: str,
        root_id: str,
        at_ms: int | None,
        broadcast: bool,
    ) -> str:
        try:
            post = self._create_post(user_id, channel_id, text, root_id, {}, [], create_at=at_ms)
        except ApiError as error:
            raise ValueError(f"user_says rejected like the server would: {error}") from None
        if broadcast:
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

    def set_down(self, down: bool = True) -> None:
        """Stop (True) or restart (False) the server behind its reverse proxy.

        While down every REST call answers 502 with nginx's HTML page (``text/html``), every
        websocket upgrade 502, and the sockets open when it went down are closed. Test-side
        calls that need the server (``click``, ``submit_dialog``) raise RuntimeError;
        ``user_says`` still stores posts.
        """
        with self._lock:
            self._down = down
        if down and self.running:
            self._in_loop(self._close_sockets(WSCloseCode.GOING_AWAY, b"server down"))

    def set_websocket_refused(self, refused: bool = True) -> None:
        """Refuse websocket upgrades with 502 (True) while REST keeps working; False restores.

        The sockets open when it starts are closed, so the bot notices.
        """
        with self._lock:
            self._ws_refused = refused
        if refused and self.running:
            self._in_loop(self._close_sockets(WSCloseCode.GOING_AWAY, b"websocket refused"))

    @property
    def down(self) -> bool:
        """True while ``set_down(True)`` is in effect."""
        with self._lock:
            return self._down

    def _require_up(self, what: str) -> None:
        with self._lock:
            if self._down:
                raise RuntimeError(f"{what}: Mattermost is down (call set_down(False) first)")

    # ------------------------------------------------------------------ test-side API: interactions

    def click(self, post_id: str, action_id: str, user_id: str) -> dict[str, Any]:
        """Play a user's click on a button like the server; return the click record.

        The fake POSTs the server's request to the action's ``integration.url`` with a fresh
        ``trigger_id`` and applies the answer (``update``, ``ephemeral_text``). The record (also
        in ``clicks``) is ``{post_id, action_id, user_id, via, url, request, trigger_id,
        client_trigger_id, status, response, goto_location, error, error_id, api_status, at}``:
        ``status`` is the integration's HTTP status (None when it could not be reached),
        ``response`` its parsed answer, ``error``/``error_id`` why the click failed (None when
        it worked) and ``api_status`` the HTTP status the clicking client got (200/400/404).
        Failures of the integration are returned, never raised.
        """
        self._require_up("click")
        with self._lock:
            self._require_user(user_id)
        record, _ = self._in_loop(
            self._click(post_id, action_id, user_id, "test"), self.integration_timeout + 5
        )
        return record

    def submit_dialog(
        self,
        user_id: str,
        submission: dict[str, Any],
        dialog: dict[str, Any] | str | None = None,
        cancelled: bool = False,
    ) -> dict[str, Any]:
        """Play ``user_id`` submitting (or cancelling) an open dialog; return the record.

        ``dialog``: a record from ``dialogs_opened`` or its ``id``; None -> the last dialog
        opened for ``user_id`` that is still open (LookupError when there is none). The fake
        POSTs ``{type: "dialog_submission", callback_id, state, user_id, channel_id, team_id,
        submission, cancelled}`` to the dialog's url (a cancel only when the dialog has
        ``notify_on_cancel``; its ``submission`` is ``{}``). The record (also in
        ``dialog_submissions``) is ``{dialog_id, user_id, cancelled, sent, url, request,
        status, response, error, open, at}``: ``response`` is the parsed answer (``{}`` when
        empty or not JSON), ``open`` whether the dialog stays open (``errors``/``error`` in the
        answer, a non-200 answer or no answer at all). Values are never logged.
        """
        self._require_up("submit_dialog")
        with self._lock:
            record = self._find_dialog(user_id, dialog)
        return self._in_loop(
            self._submit_dialog(record, user_id, copy.deepcopy(dict(submission)), cancelled),
            self.integration_timeout + 5,
        )

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
    def clicks(self) -> list[dict[str, Any]]:
        """Every click (``click`` and ``POST /posts/{id}/actions/{id}``), oldest first."""
        with self._lock:
            return copy.deepcopy(self._clicks)

    @property
    def dialogs_opened(self) -> list[dict[str, Any]]:
        """Every ``POST /actions/dialogs/open``, refused ones included, oldest first.

        Each is ``{id, trigger_id, url, dialog, user_id, channel_id, team_id, problems,
        error_id, open, at}``: ``error_id`` None when it opened, ``problems`` what the server's
        ``Dialog.IsValid`` finds, ``open`` whether the user still sees it.
        """
        with self._lock:
            return copy.deepcopy(self._dialogs)

    @property
    def dialog_submissions(self) -> list[dict[str, Any]]:
        """Every ``submit_dialog`` record, oldest first (submitted values included)."""
        with self._lock:
            return copy.deepcopy(self._submissions)

    @property
    def edits(self) -> list[dict[str, Any]]:
        """Every edit: ``{post_id, at, via ("patch"/"update"/"action"), by, before, after}``.

        ``before``/``after`` hold the post's ``message`` and ``props``.
        """
        with self._lock:
            return copy.deepcopy(self._edits)

    def post_history(self, post_id: str) -> list[dict[str, Any]]:
        """The versions of a post, oldest first: ``[{message, props}, ...]``, current last."""
        with self._lock:
            post = self._posts_by_id.get(post_id)
            if post is None:
                raise KeyError(post_id)
            edits = [e for e in self._edits if e["post_id"] == post_id]
            versions = [e["before"] for e in edits]
            versions.append({"message": post["message"], "props": post["props"]})
            return copy.deepcopy(versions)

    @property
    def ws_refused_count(self) -> int:
        """How many websocket upgrades were answered 502 (down or refused)."""
        with self._lock:
            return self._ws_refused_count

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
            "last_root_post_at": 0,
            "total_msg_count": 0,
            "extra_update_at": 0,
            "creator_id": "",
        }
        self._channels[channel_id] = channel
        self._members[channel_id] = set()
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
                self._members[channel_id].update((low, high))
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
        create_at: int | None = None,
    ) -> dict[str, Any]:
        """Validate and store a post like ``app.CreatePost``; return a copy. Raises ApiError.

        ``create_at`` (epoch ms) backdates the post; the author joins the channel.
        """
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
            now = self._millis() if create_at is None else create_at
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
            _assign_action_ids(post["props"])
            if file_ids:
                post["file_ids"] = list(file_ids)
            if root_id:
                root = self._posts_by_id[root_id]
                root["reply_count"] += 1
                root["last_reply_at"] = max(root["last_reply_at"], now)
            else:
                channel["last_root_post_at"] = max(channel["last_root_post_at"], now)
            channel["last_post_at"] = max(channel["last_post_at"], now)
            channel["total_msg_count"] += 1
            self._members[channel_id].add(user_id)
            self._posts.append(post)
            if create_at is not None:  # keep "oldest first" true for backdated posts
                self._posts.sort(key=lambda p: p["create_at"])
            self._posts_by_id[post["id"]] = post
            log.debug("fake_mm.post id=%s user=%s channel=%s", post["id"], user_id, channel_id)
            return copy.deepcopy(post)

    def _edit_post(
        self,
        post: dict[str, Any],
        *,
        message: str | None,
        props: dict[str, Any] | None,
        is_pinned: bool | None,
        via: str,
        by: str,
    ) -> dict[str, Any]:
        """Apply an edit like ``app.UpdatePost`` (None = field unchanged); return a copy.

        The caller checked permissions. ``edit_at`` moves only when the message changes.
        """
        with self._lock:
            if post["delete_at"]:
                raise ApiError(
                    400,
                    "api.post.update_post.permissions_details.app_error",
                    f"Already deleted id={post['id']}.",
                )
            if message is not None and len(message) > MAX_POST_RUNES:
                raise ApiError(
                    self.post_too_long_status,
                    "model.post.is_valid.message_length.app_error",
                    "Post Message property is longer than the maximum permitted length.",
                    f"Length={len(message)}, MaxLength={MAX_POST_RUNES}",
                )
            before = {"message": post["message"], "props": copy.deepcopy(post["props"])}
            now = self._millis()
            if message is not None and message != post["message"]:
                post["message"] = message
                post["edit_at"] = now
            if props is not None:
                post["props"] = copy.deepcopy(props)
            _assign_action_ids(post["props"])
            if is_pinned is not None:
                post["is_pinned"] = is_pinned
            post["update_at"] = now
            after = {"message": post["message"], "props": copy.deepcopy(post["props"])}
            self._edits.append(
                {
                    "post_id": post["id"],
                    "at": now,
                    "via": via,
                    "by": by,
                    "before": before,
                    "after": after,
                }
            )
            log.debug("fake_mm.post_edited id=%s via=%s", post["id"], via)
            return copy.deepcopy(post)

    def _check_edit_permission(self, post_id: str) -> dict[str, Any]:
        """``postPatchChecks``: the live post the bot may edit, else 403."""
        post = self._posts_by_id.get(post_id)
        if post is None or post["delete_at"]:
            raise _permission_error(self.bot_user_id, "edit_post")
        if post["user_id"] != self.bot_user_id and not self.bot_can_edit_others:
            raise _permission_error(self.bot_user_id, "edit_others_posts")
        return post

    def _bot_is_admin(self) -> bool:
        """``IsSystemAdmin``: the bot's roles include ``system_admin``."""
        return "system_admin" in self._users[self.bot_user_id]["roles"].split()

    def _issue_trigger(self, user_id: str, channel: dict[str, Any]) -> str:
        """A trigger id shaped like the server's: base64("client:user:millis:signature")."""
        client_trigger_id = new_id()
        signature = base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode("ascii")
        data = f"{client_trigger_id}:{user_id}:{int(time.time() * 1000)}:{signature}"
        trigger_id = base64.b64encode(data.encode("ascii")).decode("ascii")
        self._triggers[trigger_id] = _Trigger(
            client_trigger_id, user_id, channel["id"], channel["team_id"], time.monotonic()
        )
        return trigger_id

    def _valid_trigger(self, trigger_id: str) -> _Trigger:
        """The issued, unexpired (and, if single use, unused) trigger, else the server's 400."""
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise _trigger_error(trigger_id)
        if time.monotonic() - trigger.issued > self.trigger_ttl:
            raise ApiError(
                400,
                "interactive_message.decode_trigger_id.expired",
                "Trigger ID for interactive dialog is expired. The maximum time for Trigger ID "
                f"is {self.trigger_ttl:g}s.",
            )
        if trigger.used and self.trigger_id_single_use:
            raise ApiError(
                400,
                "fake.trigger_id.already_used",
                "This trigger ID already opened a dialog (the fake allows one per click).",
            )
        return trigger

    def _find_dialog(self, user_id: str, dialog: dict[str, Any] | str | None) -> dict[str, Any]:
        """The open dialog record ``submit_dialog`` means (the stored one, not a copy)."""
        if dialog is None:
            for record in reversed(self._dialogs):
                if record["open"] and record["user_id"] == user_id:
                    return record
            raise LookupError(f"no dialog is open for user {user_id}")
        dialog_id = dialog if isinstance(dialog, str) else dialog.get("id")
        record = next((r for r in self._dialogs if r["id"] == dialog_id), None)
        if record is None:
            raise KeyError(f"unknown dialog {dialog_id}")
        if record["user_id"] != user_id:
            raise ValueError(f"dialog {dialog_id} was opened for {record['user_id']}")
        if not record["open"]:
            raise ValueError(f"dialog {dialog_id} is not open")
        return record

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
        with self._lock:
            refused = self._down or self._ws_refused
            if refused:
                self._ws_refused_count += 1
        if refused:
            return _bad_gateway()
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
        """Record an event and send it to every authenticated socket; return how many got it.

        Every socket belongs to the bot (only its token authenticates), so an event addressed
        to another user (``broadcast.user_id``) is recorded but sent to no socket.
        """
        addressee = event.get("broadcast", {}).get("user_id", "")
        with self._lock:
            targets = [s for s in self._sockets if s.authenticated and not s.ws.closed]
            if addressee and addressee != self.bot_user_id:
                targets = []
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
                "post": _dumps_compact(_client_post(post)),
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

    async def _broadcast_edited(self, post: dict[str, Any]) -> None:
        """``post_edited`` to the post's channel, ``data.post`` a JSON string (integrations out)."""
        await self._broadcast(
            {
                "event": "post_edited",
                "data": {"post": _dumps_compact(_client_post(post))},
                "broadcast": self._broadcast_scope(post["channel_id"]),
            }
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
        add("POST", f"{API}/users/usernames", self._post_usernames)
        add("GET", f"{API}/users/{{user_id}}", self._get_user)
        add("GET", f"{API}/users/{{user_id}}/status", self._get_status)
        add("PUT", f"{API}/users/{{user_id}}/status/custom", self._put_custom_status)
        add("DELETE", f"{API}/users/{{user_id}}/status/custom", self._delete_custom_status)
        add("GET", f"{API}/users/{{user_id}}/channels", self._get_user_channels)
        add("POST", f"{API}/channels/direct", self._post_direct_channel)
        add("GET", f"{API}/channels/{{channel_id}}", self._get_channel)
        add("GET", f"{API}/channels/{{channel_id}}/posts", self._get_channel_posts)
        add("POST", f"{API}/posts", self._post_post)
        add("POST", f"{API}/posts/ephemeral", self._post_ephemeral)
        add("GET", f"{API}/posts/{{post_id}}", self._get_post)
        add("PUT", f"{API}/posts/{{post_id}}", self._put_post)
        add("DELETE", f"{API}/posts/{{post_id}}", self._delete_post)
        add("PUT", f"{API}/posts/{{post_id}}/patch", self._patch_post)
        add("GET", f"{API}/posts/{{post_id}}/thread", self._get_thread)
        add("POST", f"{API}/posts/{{post_id}}/actions/{{action_id}}", self._post_action)
        add("POST", f"{API}/actions/dialogs/open", self._open_dialog)
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
            down = self._down
        if down:  # the reverse proxy answers; the server never sees the call
            return _bad_gateway()
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
            if request.path not in _NO_AUTH_PATHS and not self._authorized(request):
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
        except Exception as error:  # a bug in the fake: say so loudly
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

    async def _post_usernames(self, request: web.Request) -> web.Response:
        body = request[_BODY_KEY]
        if not isinstance(body, list) or not body or not all(isinstance(n, str) for n in body):
            raise _invalid_body("usernames")
        with self._lock:
            by_name = {u["username"]: uid for uid, u in self._users.items()}
            ids = list(dict.fromkeys(by_name[n] for n in body if n in by_name))
        return _json_response([self._public_user(uid) for uid in ids])

    async def _get_user_channels(self, request: web.Request) -> web.Response:
        user_id = self._resolve_user(request.match_info["user_id"])
        with self._lock:
            if user_id != self.bot_user_id and not self._bot_is_admin():
                raise _permission_error(self.bot_user_id, "edit_other_users")
            channels = [
                copy.deepcopy(self._channels[cid])
                for cid in sorted(self._channels)
                if user_id in self._members.get(cid, ())
            ]
        return _json_response(channels)

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

    async def _get_channel_posts(self, request: web.Request) -> web.Response:
        """``getPostsForChannel``: ``since``, else ``before``/``after``, else a page."""
        query = request.query
        channel_id = request.match_info["channel_id"]
        after, before = query.get("after", ""), query.get("before", "")
        for name, value in (("after", after), ("before", before)):
            if value and not _ID_RE.match(value):
                raise _invalid_body(name)
        since = 0
        if query.get("since"):
            try:
                since = int(query["since"])
            except ValueError:
                raise _invalid_body("since") from None
        include_deleted = bool(_parse_bool(query.get("include_deleted", "")))
        page = _int_param(query, "page", 0)
        per_page = _int_param(query, "per_page", PER_PAGE_DEFAULT, PER_PAGE_MAX)
        with self._lock:
            if include_deleted and not self._bot_is_admin():
                raise _permission_error(self.bot_user_id, "read_deleted_posts")
            channel = self._channels.get(channel_id)
            if channel is None:
                raise ApiError(
                    404,
                    "app.channel.get.existing.app_error",
                    "Unable to find the existing channel.",
                )
            member = self.bot_user_id in self._members[channel_id]
            if channel["type"] != "O" and not member and not self._bot_is_admin():
                raise _permission_error(self.bot_user_id, "read_channel_content")
            newest_first = sorted(
                (p for p in self._posts if p["channel_id"] == channel_id),
                key=lambda p: p["create_at"],
                reverse=True,
            )
            if since > 0:
                # GetPostsSince has no DeleteAt filter: deletions are changes too.
                listed = [p for p in newest_first if p["update_at"] > since][:POSTS_SINCE_LIMIT]
                return _json_response(self._post_list(listed, include_deleted=True))
            visible = [p for p in newest_first if include_deleted or not p["delete_at"]]
            start = page * per_page
            anchor_id = after or before
            if anchor_id:
                anchor = self._posts_by_id.get(anchor_id)
                at = anchor["create_at"] if anchor is not None else None
                if at is None:
                    listed = []
                elif after:
                    newer = [p for p in reversed(visible) if p["create_at"] > at]
                    listed = newer[start : start + per_page][::-1]
                else:
                    listed = [p for p in visible if p["create_at"] < at][start : start + per_page]
            else:
                listed = visible[start : start + per_page]
            live = [p for p in newest_first if not p["delete_at"]]
            next_id = self._adjacent_post_id(live, listed, newer=True)
            prev_id = self._adjacent_post_id(live, listed, newer=False)
            if after:
                prev_id = after if page == 0 else prev_id
                next_id = next_id if listed else ""
            elif before:
                next_id = before if page == 0 else next_id
                prev_id = prev_id if listed else ""
            body = self._post_list(listed, include_deleted, next_id, prev_id)
        return _json_response(body)

    @staticmethod
    def _adjacent_post_id(
        live: list[dict[str, Any]], listed: list[dict[str, Any]], newer: bool
    ) -> str:
        """``GetNextPostIdFromPostList``/``GetPrevPostIdFromPostList``: the live post just
        after the newest (or before the oldest) listed one; "" when none."""
        if not listed:
            return ""
        if newer:
            edge = listed[0]["create_at"]
            later = [p for p in live if p["create_at"] > edge]
            return min(later, key=lambda p: p["create_at"])["id"] if later else ""
        edge = listed[-1]["create_at"]
        earlier = [p for p in live if p["create_at"] < edge]
        return max(earlier, key=lambda p: p["create_at"])["id"] if earlier else ""

    def _post_list(
        self,
        listed: list[dict[str, Any]],
        include_deleted: bool,
        next_post_id: str = "",
        prev_post_id: str = "",
    ) -> dict[str, Any]:
        """A ``model.PostList`` for clients; ``posts`` also has the roots of listed replies."""
        posts = {p["id"]: _client_post(p) for p in listed}
        for p in listed:
            root = self._posts_by_id.get(p["root_id"]) if p["root_id"] else None
            if (root is not None and root["id"] not in posts
                    and (include_deleted or not root["delete_at"])):
                posts[root["id"]] = _client_post(root)
        return {
            "order": [p["id"] for p in listed],
            "posts": posts,
            "next_post_id": next_post_id,
            "prev_post_id": prev_post_id,
            "first_inaccessible_post_time": 0,
        }

    # ------------------------------------------------------------------ REST handlers: posts

    async def _post_post(self, request: web.Request) -> web.Response:
        body = request[_BODY_KEY]
        if not isinstance(body, dict):
            raise _invalid_body("post")
        pending_post_id = str(body.get("pending_post_id") or "")
        # No await between the look-up and the record: a create is atomic on this loop.
        with self._lock:
            first = self._deduplicated_post(pending_post_id)
            if first is not None:
                return _json_response(_client_post(first), 201)
            post = self._create_post(
                self.bot_user_id,
                body.get("channel_id"),
                body.get("message") or "",
                body.get("root_id") or "",
                body.get("props") or {},
                body.get("file_ids") or [],
                pending_post_id=pending_post_id,
            )
            if pending_post_id:
                self._pending_posts[pending_post_id] = (time.monotonic(), post["id"])
        await self._broadcast_posted(post)
        return _json_response(_client_post(post), 201)

    def _deduplicated_post(self, pending_post_id: str) -> dict[str, Any] | None:
        """``deduplicateCreatePost``: the post first created with this id in the TTL, if any."""
        if not pending_post_id:
            return None
        now = time.monotonic()
        for key, (seen, _) in list(self._pending_posts.items()):
            if now - seen > self.pending_post_ttl:
                del self._pending_posts[key]
        seen_post = self._pending_posts.get(pending_post_id)
        if seen_post is None:
            return None
        post = self._posts_by_id.get(seen_post[1])
        if post is None or post["delete_at"]:
            raise ApiError(
                500,
                "api.post.deduplicate_create_post.failed_to_get",
                "Failed to fetch original post after deduplicating a client repeating the "
                "same request.",
            )
        log.debug("fake_mm.post_deduplicated id=%s", post["id"])
        return copy.deepcopy(post)

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
            _assign_action_ids(post.get("props"))
            self._ephemeral.append({"user_id": body.get("user_id"), "post": post})
        return _json_response(_client_post(post), 201)

    def _live_post(self, post_id: str) -> dict[str, Any]:
        with self._lock:
            post = self._posts_by_id.get(post_id)
            if post is None or post["delete_at"]:
                raise ApiError(404, "app.post.get.app_error", "Unable to get the post.")
            return copy.deepcopy(post)

    async def _get_post(self, request: web.Request) -> web.Response:
        return _json_response(_client_post(self._live_post(request.match_info["post_id"])))

    async def _get_thread(self, request: web.Request) -> web.Response:
        post = self._live_post(request.match_info["post_id"])
        root_id = post["root_id"] or post["id"]
        with self._lock:
            thread = [
                _client_post(p)
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
                "first_inaccessible_post_time": 0,
            }
        )

    async def _patch_post(self, request: web.Request) -> web.Response:
        """``patchPost``: only the fields present change; ``props`` replace the old ones."""
        body = request[_BODY_KEY]
        if not isinstance(body, dict):
            raise _invalid_body("post")
        message, props, is_pinned = body.get("message"), body.get("props"), body.get("is_pinned")
        if (
            (message is not None and not isinstance(message, str))
            or (props is not None and not isinstance(props, dict))
            or (is_pinned is not None and not isinstance(is_pinned, bool))
        ):
            raise _invalid_body("post")
        with self._lock:
            post = self._check_edit_permission(request.match_info["post_id"])
            edited = self._edit_post(
                post,
                message=message,
                props=props,
                is_pinned=is_pinned,
                via="patch",
                by=self.bot_user_id,
            )
        await self._broadcast_edited(edited)
        return _json_response(_client_post(edited))

    async def _put_post(self, request: web.Request) -> web.Response:
        """``updatePost``: the body is the whole post; absent fields become empty."""
        body = request[_BODY_KEY]
        if not isinstance(body, dict):
            raise _invalid_body("post")
        post_id = request.match_info["post_id"]
        if body.get("id") != post_id:
            raise _invalid_body("id")
        message, props = body.get("message") or "", body.get("props") or {}
        if not isinstance(message, str) or not isinstance(props, dict):
            raise _invalid_body("post")
        with self._lock:
            post = self._check_edit_permission(post_id)
            edited = self._edit_post(
                post,
                message=message,
                props=props,
                is_pinned=bool(body.get("is_pinned")),
                via="update",
                by=self.bot_user_id,
            )
        await self._broadcast_edited(edited)
        return _json_response(_client_post(edited))

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
            deleted = _client_post(post)
        await self._broadcast(
            {
                "event": "post_deleted",
                "data": {"post": _dumps_compact(deleted), "delete_by": self.bot_user_id},
                "broadcast": self._broadcast_scope(deleted["channel_id"]),
            }
        )
        return _json_response({"status": "OK"})

    # ------------------------------------------------------------------ interactions: clicks

    async def _post_action(self, request: web.Request) -> web.Response:
        """A click by the bot itself; answers ``{status: "OK", trigger_id}`` like the server."""
        record, error = await self._click(
            request.match_info["post_id"], request.match_info["action_id"], self.bot_user_id, "rest"
        )
        if error is not None:
            raise error
        return _json_response({"status": "OK", "trigger_id": record["client_trigger_id"]})

    async def _click(
        self, post_id: str, action_id: str, user_id: str, via: str
    ) -> tuple[dict[str, Any], ApiError | None]:
        """Run one click, record it, and return (a copy of the record, the client's error)."""
        record: dict[str, Any] = {
            "post_id": post_id,
            "action_id": action_id,
            "user_id": user_id,
            "via": via,
            "url": None,
            "request": None,
            "trigger_id": None,
            "client_trigger_id": None,
            "status": None,
            "response": None,
            "goto_location": None,
            "error": None,
            "error_id": None,
            "api_status": 200,
            "at": self._millis(),
        }
        with self._lock:
            self._clicks.append(record)
        failure: ApiError | None = None
        try:
            await self._run_click(record)
        except ApiError as error:
            failure = error
            with self._lock:
                record.update(
                    error=error.detailed or error.message,
                    error_id=error.error_id,
                    api_status=error.status,
                )
        log.debug(
            "fake_mm.click post=%s action=%s via=%s status=%s error=%s",
            post_id,
            action_id,
            via,
            record["status"],
            record["error_id"],
        )
        with self._lock:
            return copy.deepcopy(record), failure

    async def _run_click(self, record: dict[str, Any]) -> None:
        """``DoPostActionWithCookie`` for a stored post: call the integration, apply its answer."""
        post_id, action_id, user_id = record["post_id"], record["action_id"], record["user_id"]
        with self._lock:
            post = self._posts_by_id.get(post_id)
            if post is None or post["delete_at"]:
                raise ApiError(404, "app.post.get.app_error", "Unable to get the post.")
            action = next((a for a in _actions(post["props"]) if a.get("id") == action_id), None)
            if action is None or not isinstance(action.get("integration"), dict):
                raise ApiError(
                    404,
                    "api.post.do_action.action_id.app_error",
                    "Invalid action id.",
                    f"action={action_id}",
                )
            user = self._users.get(user_id)
            if user is None:
                raise ApiError(404, "app.user.missing_account.const", "Unable to find the user.")
            channel = self._channels[post["channel_id"]]
            integration = copy.deepcopy(action["integration"])
            trigger_id = self._issue_trigger(user_id, channel)
            body: dict[str, Any] = {
                "user_id": user_id,
                "user_name": user["username"],
                "channel_id": channel["id"],
                "channel_name": channel["name"],
                "team_id": channel["team_id"],
                "team_domain": self.team_name if channel["team_id"] else "",
                "post_id": post_id,
                "trigger_id": trigger_id,
                "type": action.get("type") or "",
                "data_source": "",
            }
            if integration.get("context"):  # Go: `json:"context,omitempty"`
                body["context"] = integration["context"]
            url = integration.get("url") or ""
            clicked = copy.deepcopy(post)
            record.update(
                url=url,
                request=copy.deepcopy(body),
                trigger_id=trigger_id,
                client_trigger_id=self._triggers[trigger_id].client_trigger_id,
            )
        status, answer, error = await self._call_integration(url, body)
        with self._lock:
            record.update(status=status, response=copy.deepcopy(answer))
        if error is None:
            error = _action_answer_problem(answer)
        if error is not None or answer is None:
            raise ApiError(
                400,
                "api.post.do_action.action_integration.app_error",
                "Action integration error.",
                error or "",
            )
        with self._lock:
            record["goto_location"] = answer.get("goto_location")
        update = answer.get("update")
        if isinstance(update, dict):
            await self._broadcast_edited(self._apply_action_update(post_id, clicked, update))
        if answer.get("ephemeral_text"):
            await self._send_action_ephemeral(user_id, clicked, answer["ephemeral_text"])

    def _apply_action_update(
        self, post_id: str, clicked: dict[str, Any], update: dict[str, Any]
    ) -> dict[str, Any]:
        """Apply an answer's ``update`` like the server: message replaced, props kept or
        replaced (``PostActionRetainPropKeys`` restored from the clicked post)."""
        props = update.get("props")
        if props is not None:
            props = copy.deepcopy(props)
            for key in RETAINED_PROP_KEYS:
                if key in clicked["props"]:
                    props[key] = copy.deepcopy(clicked["props"][key])
                else:
                    props.pop(key, None)
        with self._lock:
            post = self._posts_by_id[post_id]
            return self._edit_post(
                post,
                message=update.get("message") or "",
                props=props,
                is_pinned=None,
                via="action",
                by=clicked["user_id"],
            )

    async def _send_action_ephemeral(
        self, user_id: str, clicked: dict[str, Any], text: str
    ) -> None:
        """The answer's ``ephemeral_text`` as the server sends it: to the clicking user only."""
        with self._lock:
            now = self._millis()
            post = {
                "id": new_id(),
                "create_at": now,
                "update_at": now,
                "edit_at": 0,
                "delete_at": 0,
                "user_id": user_id,
                "channel_id": clicked["channel_id"],
                "root_id": clicked["root_id"] or clicked["id"],
                "message": text,
                "type": "system_ephemeral",
                "props": {
                    k: clicked["props"][k] for k in RETAINED_PROP_KEYS if k in clicked["props"]
                },
            }
            self._ephemeral.append({"user_id": user_id, "post": copy.deepcopy(post)})
        await self._broadcast(
            {
                "event": "ephemeral_message",
                "data": {"post": _dumps_compact(post)},
                "broadcast": self._broadcast_scope(clicked["channel_id"], user_id=user_id),
            }
        )

    async def _call_integration(
        self, url: str, body: dict[str, Any], *, lenient: bool = False
    ) -> tuple[int | None, dict[str, Any] | None, str | None]:
        """POST JSON to an integration like ``DoActionRequest``: (status, answer, error).

        Anything but 200 is an error. An empty body is ``{}``. A body that is not a JSON object
        is an error unless ``lenient`` (dialog submissions), when it reads as ``{}``.
        """
        http = self._http
        if http is None:
            return None, None, "the fake is not running"
        if not url.startswith(("http://", "https://")):
            return None, None, f"unsupported integration url {url!r} (plugin URLs are not modelled)"
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": JSON_CONTENT_TYPE, "Accept": JSON_CONTENT_TYPE}
        timeout = aiohttp.ClientTimeout(total=self.integration_timeout)
        try:
            async with http.post(url, data=data, headers=headers, timeout=timeout) as response:
                status = response.status
                raw = await response.read()
        except TimeoutError:
            return None, None, f"timed out after {self.integration_timeout:g}s"
        except (aiohttp.ClientError, ValueError) as error:
            return None, None, f"{type(error).__name__}: {error}"
        if status != 200:
            return status, None, f"status={status}"
        if not raw:
            return status, {}, None
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = _INVALID_JSON
        if answer is None:  # JSON null decodes into Go's zero struct
            answer = {}
        if not isinstance(answer, dict):
            if lenient:
                return status, {}, None
            return status, None, f"the answer is not a JSON object: {raw[:200]!r}"
        return status, answer, None

    # ------------------------------------------------------------------ interactions: dialogs

    async def _open_dialog(self, request: web.Request) -> web.Response:
        """``openDialog``/``OpenInteractiveDialog``: check url and trigger, record, announce."""
        body = request[_BODY_KEY]
        if not isinstance(body, dict) or not isinstance(body.get("dialog") or {}, dict):
            raise _invalid_body("dialog")
        url, trigger_id, dialog = body.get("url"), body.get("trigger_id"), body.get("dialog") or {}
        record: dict[str, Any] = {
            "id": new_id(),
            "trigger_id": trigger_id,
            "url": url,
            "dialog": copy.deepcopy(dialog),
            "user_id": None,
            "channel_id": None,
            "team_id": None,
            "problems": [],
            "error_id": None,
            "open": False,
            "at": self._millis(),
        }
        with self._lock:
            self._dialogs.append(record)
            try:
                if not isinstance(url, str) or not url:
                    raise _invalid_body("url")
                trigger = self._valid_trigger(trigger_id if isinstance(trigger_id, str) else "")
                record["problems"] = _dialog_problems(dialog)
                if record["problems"] and self.strict_dialogs:
                    raise ApiError(
                        400,
                        "fake.dialog.invalid",
                        "Interactive dialog is invalid (the server only logs this).",
                        "; ".join(record["problems"]),
                    )
            except ApiError as error:
                record["error_id"] = error.error_id
                raise
            trigger.used = True
            record.update(
                user_id=trigger.user_id,
                channel_id=trigger.channel_id,
                team_id=trigger.team_id,
                open=True,
            )
            announced = {"trigger_id": trigger.client_trigger_id, "url": url, "dialog": dialog}
        log.debug("fake_mm.dialog_opened id=%s user=%s", record["id"], record["user_id"])
        await self._broadcast(
            {
                "event": "open_dialog",
                "data": {"dialog": _dumps_compact(announced)},
                "broadcast": self._broadcast_scope(user_id=trigger.user_id),
            }
        )
        return _json_response({"status": "OK"})

    async def _submit_dialog(
        self, dialog: dict[str, Any], user_id: str, submission: dict[str, Any], cancelled: bool
    ) -> dict[str, Any]:
        """The webapp's submit (or cancel) and ``SubmitInteractiveDialog``; never logs values."""
        with self._lock:
            spec = dialog["dialog"]
            body = {
                "type": "dialog_submission",
                "callback_id": spec.get("callback_id") or "",
                "state": spec.get("state") or "",
                "user_id": user_id,
                "channel_id": dialog["channel_id"],
                "team_id": dialog["team_id"],
                "submission": {} if cancelled else submission,
                "cancelled": cancelled,
            }
            record: dict[str, Any] = {
                "dialog_id": dialog["id"],
                "user_id": user_id,
                "cancelled": cancelled,
                "sent": False,
                "url": dialog["url"],
                "request": copy.deepcopy(body),
                "status": None,
                "response": None,
                "error": None,
                "open": True,
                "at": self._millis(),
            }
            self._submissions.append(record)
            notify = bool(spec.get("notify_on_cancel"))
        if cancelled and not notify:  # the webapp just closes it
            with self._lock:
                record["open"] = dialog["open"] = False
                return copy.deepcopy(record)
        status, answer, error = await self._call_integration(dialog["url"], body, lenient=True)
        answer = answer or {}
        keep_open = not cancelled and (
            error is not None or bool(answer.get("errors")) or bool(answer.get("error"))
        )
        with self._lock:
            record.update(
                sent=True,
                status=status,
                response=copy.deepcopy(answer),
                error=error,
                open=keep_open,
            )
            dialog["open"] = keep_open
        log.debug(
            "fake_mm.dialog_submitted id=%s fields=%s cancelled=%s status=%s open=%s",
            dialog["id"],
            sorted(submission),
            cancelled,
            status,
            keep_open,
        )
        with self._lock:
            return copy.deepcopy(record)
