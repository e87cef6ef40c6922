"""Calendar objects the bot writes: an invitee's answer, and a new meeting.

Pure functions over ICS text (icalendar and the recurrence expander only; the current time is
a parameter).

Answers are edited on the text, not by re-serialising a parsed calendar: the server compares
what comes back with what it stored, and a re-serialised object differs in folding, parameter
order and quoting everywhere, which makes a one-word answer look like an edit of the whole
meeting (and an invitee's edits of anything but their own answer are reverted anyway). So only
the changed ``ATTENDEE`` lines are rewritten, a new override is inserted as a block of its own,
and every other byte, line endings included, is kept. icalendar is used to *read* the object
(times with their zones, RECURRENCE-IDs) and to build new meetings from scratch.

Occurrences are named the way ``bot.core.ical`` keys them: ``recurrence_id`` is the ISO form of
the RECURRENCE-ID, in UTC for zoned or UTC series, the date for all-day series, the wall time
for floating ones; None or "" names the whole object (a single event, or the whole series).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from bot.core.links import normalise_address
from bot.core.model import ACCEPTED, DECLINED, NEEDS_ACTION, TENTATIVE
from bot.errors import IcsError

__all__ = [
    "BOT_PRODID",
    "PARTSTATS",
    "TELEMOST_REQUIRED",
    "NoSuchOccurrence",
    "NotInvited",
    "new_meeting",
    "partstat_of",
    "set_partstat",
]

BOT_PRODID = "-//yc-mattermost-bot//Yandex Calendar bot//EN"
# Asks Yandex to mint a Telemost room for the meeting; the stored object then carries
# X-TELEMOST-CONFERENCE with the room's link.
TELEMOST_REQUIRED = "X-TELEMOST-REQUIRED"
PARTSTATS = frozenset({ACCEPTED, DECLINED, TENTATIVE, NEEDS_ACTION})

_FOLD_OCTETS = 75  # RFC 5545 §3.1: content lines are folded at 75 octets
_SERIES_ONLY = frozenset({"RRULE", "RDATE", "EXDATE", "EXRULE"})
_REPLACED_IN_OVERRIDE = _SERIES_ONLY | {"DTSTART", "DTEND", "DTSTAMP", "RECURRENCE-ID"}

_Component = Any  # icalendar.cal.Component; icalendar's typing is loose


class NotInvited(ValueError):
    """``me`` is not an ATTENDEE of the meeting (or of the occurrence asked for)."""


class NoSuchOccurrence(ValueError):
    """``recurrence_id`` names no occurrence of the object's series (excluded, or not a
    series at all)."""


# --- answers -------------------------------------------------------------------------------


def set_partstat(
    ics: str, me: str, partstat: str, recurrence_id: str | None, *, now: datetime
) -> str:
    """Return ``ics`` with ``me``'s own answer set to ``partstat``.

    ``recurrence_id`` None (or ""): every VEVENT that lists ``me`` (the master and each
    override carrying ``me``; a single event's only VEVENT). Otherwise that one occurrence:
    its override when there is one, else a new override VEVENT, a copy of the master at that
    occurrence (RECURRENCE-ID in the master's DTSTART form and zone, that occurrence's
    DTSTART/DTEND, no RRULE/RDATE/EXDATE, DTSTAMP ``now``, the same SEQUENCE), inserted after
    the series' last VEVENT.

    ``me`` is matched as ``normalise_address`` folds it (``@ya.ru`` is ``@yandex.ru``); every
    line of ``me`` gets ``PARTSTAT=<partstat>`` and loses ``RSVP=TRUE`` (the answer is given).
    Everything else is kept byte for byte. Raises ``NotInvited`` when ``me`` is not an
    attendee where the answer goes, ``NoSuchOccurrence`` when ``recurrence_id`` is not an
    occurrence of the series, ``ValueError`` for an unknown ``partstat`` or a naive ``now``,
    ``IcsError`` when the object cannot be read. Messages never quote calendar data.
    """
    wanted = partstat.strip().upper()
    if wanted not in PARTSTATS:
        raise ValueError(f"unknown PARTSTAT {partstat!r}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    me_address = normalise_address(me)
    if not me_address:
        raise ValueError("me must be an address")
    doc = _Document.parse(ics)
    events = doc.events()

    if not recurrence_id:
        changed = [e for e in events if e.mentions(me_address)]
        if not changed:
            raise NotInvited("not an attendee of the meeting")
        for event in changed:
            event.answer(me_address, wanted)
        return doc.render()

    key = _requested_key(recurrence_id)
    override = next((e for e in events if e.rid_key == key), None)
    if override is not None:
        if not override.mentions(me_address):
            raise NotInvited("not an attendee of this occurrence")
        override.answer(me_address, wanted)
        return doc.render()

    master = next((e for e in events if e.is_series_master), None)
    if master is None:
        raise NoSuchOccurrence("the object is not a recurring series")
    if not master.mentions(me_address):
        raise NotInvited("not an attendee of the meeting")
    slot = _occurrence_start(doc.calendar, master, key)
    added = master.override_at(slot, now)
    added.answer(me_address, wanted)
    last = max(e.end for e in events if e.uid == master.uid)
    doc.insert(last + 1, added.lines)
    return doc.render()


def partstat_of(ics: str, me: str, recurrence_id: str | None) -> str | None:
    """``me``'s answer as the object says now (to verify a write by reading it back).

    For the whole object (``recurrence_id`` None or "") the series master's, else the first
    VEVENT listing ``me``; for one occurrence its override's, else the master's (an occurrence
    without an override inherits the series' answer). None when ``me`` is not listed there;
    a missing PARTSTAT reads as NEEDS-ACTION. Raises ``IcsError`` when the object cannot be
    read.
    """
    me_address = normalise_address(me)
    events = _Document.parse(ics).events()
    if recurrence_id:
        key = _requested_key(recurrence_id)
        override = next((e for e in events if e.rid_key == key), None)
        if override is not None:
            return override.partstat(me_address)
    master = next((e for e in events if e.rid_key is None), None)
    if master is not None:
        return master.partstat(me_address)
    if recurrence_id:
        return None
    return next((p for e in events if (p := e.partstat(me_address)) is not None), None)


# --- new meetings --------------------------------------------------------------------------


def new_meeting(
    *,
    uid: str,
    start: datetime,
    end: datetime,
    title: str,
    organizer: str,
    organizer_name: str,
    guests: list[str],
    tz: ZoneInfo,
    now: datetime,
    telemost: bool = True,
    description: str = "",
) -> str:
    """A VCALENDAR holding one new meeting, as the bot PUTs it to create it.

    DTSTART/DTEND are written in ``tz`` (with TZID, and a VTIMEZONE for it covering the
    meeting); SUMMARY and DESCRIPTION are escaped by icalendar. ORGANIZER is ``organizer``
    (CN ``organizer_name``), who is also listed as an ATTENDEE with PARTSTAT=ACCEPTED, as
    Yandex stores it; each guest (addresses folded by ``normalise_address``, duplicates and
    the organizer dropped) is an ATTENDEE with PARTSTAT=NEEDS-ACTION;RSVP=TRUE, which makes
    Yandex send the invitations. ``telemost`` adds ``X-TELEMOST-REQUIRED:TRUE`` (Yandex then
    mints a Telemost room). DTSTAMP, CREATED and LAST-MODIFIED are ``now``. Raises
    ``ValueError`` for naive datetimes, ``end <= start``, an empty UID, title or organizer.
    """
    for moment in (start, end, now):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("start, end and now must be aware datetimes")
    if end <= start:
        raise ValueError("a meeting must end after it starts")
    if not uid.strip() or not title.strip():
        raise ValueError("a meeting needs a UID and a title")
    if not tz.key:
        raise ValueError("tz must be a named zone (its name becomes the TZID)")
    organizer_address = normalise_address(organizer)
    if "@" not in organizer_address:
        raise ValueError("the organizer must be an e-mail address")

    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    stamp = now.astimezone(UTC)
    cal = icalendar.Calendar()
    cal.add("prodid", BOT_PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add_component(
        icalendar.Timezone.from_tzinfo(
            tz,
            tzid=tz.key,
            # Enough for the meeting and for moving it around later.
            first_date=local_start.date() - timedelta(days=1),
            last_date=local_end.date() + timedelta(days=366),
        )
    )
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("created", stamp)
    event.add("last-modified", stamp)
    event.add("sequence", 0)
    event.add("dtstart", local_start)
    event.add("dtend", local_end)
    event.add("summary", title)
    if description:
        event.add("description", description)
    event.add("transp", "OPAQUE")
    event.add("status", "CONFIRMED")
    organizer_params = {"CN": organizer_name} if organizer_name else {}
    event.add("organizer", f"mailto:{organizer_address}", parameters=organizer_params)
    event.add(
        "attendee",
        f"mailto:{organizer_address}",
        parameters={**organizer_params, "PARTSTAT": ACCEPTED, "ROLE": "REQ-PARTICIPANT"},
    )
    invited = {organizer_address}
    for guest in guests:
        address = normalise_address(guest)
        if "@" not in address or address in invited:
            continue
        invited.add(address)
        event.add(
            "attendee",
            f"mailto:{address}",
            parameters={"PARTSTAT": NEEDS_ACTION, "RSVP": "TRUE", "ROLE": "REQ-PARTICIPANT"},
        )
    if telemost:
        event.add(TELEMOST_REQUIRED, "TRUE")
    cal.add_component(event)
    return str(cal.to_ical().decode("utf-8"))


# --- the text model ------------------------------------------------------------------------


@dataclass
class _Line:
    """One content line: its physical lines as they were, line endings included (``raw``,
    None once changed), and its unfolded text."""

    text: str
    raw: list[str] | None = None
    ending: str = ""  # the line ending it had; a rewritten line keeps it

    def __post_init__(self) -> None:
        if self.raw:
            last = self.raw[-1]
            self.ending = last[len(last.rstrip("\r\n")):]

    @property
    def name(self) -> str:
        return _split_line(self.text)[0].upper()

    def physical(self, newline: str) -> list[str]:
        if self.raw is not None:
            return self.raw
        ending = self.ending or newline
        return [line + ending for line in _fold(self.text)]


@dataclass
class _Event:
    """A top-level VEVENT: where it is in the document and what icalendar read from it."""

    lines: list[_Line]  # BEGIN:VEVENT … END:VEVENT, shared with the document
    start: int
    end: int  # index of END:VEVENT in the document
    component: _Component
    uid: str = ""
    rid_key: str | None = None
    is_series_master: bool = False
    _own: list[int] = field(default_factory=list)  # offsets of the VEVENT's own properties

    def __post_init__(self) -> None:
        self.uid = str(self.component.get("UID", ""))
        rid = self.component.get("RECURRENCE-ID")
        self.rid_key = None if rid is None else _rid_key(rid.dt)
        self.is_series_master = self.rid_key is None and (
            "RRULE" in self.component or "RDATE" in self.component
        )
        depth = 0
        for offset, line in enumerate(self.lines):
            name = line.name
            if name == "BEGIN":
                depth += 1
            elif name == "END":
                depth -= 1
            elif depth == 1:
                self._own.append(offset)

    def _attendee_lines(self, me: str) -> list[_Line]:
        found = []
        for offset in self._own:
            line = self.lines[offset]
            if line.name == "ATTENDEE" and normalise_address(_split_line(line.text)[2]) == me:
                found.append(line)
        return found

    def mentions(self, me: str) -> bool:
        return bool(self._attendee_lines(me))

    def partstat(self, me: str) -> str | None:
        answers = []
        for line in self._attendee_lines(me):
            _, params, _ = _split_line(line.text)
            answers.append(_param(params, "PARTSTAT").upper() or NEEDS_ACTION)
        if not answers:
            return None
        # The same person listed twice (address aliases): an answer beats NEEDS-ACTION, as
        # the reader does.
        return next((a for a in answers if a != NEEDS_ACTION), answers[0])

    def answer(self, me: str, partstat: str) -> None:
        for line in self._attendee_lines(me):
            name, params, value = _split_line(line.text)
            kept = [p for p in params if p.upper() != "RSVP=TRUE"]
            for i, param in enumerate(kept):
                if _param_name(param) == "PARTSTAT":
                    kept[i] = f"{param.split('=', 1)[0]}={partstat}"
                    break
            else:
                kept.insert(0, f"PARTSTAT={partstat}")
            text = _join_line(name, kept, value)
            if text != line.text:
                line.text, line.raw = text, None

    def override_at(self, slot: date, now: datetime) -> _Event:
        """A copy of this series master as the override of the occurrence starting at
        ``slot`` (in the master's own DTSTART zone/kind)."""
        master_start = self.component["DTSTART"].dt
        start_line = self._own_line("DTSTART")
        assert start_line is not None  # noqa: S101 - a series master always has DTSTART
        start_name, start_params, _ = _split_line(start_line.text)
        new_start = _format_like(slot, master_start)
        copied: list[_Line] = [_Line(self.lines[0].text, self.lines[0].raw)]
        own = set(self._own)
        for offset, line in enumerate(self.lines[1:-1], start=1):
            if offset in own and line.name in _REPLACED_IN_OVERRIDE:
                continue
            copied.append(_Line(line.text, list(line.raw) if line.raw is not None else None))
        # RECURRENCE-ID names the slot exactly as the master's DTSTART would.
        head = [
            _Line(_join_line("RECURRENCE-ID", start_params, new_start)),
            _Line(_join_line(start_name, start_params, new_start)),
        ]
        end_line = self._own_line("DTEND")
        if end_line is not None:
            master_end = self.component["DTEND"].dt
            end_name, end_params, _ = _split_line(end_line.text)
            slot_end = _shift(slot, master_end - master_start)
            head.append(_Line(_join_line(end_name, end_params, _format_like(slot_end, master_end))))
        head.append(_Line(f"DTSTAMP:{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"))
        lines = [copied[0], *head, *copied[1:], _Line(self.lines[-1].text, self.lines[-1].raw)]
        return _Event(lines, -1, -1, self._component_of(lines))

    def _own_line(self, name: str) -> _Line | None:
        return next((self.lines[o] for o in self._own if self.lines[o].name == name), None)

    @staticmethod
    def _component_of(lines: list[_Line]) -> _Component:
        # Only UID and RECURRENCE-ID are read from it; VEVENT-level TZIDs need no VTIMEZONE
        # for that (the key comes from the slot, computed by the caller in the right zone).
        text = "\r\n".join(line.text for line in lines if line.name in {"BEGIN", "END", "UID"})
        return icalendar.Event.from_ical(text)


class _Document:
    """An ICS text as content lines, with its VEVENTs located and read by icalendar."""

    def __init__(self, lines: list[_Line], newline: str, calendar: _Component) -> None:
        self.lines = lines
        self.newline = newline  # for new lines: the document's own (CRLF when it has any)
        self.calendar = calendar
        self._inserted: list[tuple[int, list[_Line]]] = []

    @classmethod
    def parse(cls, ics: str) -> _Document:
        try:
            calendar = icalendar.Calendar.from_ical(ics)
        except Exception as exc:  # ValueError mostly; anything else is just as unreadable
            raise IcsError(f"ics.unparseable stage=read error={type(exc).__name__}") from None
        if not isinstance(calendar, icalendar.Calendar):
            raise IcsError("ics.unparseable stage=read error=NotACalendar")
        newline = "\r\n" if "\r\n" in ics else "\n"
        # Each physical line keeps its own ending: mixed documents come back byte for byte.
        pieces = re.split(r"(\r\n|\n|\r)", ics)
        physical = [pieces[i] + (pieces[i + 1] if i + 1 < len(pieces) else "")
                    for i in range(0, len(pieces), 2)]
        if physical and physical[-1] == "":
            physical.pop()
        lines: list[_Line] = []
        for raw in physical:
            body = raw.rstrip("\r\n")
            if body[:1] in (" ", "\t") and lines and lines[-1].raw is not None:
                lines[-1].text += body[1:]
                lines[-1].raw.append(raw)
                lines[-1].ending = raw[len(body):]
            else:  # blank lines (not valid iCalendar, but seen) are kept as they are
                lines.append(_Line(body, [raw]))
        return cls(lines, newline, calendar)

    def events(self) -> list[_Event]:
        components = list(self.calendar.walk("VEVENT"))
        spans: list[tuple[int, int]] = []
        depth, begin = 0, -1
        for index, line in enumerate(self.lines):
            name, _, value = _split_line(line.text)
            if name.upper() == "BEGIN":
                depth += 1
                if depth == 2 and value.strip().upper() == "VEVENT":
                    begin = index
            elif name.upper() == "END":
                if depth == 2 and begin >= 0 and value.strip().upper() == "VEVENT":
                    spans.append((begin, index))
                    begin = -1
                depth -= 1
        if len(spans) != len(components):
            raise IcsError("ics.unparseable stage=layout error=VeventMismatch")
        return [
            _Event(self.lines[a : b + 1], a, b, component)
            for (a, b), component in zip(spans, components, strict=True)
        ]

    def insert(self, index: int, lines: list[_Line]) -> None:
        self._inserted.append((index, lines))

    def render(self) -> str:
        pending: dict[int, list[_Line]] = {}
        for index, block in self._inserted:
            pending.setdefault(index, []).extend(block)
        out: list[str] = []
        for index in range(len(self.lines) + 1):
            for added in pending.get(index, []):
                out.extend(added.physical(self.newline))
            if index < len(self.lines):
                out.extend(self.lines[index].physical(self.newline))
        return "".join(out)


# --- content lines -------------------------------------------------------------------------


def _split_line(text: str) -> tuple[str, list[str], str]:
    """Name, parameters (each ``NAME=value`` as written) and value of a content line; ``;``
    and ``:`` inside quoted parameter values do not split."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in ";:":
            parts.append("".join(current))
            current = []
            if char == ":":
                return parts[0], parts[1:], text[index + 1 :]
            continue
        current.append(char)
    parts.append("".join(current))
    return parts[0], parts[1:], ""


def _join_line(name: str, params: list[str], value: str) -> str:
    return name + "".join(f";{p}" for p in params) + ":" + value


def _param_name(param: str) -> str:
    return param.split("=", 1)[0].strip().upper()


def _param(params: list[str], name: str) -> str:
    for param in params:
        if _param_name(param) == name:
            return param.split("=", 1)[1].strip().strip('"') if "=" in param else ""
    return ""


def _fold(text: str) -> list[str]:
    """Fold a content line at 75 octets without splitting a UTF-8 character."""
    lines: list[str] = []
    current, size, limit = "", 0, _FOLD_OCTETS
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            lines.append(current)
            current, size, limit = " ", 1, _FOLD_OCTETS
        current += char
        size += width
    lines.append(current)
    return lines


# --- occurrences ---------------------------------------------------------------------------


def _rid_key(value: date) -> str:
    """The key ``bot.core.ical`` gives an occurrence: a date as ``YYYY-MM-DD``, a zoned or
    UTC time in UTC, a floating time as written."""
    if not isinstance(value, datetime):
        return value.isoformat()
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=None).isoformat()
    return value.astimezone(UTC).isoformat()


def _requested_key(recurrence_id: str) -> str:
    text = recurrence_id.strip()
    try:
        if len(text) == 10:
            return _rid_key(date.fromisoformat(text))
        return _rid_key(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError("recurrence_id must be an ISO date or date-time") from None


def _occurrence_start(calendar: _Component, master: _Event, key: str) -> date:
    """The slot (start) of the series occurrence with ``key``, in the master's DTSTART
    zone/kind; ``NoSuchOccurrence`` when the series has no such occurrence (EXDATE, outside
    the rule)."""
    master_start = master.component["DTSTART"].dt
    wanted = _slot_from_key(key, master_start)
    if wanted is None:
        raise NoSuchOccurrence("recurrence_id does not fit the series' kind of time")
    # Ask the expander around the slot and find the instance with that key: it honours
    # RRULE, RDATE and EXDATE exactly as the reader does.
    probe = wanted  # a date for an all-day series: the expander takes dates as they are
    window = timedelta(days=2)
    try:
        found = recurring_ical_events.of(calendar).between(probe - window, probe + window)
    except Exception as exc:  # the expander raises many types on bad RRULE/EXDATE values
        raise IcsError(f"ics.unparseable stage=expand error={type(exc).__name__}") from None
    for component in found:
        if str(component.get("UID", "")) != master.uid:
            continue
        rid = component.get("RECURRENCE-ID")
        if rid is not None and _rid_key(rid.dt) == key:
            return wanted
    raise NoSuchOccurrence("recurrence_id is not an occurrence of the series")


def _slot_from_key(key: str, master_start: date) -> date | None:
    """The occurrence start named by ``key`` written as the master writes DTSTART."""
    if not isinstance(master_start, datetime):
        return date.fromisoformat(key) if len(key) == 10 else None
    if len(key) == 10:
        return None
    moment = datetime.fromisoformat(key)
    if master_start.tzinfo is None:  # floating series: the key is the wall time
        return moment if moment.tzinfo is None else None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(master_start.tzinfo)


def _shift(start: date, duration: timedelta) -> date:
    if isinstance(start, datetime) and start.tzinfo is not None:
        # Wall-clock arithmetic in the event's zone (as RFC 5545 does for DTEND - DTSTART),
        # then back to a real time of that zone.
        return (start.replace(tzinfo=None) + duration).replace(tzinfo=start.tzinfo)
    return start + duration


def _format_like(value: date, like: date) -> str:
    """``value`` as an iCalendar value of the same kind as ``like`` (date, floating, UTC or a
    zoned local time; for the zoned kind ``value`` is converted to ``like``'s zone)."""
    if not isinstance(like, datetime):
        day = value.date() if isinstance(value, datetime) else value
        return f"{day:%Y%m%d}"
    assert isinstance(value, datetime)  # noqa: S101 - a timed master's slots are datetimes
    if like.tzinfo is None:
        return f"{value:%Y%m%dT%H%M%S}"
    if like.utcoffset() == timedelta(0) and _is_utc(like):
        return f"{value.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return f"{value.astimezone(like.tzinfo):%Y%m%dT%H%M%S}"


def _is_utc(value: datetime) -> bool:
    tz = value.tzinfo
    return tz is UTC or getattr(tz, "key", None) in ("UTC", "Etc/UTC") or str(tz) == "UTC"
