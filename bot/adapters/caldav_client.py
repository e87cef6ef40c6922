"""Yandex-aware CalDAV adapter: ``bot.ports.CalendarSource`` on top of caldav 3.x.

What it does, and why (quirk numbers refer to /work/shared/notes/yandex-caldav.md):

- **Read-only.** Discovery, window queries, multiget and existence checks. Every request is
  idempotent, so retrying after a 504 is always safe (Y5 warns about *writes*).
- **Transport is caldav's ``DAVClient``** (niquests underneath), built with
  ``auth_type="basic"`` so credentials go out with the first request (otherwise the first
  request is anonymous, costs a 401 round trip, and Radicale adds a 1 s penalty) and an
  explicit ``timeout``. Never ``get_davclient()``: it reads environment variables and config
  files. ``enable_rfc6764=False``: the URL is configured, no DNS discovery.
- **Request bodies are built from ``caldav.elements`` and sent with ``DAVClient.request``**
  instead of using ``Calendar.search()``: ``search`` may issue several requests, filter or
  expand on the client, and has no ETag-only mode; we need exactly one predictable REPORT
  per call (see the comments at each body builder).
- **Errors** (one translating place, ``_send``): 401, and 403 without a DAV precondition,
  → ``AuthRefused`` (never retried); timeouts, connection failures, 429 and 5xx → bounded
  retries with exponential backoff and jitter, then ``ServerUnavailable``; anything else →
  ``CalendarError``. Our exceptions are raised *outside* the ``except`` block so they carry
  no ``__context__``: niquests exceptions hold the prepared request, whose ``Authorization``
  header is the base64 of ``login:password``.
- **One ``DAVClient`` per credentials** in a small thread-safe LRU, so a poll that makes
  several requests for one account reuses its connection, and a global semaphore caps the
  requests in flight across all accounts (Y5).

Hrefs: every href this adapter returns or accepts is an absolute path, percent-encoded in
one canonical way (``quote(unquote(path), safe="/")``), so ``@`` is ``%40`` exactly as
Yandex spells it (``/calendars/alice%40yandex.ru/events-123/``). caldav decodes hrefs when it
parses a multistatus (``%40`` → ``@``, ``%20`` → space); we re-encode them so keys stay
stable and can be sent back as they are.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from caldav.davclient import DAVClient
from caldav.elements import cdav, dav
from caldav.elements.base import BaseElement
from caldav.lib import error as caldav_error
from caldav.lib.http_sync import requests as http_library  # niquests (or requests)
from caldav.response import DAVResponse
from lxml import etree

from bot.core.model import CalendarInfo, Credentials, RawObject
from bot.errors import AuthRefused, CalendarError, ServerUnavailable

log = logging.getLogger(__name__)

# caldav.response decides whether to dump a non-XML body (a GET's whole ICS, or an error
# page) with ``logging.debug`` on the *root* logger by testing ``log.level <= DEBUG`` on its
# own logger, whose level is NOTSET (0) - so it always does. Giving that logger a level
# stops it; it only ever logs raw bodies, which must not reach our logs anyway.
logging.getLogger("caldav.response").setLevel(logging.INFO)

DEFAULT_URL = "https://caldav.yandex.ru/"
MULTIGET_BATCH = 50
_CALDAV = "urn:ietf:params:xml:ns:caldav"
_PROP_PRINCIPAL = "{DAV:}current-user-principal"
_PROP_HOME_SET = f"{{{_CALDAV}}}calendar-home-set"
_PROP_RESOURCETYPE = "{DAV:}resourcetype"
_PROP_DISPLAYNAME = "{DAV:}displayname"
_PROP_COMPONENTS = f"{{{_CALDAV}}}supported-calendar-component-set"
_CALENDAR_TYPE = f"{{{_CALDAV}}}calendar"
_PROP_CTAG = "{http://calendarserver.org/ns/}getctag"
_CTAG_PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" '
    'xmlns:CS="http://calendarserver.org/ns/"><D:prop><CS:getctag/></D:prop></D:propfind>'
)
RELIST_SECONDS = 300.0  # Y2: an unchanged ctag is trusted at most this long, then we list anyway


# -- hrefs ------------------------------------------------------------------------------------


def canonical_href(href: str) -> str:
    """The adapter's one spelling of an href: an absolute path, ``@`` as ``%40``.

    Accepts a full URL or a path, encoded or not. caldav hands hrefs back decoded; servers
    (Yandex, Radicale) hand them out encoded; both end up the same here.
    """
    path = urlsplit(href).path if "://" in href else href
    if not path.startswith("/"):
        path = "/" + path
    return quote(unquote(path), safe="/")


def _parent_collection(href: str) -> str:
    return href.rsplit("/", 1)[0] + "/"


def _last_segment(href: str) -> str:
    return unquote(href.rstrip("/").rsplit("/", 1)[-1])


def _check_bounds(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware datetimes")


# -- REPORT bodies ----------------------------------------------------------------------------


def _xml(element: BaseElement) -> str:
    return etree.tostring(element.xmlelement(), encoding="utf-8", xml_declaration=True).decode()


def _calendar_query(start: datetime, end: datetime, *, with_data: bool) -> str:
    """RFC 4791 §7.8 calendar-query for VEVENTs overlapping [start, end).

    Built here rather than with ``BaseDAVClient._build_calendar_query_body``: that builder
    always asks for ``calendar-data`` (there is no ETag-only form) and is private API. We
    never add ``<C:expand/>``: Yandex ignores it (Y3), recurrences are expanded in the core.
    The server applies the time-range to every occurrence of a recurring event (RFC 4791
    §9.9), so a weekly master that started months ago is returned unexpanded.
    """
    wanted: list[BaseElement] = [dav.GetEtag()]
    if with_data:
        wanted.append(cdav.CalendarData())
    time_range = cdav.TimeRange(start, end)  # caldav converts aware bounds to UTC "…Z"
    event_filter = cdav.CompFilter("VEVENT") + time_range
    query = cdav.CalendarQuery() + [
        dav.Prop() + wanted,
        cdav.Filter() + (cdav.CompFilter("VCALENDAR") + event_filter),
    ]
    return _xml(query)


def _calendar_multiget(hrefs: Iterable[str]) -> str:
    """RFC 4791 §7.9 calendar-multiget asking for ETag and data of the given hrefs."""
    body = cdav.CalendarMultiGet() + [dav.Prop() + [dav.GetEtag(), cdav.CalendarData()]]
    # value= matters: BaseElement's first positional argument is ``name`` (an XML attribute).
    # caldav's own BaseDAVClient._build_calendar_multiget_body gets this wrong (empty <href
    # name="…"/>, which crashes Radicale), another reason to build bodies here.
    body += [dav.Href(value=href) for href in hrefs]
    return _xml(body)


# -- the client pool --------------------------------------------------------------------------


@dataclass
class _Lease:
    """One cached DAVClient. ``lock`` serialises its use: a niquests Session and caldav's
    DAVClient (which mutates ``url``/``auth`` on some answers) are not meant to be shared by
    threads, and one account rarely needs two requests at once."""

    client: DAVClient
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False


class _ClientPool:
    """A small LRU of DAVClients keyed by (login, digest of login+password)."""

    def __init__(self, factory: Callable[[Credentials], DAVClient], size: int) -> None:
        self._factory = factory
        self._size = max(1, size)
        self._entries: OrderedDict[tuple[str, bytes], _Lease] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(creds: Credentials) -> tuple[str, bytes]:
        # A digest, not the password, so the key is safe to keep and to show in a debugger;
        # the login is mixed in so equal passwords of two accounts do not collide.
        secret = f"{creds.login}\0{creds.password}".encode()
        return creds.login, hashlib.sha256(secret).digest()

    @contextmanager
    def lease(self, creds: Credentials) -> Iterator[DAVClient]:
        """Hold the account's client for the duration of one adapter call."""
        key = self._key(creds)
        while True:
            evicted: list[_Lease] = []
            with self._lock:
                entry = self._entries.get(key)
                if entry is None:
                    entry = _Lease(self._factory(creds))
                    self._entries[key] = entry
                    while len(self._entries) > self._size:
                        evicted.append(self._entries.popitem(last=False)[1])
                else:
                    self._entries.move_to_end(key)
            for old in evicted:
                self._close(old)
            with entry.lock:
                if entry.closed:  # evicted while we waited for it: take a fresh one
                    continue
                try:
                    yield entry.client
                finally:
                    if entry.closed:  # evicted while we used it: we close it
                        entry.client.close()
                return

    def forget(self, creds: Credentials) -> None:
        """Drop the client of these credentials (after the server refused them)."""
        with self._lock:
            entry = self._entries.pop(self._key(creds), None)
        if entry is not None:
            # Called by the holder of entry.lock: the lease closes the client on release.
            entry.closed = True

    def close(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            self._close(entry)

    @staticmethod
    def _close(entry: _Lease) -> None:
        # Never wait for a client in use (a call may be sleeping between retries): mark it,
        # and whoever holds it closes it when done.
        entry.closed = True
        if entry.lock.acquire(blocking=False):
            try:
                entry.client.close()
            finally:
                entry.lock.release()


# -- the adapter ------------------------------------------------------------------------------


class _Transient(Exception):
    """Internal: a failure worth retrying. ``reason`` is safe to log (no secrets)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class YandexCalDAV:
    """``bot.ports.CalendarSource`` for Yandex Calendar (and any standard CalDAV server).

    ``retries`` is the number of attempts per HTTP request (1 = no retry); between attempts
    it sleeps ``backoff * 2**(attempt-1)`` seconds capped at ``max_backoff``, with jitter
    (half fixed, half random). ``max_concurrency`` caps requests in flight across all
    accounts; ``max_clients`` is the size of the per-credentials client LRU.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 15.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], object] = time.sleep,
        max_concurrency: int = 8,
        max_clients: int = 64,
        batch_size: int = MULTIGET_BATCH,
        relist_seconds: float = RELIST_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("CalDAV URL must be an http(s) URL")
        # Credentials embedded in the URL would end up in caldav's and niquests' messages.
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self._url = urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))
        self._timeout = timeout
        self._retries = max(1, retries)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._batch = max(1, batch_size)
        self._slots = threading.BoundedSemaphore(max(1, max_concurrency))
        self._pool = _ClientPool(self._new_client, max_clients)
        self._relist = relist_seconds
        self._monotonic = monotonic
        # (login, calendar href) → (window, ctag, etags, listed at): the last ETag listing
        self._listings: dict[tuple[str, str], tuple[tuple[datetime, datetime], str,
                                                     dict[str, str], float]] = {}
        self._listings_lock = threading.Lock()

    @property
    def url(self) -> str:
        return self._url

    def close(self) -> None:
        """Close every cached HTTP session."""
        self._pool.close()

    # -- CalendarSource -----------------------------------------------------------------------

    def list_calendars(self, creds: Credentials) -> list[CalendarInfo]:
        """Event calendars of the account, keyed by href (names repeat, Y10).

        Three PROPFINDs: current-user-principal → calendar-home-set → the home's children
        with resourcetype, displayname and supported-calendar-component-set. caldav's
        ``get_calendars()`` would do the same but drops the component set, which would then
        cost one more PROPFIND per calendar to skip ``todos-…`` collections.
        """
        with self._pool.lease(creds) as client:
            root = self._propfind(client, creds, self._url, [_PROP_PRINCIPAL], depth=0)
            principal = _first_prop(root, _PROP_PRINCIPAL) or urlsplit(self._url).path
            homes = self._propfind(client, creds, principal, [_PROP_HOME_SET], depth=0)
            home = _first_prop(homes, _PROP_HOME_SET) or principal
            children = self._propfind(
                client,
                creds,
                home,
                [_PROP_RESOURCETYPE, _PROP_DISPLAYNAME, _PROP_COMPONENTS],
                depth=1,
            )
        calendars: dict[str, CalendarInfo] = {}
        for result in children:
            props = result.properties
            if result.status != 200 or _CALENDAR_TYPE not in _as_list(
                props.get(_PROP_RESOURCETYPE)
            ):
                continue
            components = _as_list(props.get(_PROP_COMPONENTS))
            # RFC 4791 §5.2.3: no supported-calendar-component-set means "any component".
            if components and "VEVENT" not in {c.upper() for c in components}:
                continue
            href = canonical_href(result.href)
            name = props.get(_PROP_DISPLAYNAME)
            if not isinstance(name, str) or not name.strip():
                name = _last_segment(href)
            calendars[href] = CalendarInfo(href=href, name=name.strip())
        log.info("caldav.calendars login=%s count=%d", creds.login, len(calendars))
        return sorted(calendars.values(), key=lambda c: (c.name.casefold(), c.href))

    def fetch_window(
        self, creds: Credentials, calendar_href: str, start: datetime, end: datetime
    ) -> list[RawObject]:
        """Objects with an occurrence overlapping [start, end), unexpanded (Y3).

        Like Yandex (Y7), the answer may hold objects just outside the window (all-day
        events of adjacent days): callers filter occurrences themselves.
        """
        _check_bounds(start, end)
        if end <= start:
            return []
        href = canonical_href(calendar_href)
        body = _calendar_query(start, end, with_data=True)
        with self._pool.lease(creds) as client:
            response = self._send(client, creds, "REPORT", href, body, {"Depth": "1"})
        return sorted(self._raw_objects(response, creds), key=lambda o: o.href)

    def etags_in_window(
        self, creds: Credentials, calendar_href: str, start: datetime, end: datetime
    ) -> dict[str, str]:
        """href → etag for objects in the window: one calendar-query asking for getetag only.

        caldav cannot ask for ETags alone (``Calendar.search`` always fetches the data), so
        the REPORT is built here; it is what makes a poll cheap (a few ms on Yandex).
        """
        _check_bounds(start, end)
        if end <= start:
            return {}
        href = canonical_href(calendar_href)
        key = (creds.login, href)
        with self._listings_lock:
            last = self._listings.get(key)
        with self._pool.lease(creds) as client:
            # One small PROPFIND for the collection's ctag first: while it has not moved, the
            # window is the same and the last listing is younger than ``relist_seconds`` (Y2:
            # Yandex's ctag may miss an edit), the last listing is the answer.
            ctag = self._ctag(client, creds, href) if self._relist > 0 else None
            if (ctag and last is not None and last[0] == (start, end) and last[1] == ctag
                    and self._monotonic() - last[3] < self._relist):
                return dict(last[2])
            listed_at = self._monotonic()
            body = _calendar_query(start, end, with_data=False)
            response = self._send(client, creds, "REPORT", href, body, {"Depth": "1"})
        etags: dict[str, str] = {}
        for result in _parse_report(response):
            if result.status == 200:
                etags[canonical_href(result.href)] = result.etag or ""
        if ctag:  # read before the listing: a change in between moves it again next time
            with self._listings_lock:
                self._listings[key] = ((start, end), ctag, dict(etags), listed_at)
        return etags

    def _ctag(self, client: DAVClient, creds: Credentials, href: str) -> str | None:
        """The collection's CalendarServer ctag (caldav's propfind builder drops unknown
        properties, so the body is written out)."""
        response = self._send(client, creds, "PROPFIND", href, _CTAG_PROPFIND, {"Depth": "0"})
        try:
            return _first_prop(list(response.parse_propfind()), _PROP_CTAG)
        except caldav_error.DAVError:
            return None

    def fetch_objects(self, creds: Credentials, hrefs: Iterable[str]) -> list[RawObject]:
        """calendar-multiget in batches, one REPORT per batch and calendar.

        Objects that are gone (404 in the multistatus, or the whole calendar gone) are
        omitted. Results come back in the order of ``hrefs``.
        """
        wanted = list(dict.fromkeys(canonical_href(h) for h in hrefs))
        by_calendar: dict[str, list[str]] = {}
        for href in wanted:
            by_calendar.setdefault(_parent_collection(href), []).append(href)
        found: dict[str, RawObject] = {}
        with self._pool.lease(creds) as client:
            for calendar, members in by_calendar.items():
                for i in range(0, len(members), self._batch):
                    batch = members[i : i + self._batch]
                    # RFC 4791 §7.9: no Depth header on calendar-multiget.
                    response = self._send(
                        client,
                        creds,
                        "REPORT",
                        calendar,
                        _calendar_multiget(batch),
                        {},
                        missing_ok=True,
                    )
                    if response.status == 404:
                        continue
                    for obj in self._raw_objects(response, creds):
                        found[obj.href] = obj
        return [found[h] for h in wanted if h in found]

    def object_exists(self, creds: Credentials, href: str) -> bool:
        """GET the object: 404/410 → False. GET rather than HEAD: HEAD is the method
        servers most often get wrong, and a calendar object is small."""
        path = canonical_href(href)
        with self._pool.lease(creds) as client:
            response = self._send(client, creds, "GET", path, "", {}, missing_ok=True)
        return response.status not in (404, 410)

    # -- internals ----------------------------------------------------------------------------

    def _new_client(self, creds: Credentials) -> DAVClient:
        return DAVClient(
            url=self._url,
            username=creds.login,
            password=creds.password,
            auth_type="basic",
            timeout=self._timeout,  # type: ignore[arg-type]  # annotated int, used as float
            enable_rfc6764=False,
        )

    def _propfind(
        self,
        client: DAVClient,
        creds: Credentials,
        href: str,
        props: list[str],
        *,
        depth: int,
    ) -> list[Any]:
        path = canonical_href(href)
        body = DAVClient._build_propfind_body(props).decode("utf-8")
        response = self._send(client, creds, "PROPFIND", path, body, {"Depth": str(depth)})
        try:
            return list(response.parse_propfind())
        except caldav_error.DAVError as exc:
            raise _protocol_error(creds, "PROPFIND", path, exc) from None

    def _raw_objects(self, response: DAVResponse, creds: Credentials) -> Iterator[RawObject]:
        for result in _parse_report(response):
            if result.status != 200 or not result.calendar_data:
                continue
            href = canonical_href(result.href)
            if not result.etag:
                log.warning("caldav.missing_etag login=%s href=%s", creds.login, href)
            yield RawObject(href=href, etag=result.etag or "", ics=result.calendar_data)

    def _send(
        self,
        client: DAVClient,
        creds: Credentials,
        method: str,
        path: str,
        body: str,
        headers: Mapping[str, str],
        *,
        missing_ok: bool = False,
    ) -> DAVResponse:
        """One HTTP request with bounded retries; the only place that classifies failures."""
        url = urljoin(self._url, path)
        for attempt in range(1, self._retries + 1):
            failure: CalendarError | None = None
            transient: str | None = None
            try:
                response = self._request_once(client, method, url, body, headers)
            except _Transient as exc:
                transient = exc.reason
            except caldav_error.AuthorizationError as exc:
                failure = self._refused(creds, method, path, exc)
            except caldav_error.DAVError as exc:
                failure = _protocol_error(creds, method, path, exc)
            else:
                status = response.status
                if status >= 500 or status == 429:
                    transient = f"status {status}"
                elif status < 300 or (missing_ok and status in (404, 410)):
                    return response
                else:
                    failure = _status_error(creds, method, path, status)
            if failure is not None:
                # Raised here, outside any ``except``: no __context__ holding the request.
                raise failure
            if attempt < self._retries:
                delay = self._delay(attempt)
                log.warning(
                    "caldav.retry login=%s method=%s href=%s attempt=%d reason=%s delay=%.2f",
                    creds.login,
                    method,
                    path,
                    attempt,
                    transient,
                    delay,
                )
                self._sleep(delay)
        log.warning(
            "caldav.unavailable login=%s method=%s href=%s attempts=%d reason=%s",
            creds.login,
            method,
            path,
            self._retries,
            transient,
        )
        raise ServerUnavailable(reason=transient, attempts=self._retries)

    def _request_once(
        self, client: DAVClient, method: str, url: str, body: str, headers: Mapping[str, str]
    ) -> DAVResponse:
        """Send once under the global concurrency cap; transport trouble → ``_Transient``."""
        with self._slots:
            try:
                return client.request(url, method, body, dict(headers))
            except caldav_error.RateLimitError as exc:
                # caldav turns 429 (and 503 with Retry-After) into an exception; with
                # rate_limit_handle off (the default) it is ours to retry with our backoff.
                raise _Transient(f"status {exc.status}") from None
            except http_library.exceptions.Timeout:
                raise _Transient("timeout") from None
            except http_library.exceptions.RequestException as exc:
                raise _Transient(f"connection {type(exc).__name__}") from None
            except etree.XMLSyntaxError:
                # DAVResponse parses any body labelled XML and raises on garbage; gateways
                # answer 5xx with HTML labelled text/xml more often than servers send junk.
                raise _Transient("unparsable response") from None

    def _delay(self, attempt: int) -> float:
        base = min(self._max_backoff, self._backoff * (2 ** (attempt - 1)))
        return base / 2 + random.uniform(0, base / 2)  # noqa: S311 - jitter, not crypto

    def _refused(
        self,
        creds: Credentials,
        method: str,
        path: str,
        exc: caldav_error.AuthorizationError,
    ) -> CalendarError:
        # caldav raises AuthorizationError for every 401 *and* 403. A 403 with a DAV:error
        # precondition (e.g. <supported-report/> for sync-collection) is "not allowed/
        # supported", not a refused password; everything else is the password (Y: a revoked
        # app password gives 401).
        if exc.status == 403 and exc.preconditions:
            log.warning(
                "caldav.forbidden login=%s method=%s href=%s preconditions=%s",
                creds.login,
                method,
                path,
                ",".join(exc.preconditions),
            )
            return CalendarError(status=403)
        self._pool.forget(creds)
        log.warning(
            "caldav.auth_refused login=%s method=%s href=%s status=%s",
            creds.login,
            method,
            path,
            exc.status,
        )
        return AuthRefused(status=exc.status)


def _parse_report(response: DAVResponse) -> list[Any]:
    try:
        return list(response.parse_calendar_query())
    except caldav_error.DAVError:
        log.warning("caldav.bad_multistatus status=%s", response.status)
        raise CalendarError(reason="bad multistatus") from None


def _protocol_error(
    creds: Credentials, method: str, path: str, exc: caldav_error.DAVError
) -> CalendarError:
    status = getattr(exc, "status", None)
    log.warning(
        "caldav.error login=%s method=%s href=%s kind=%s status=%s",
        creds.login,
        method,
        path,
        type(exc).__name__,
        status,
    )
    return CalendarError(status=status)


def _status_error(creds: Credentials, method: str, path: str, status: int) -> CalendarError:
    log.warning(
        "caldav.error login=%s method=%s href=%s status=%d", creds.login, method, path, status
    )
    return CalendarError(status=status)


def _first_prop(results: list[Any], name: str) -> str | None:
    for result in results:
        value = result.properties.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
