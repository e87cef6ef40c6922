"""A real Radicale CalDAV server for tests, behind a middleware that behaves like Yandex.

``RadicaleServer`` runs ``radicale.Application`` in a thread on 127.0.0.1 and a free port,
with htpasswd (plain) users, ``owner_only`` rights and a throw-away storage folder. Every
request passes through ``YandexQuirks``, which reproduces what Yandex Calendar does and a
standard server does not:

- ``REPORT sync-collection`` → 403 with a ``DAV:supported-report`` error body, and PROPFIND
  answers lose ``DAV:sync-token`` and the sync-collection entry of
  ``DAV:supported-report-set``: Yandex refuses sync-collection on big calendars, so the bot
  must not depend on sync tokens;
- ``<C:expand/>`` is removed from REPORT bodies: Yandex ignores server-side expansion;
- ``REPORT free-busy-query`` → 504, as Yandex answers it;
- on demand: ``fail_every(n)`` (every n-th request answers 504; a PUT/DELETE is applied first,
  because Yandex often carries out a write and still answers 504), ``fail_all(status)``,
  ``latency(seconds)``, ``refuse_auth(login)`` (401, a revoked app password);
- counters (requests, bytes sent, by method, by REPORT type, …) and ``reset_counters()``.

Writes (PUT) get Yandex's server-side behaviour on top of Radicale's storage:

- **Telemost rooms.** A VEVENT carrying ``X-TELEMOST-REQUIRED:TRUE`` without
  ``X-TELEMOST-CONFERENCE`` gets a room minted before it is stored:
  ``X-TELEMOST-CONFERENCE:https://telemost.yandex.ru/j/<14 digits>`` plus a link line at
  the end of DESCRIPTION. ``telemost_delay(seconds)`` makes it slow, as Yandex can be: the
  object is stored as sent and a timer adds the room later (to the copies delivered to
  attendees as well).
- **Declining drops the invitee's copy.** When a user PUTs their copy of somebody else's
  meeting and their own ATTENDEE says DECLINED on every VEVENT listing them (it did not
  before), the PUT is answered as a success, but the object is deleted: the next GET is 404.
- **Answers reach the other copies.** When a user's own PARTSTAT changes in a PUT, the same
  change is made in the other users' copies of that UID (the organizer sees the answer).
- **Invitations.** A new object PUT by its ORGANIZER is copied (same file name) into the
  first event calendar, by href, of every ATTENDEE who is a user of this server.
- **Write faults.** ``fail_next_write(applied=True)``: the next PUT is carried out (with all
  of the above) and answered 504; ``applied=False``: answered 504 and not carried out;
  ``status=`` picks another answer (401 for a refusal on the write itself).
  ``conflict_next_write(times)``: just before each of the next PUTs that carry ``If-Match``,
  the stored object is changed behind the client's back, so Radicale itself answers 412.

The middleware's own requests to Radicale (looking up users' calendars and copies, storing
copies, deleting a declined one) go straight to the wrapped application with the user's
credentials: they are neither counted nor subject to faults. Counters say how often each
behaviour fired (``telemost_minted``, ``declined_dropped``, ``answers_copied``,
``invitations_delivered``, ``write_faults``, ``conflicts_injected``).

Logins look like Yandex ones (``alice@yandex.ru``). Radicale handles them as they are: the
principal is ``/alice%40yandex.ru/`` (it answers with ``%40`` in hrefs, as Yandex does, and
accepts both spellings in requests), the storage folder is named ``alice@yandex.ru`` and
``owner_only`` compares the decoded path segment with the login, so no workaround is needed.

Seeding helpers (``add_user``, ``make_calendar``, ``put``, ``delete``) talk HTTP to the
server like any client, but carry a ``X-Test-Seed`` header: the middleware passes them
through without counting them, injecting faults or acting like Yandex, so tests can seed
while a fault is on.
"""

from __future__ import annotations

import base64
import http.client
import io
import logging
import shutil
import socket
import socketserver
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import icalendar
import radicale
import radicale.config
from lxml import etree

from bot.core.links import normalise_address
from tests.fake_calendar import (
    answers_of,
    became_declined,
    copy_answers,
    mint_telemost_room,
    new_room_number,
    participants,
    uid_of,
)

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
SEED_HEADER = "X-Test-Seed"
_SEED_ENVIRON = "HTTP_X_TEST_SEED"
# Writes that Yandex may carry out and still answer 504 for.
_APPLY_THEN_FAIL = frozenset({"PUT", "DELETE"})
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)

StartResponse = Callable[..., Callable[[bytes], object]]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def principal_path(login: str) -> str:
    """The principal (and calendar home) path of a login: ``/alice%40yandex.ru/``."""
    return "/" + quote(login, safe="") + "/"


@dataclass
class QuirkCounters:
    """What the middleware saw since the last ``reset_counters()`` (seeding excluded)."""

    requests: int = 0
    bytes_sent: int = 0  # response body bytes
    anonymous: int = 0  # requests without an Authorization header
    by_method: Counter[str] = field(default_factory=Counter)
    by_report: Counter[str] = field(default_factory=Counter)  # REPORT root element name
    expand_stripped: int = 0  # <C:expand/> elements removed from REPORT bodies
    sync_refused: int = 0  # sync-collection REPORTs answered 403
    propfind_stripped: int = 0  # sync-token / sync-collection entries removed
    injected_failures: int = 0  # answers replaced by fail_every / fail_all / refuse_auth
    in_flight: int = 0  # requests being handled right now
    max_in_flight: int = 0  # the most handled at once
    telemost_minted: int = 0  # objects that got a Telemost room
    declined_dropped: int = 0  # invitees' copies deleted after a decline
    answers_copied: int = 0  # other users' copies updated with an answer
    invitations_delivered: int = 0  # copies of a new meeting put into attendees' calendars
    write_faults: int = 0  # PUTs answered by fail_next_write
    conflicts_injected: int = 0  # objects changed behind a client's back (conflict_next_write)

    def copy(self) -> QuirkCounters:
        return replace(self, by_method=Counter(self.by_method), by_report=Counter(self.by_report))


class YandexQuirks:
    """WSGI middleware that makes a standard CalDAV server answer like Yandex Calendar."""

    def __init__(self, app: WsgiApp,
                 users: Callable[[], dict[str, str]] | None = None) -> None:
        """``users`` gives the server's users (login → password): the middleware acts on
        their behalf to deliver invitations and copy answers."""
        self._app = app
        self._users = users or dict
        self._lock = threading.Lock()
        self._counters = QuirkCounters()
        self._fail_every = 0
        self._fail_seq = 0
        self._fail_all: int | None = None
        self._latency = 0.0
        self._refused: set[str] = set()
        self._write_faults: list[tuple[bool, int]] = []  # (applied first, status)
        self._conflicts = 0
        self._telemost_delay = 0.0
        self._edits = 0  # numbers the changes made behind clients' backs

    # -- switches ---------------------------------------------------------------------------

    def fail_every(self, n: int) -> None:
        """Answer every n-th request from now on with 504 (0 turns it off)."""
        with self._lock:
            self._fail_every = max(0, n)
            self._fail_seq = 0

    def fail_all(self, status: int | None) -> None:
        """Answer every request with ``status`` (``None`` turns it off)."""
        with self._lock:
            self._fail_all = status

    def latency(self, seconds: float) -> None:
        """Delay every request by ``seconds``."""
        with self._lock:
            self._latency = max(0.0, seconds)

    def refuse_auth(self, login: str, refuse: bool = True) -> None:
        """Answer 401 to every request authenticated as ``login`` (a revoked app password)."""
        with self._lock:
            if refuse:
                self._refused.add(login)
            else:
                self._refused.discard(login)

    def fail_next_write(self, *, applied: bool, status: int = 504, times: int = 1) -> None:
        """Answer the next ``times`` PUTs with ``status``, carrying each out first when
        ``applied`` (Yandex's 504 after a write that happened)."""
        with self._lock:
            self._write_faults.extend([(applied, status)] * times)

    def conflict_next_write(self, times: int = 1) -> None:
        """Change the stored object just before each of the next ``times`` PUTs that carry
        ``If-Match``, as if somebody edited it meanwhile: Radicale then answers 412."""
        with self._lock:
            self._conflicts += max(0, times)

    def telemost_delay(self, seconds: float) -> None:
        """Mint requested Telemost rooms ``seconds`` after the PUT instead of before it."""
        with self._lock:
            self._telemost_delay = max(0.0, seconds)

    def reset_faults(self) -> None:
        """Turn off every injected fault, latency, refusal and the Telemost delay."""
        with self._lock:
            self._fail_every = self._fail_seq = 0
            self._fail_all = None
            self._latency = 0.0
            self._refused.clear()
            self._write_faults.clear()
            self._conflicts = 0
            self._telemost_delay = 0.0

    # -- counters ---------------------------------------------------------------------------

    @property
    def counters(self) -> QuirkCounters:
        """A snapshot of the counters."""
        with self._lock:
            return self._counters.copy()

    def reset_counters(self) -> None:
        with self._lock:
            self._counters = QuirkCounters()

    # -- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get(_SEED_ENVIRON) == "1":
            return self._app(environ, start_response)
        # A request counts towards the counters current when it arrived: one still running
        # after reset_counters() (e.g. left behind by a client timeout) cannot skew new ones.
        with self._lock:
            counters = self._counters
            counters.in_flight += 1
            counters.max_in_flight = max(counters.max_in_flight, counters.in_flight)
        try:
            return self._handle(environ, start_response, counters)
        finally:
            with self._lock:
                counters.in_flight -= 1

    def _handle(
        self, environ: dict[str, Any], start_response: StartResponse, counters: QuirkCounters
    ) -> list[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        body = _read_body(environ)
        report = _root_name(body) if method == "REPORT" else None
        login = _basic_login(environ.get("HTTP_AUTHORIZATION", ""))
        with self._lock:
            counters.requests += 1
            counters.by_method[method] += 1
            if report:
                counters.by_report[report] += 1
            if login is None:
                counters.anonymous += 1
            latency = self._latency
            refused = login is not None and login in self._refused
            fail_status = self._fail_all
            if fail_status is None and self._fail_every:
                self._fail_seq += 1
                if self._fail_seq % self._fail_every == 0:
                    fail_status = 504

        if latency:
            time.sleep(latency)
        if refused:
            self._count_failure(counters)
            return self._fail(counters, start_response, 401)
        if method == "PUT" and login is not None:
            return self._handle_put(environ, body, login, counters, start_response, fail_status)
        if fail_status is not None:
            if method in _APPLY_THEN_FAIL:  # the write happens, the answer is lost
                _drain(self._app(_with_body(environ, body), _discard_start_response))
            self._count_failure(counters)
            return self._fail(counters, start_response, fail_status)
        if report == "sync-collection":  # do not let anybody depend on sync tokens
            with self._lock:
                counters.sync_refused += 1
            return self._send(
                counters,
                start_response,
                "403 Forbidden",
                b'<?xml version="1.0" encoding="utf-8"?>\n'
                b'<D:error xmlns:D="DAV:"><D:supported-report/></D:error>',
                "text/xml; charset=utf-8",
            )
        if report == "free-busy-query":  # Yandex times out on free-busy
            return self._send(counters, start_response, "504 Gateway Time-out", b"", "text/html")
        if report:
            body, stripped = _strip_expand(body)
            if stripped:
                with self._lock:
                    counters.expand_stripped += stripped

        status, headers, payload = _call(self._app, _with_body(environ, body))
        if method == "PROPFIND" and status.startswith("207"):
            payload, stripped = _strip_sync_props(payload)
            if stripped:
                with self._lock:
                    counters.propfind_stripped += stripped
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(payload))))
        with self._lock:
            counters.bytes_sent += len(payload)
        start_response(status, headers)
        return [payload]

    def _count_failure(self, counters: QuirkCounters) -> None:
        with self._lock:
            counters.injected_failures += 1

    def _fail(self, counters: QuirkCounters, start_response: StartResponse,
              status: int) -> list[bytes]:
        if status == 401:
            return self._send(
                counters,
                start_response,
                "401 Unauthorized",
                b"Unauthorized",
                "text/plain",
                [("WWW-Authenticate", 'Basic realm="Yandex.Calendar"')],
            )
        reason = http.client.responses.get(status, "Error")
        return self._send(
            counters,
            start_response,
            f"{status} {reason}",
            f"<html><body><h1>{status} {reason}</h1></body></html>".encode(),
            "text/html",
        )

    # -- writes, the Yandex way -------------------------------------------------------------

    def _handle_put(
        self,
        environ: dict[str, Any],
        body: bytes,
        login: str,
        counters: QuirkCounters,
        start_response: StartResponse,
        fail_status: int | None,
    ) -> list[bytes]:
        with self._lock:
            fault = self._write_faults.pop(0) if self._write_faults else None
            conflict = self._conflicts > 0 and bool(environ.get("HTTP_IF_MATCH"))
            if conflict:
                self._conflicts -= 1
        if conflict:
            self._edit_behind_back(environ, login, counters)
        if fault is not None:
            applied, status = fault
            if applied:
                self._put_as_yandex(environ, body, login, counters)
            with self._lock:
                counters.write_faults += 1
            self._count_failure(counters)
            return self._fail(counters, start_response, status)
        if fail_status is not None:
            self._put_as_yandex(environ, body, login, counters)  # applied, answer lost
            self._count_failure(counters)
            return self._fail(counters, start_response, fail_status)
        status, headers, payload = self._put_as_yandex(environ, body, login, counters)
        with self._lock:
            counters.bytes_sent += len(payload)
        start_response(status, headers)
        return [payload]

    def _put_as_yandex(
        self, environ: dict[str, Any], body: bytes, login: str, counters: QuirkCounters
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """Store a PUT and do around it what Yandex does (see the module docstring)."""
        path = environ.get("PATH_INFO", "")
        old_status, _, old_body = self._internal(environ, "GET", path, login)
        old = old_body.decode("utf-8", "replace") if old_status == 200 else None
        text = body.decode("utf-8", "replace")
        with self._lock:
            delay = self._telemost_delay
        minted = mint_telemost_room(text, new_room_number())
        if minted is not None and not delay:
            text, body = minted, minted.encode("utf-8")
            with self._lock:
                counters.telemost_minted += 1
        status, headers, payload = _call(self._app, _with_body(environ, body))
        if not status.startswith("2"):
            return status, headers, payload
        delivered, dropped = self._after_write(environ, path, login, old, text, counters)
        if dropped:  # the answer says "stored", the object is not there any more
            headers = [(k, v) for k, v in headers if k.lower() != "etag"]
        if minted is not None and delay:
            template = dict(environ)
            timer = threading.Timer(
                delay, self._mint_later, args=(template, [(login, path), *delivered], counters)
            )
            timer.daemon = True
            timer.start()
        return status, headers, payload

    def _after_write(
        self,
        environ: dict[str, Any],
        path: str,
        login: str,
        old: str | None,
        new: str,
        counters: QuirkCounters,
    ) -> tuple[list[tuple[str, str]], bool]:
        """Invitations for a new meeting, answers copied to the other copies, a declined
        copy dropped. Returns the delivered copies (login, path) and whether it dropped the
        written object."""
        writer = normalise_address(login)
        organizer, attendees = participants(new)
        involved = attendees | ({organizer} if organizer else set())
        others = [u for u in self._users() if normalise_address(u) != writer
                  and normalise_address(u) in involved]
        delivered: list[tuple[str, str]] = []
        if old is None:
            if organizer == writer:
                filename = path.rsplit("/", 1)[1]
                for user in others:
                    if normalise_address(user) not in attendees:
                        continue
                    calendars = self._event_calendars(environ, user)
                    if not calendars:
                        continue
                    copy = calendars[0] + filename
                    status, _, _ = self._internal(
                        environ, "PUT", copy, user, new.encode("utf-8"),
                        {"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"})
                    if 200 <= status < 300:
                        delivered.append((user, copy))
                        with self._lock:
                            counters.invitations_delivered += 1
            return delivered, False
        before, after = answers_of(old, writer), answers_of(new, writer)
        if before != after:
            uid = uid_of(new)
            for user in others:
                for copy, etag, ics in self._copies(environ, user, uid):
                    changed = copy_answers(ics, writer, before, after, datetime.now(UTC))
                    if changed is None:
                        continue
                    status, _, _ = self._internal(
                        environ, "PUT", copy, user, changed.encode("utf-8"),
                        {"Content-Type": "text/calendar; charset=utf-8", "If-Match": etag})
                    if 200 <= status < 300:
                        with self._lock:
                            counters.answers_copied += 1
        if organizer != writer and became_declined(before, after):
            status, _, _ = self._internal(environ, "DELETE", path, login)
            if 200 <= status < 300:
                with self._lock:
                    counters.declined_dropped += 1
                return delivered, True
        return delivered, False

    def _mint_later(self, template: dict[str, Any], copies: list[tuple[str, str]],
                    counters: QuirkCounters) -> None:
        """The slow Telemost: add one room to the object and to its delivered copies."""
        room = new_room_number()
        for user, path in copies:
            status, headers, payload = self._internal(template, "GET", path, user)
            if status != 200:
                continue
            minted = mint_telemost_room(payload.decode("utf-8", "replace"), room)
            if minted is None:
                continue
            put, _, _ = self._internal(
                template, "PUT", path, user, minted.encode("utf-8"),
                {"Content-Type": "text/calendar; charset=utf-8",
                 "If-Match": headers.get("etag", "*")})
            if 200 <= put < 300:
                with self._lock:
                    counters.telemost_minted += 1

    def _edit_behind_back(self, environ: dict[str, Any], login: str,
                          counters: QuirkCounters) -> None:
        """Somebody else edits the object the client is about to PUT (its ETag moves)."""
        path = environ.get("PATH_INFO", "")
        status, _, payload = self._internal(environ, "GET", path, login)
        if status != 200:
            return
        try:
            calendar = icalendar.Calendar.from_ical(payload.decode("utf-8", "replace"))
        except ValueError:
            return
        with self._lock:
            self._edits += 1
            edit = self._edits
        for event in calendar.walk("VEVENT"):
            event.pop("X-TEST-EDITED", None)
            event.add("X-TEST-EDITED", str(edit))
        put, _, _ = self._internal(environ, "PUT", path, login, calendar.to_ical(),
                                   {"Content-Type": "text/calendar; charset=utf-8"})
        if 200 <= put < 300:
            with self._lock:
                counters.conflicts_injected += 1

    def _event_calendars(self, environ: dict[str, Any], user: str) -> list[str]:
        """The user's event calendars (decoded paths, as WSGI spells PATH_INFO), by href."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<D:propfind xmlns:D="DAV:" xmlns:C="{CALDAV}"><D:prop><D:resourcetype/>'
            "<C:supported-calendar-component-set/></D:prop></D:propfind>"
        ).encode()
        home = unquote(principal_path(user), "iso-8859-1")
        status, _, payload = self._internal(
            environ, "PROPFIND", home, user, body,
            {"Content-Type": "text/xml; charset=utf-8", "Depth": "1"})
        if status != 207:
            return []
        found = []
        for response in etree.fromstring(payload, _XML_PARSER).iter(f"{{{DAV}}}response"):
            href = response.findtext(f"{{{DAV}}}href") or ""
            if response.find(f".//{{{DAV}}}resourcetype/{{{CALDAV}}}calendar") is None:
                continue
            components = {c.get("name", "").upper()
                          for c in response.iter(f"{{{CALDAV}}}comp")}
            if components and "VEVENT" not in components:
                continue
            found.append(unquote(urlsplit(href).path, "iso-8859-1"))
        return sorted(found)

    def _copies(self, environ: dict[str, Any], user: str,
                uid: str) -> list[tuple[str, str, str]]:
        """(path, etag, ICS) of every object with ``uid`` in the user's event calendars."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{CALDAV}"><D:prop><D:getetag/>'
            '<C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/>'
            "</C:filter></C:calendar-query>"
        ).encode()
        found = []
        for calendar in self._event_calendars(environ, user):
            status, _, payload = self._internal(
                environ, "REPORT", calendar, user, body,
                {"Content-Type": "text/xml; charset=utf-8", "Depth": "1"})
            if status != 207:
                continue
            for response in etree.fromstring(payload, _XML_PARSER).iter(f"{{{DAV}}}response"):
                ics = response.findtext(f".//{{{CALDAV}}}calendar-data") or ""
                if uid_of(ics) != uid:
                    continue
                href = response.findtext(f"{{{DAV}}}href") or ""
                etag = response.findtext(f".//{{{DAV}}}getetag") or ""
                found.append((unquote(urlsplit(href).path, "iso-8859-1"), etag, ics))
        return found

    def _internal(
        self,
        template: dict[str, Any],
        method: str,
        path: str,
        login: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """A request of the middleware's own, straight to Radicale as ``login``; ``path`` is
        decoded the way WSGI puts it in PATH_INFO. (0, {}, b"") for an unknown user."""
        password = self._users().get(login)
        if password is None:
            return 0, {}, b""
        environ = {k: v for k, v in template.items()
                   if not k.startswith("HTTP_") and k not in ("CONTENT_TYPE", "CONTENT_LENGTH")}
        token = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
        environ.update(REQUEST_METHOD=method, PATH_INFO=path, QUERY_STRING="",
                       HTTP_AUTHORIZATION=f"Basic {token}")
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            environ["CONTENT_TYPE" if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
        status, answer_headers, payload = _call(self._app, _with_body(environ, body))
        return int(status.split()[0]), {k.lower(): v for k, v in answer_headers}, payload

    def _send(
        self,
        counters: QuirkCounters,
        start_response: StartResponse,
        status: str,
        payload: bytes,
        content_type: str,
        extra: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        with self._lock:
            counters.bytes_sent += len(payload)
        headers = [("Content-Type", content_type), ("Content-Length", str(len(payload)))]
        start_response(status, headers + (extra or []))
        return [payload]


# -- middleware helpers ---------------------------------------------------------------------


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _with_body(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    new = dict(environ)
    new["wsgi.input"] = io.BytesIO(body)
    new["CONTENT_LENGTH"] = str(len(body))
    return new


def _root_name(body: bytes) -> str | None:
    """Local name of the XML root element (the REPORT type), or None."""
    if not body.strip():
        return None
    try:
        return str(etree.QName(etree.fromstring(body, _XML_PARSER)).localname)
    except etree.XMLSyntaxError:
        return None


def _basic_login(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value.strip()).decode("utf-8").partition(":")[0]
    except ValueError:
        return None


def _strip_expand(body: bytes) -> tuple[bytes, int]:
    """Remove every ``<C:expand/>`` from a REPORT body (Yandex ignores it)."""
    try:
        root = etree.fromstring(body, _XML_PARSER)
    except etree.XMLSyntaxError:
        return body, 0
    found = list(root.iter(f"{{{CALDAV}}}expand"))
    for element in found:
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)
    if not found:
        return body, 0
    return etree.tostring(root, xml_declaration=True, encoding="utf-8"), len(found)


def _strip_sync_props(payload: bytes) -> tuple[bytes, int]:
    """Drop ``DAV:sync-token`` and the sync-collection supported-report from a multistatus."""
    try:
        root = etree.fromstring(payload, _XML_PARSER)
    except etree.XMLSyntaxError:
        return payload, 0
    removed = 0
    for token in list(root.iter(f"{{{DAV}}}sync-token")):
        parent = token.getparent()
        if parent is not None:
            parent.remove(token)
            removed += 1
    for report_set in root.iter(f"{{{DAV}}}supported-report-set"):
        for supported in list(report_set):
            if supported.find(f".//{{{DAV}}}sync-collection") is not None:
                report_set.remove(supported)
                removed += 1
    # A propstat whose <prop> became empty would be a malformed answer: drop it.
    for prop in list(root.iter(f"{{{DAV}}}prop")):
        propstat = prop.getparent()
        if len(prop) == 0 and propstat is not None and propstat.tag == f"{{{DAV}}}propstat":
            response = propstat.getparent()
            if response is not None:
                response.remove(propstat)
    if not removed:
        return payload, 0
    return etree.tostring(root, xml_declaration=True, encoding="utf-8"), removed


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run a WSGI app to completion and return (status, headers, body)."""
    captured: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        captured["status"], captured["headers"] = status, list(headers)
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], b"".join(chunks)


def _discard_start_response(
    status: str, headers: list[tuple[str, str]], exc_info: Any = None
) -> Callable[[bytes], object]:
    return lambda data: None


def _drain(result: Iterable[bytes]) -> None:
    try:
        for _ in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


# -- the server -----------------------------------------------------------------------------


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (e.g. after its own timeout) is not a server error.
        pass


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        pass


@dataclass(frozen=True)
class HttpAnswer:
    """A raw HTTP answer, for tests that talk to the server directly."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class RadicaleServer:
    """Radicale + ``YandexQuirks`` on 127.0.0.1 and a free port; a context manager."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._server: _ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._users: dict[str, str] = {}
        self._users_lock = threading.Lock()
        self.quirks: YandexQuirks | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> RadicaleServer:
        if self._server is not None:
            return self
        # Radicale logs every request at INFO; keep tests quiet unless something is wrong.
        logging.getLogger("radicale").setLevel(logging.WARNING)
        self._dir = Path(tempfile.mkdtemp(prefix="radicale-"))
        storage = self._dir / "collections"
        # Created up front, otherwise Radicale warns that it creates them.
        (storage / "collection-root").mkdir(parents=True)
        self._htpasswd.write_text("", encoding="utf-8")
        configuration = radicale.config.load()
        configuration.update(
            {
                "server": {"delay_on_error": "0"},
                "auth": {
                    "type": "htpasswd",
                    "htpasswd_filename": str(self._htpasswd),
                    "htpasswd_encryption": "plain",
                    "delay": "0",
                },
                "rights": {"type": "owner_only"},
                "storage": {"filesystem_folder": str(storage)},
                "logging": {"level": "warning", "mask_passwords": "True"},
            },
            "tests.radicale_server",
        )
        # Throw-away storage: skip fsync (a PUT drops from ~45 ms to a few ms).
        configuration.update(
            {"storage": {"_filesystem_fsync": "False"}}, "tests.radicale_server", privileged=True
        )
        self.quirks = YandexQuirks(radicale.Application(configuration), users=self._user_list)
        self._server = make_server(
            "127.0.0.1",
            0,
            self.quirks,
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns quickly
            name="radicale",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RadicaleServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:40123/``."""
        if self._server is None:
            raise RuntimeError("RadicaleServer is not running")
        return f"http://127.0.0.1:{self._server.server_port}/"

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def _user_list(self) -> dict[str, str]:
        with self._users_lock:
            return dict(self._users)

    @property
    def _htpasswd(self) -> Path:
        assert self._dir is not None, "RadicaleServer is not running"
        return self._dir / "users"

    # -- seeding (HTTP, past the middleware's faults and counters) --------------------------

    def add_user(self, login: str, password: str) -> str:
        """Add or update a user; returns the principal path (``/alice%40yandex.ru/``)."""
        if ":" in login or "\n" in login + password:
            raise ValueError("htpasswd logins cannot hold ':' or newlines")
        with self._users_lock:
            self._users[login] = password
            lines = [f"{user}:{secret}\n" for user, secret in self._users.items()]
            tmp = self._htpasswd.with_suffix(".tmp")
            tmp.write_text("".join(lines), encoding="utf-8")
            tmp.replace(self._htpasswd)
        path = principal_path(login)
        # The first authenticated request creates the principal collection.
        answer = self.request("PROPFIND", path, login=login, headers={"Depth": "0"}, seed=True)
        if answer.status != 207:
            raise RuntimeError(f"radicale.add_user status={answer.status}")
        return path

    def make_calendar(
        self,
        login: str,
        slug: str,
        name: str | None,
        components: Iterable[str] = ("VEVENT",),
    ) -> str:
        """MKCALENDAR ``<home>/<slug>/``; returns its href (``/alice%40yandex.ru/events-1/``).

        ``name=None`` leaves the calendar without a displayname.
        """
        href = principal_path(login) + quote(slug, safe="") + "/"
        comps = "".join(f'<C:comp name="{c}"/>' for c in components)
        display = "" if name is None else f"<D:displayname>{_xml_text(name)}</D:displayname>"
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<C:mkcalendar xmlns:D="DAV:" xmlns:C="{CALDAV}"><D:set><D:prop>'
            f"{display}"
            f"<C:supported-calendar-component-set>{comps}</C:supported-calendar-component-set>"
            "</D:prop></D:set></C:mkcalendar>"
        )
        answer = self.request("MKCALENDAR", href, login=login, body=body.encode(), seed=True)
        if answer.status != 201:
            raise RuntimeError(f"radicale.make_calendar status={answer.status} href={href}")
        return href

    def put(self, login: str, cal_href: str, filename: str, ics: str) -> str:
        """PUT an object into a calendar; returns its href."""
        href = cal_href.rstrip("/") + "/" + quote(filename, safe="")
        answer = self.request(
            "PUT",
            href,
            login=login,
            body=ics.encode("utf-8"),
            headers={"Content-Type": "text/calendar; charset=utf-8"},
            seed=True,
        )
        if answer.status not in (201, 204):
            raise RuntimeError(f"radicale.put status={answer.status} href={href}")
        return href

    def delete(self, login: str, href: str) -> None:
        """DELETE an object (or a collection)."""
        answer = self.request("DELETE", href, login=login, seed=True)
        if answer.status not in (200, 204):
            raise RuntimeError(f"radicale.delete status={answer.status} href={href}")

    # -- raw HTTP ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        login: str | None = None,
        password: str | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        seed: bool = False,
    ) -> HttpAnswer:
        """Send one request as ``login`` (its stored password unless given).

        ``seed=True`` marks it as test seeding: no counters, no injected faults.
        """
        all_headers = dict(headers or {})
        if login is not None:
            secret = password if password is not None else self._users[login]
            token = base64.b64encode(f"{login}:{secret}".encode()).decode("ascii")
            all_headers["Authorization"] = f"Basic {token}"
        if body and "Content-Type" not in all_headers:
            all_headers["Content-Type"] = "text/xml; charset=utf-8"
        if seed:
            all_headers[SEED_HEADER] = "1"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            return HttpAnswer(
                status=response.status,
                headers={k.lower(): v for k, v in response.getheaders()},
                body=response.read(),
            )
        finally:
            connection.close()


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def free_port() -> int:
    """A TCP port that was free a moment ago (for 'connection refused' tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


__all__ = [
    "HttpAnswer",
    "QuirkCounters",
    "RadicaleServer",
    "YandexQuirks",
    "free_port",
    "principal_path",
]
