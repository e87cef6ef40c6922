"""``FakeCalendarSource``: an in-memory ``bot.ports.CalendarSource`` for service tests.

It keeps accounts (login + password), calendars (href → name, components) and objects
(href → etag, ICS text) and answers the five port methods the way the real adapter does
against Radicale/Yandex; ``tests/test_caldav_contract.py`` runs one suite against both.

Shapes follow Yandex: calendar hrefs are ``/calendars/alice%40yandex.ru/<slug>/`` and every
href is an absolute, percent-encoded path (``@`` as ``%40``), the same canonical spelling as
``bot.adapters.caldav_client.canonical_href``.

Windows (``fetch_window`` / ``etags_in_window``) are a documented approximation of a CalDAV
time-range query: an object is returned when any of its VEVENTs

- has an RRULE or RDATE (every recurring object is returned, whatever the window), or
- has DTSTART..DTEND (or DTSTART+DURATION) overlapping [start, end); all-day dates and
  floating times are widened by a day on each side, since their instant depends on a zone
  (real servers, Yandex included, return adjacent-day all-day events too, Y7), or
- cannot be parsed (the caller's parser must cope with it, as with a real server).

Callers therefore filter occurrences themselves, exactly as they must with Yandex.

Failure switches: ``fail_with(AuthRefused)`` / ``fail_with(ServerUnavailable, times=1)``
(optionally for one login) make the next calls raise; ``set_password`` models a revoked app
password. ``calls`` counts calls per method, ``requests`` counts them all.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote, unquote, urlsplit

import icalendar

from bot.core.model import CalendarInfo, Credentials, RawObject
from bot.errors import AuthRefused, CalendarError

_SLACK = timedelta(days=1)


def canonical_href(href: str) -> str:
    """Absolute, percent-encoded path; same rule as the real adapter."""
    path = urlsplit(href).path if "://" in href else href
    if not path.startswith("/"):
        path = "/" + path
    return quote(unquote(path), safe="/")


@dataclass
class _Calendar:
    name: str
    components: tuple[str, ...]
    objects: dict[str, tuple[str, str]] = field(default_factory=dict)  # href → (etag, ics)


@dataclass
class _Account:
    password: str
    calendars: dict[str, _Calendar] = field(default_factory=dict)  # href → calendar


@dataclass
class _Failure:
    error: type[CalendarError]
    login: str | None
    remaining: int | None  # None: until cleared


class FakeCalendarSource:
    """In-memory CalendarSource with Yandex-shaped hrefs, etags and failure switches."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._accounts: dict[str, _Account] = {}
        self._revision = itertools.count(1)
        self._failures: list[_Failure] = []
        self.calls: Counter[str] = Counter()

    # -- seeding ------------------------------------------------------------------------------

    def add_account(self, login: str, password: str) -> None:
        """Create an account (or replace its password)."""
        with self._lock:
            account = self._accounts.setdefault(login, _Account(password))
            account.password = password

    def set_password(self, login: str, password: str) -> None:
        """Change the valid app password: the old one is now refused (revocation)."""
        with self._lock:
            self._accounts[login].password = password

    def add_calendar(
        self,
        login: str,
        slug: str,
        name: str | None,
        components: Iterable[str] = ("VEVENT",),
    ) -> str:
        """Create a calendar collection; returns its href. ``name=None``: no displayname."""
        href = f"/calendars/{quote(login, safe='')}/{quote(slug, safe='')}/"
        with self._lock:
            self._accounts[login].calendars[href] = _Calendar(
                name=name if name else slug, components=tuple(c.upper() for c in components)
            )
        return href

    # Same name as RadicaleServer.make_calendar, so seeding code can target either.
    make_calendar = add_calendar

    def put(self, login: str, cal_href: str, filename: str, ics: str) -> str:
        """Store (create or replace) an object; it gets a new etag. Returns its href."""
        cal_href = canonical_href(cal_href)
        href = cal_href + quote(filename, safe="")
        with self._lock:
            self._accounts[login].calendars[cal_href].objects[href] = (self._etag(), ics)
        return href

    def delete(self, login: str, href: str) -> None:
        """Remove an object; later lookups behave like a 404."""
        href = canonical_href(href)
        with self._lock:
            calendar = self._accounts[login].calendars[href.rsplit("/", 1)[0] + "/"]
            del calendar.objects[href]

    def touch(self, login: str, href: str) -> str:
        """Give an object a new etag without changing it (Yandex rewrites events, Y8)."""
        href = canonical_href(href)
        with self._lock:
            calendar = self._accounts[login].calendars[href.rsplit("/", 1)[0] + "/"]
            _, ics = calendar.objects[href]
            etag = self._etag()
            calendar.objects[href] = (etag, ics)
            return etag

    def fail_with(
        self,
        error: type[CalendarError],
        *,
        login: str | None = None,
        times: int | None = None,
    ) -> None:
        """Make the next calls (of ``login``, or of everybody) raise ``error``.

        ``times=None`` keeps failing until ``clear_failures()``.
        """
        with self._lock:
            self._failures.append(_Failure(error, login, times))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    @property
    def requests(self) -> int:
        """Calls made so far (the fake's equivalent of HTTP requests)."""
        with self._lock:
            return sum(self.calls.values())

    # -- CalendarSource -----------------------------------------------------------------------

    def list_calendars(self, creds: Credentials) -> list[CalendarInfo]:
        with self._lock:
            account = self._enter("list_calendars", creds)
            found = [
                CalendarInfo(href=href, name=calendar.name)
                for href, calendar in account.calendars.items()
                if "VEVENT" in calendar.components
            ]
        return sorted(found, key=lambda c: (c.name.casefold(), c.href))

    def fetch_window(
        self, creds: Credentials, calendar_href: str, start: datetime, end: datetime
    ) -> list[RawObject]:
        _check_bounds(start, end)
        with self._lock:
            calendar = self._calendar(self._enter("fetch_window", creds), calendar_href)
            objects = list(calendar.objects.items())
        if end <= start:
            return []
        return sorted(
            (
                RawObject(href=href, etag=etag, ics=ics)
                for href, (etag, ics) in objects
                if may_overlap(ics, start, end)
            ),
            key=lambda o: o.href,
        )

    def etags_in_window(
        self, creds: Credentials, calendar_href: str, start: datetime, end: datetime
    ) -> dict[str, str]:
        _check_bounds(start, end)
        with self._lock:
            calendar = self._calendar(self._enter("etags_in_window", creds), calendar_href)
            objects = list(calendar.objects.items())
        if end <= start:
            return {}
        return {href: etag for href, (etag, ics) in objects if may_overlap(ics, start, end)}

    def fetch_objects(self, creds: Credentials, hrefs: Iterable[str]) -> list[RawObject]:
        wanted = list(dict.fromkeys(canonical_href(h) for h in hrefs))
        with self._lock:
            account = self._enter("fetch_objects", creds)
            found: list[RawObject] = []
            for href in wanted:
                calendar = account.calendars.get(href.rsplit("/", 1)[0] + "/")
                if calendar is not None and href in calendar.objects:
                    etag, ics = calendar.objects[href]
                    found.append(RawObject(href=href, etag=etag, ics=ics))
        return found

    def object_exists(self, creds: Credentials, href: str) -> bool:
        href = canonical_href(href)
        with self._lock:
            account = self._enter("object_exists", creds)
            calendar = account.calendars.get(href.rsplit("/", 1)[0] + "/")
            return calendar is not None and href in calendar.objects

    # -- internals ----------------------------------------------------------------------------

    def _etag(self) -> str:
        return f'"fake-{next(self._revision)}"'

    def _enter(self, method: str, creds: Credentials) -> _Account:
        """Count the call, apply failure switches, check the password."""
        self.calls[method] += 1
        for failure in list(self._failures):
            if failure.login not in (None, creds.login):
                continue
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
            raise failure.error()
        account = self._accounts.get(creds.login)
        if account is None or account.password != creds.password:
            raise AuthRefused(status=401)
        return account

    def _calendar(self, account: _Account, calendar_href: str) -> _Calendar:
        calendar = account.calendars.get(canonical_href(calendar_href))
        if calendar is None:
            raise CalendarError(status=404)
        return calendar


def _check_bounds(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware datetimes")


def may_overlap(ics: str, start: datetime, end: datetime) -> bool:
    """The fake's time-range test; see the module docstring for the approximation."""
    try:
        return _may_overlap(icalendar.Calendar.from_ical(ics), start, end)
    except Exception:  # noqa: BLE001 - unparsable data is passed on, as a server would
        return True


def _may_overlap(calendar: icalendar.Calendar, start: datetime, end: datetime) -> bool:
    for event in calendar.walk("VEVENT"):
        if "RRULE" in event or "RDATE" in event:
            return True
        if "DTSTART" not in event:
            continue
        first, widen = _instant(event["DTSTART"].dt)
        if "DTEND" in event:
            last, widen_end = _instant(event["DTEND"].dt)
            widen = widen or widen_end
        elif "DURATION" in event:
            last = first + event["DURATION"].dt
        elif not isinstance(event["DTSTART"].dt, datetime):
            last = first + timedelta(days=1)  # RFC 5545 §3.6.1: an all-day event lasts a day
        else:
            last = first
        if widen:
            first, last = first - _SLACK, last + _SLACK
        # RFC 4791 §9.9: a zero-length event overlaps when start <= DTSTART < end.
        if first < end and (last > start or (last == first and first >= start)):
            return True
    return False


def _instant(value: date | datetime) -> tuple[datetime, bool]:
    """An aware instant for a DATE-TIME/DATE, and whether it needs widening."""
    if isinstance(value, datetime):
        if value.tzinfo is None:  # floating time
            return value.replace(tzinfo=UTC), True
        return value, False
    return datetime(value.year, value.month, value.day, tzinfo=UTC), True
