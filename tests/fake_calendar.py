"""``FakeCalendarSource``: an in-memory ``bot.ports.CalendarSource`` for service tests.

It keeps accounts (login + password), calendars (href → name, components) and objects
(href → etag, ICS text) and answers the port's methods the way the real adapter does
against Radicale/Yandex; ``tests/test_caldav_contract.py`` runs one suite against both.

Shapes follow Yandex: calendar hrefs are ``/calendars/alice%40yandex.ru/<slug>/`` and every
href is an absolute, percent-encoded path (``@`` as ``%40``), the same canonical spelling as
``bot.adapters.caldav_client.canonical_href``.

Windows (``fetch_window`` / ``etags_in_window``) are a documented approximation of a CalDAV
time-range query: an object is returned when any of its VEVENTs

- has an RRULE or RDATE (every recurring object is returned, whatever the window), or
- has DTSTART..DTEND (or DTSTART+DURATION) overlapping [start, end); all-day dates and
  floating times are widened by a day on each side, since their instant depends on a zone
  (real servers, Yandex included, return adjacent-day all-day events too), or
- cannot be parsed (the caller's parser must cope with it, as with a real server).

Callers therefore filter occurrences themselves, exactly as they must with Yandex.

Writes (``answer_invitation``, ``create_event``) follow the same steps as the adapter
against the fake's own model of the server: GET, PUT with ``If-Match`` (or
``If-None-Match: *``), read back; ``wire`` counts those simulated requests ("GET", "PUT").
The model behaves like Yandex:

- every stored write gives the object a new ETag;
- a VEVENT with ``X-TELEMOST-REQUIRED:TRUE`` and no ``X-TELEMOST-CONFERENCE`` gets a room
  minted at once (``X-TELEMOST-CONFERENCE:https://telemost.yandex.ru/j/<14 digits>`` and a
  link line in DESCRIPTION);
- when an invitee's own answer becomes DECLINED on every VEVENT listing them, their copy is
  dropped (the next GET finds nothing);
- an answer is copied into the other accounts' copies of the same UID (the organizer sees it);
- a new object PUT by its organizer is copied into the first event calendar (by href) of
  every attendee who has an account here (Yandex sends the invitations).

Failure switches: ``fail_with(AuthRefused)`` / ``fail_with(ServerUnavailable, times=1)``
(optionally for one login) make the next calls raise; ``set_password`` models a revoked app
password; ``fail_next_write(kind, times=1)`` makes the next simulated PUTs fail the Yandex
ways: ``WRITE_APPLIED_504`` (carried out, answered 504), ``WRITE_LOST_504`` (not carried out,
answered 504), ``WRITE_CONFLICT_412`` (the object changes just before, so the PUT's
``If-Match`` fails). ``calls`` counts calls per method, ``requests`` counts them all.

The helpers below the class (``mint_telemost_room``, ``answers_of``, …) are that model of
Yandex's server side; ``tests/radicale_server.py`` reuses them in its middleware.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import icalendar

from bot.core.hrefs import canonical_href, new_object_href
from bot.core.ical_write import (
    PARTSTATS,
    NoSuchOccurrence,
    NotInvited,
    partstat_of,
    set_partstat,
)
from bot.core.links import normalise_address
from bot.core.model import DECLINED, Answered, CalendarInfo, Credentials, RawObject
from bot.errors import AuthRefused, CalendarError, IcsError, ServerUnavailable

_SLACK = timedelta(days=1)

WRITE_APPLIED_504 = "504-applied"  # the write is carried out, the answer is a 504
WRITE_LOST_504 = "504-lost"  # the answer is a 504 and nothing was written
WRITE_CONFLICT_412 = "412"  # the object changes just before the write: If-Match fails
WRITE_FAULTS = frozenset({WRITE_APPLIED_504, WRITE_LOST_504, WRITE_CONFLICT_412})
TELEMOST_REQUIRED = "X-TELEMOST-REQUIRED"
TELEMOST_CONFERENCE = "X-TELEMOST-CONFERENCE"
TELEMOST_ROOM = "https://telemost.yandex.ru/j/{}"


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

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self._lock = threading.RLock()
        self._accounts: dict[str, _Account] = {}
        self._revision = itertools.count(1)
        self._failures: list[_Failure] = []
        self._write_faults: list[str] = []
        self._clock = clock or (lambda: datetime.now(UTC))
        self.calls: Counter[str] = Counter()
        self.wire: Counter[str] = Counter()  # simulated HTTP requests of the write path

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
        """Give an object a new etag without changing it (Yandex rewrites events on its own)."""
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
            self._write_faults.clear()

    def fail_next_write(self, kind: str, *, times: int = 1) -> None:
        """Make the next ``times`` simulated PUTs fail as ``kind`` (one of ``WRITE_FAULTS``)."""
        if kind not in WRITE_FAULTS:
            raise ValueError(f"unknown write fault {kind!r}")
        with self._lock:
            self._write_faults.extend([kind] * times)

    def stored(self, login: str, href: str) -> RawObject | None:
        """The object as stored now, seen by ``login``, without counting anything."""
        with self._lock:
            return self._lookup(self._accounts[login], canonical_href(href))

    def objects(self, login: str, cal_href: str) -> dict[str, RawObject]:
        """Every object of a calendar (href → object), without counting anything."""
        with self._lock:
            calendar = self._accounts[login].calendars[canonical_href(cal_href)]
            return {h: RawObject(h, etag, ics) for h, (etag, ics) in calendar.objects.items()}

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

    # -- writing ------------------------------------------------------------------------------

    def get_object(self, creds: Credentials, href: str) -> RawObject | None:
        with self._lock:
            self._enter("get_object", creds)
        return self._wire_get(creds.login, canonical_href(href))

    def answer_invitation(
        self, creds: Credentials, href: str, *, me: str, partstat: str,
        recurrence_id: str | None,
    ) -> Answered:
        """The adapter's steps against the model: GET, apply, PUT If-Match, read back."""
        wanted = partstat.strip().upper()
        if wanted not in PARTSTATS:
            raise ValueError(f"unknown PARTSTAT {partstat!r}")
        rid = recurrence_id or None
        href = canonical_href(href)
        with self._lock:
            self._enter("answer_invitation", creds)
        current = self._wire_get(creds.login, href)
        if current is None:
            raise CalendarError("error.meeting_gone")
        conflicts = unsettled = 0
        while True:
            ics = self._with_answer(current.ics, me, wanted, rid)
            if ics == current.ics:
                return Answered("answered", current)
            status = self._wire_put(creds.login, href, ics, if_match=current.etag)
            if status == 412:
                conflicts += 1
                if conflicts > 1:
                    raise CalendarError("error.write_conflict")
                again = self._wire_get(creds.login, href)
                if again is None:
                    raise CalendarError("error.meeting_gone")
                current = again
                continue
            back = self._wire_get(creds.login, href)
            if status is None:
                unsettled += 1
                applied = back is None or _answer_or_none(back.ics, me, rid) == wanted
                if not applied and back is not None:
                    if unsettled > 1:
                        raise ServerUnavailable(reason="write not confirmed", attempts=unsettled)
                    current = back
                    continue
            if back is None:
                if wanted == DECLINED:
                    return Answered("gone")
                raise CalendarError("error.meeting_gone")
            if _answer_or_none(back.ics, me, rid) != wanted:
                raise CalendarError("error.write_ignored")
            return Answered("answered", back)

    def create_event(self, creds: Credentials, calendar_href: str, uid: str,
                     ics: str) -> RawObject:
        """The adapter's steps: PUT If-None-Match: *, read back; 504 → read, then decide."""
        if not uid.strip() or "/" in uid:
            raise ValueError("a UID for a new object must be non-empty and hold no '/'")
        if uid_of(ics) != uid:
            raise ValueError("the object's UID must be the uid argument")
        href = new_object_href(calendar_href, uid)
        with self._lock:
            self._enter("create_event", creds)
        unsettled = 0
        while True:
            status = self._wire_put(creds.login, href, ics, create=True)
            stored = self._wire_get(creds.login, href)
            if status == 412 and (stored is None or uid_of(stored.ics) != uid):
                raise CalendarError("error.write_conflict")
            if stored is not None:
                return stored
            if status is not None:
                raise CalendarError("error.write_ignored")
            unsettled += 1
            if unsettled > 1:
                raise ServerUnavailable(reason="write not confirmed", attempts=unsettled)

    def _with_answer(self, ics: str, me: str, partstat: str, rid: str | None) -> str:
        failure: CalendarError | None = None
        try:
            return set_partstat(ics, me, partstat, rid, now=self._clock())
        except NotInvited:
            failure = CalendarError("error.not_invited")
        except NoSuchOccurrence:
            failure = CalendarError("error.meeting_gone")
        except IcsError:
            failure = CalendarError(reason="unreadable object")
        raise failure

    # -- the model of the server's write side ----------------------------------------------

    def _wire_get(self, login: str, href: str) -> RawObject | None:
        with self._lock:
            self.wire["GET"] += 1
            return self._lookup(self._accounts[login], href)

    def _lookup(self, account: _Account, href: str) -> RawObject | None:
        calendar = account.calendars.get(href.rsplit("/", 1)[0] + "/")
        if calendar is None or href not in calendar.objects:
            return None
        etag, ics = calendar.objects[href]
        return RawObject(href=href, etag=etag, ics=ics)

    def _wire_put(self, login: str, href: str, ics: str, *, if_match: str | None = None,
                  create: bool = False) -> int | None:
        """One PUT: its status, or None for a 504 (applied or not, as the switch says)."""
        with self._lock:
            self.wire["PUT"] += 1
            fault = self._write_faults.pop(0) if self._write_faults else None
            calendar = self._accounts[login].calendars.get(href.rsplit("/", 1)[0] + "/")
            if calendar is None:
                raise CalendarError(status=404)
            existing = calendar.objects.get(href)
            if fault == WRITE_CONFLICT_412 and existing is not None:
                existing = calendar.objects[href] = (self._etag(), existing[1])
            if fault == WRITE_LOST_504:
                return None
            if (create and existing is not None) or (
                    if_match is not None and (existing is None or existing[0] != if_match)):
                return 412
            self._store_as_yandex(login, calendar, href, ics, existing[1] if existing else None)
            if fault == WRITE_APPLIED_504:
                return None
            return 204 if existing else 201

    def _store_as_yandex(self, login: str, calendar: _Calendar, href: str, ics: str,
                         old: str | None) -> None:
        """Store a write and do what Yandex does around it (see the module docstring)."""
        ics = mint_telemost_room(ics, new_room_number()) or ics
        calendar.objects[href] = (self._etag(), ics)
        writer = normalise_address(login)
        organizer, attendees = participants(ics)
        uid = uid_of(ics)
        others = {
            other: account for other, account in self._accounts.items()
            if normalise_address(other) != writer
            and normalise_address(other) in attendees | {organizer}
        }
        if old is None:
            if organizer == writer:
                filename = href.rsplit("/", 1)[1]
                for other, account in others.items():
                    events = sorted(h for h, c in account.calendars.items()
                                    if "VEVENT" in c.components)
                    if normalise_address(other) in attendees and events:
                        inbox = account.calendars[events[0]]
                        inbox.objects.setdefault(events[0] + filename, (self._etag(), ics))
            return
        before, after = answers_of(old, writer), answers_of(ics, writer)
        if before != after:
            for account in others.values():
                for cal in account.calendars.values():
                    for other_href, (_, other_ics) in list(cal.objects.items()):
                        if uid_of(other_ics) != uid:
                            continue
                        changed = copy_answers(other_ics, writer, before, after, self._clock())
                        if changed is not None:
                            cal.objects[other_href] = (self._etag(), changed)
        if organizer != writer and became_declined(before, after):
            del calendar.objects[href]

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


def _answer_or_none(ics: str, me: str, rid: str | None) -> str | None:
    try:
        return partstat_of(ics, me, rid)
    except IcsError:
        return None


# -- Yandex's server side, shared with the Radicale middleware ------------------------------


def new_room_number() -> str:
    """Fourteen digits, like the rooms Telemost mints."""
    return f"{random.randrange(10**13, 10**14)}"  # noqa: S311 - a fake room, not a secret


def mint_telemost_room(ics: str, room: str) -> str | None:
    """The object with a Telemost room added to every VEVENT that asks for one
    (``X-TELEMOST-REQUIRED:TRUE``) and has none yet: ``X-TELEMOST-CONFERENCE`` and a link
    line at the end of DESCRIPTION. None when nothing asks for a room (or it is unreadable)."""
    try:
        calendar = icalendar.Calendar.from_ical(ics)
    except ValueError:
        return None
    link = TELEMOST_ROOM.format(room)
    changed = False
    for event in calendar.walk("VEVENT"):
        asked = str(event.get(TELEMOST_REQUIRED, "")).strip().upper() == "TRUE"
        if not asked or TELEMOST_CONFERENCE in event:
            continue
        event.add(TELEMOST_CONFERENCE, link)
        description = str(event.pop("DESCRIPTION", "") or "")
        line = f"Ссылка на видеовстречу: {link}"
        event.add("DESCRIPTION", f"{description}\n\n{line}" if description else line)
        changed = True
    return calendar.to_ical().decode("utf-8") if changed else None


def uid_of(ics: str) -> str:
    """The UID of the object's first VEVENT ("" when unreadable)."""
    try:
        events = icalendar.Calendar.from_ical(ics).walk("VEVENT")
    except ValueError:
        return ""
    return str(events[0].get("UID", "")) if events else ""


def participants(ics: str) -> tuple[str | None, set[str]]:
    """(organizer, attendees) of the object, addresses folded by ``normalise_address``."""
    try:
        events = icalendar.Calendar.from_ical(ics).walk("VEVENT")
    except ValueError:
        return None, set()
    organizer: str | None = None
    attendees: set[str] = set()
    for event in events:
        if organizer is None and event.get("ORGANIZER") is not None:
            organizer = normalise_address(_first(event.get("ORGANIZER")))
        attendees |= {normalise_address(a) for a in _all(event.get("ATTENDEE"))}
    return organizer, attendees


def answers_of(ics: str, address: str) -> dict[str, str]:
    """``address``'s PARTSTAT in each VEVENT listing it: "" for the master (or a single
    event), else the occurrence key (RECURRENCE-ID in UTC ISO form, or the date)."""
    me = normalise_address(address)
    try:
        events = icalendar.Calendar.from_ical(ics).walk("VEVENT")
    except ValueError:
        return {}
    found: dict[str, str] = {}
    for event in events:
        for attendee in _all(event.get("ATTENDEE")):
            if normalise_address(attendee) == me:
                rid = event.get("RECURRENCE-ID")
                key = "" if rid is None else _occurrence_key(rid.dt)
                partstat = str(getattr(attendee, "params", {}).get("PARTSTAT", "NEEDS-ACTION"))
                found[key] = partstat.upper()
    return found


def became_declined(before: dict[str, str], after: dict[str, str]) -> bool:
    """The whole meeting was declined by this write: every VEVENT listing the person says
    DECLINED now, and before that not all of them did."""
    return (bool(after) and set(after.values()) == {DECLINED}
            and bool(before) and set(before.values()) != {DECLINED})


def copy_answers(ics: str, address: str, before: dict[str, str], after: dict[str, str],
                 now: datetime) -> str | None:
    """Another copy of the meeting with ``address``'s answers changed as they changed from
    ``before`` to ``after`` (series first, then single occurrences); None when nothing in
    it changes."""
    changed = {key: value for key, value in after.items() if before.get(key) != value}
    if not changed:
        return None
    result = ics
    for key in sorted(changed, key=lambda k: (k != "", k)):
        try:
            result = set_partstat(result, address, changed[key], key or None, now=now)
        except (NotInvited, NoSuchOccurrence, IcsError):
            continue
    return None if result == ics else result


def _occurrence_key(value: date) -> str:
    if not isinstance(value, datetime):
        return value.isoformat()
    if value.tzinfo is None:
        return value.isoformat()
    return value.astimezone(UTC).isoformat()


def _all(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _first(value: Any) -> Any:
    values = _all(value)
    return values[0] if values else ""


def may_overlap(ics: str, start: datetime, end: datetime) -> bool:
    """The fake's time-range test; see the module docstring for the approximation."""
    try:
        return _may_overlap(icalendar.Calendar.from_ical(ics), start, end)
    except Exception:  # unparsable data is passed on, as a server would
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
