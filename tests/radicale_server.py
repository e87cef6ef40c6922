"""A real Radicale CalDAV server for tests, behind a middleware that behaves like Yandex.

``RadicaleServer`` runs ``radicale.Application`` in a thread on 127.0.0.1 and a free port,
with htpasswd (plain) users, ``owner_only`` rights and a throw-away storage folder. Every
request passes through ``YandexQuirks`` (see /work/shared/notes/yandex-caldav.md):

- ``REPORT sync-collection`` → 403 with a ``DAV:supported-report`` error body, and PROPFIND
  answers lose ``DAV:sync-token`` and the sync-collection entry of
  ``DAV:supported-report-set`` (we must not depend on sync tokens, Y1/Y2);
- ``<C:expand/>`` is removed from REPORT bodies: Yandex ignores server-side expansion (Y3);
- ``REPORT free-busy-query`` → 504 (Y4);
- on demand: ``fail_every(n)`` (every n-th request answers 504; a PUT/DELETE is applied first,
  like Yandex, Y5), ``fail_all(status)``, ``latency(seconds)``, ``refuse_auth(login)``;
- counters (requests, bytes sent, by method, by REPORT type, …) and ``reset_counters()``.

Logins look like Yandex ones (``alice@yandex.ru``). Radicale handles them as they are: the
principal is ``/alice%40yandex.ru/`` (it answers with ``%40`` in hrefs, as Yandex does, and
accepts both spellings in requests), the storage folder is named ``alice@yandex.ru`` and
``owner_only`` compares the decoded path segment with the login, so no workaround is needed.

Seeding helpers (``add_user``, ``make_calendar``, ``put``, ``delete``) talk HTTP to the
server like any client, but carry a ``X-Test-Seed`` header: the middleware passes them
through without counting them or injecting faults, so tests can seed while a fault is on.
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
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import radicale
import radicale.config
from lxml import etree

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
SEED_HEADER = "X-Test-Seed"
_SEED_ENVIRON = "HTTP_X_TEST_SEED"
# Writes that Yandex may carry out and still answer 504 for (Y5).
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

    def copy(self) -> QuirkCounters:
        return replace(self, by_method=Counter(self.by_method), by_report=Counter(self.by_report))


class YandexQuirks:
    """WSGI middleware that makes a standard CalDAV server answer like Yandex Calendar."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._counters = QuirkCounters()
        self._fail_every = 0
        self._fail_seq = 0
        self._fail_all: int | None = None
        self._latency = 0.0
        self._refused: set[str] = set()

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

    def reset_faults(self) -> None:
        """Turn off every injected fault, latency and refusal."""
        with self._lock:
            self._fail_every = self._fail_seq = 0
            self._fail_all = None
            self._latency = 0.0
            self._refused.clear()

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
            return self._send(
                counters,
                start_response,
                "401 Unauthorized",
                b"Unauthorized",
                "text/plain",
                [("WWW-Authenticate", 'Basic realm="Yandex.Calendar"')],
            )
        if fail_status is not None:
            if method in _APPLY_THEN_FAIL:  # the write happens, the answer is lost (Y5)
                _drain(self._app(_with_body(environ, body), _discard_start_response))
            self._count_failure(counters)
            reason = http.client.responses.get(fail_status, "Error")
            return self._send(
                counters,
                start_response,
                f"{fail_status} {reason}",
                f"<html><body><h1>{fail_status} {reason}</h1></body></html>".encode(),
                "text/html",
            )
        if report == "sync-collection":  # Y1: do not let anybody depend on sync tokens
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
        if report == "free-busy-query":  # Y4
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
    """Remove every ``<C:expand/>`` from a REPORT body (Y3: Yandex ignores it)."""
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
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
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
        self.quirks = YandexQuirks(radicale.Application(configuration))
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
