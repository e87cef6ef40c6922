"""Yandex-aware CalDAV adapter: ``bot.ports.CalendarSource`` on top of caldav 3.x.

What it does, and why:

- **Reads** (discovery, window queries, multiget, existence checks, GET of one object) are
  idempotent, so retrying them after a 504 is always safe.
- **Writes** (an invitee's answer, a new meeting) are never retried blindly: Yandex sometimes
  carries out a PUT and still answers 504, so a PUT is sent once, and a timeout or 5xx is
  followed by a GET of the object; only what that read shows decides whether one more PUT is
  sent. Every PUT is guarded (``If-Match`` with the ETag exactly as the server gave it, weak
  or not; ``If-None-Match: *`` for a new object), so a late or repeated PUT can never
  overwrite somebody else's change or make a second copy. 412 means the object changed
  meanwhile: read again, apply the answer again, PUT once more. A write's 2xx proves little
  (an invitee's edits of anything but their own answer are reverted, a read-only calendar
  stores nothing, a PUT may come back without an ETag), so every write ends with a GET, and
  that read back is what callers get. After a decline Yandex drops the invitee's copy: the
  read back's 404 is then the expected end ("gone"), not an error.
- **Transport is caldav's ``DAVClient``** (niquests underneath), built with
  ``auth_type="basic"`` so credentials go out with the first request (otherwise the first
  request is anonymous, costs a 401 round trip, and Radicale adds a 1 s penalty) and an
  explicit ``timeout``. Never ``get_davclient()``: it reads environment variables and config
  files. ``enable_rfc6764=False``: the URL is configured, no DNS discovery.
- **Request bodies are built from ``caldav.elements`` and sent with ``DAVClient.request``**
  instead of using ``Calendar.search()``: ``search`` may issue several requests, filter or
  expand on the client, and has no ETag-only mode; we need exactly one predictable REPORT
  per call (see the comments at each body builder).
- **Errors** (one translating place, ``_attempt``): 401, and 403 without a DAV precondition,
  → ``AuthRefused`` (never retried); timeouts, connection failures, 429 and 5xx → bounded
  retries with exponential backoff and jitter for reads, then ``ServerUnavailable``; anything
  else → ``CalendarError``. Our exceptions are raised *outside* the ``except`` block so they
  carry no ``__context__``: niquests exceptions hold the prepared request, whose
  ``Authorization`` header is the base64 of ``login:password``. Log lines name the login,
  method and href, never a password or calendar data.
- **One ``DAVClient`` per credentials** in a small thread-safe LRU, so a poll that makes
  several requests for one account reuses its connection, and a global semaphore caps the
  requests in flight across all accounts (Yandex answers bursts with 504s).
- **Metrics**: every request attempt is counted in ``yc_bot_caldav_requests_total`` by method
  and result (ok, 401, 4xx, 5xx, timeout, error); a ctag PROPFIND that lets a poll answer
  from its last listing counts as "unchanged" instead of "ok".

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
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from caldav.davclient import DAVClient
from caldav.elements import cdav, dav
from caldav.elements.base import BaseElement
from caldav.lib import error as caldav_error
from caldav.lib.http_sync import requests as http_library  # niquests (or requests)
from caldav.response import DAVResponse
from lxml import etree

from bot.clock import utc_now
from bot.core.hrefs import canonical_href, new_object_href
from bot.core.ical_write import PARTSTATS, NoSuchOccurrence, NotInvited, partstat_of, set_partstat
from bot.core.model import DECLINED, Answered, CalendarInfo, Credentials, RawObject
from bot.errors import AuthRefused, CalendarError, IcsError, ServerUnavailable
from bot.metrics import CALDAV_REQUESTS

log = logging.getLogger(__name__)

# caldav.response decides whether to dump a non-XML body (a GET's whole ICS, or an error
# page) with ``logging.debug`` on the *root* logger by testing ``log.level <= DEBUG`` on its
# own logger, whose level is NOTSET (0) - so it always does. Giving that logger a level
# stops it; it only ever logs raw bodies, which must not reach our logs anyway.
logging.getLogger("caldav.response").setLevel(logging.INFO)
# caldav's own logger writes every request, body included, at DEBUG: for a PUT that is the
# whole calendar object, which must not reach our logs either.
logging.getLogger("caldav").setLevel(logging.INFO)

DEFAULT_URL = "https://caldav.yandex.ru/"
MULTIGET_BATCH = 50
ROOM_WAIT_SECONDS = 8.0  # how long create_event waits for Yandex to add the Telemost link
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
# Yandex's ctag does not move on every edit: an unchanged ctag is trusted at most this long,
# then the window is listed anyway.
RELIST_SECONDS = 300.0
# Whole content lines (after unfolding a line break would not matter: these are short).
_TELEMOST_REQUIRED = re.compile(r"^X-TELEMOST-REQUIRED(?:;[^:\r\n]*)?:\s*TRUE\s*$",
                                re.IGNORECASE | re.MULTILINE)
_TELEMOST_CONFERENCE = re.compile(r"^X-TELEMOST-CONFERENCE(?:;[^:\r\n]*)?:\s*\S",
                                  re.IGNORECASE | re.MULTILINE)
_UID_LINE = re.compile(r"^UID(?:;[^:\r\n]*)?:(.*?)\r?$", re.IGNORECASE | re.MULTILINE)


# -- hrefs ------------------------------------------------------------------------------------


def _parent_collection(href: str) -> str:
    return href.rsplit("/", 1)[0] + "/"


def _last_segment(href: str) -> str:
    return unquote(href.rstrip("/").rsplit("/", 1)[-1])


def _check_bounds(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware datetimes")


# -- REPORT bodies ----------------------------------------------------------------------------


def _xml(element: BaseElement) -> str:
    body = etree.tostring(element.xmlelement(), encoding="utf-8", xml_declaration=True)
    return str(body.decode())


def _calendar_query(start: datetime, end: datetime, *, with_data: bool) -> str:
    """RFC 4791 §7.8 calendar-query for VEVENTs overlapping [start, end).

    Built here rather than with ``BaseDAVClient._build_calendar_query_body``: that builder
    always asks for ``calendar-data`` (there is no ETag-only form) and is private API. We
    never add ``<C:expand/>``: Yandex ignores it; recurrences are expanded in the core.
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


def _without_idle_watcher(client: DAVClient) -> None:
    """No background thread per connection pool. urllib3-future (under niquests, under caldav)
    starts one for every pool that has made a request: it wakes every 5 s to peek into the
    pool's idle connections and send HTTP/2 keep-alive PINGs. We keep a client (so a pool) per
    account, so that is a thread per account, measured at 4.2 ms of CPU per account-minute
    with no request made: as much as the idle poll itself. Nothing is lost without it: when
    the pool hands out an idle connection it first reads what the server sent meanwhile (a
    close, an HTTP/2 GOAWAY) and opens a new one if that one is gone, and a request that still
    fails on a connection closed at that very moment is a transient error (reads are retried,
    writes read back)."""
    for adapter in client.session.adapters.values():
        manager = getattr(adapter, "poolmanager", None)
        if manager is not None:
            manager.connection_pool_kw["background_watch_delay"] = None


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
    """Internal: a failure worth retrying. ``reason`` is safe to log (no secrets);
    ``result`` is its metric label."""

    def __init__(self, reason: str, result: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.result = result


class YandexCalDAV:
    """``bot.ports.CalendarSource`` for Yandex Calendar (and any standard CalDAV server).

    ``retries`` is the number of attempts per HTTP request (1 = no retry); between attempts
    it sleeps ``backoff * 2**(attempt-1)`` seconds capped at ``max_backoff``, with jitter
    (half fixed, half random). ``max_concurrency`` caps requests in flight across all
    accounts; ``max_clients`` is the size of the per-credentials client LRU: one kept client
    per account polled, since a cache smaller than the accounts a process holds makes every
    poll open a new connection (a TLS handshake at Yandex), at about 60 KB a client. Writes are
    never retried by that loop (see the module docstring); ``clock`` gives DTSTAMP of the
    overrides an answer creates; ``room_wait`` bounds the wait for a new meeting's Telemost
    link.
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
        max_clients: int = 4096,
        batch_size: int = MULTIGET_BATCH,
        relist_seconds: float = RELIST_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = utc_now,
        room_wait: float = ROOM_WAIT_SECONDS,
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
        self._clock = clock
        self._room_wait = max(0.0, room_wait)
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
        """Event calendars of the account, keyed by href (Yandex repeats display names).

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
        """Objects with an occurrence overlapping [start, end), unexpanded (Yandex ignores
        server-side expansion).

        Like Yandex's, the answer may hold objects just outside the window (all-day
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
            # window is the same and the last listing is younger than ``relist_seconds``
            # (Yandex's ctag may miss an edit), the last listing is the answer.
            ctag = self._ctag(client, creds, href) if self._relist > 0 else None
            if (ctag and last is not None and last[0] == (start, end) and last[1] == ctag
                    and self._monotonic() - last[3] < self._relist):
                CALDAV_REQUESTS.labels(method="PROPFIND", result="unchanged").inc()
                return dict(last[2])
            if self._relist > 0:
                CALDAV_REQUESTS.labels(method="PROPFIND", result="ok").inc()
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
        properties, so the body is written out). A successful answer is counted by the
        caller: "unchanged" when it ends the poll, else "ok"."""
        response = self._send(
            client, creds, "PROPFIND", href, _CTAG_PROPFIND, {"Depth": "0"}, count_ok=False
        )
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

    # -- writing ------------------------------------------------------------------------------

    def get_object(self, creds: Credentials, href: str) -> RawObject | None:
        """The object as stored now (GET, with read retries), or None on 404/410."""
        path = canonical_href(href)
        with self._pool.lease(creds) as client:
            return self._get(client, creds, path)

    def answer_invitation(
        self, creds: Credentials, href: str, *, me: str, partstat: str,
        recurrence_id: str | None,
    ) -> Answered:
        """Set ``me``'s own PARTSTAT on the object at ``href`` (see ``bot.ports``).

        GET, ``set_partstat``, PUT with ``If-Match``; then:

        - 2xx → GET the object back: it must carry the answer (else the server ignored the
          write: ``CalendarError("error.write_ignored")``); 404 after a decline is "gone";
        - 412 → read again, apply again, PUT again; a second 412 → ``error.write_conflict``;
        - timeout/5xx → GET back: the answer is there (or the object is gone after a
          decline) → done; not there → one more PUT against the ETag just read; when that
          one gets no clear answer either, one last GET decides, else ``ServerUnavailable``.

        An answer the object already carries is not written again. At most three PUTs in all.
        """
        wanted = partstat.strip().upper()
        if wanted not in PARTSTATS:
            raise ValueError(f"unknown PARTSTAT {partstat!r}")
        rid = recurrence_id or None
        path = canonical_href(href)
        conflicts = unsettled = puts = 0
        with self._pool.lease(creds) as client:
            current = self._get(client, creds, path)
            if current is None:
                self._write_log("answer", creds, path, "gone_before", puts, wanted)
                raise CalendarError("error.meeting_gone")
            while True:
                ics = self._with_answer(creds, current, me, wanted, rid)
                if ics == current.ics:  # already so: nothing to write
                    self._write_log("answer", creds, path, "unchanged", puts, wanted)
                    return Answered("answered", current)
                if not current.etag:
                    # Without an ETag the PUT could not be guarded against a concurrent edit.
                    self._write_log("answer", creds, path, "no_etag", puts, wanted)
                    raise CalendarError(reason="no etag")
                puts += 1
                status = self._put(client, creds, path, ics, {"If-Match": current.etag})
                if status is not None and status < 300:
                    stored = self._get(client, creds, path)
                    return self._answer_outcome(creds, path, stored, me, wanted, rid, puts)
                if status == 412:
                    conflicts += 1
                    if conflicts > 1:
                        self._write_log("answer", creds, path, "conflict", puts, wanted)
                        raise CalendarError("error.write_conflict")
                    log.info("caldav.write_retry login=%s href=%s reason=412", creds.login, path)
                    again = self._get(client, creds, path)
                    if again is None:
                        self._write_log("answer", creds, path, "gone_before", puts, wanted)
                        raise CalendarError("error.meeting_gone")
                    current = again
                    continue
                # No clear answer: only a read can tell whether the PUT was carried out.
                unsettled += 1
                back = self._get(client, creds, path)
                if back is None or self._answer_of(back, me, rid) == wanted:
                    return self._answer_outcome(creds, path, back, me, wanted, rid, puts)
                if unsettled > 1:
                    self._write_log("answer", creds, path, "unsettled", puts, wanted)
                    raise ServerUnavailable(reason="write not confirmed", attempts=puts)
                log.info(
                    "caldav.write_retry login=%s href=%s reason=not_applied", creds.login, path
                )
                current = back

    def create_event(self, creds: Credentials, calendar_href: str, uid: str,
                     ics: str) -> RawObject:
        """Store ``ics`` as ``<calendar_href><uid>.ics`` and return it as read back.

        PUT with ``If-None-Match: *`` (it can never replace anything or make a second copy);
        timeout/5xx → GET: there → done, absent → one more PUT, and after that one a last
        GET decides (else ``ServerUnavailable``). A 412 means the object exists: it is ours
        (an earlier attempt got through) when its UID is ``uid``, else
        ``CalendarError("error.write_conflict")``. When ``ics`` asks for a Telemost room
        (``X-TELEMOST-REQUIRED:TRUE``) and the stored object has no
        ``X-TELEMOST-CONFERENCE`` yet, it is read again a few times with growing pauses
        (``room_wait`` seconds in all); it is returned as last read, link or not. A 2xx
        after which nothing is stored (a read-only calendar) →
        ``CalendarError("error.write_ignored")``.
        """
        if not uid.strip() or "/" in uid:
            raise ValueError("a UID for a new object must be non-empty and hold no '/'")
        if _ics_uid(ics) != uid:
            raise ValueError("the object's UID must be the uid argument")
        path = new_object_href(calendar_href, uid)
        unsettled = puts = 0
        stored: RawObject | None = None
        with self._pool.lease(creds) as client:
            while stored is None:
                puts += 1
                status = self._put(client, creds, path, ics, {"If-None-Match": "*"})
                if status is not None and status < 300:
                    stored = self._get(client, creds, path)
                    if stored is None:
                        self._write_log("create", creds, path, "ignored", puts)
                        raise CalendarError("error.write_ignored")
                elif status == 412:
                    stored = self._get(client, creds, path)
                    if stored is None or _ics_uid(stored.ics) != uid:
                        self._write_log("create", creds, path, "conflict", puts)
                        raise CalendarError("error.write_conflict")
                else:
                    unsettled += 1
                    stored = self._get(client, creds, path)
                    if stored is None and unsettled > 1:
                        self._write_log("create", creds, path, "unsettled", puts)
                        raise ServerUnavailable(reason="write not confirmed", attempts=puts)
        if _TELEMOST_REQUIRED.search(ics) and not _TELEMOST_CONFERENCE.search(stored.ics):
            stored = self._await_room(creds, path, stored)
        room = "yes" if _TELEMOST_CONFERENCE.search(stored.ics) else "no"
        self._write_log("create", creds, path, "created", puts, room=room)
        return stored

    def _await_room(self, creds: Credentials, path: str, stored: RawObject) -> RawObject:
        """Re-read a new object until Yandex has added its Telemost link, within
        ``room_wait`` seconds; the client is not held while waiting."""
        waited, pause = 0.0, 0.25
        while waited < self._room_wait:
            pause = min(pause * 2, self._room_wait - waited)
            self._sleep(pause)
            waited += pause
            with self._pool.lease(creds) as client:
                again = self._get(client, creds, path)
            if again is None:
                break
            stored = again
            if _TELEMOST_CONFERENCE.search(stored.ics):
                break
        return stored

    def _get(self, client: DAVClient, creds: Credentials, path: str) -> RawObject | None:
        """GET one object with read retries: None on 404/410; the ETag exactly as sent."""
        response = self._send(client, creds, "GET", path, "", {}, missing_ok=True)
        if response.status in (404, 410):
            return None
        etag = str(response.headers.get("ETag") or "")
        ics = _body_text(response)
        if not etag:
            # A GET without an ETag (seen from gateways): the multistatus has it.
            log.warning("caldav.missing_etag login=%s href=%s method=GET", creds.login, path)
            listed = self._send(client, creds, "REPORT", _parent_collection(path),
                                _calendar_multiget([path]), {}, missing_ok=True)
            if listed.status not in (404, 410):
                for obj in self._raw_objects(listed, creds):
                    if obj.href == path:
                        return obj
        return RawObject(href=path, etag=etag, ics=ics)

    def _put(
        self, client: DAVClient, creds: Credentials, path: str, ics: str,
        guard: Mapping[str, str],
    ) -> int | None:
        """One guarded PUT, never retried here: its status (2xx or 412), or None when there
        was no clear answer (timeout, connection trouble, 429, 5xx: it may have been applied).
        Other failures raise (``AuthRefused`` on 401, ``CalendarError``)."""
        headers = {"Content-Type": "text/calendar; charset=utf-8", **guard}
        response, failure, transient = self._attempt(
            client, creds, "PUT", path, ics, headers, accept=(412,)
        )
        if failure is not None:
            raise failure
        if response is None:
            log.warning("caldav.write_unsettled login=%s href=%s reason=%s",
                        creds.login, path, transient)
            return None
        return int(response.status)

    def _with_answer(self, creds: Credentials, current: RawObject, me: str, partstat: str,
                     rid: str | None) -> str:
        """The object with the answer applied, or the ``CalendarError`` saying why not."""
        failure: CalendarError | None = None
        why = ""
        try:
            return set_partstat(current.ics, me, partstat, rid, now=self._clock())
        except NotInvited:
            failure, why = CalendarError("error.not_invited"), "not_invited"
        except NoSuchOccurrence:
            failure, why = CalendarError("error.meeting_gone"), "no_such_occurrence"
        except IcsError:
            failure, why = CalendarError(reason="unreadable object"), "unreadable"
        log.warning("caldav.write op=answer login=%s href=%s result=refused reason=%s",
                    creds.login, current.href, why)
        raise failure

    @staticmethod
    def _answer_of(obj: RawObject, me: str, rid: str | None) -> str | None:
        try:
            return partstat_of(obj.ics, me, rid)
        except IcsError:
            return None

    def _answer_outcome(
        self, creds: Credentials, path: str, stored: RawObject | None, me: str, wanted: str,
        rid: str | None, puts: int,
    ) -> Answered:
        """What the read back after a write shows."""
        if stored is None:
            if wanted == DECLINED:  # Yandex drops an invitee's copy after a decline
                self._write_log("answer", creds, path, "gone", puts, wanted)
                return Answered("gone")
            self._write_log("answer", creds, path, "gone_after", puts, wanted)
            raise CalendarError("error.meeting_gone")
        if self._answer_of(stored, me, rid) != wanted:
            self._write_log("answer", creds, path, "ignored", puts, wanted)
            raise CalendarError("error.write_ignored")
        self._write_log("answer", creds, path, "answered", puts, wanted)
        return Answered("answered", stored)

    @staticmethod
    def _write_log(op: str, creds: Credentials, path: str, result: str, puts: int,
                   partstat: str = "", room: str = "") -> None:
        extra = (f" partstat={partstat}" if partstat else "") + (f" room={room}" if room else "")
        log.info("caldav.write op=%s login=%s href=%s result=%s puts=%d%s",
                 op, creds.login, path, result, puts, extra)

    # -- internals ----------------------------------------------------------------------------

    def _new_client(self, creds: Credentials) -> DAVClient:
        client = DAVClient(
            url=self._url,
            username=creds.login,
            password=creds.password,
            auth_type="basic",
            timeout=self._timeout,  # type: ignore[arg-type]  # caldav annotates it int; it is used as a float
            enable_rfc6764=False,
        )
        _without_idle_watcher(client)
        return client

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
        count_ok: bool = True,
    ) -> DAVResponse:
        """One read request with bounded retries (never used for writes: see ``_put``).

        ``missing_ok`` returns 404/410 answers instead of raising; ``count_ok=False`` leaves
        the metric of a successful answer to the caller (the ctag PROPFIND may count as
        "unchanged").
        """
        accept = (404, 410) if missing_ok else ()
        transient: str | None = None
        for attempt in range(1, self._retries + 1):
            response, failure, transient = self._attempt(
                client, creds, method, path, body, headers, accept=accept, count_ok=count_ok
            )
            if failure is not None:
                # Raised here, outside any ``except``: no __context__ holding the request.
                raise failure
            if response is not None:
                return response
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

    def _attempt(
        self,
        client: DAVClient,
        creds: Credentials,
        method: str,
        path: str,
        body: str,
        headers: Mapping[str, str],
        *,
        accept: tuple[int, ...] = (),
        count_ok: bool = True,
    ) -> tuple[DAVResponse | None, CalendarError | None, str | None]:
        """Send once and classify: (answer, None, None) for 2xx and the ``accept``ed statuses;
        (None, error, None) for a failure that retrying cannot fix; (None, None, reason) for
        a transient one (timeout, connection trouble, 429, 5xx). Counts the request."""
        url = urljoin(self._url, path)
        failure: CalendarError | None = None
        transient: str | None = None
        result = "ok"
        try:
            response = self._request_once(client, method, url, body, headers)
        except _Transient as exc:
            transient, result = exc.reason, exc.result
        except caldav_error.AuthorizationError as exc:
            failure = self._refused(creds, method, path, exc)
            result = _result_of(exc.status or 401)
        except caldav_error.DAVError as exc:
            failure, result = _protocol_error(creds, method, path, exc), "error"
        else:
            status = response.status
            result = _result_of(status)
            if status >= 500 or status == 429:
                transient = f"status {status}"
            elif status < 300 or status in accept:
                if result != "ok" or count_ok:
                    CALDAV_REQUESTS.labels(method=method, result=result).inc()
                return response, None, None
            else:
                failure = _status_error(creds, method, path, status)
        CALDAV_REQUESTS.labels(method=method, result=result).inc()
        return None, failure, transient

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
                status = exc.status or 429
                raise _Transient(f"status {status}", _result_of(status)) from None
            except http_library.exceptions.Timeout:
                raise _Transient("timeout", "timeout") from None
            except http_library.exceptions.RequestException as exc:
                raise _Transient(f"connection {type(exc).__name__}", "error") from None
            except etree.XMLSyntaxError:
                # DAVResponse parses any body labelled XML and raises on garbage; gateways
                # answer 5xx with HTML labelled text/xml more often than servers send junk.
                raise _Transient("unparsable response", "error") from None

    def _delay(self, attempt: int) -> float:
        base = min(self._max_backoff, self._backoff * (2.0 ** (attempt - 1)))
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
        # supported", not a refused password, and so is a 403 on a write (the calendar is
        # not writable for this account, the password worked for the read before it);
        # everything else is the password (a revoked app password gives 401).
        if exc.status == 403 and (exc.preconditions or method == "PUT"):
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


def _result_of(status: int) -> str:
    """The ``CALDAV_REQUESTS`` result label of an HTTP status."""
    if status < 400:
        return "ok"
    if status == 401:
        return "401"
    return "4xx" if status < 500 else "5xx"


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


def _body_text(response: DAVResponse) -> str:
    """A GET's body as the server sent it. ``DAVResponse.raw`` has CRLF turned into LF;
    ``_raw_body`` keeps the bytes (caldav's own object classes read it the same way)."""
    body = getattr(response, "_raw_body", b"")
    if isinstance(body, bytes) and body:
        return body.decode("utf-8", "replace")
    raw = response.raw
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")


def _ics_uid(ics: str) -> str:
    """The first UID of an ICS text (unfolded lines are not expected: UIDs are short)."""
    found = _UID_LINE.search(ics)
    return found.group(1).strip() if found else ""


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
