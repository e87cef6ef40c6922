"""ICS text → meeting occurrences in a time window.

Yandex ignores the CalDAV server-side ``expand`` request, so every calendar object arrives as
stored: a master VEVENT with RRULE/EXDATE plus override VEVENTs (RECURRENCE-ID). We expand them
here with ``recurring_ical_events`` and turn each occurrence into a frozen ``Occurrence``. Only
VEVENTs that are direct children of VCALENDAR count (RFC 5545 §3.6).

Time kinds (as in khal, the event's own time is kept apart from the viewer's zone):

* zoned (``TZID=…``, Windows zone names included) and UTC times → aware UTC instants;
* floating times (no zone) → wall-clock time in the viewer's ``tz``, then UTC; in a series
  whose DTSTART is floating, a UTC or zoned EXDATE/RDATE/RECURRENCE-ID/DTEND/UNTIL names an
  instant and counts at the wall time that instant shows in ``tz``;
* all-day dates → midnight in the viewer's ``tz``, end exclusive.

Occurrence keys must survive re-polls: for a series ``recurrence_id`` is the RECURRENCE-ID
(the slot in the series, not the possibly moved start) in UTC ISO form, so a series occurrence
and the override that later replaces it share one key; a single event has ``""``, so moving it
keeps its key.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from bot.core.links import find_join_link, normalise_address, telemost_link
from bot.core.model import (
    ACCEPTED,
    CANCELLED,
    CONFIRMED,
    NEEDS_ACTION,
    TENTATIVE,
    Attendee,
    Occurrence,
    RawObject,
)
from bot.errors import IcsError

__all__ = ["parse_objects", "parse_occurrences"]

log = logging.getLogger(__name__)

# We ask the expander for a wider span than the caller's window and filter exactly ourselves:
# the library compares dates, floating and zoned times by its own rules, ours is [start, end).
_QUERY_PADDING = timedelta(days=1)
_ONE_DAY = timedelta(days=1)

_Component = Any  # icalendar.cal.Component; icalendar's typing is loose


def parse_occurrences(
    ics: str,
    *,
    calendar: str,
    href: str,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    me: str,
) -> list[Occurrence]:
    """Return every VEVENT occurrence of one calendar object overlapping [start, end).

    Recurring series are expanded with RECURRENCE-ID overrides and EXDATE honoured; an override
    that moves an occurrence into or out of the window counts where it now is. VTODO and
    VJOURNAL are skipped. The result is sorted by start (then title). ``start``/``end`` must be
    aware. Raises ``IcsError`` (a one-line message without calendar data) when the object
    cannot be parsed or expanded.
    """
    _check_window(start, end)
    cal = _parse_calendar(ics, href)
    events = _top_level_events(cal)
    if not events or end <= start:
        return []
    for event in events:
        _require_start(event, href)
        _drop_unusable_sequence(event)
    masters = _series_masters(events)
    try:
        for event in events:
            _align_zones(event, masters.get(_text(event.get("UID")), event), tz)
        components = recurring_ical_events.of(cal, components=[_TopLevelEvents()]).between(
            start.astimezone(tz) - _QUERY_PADDING, end.astimezone(tz) + _QUERY_PADDING
        )
    except Exception as exc:  # the expander raises many types on bad RRULE/EXDATE values
        raise _ics_error(href, "expand", exc) from None

    occurrences: dict[tuple[str, str, str], Occurrence] = {}
    try:
        context = _ObjectContext(events, masters, calendar=calendar, href=href, tz=tz, me=me)
        for component in components:
            occurrence = context.occurrence(component)
            if _overlaps(occurrence, start, end):
                occurrences.setdefault(occurrence.key, occurrence)
    except Exception as exc:  # a value we cannot read; optional properties are tolerated
        raise _ics_error(href, "convert", exc) from None
    return sorted(occurrences.values(), key=_sort_key)


def parse_objects(
    objects: Iterable[RawObject],
    *,
    calendar: str,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    me: str,
    on_error: Callable[[str, Exception], None] | None = None,
) -> list[Occurrence]:
    """Parse many calendar objects of one calendar; sorted by (start, title).

    An object that fails to parse is skipped and reported as ``on_error(href, error)`` (or
    logged when no callback is given), so one broken event never hides the others.
    """
    _check_window(start, end)
    found: dict[tuple[str, str, str], Occurrence] = {}
    for obj in objects:
        try:
            occurrences = parse_occurrences(
                obj.ics, calendar=calendar, href=obj.href, start=start, end=end, tz=tz, me=me
            )
        except Exception as exc:  # isolate each object; reported below
            error = exc if isinstance(exc, IcsError) else _ics_error(obj.href, "parse", exc)
            if on_error is not None:
                on_error(obj.href, error)
            else:
                log.warning("ical.skip_object href=%s error=%s", obj.href, error)
            continue
        for occurrence in occurrences:
            if occurrence.key in found:
                # Two resources claiming one UID + slot: a server-side duplicate; keep one.
                log.info(
                    "ical.duplicate_key href=%s other=%s uid=%s",
                    occurrence.href,
                    found[occurrence.key].href,
                    occurrence.uid,
                )
                continue
            found[occurrence.key] = occurrence
    return sorted(found.values(), key=_sort_key)


# --- parsing -------------------------------------------------------------------------------


def _check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be aware datetimes")


def _ics_error(href: str, stage: str, exc: BaseException) -> IcsError:
    # Only the exception's type: icalendar's messages quote content lines (calendar data).
    return IcsError(f"ics.unparseable href={href} stage={stage} error={type(exc).__name__}")


def _parse_calendar(ics: str, href: str) -> _Component:
    try:
        cal = icalendar.Calendar.from_ical(ics)
    except Exception as exc:  # ValueError mostly; anything else is just as unreadable
        raise _ics_error(href, "read", exc) from None
    if not isinstance(cal, icalendar.Calendar):
        raise IcsError(f"ics.unparseable href={href} stage=read error=NotACalendar")
    return cal


def _top_level_events(cal: _Component) -> list[_Component]:
    """The VEVENTs that are direct children of VCALENDAR.

    RFC 5545 §3.6: a calendar's components are VEVENT, VTODO, VJOURNAL, VFREEBUSY, VTIMEZONE
    and iana-/x-components, and an application ignores components it does not recognise,
    their content included. So a VEVENT inside ``BEGIN:X-SOMETHING`` (or inside any other
    component) is no meeting. VTIMEZONEs are resolved by icalendar while parsing and VALARMs
    stay inside their VEVENT, so neither is affected.
    """
    return [component for component in cal.subcomponents if component.name == "VEVENT"]


# recurring_ical_events is untyped, so the base class is Any (which strict mypy refuses).
class _TopLevelEvents(recurring_ical_events.SelectComponents):  # type: ignore[misc]
    """The expander's VEVENT selection, limited to ``_top_level_events``.

    The library's own selection walks the whole component tree and so would expand a VEVENT
    nested in an unknown component; this is its documented extension point for choosing
    the components of a query.
    """

    def collect_series_from(
        self, source: _Component, suppress_errors: tuple[type[Exception], ...]
    ) -> list[Any]:
        by_uid: dict[str, list[Any]] = {}
        for component in _top_level_events(source):
            adapter = recurring_ical_events.EventAdapter(component)
            by_uid.setdefault(adapter.uid, []).append(adapter)
        series = []
        for adapters in by_uid.values():
            with contextlib.suppress(*suppress_errors):
                series.append(recurring_ical_events.Series(adapters))
        return series


def _require_start(event: _Component, href: str) -> None:
    """Fail early and clearly: a VEVENT without a readable DTSTART cannot be placed in time."""
    prop = event.get("DTSTART")
    if prop is None or isinstance(prop, list):
        raise IcsError(f"ics.unparseable href={href} stage=read error=BadDTSTART")
    try:
        value = prop.dt
    except ValueError:  # icalendar.BrokenCalendarProperty: the value did not parse
        raise IcsError(f"ics.unparseable href={href} stage=read error=BadDTSTART") from None
    if not isinstance(value, date):
        raise IcsError(f"ics.unparseable href={href} stage=read error=BadDTSTART")


def _drop_unusable_sequence(event: _Component) -> None:
    """The expander compares SEQUENCE numbers to pick the newest copy of a component; a
    non-integer (or repeated) SEQUENCE would crash it, and it never changes what we show."""
    sequence = event.get("SEQUENCE")
    if sequence is not None and not isinstance(sequence, int):
        del event["SEQUENCE"]


def _series_masters(events: list[_Component]) -> dict[str, _Component]:
    """UID → the series master (the VEVENT without RECURRENCE-ID); of two copies the higher
    SEQUENCE wins, on a tie the later one."""
    masters: dict[str, _Component] = {}
    for event in events:
        if event.get("RECURRENCE-ID") is None:
            uid = _text(event.get("UID"))
            current = masters.get(uid)
            if current is None or _sequence(event) >= _sequence(current):
                masters[uid] = event
    return masters


# --- zones inside one series -------------------------------------------------------------
#
# Where the expander is wrong for us, so we rewrite the times before expanding:
#
# * it makes the times of a series comparable by giving every floating value the zone of the
#   first zoned value it meets among DTSTART, DTEND, EXDATE and RDATE; one UTC EXDATE in a
#   floating series so moves every occurrence to UTC wall time, hours away from the viewer's;
# * it matches an override to a slot by the RECURRENCE-ID's UTC time or its wall time as
#   written, so a UTC RECURRENCE-ID never matches a floating slot and the override shows up
#   next to the occurrence it replaces;
# * it reads a UTC UNTIL of a floating rule by dropping the ``Z``, i.e. as UTC wall time.
#
# A zoned value keeps its instant; only its spelling changes (see ``_float_zoned_times``).


def _align_zones(event: _Component, master: _Component, tz: ZoneInfo) -> None:
    """Rewrite, in place, the times of ``event`` (one VEVENT of the series whose master is
    ``master``, or itself when the master is not in the object) so that they are of one kind:

    * master DTSTART floating: every UTC or zoned DTSTART, DTEND, RECURRENCE-ID, EXDATE, RDATE
      and RRULE UNTIL becomes the floating wall time that instant shows in ``tz``;
    * master DTSTART zoned: a floating RECURRENCE-ID gets the master's zone;
    * all-day master: nothing changes.
    """
    anchor = master["DTSTART"].dt
    if not isinstance(anchor, datetime):
        return
    if anchor.utcoffset() is None:
        _float_zoned_times(event, tz)
    else:
        _zone_floating_recurrence_id(event, anchor.tzinfo)


def _float_zoned_times(event: _Component, tz: ZoneInfo) -> None:
    """Zoned and UTC times of a floating series → floating wall times in ``tz``.

    RFC 5545 §3.3.5: a floating time is the same wall-clock time wherever it is seen; we see
    it in the viewer's zone. A value with ``Z`` or a TZID names an instant instead. Servers
    send such values in floating series (UNTIL in UTC although §3.3.10 wants it floating
    when DTSTART is; EXDATE, RDATE and RECURRENCE-ID in UTC or another zone, which the RFC
    leaves open). The rule: such a value counts at the wall time its instant shows in the
    viewer's zone, i.e. where the occurrence at that instant sits for this viewer. So an
    EXDATE removes the occurrence that falls on its instant, as a client that places the
    series in its own zone and compares instants does (and as the expander treats a UTC
    EXDATE of a zoned series); when none falls there (the writer was in another zone)
    nothing is removed. An RDATE adds an occurrence at its instant, an override whose
    RECURRENCE-ID is that instant replaces that slot, UNTIL ends the series at its instant,
    and a zoned DTEND or zoned override keeps its instant.
    """
    for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
        prop = event.get(name)
        if prop is None or isinstance(prop, list):
            continue
        wall = _wall_time(prop.dt, tz)
        if wall is not prop.dt:
            event[name] = icalendar.vDDDTypes(wall, _without_tzid(prop.params))
    for name in ("EXDATE", "RDATE"):
        value = event.get(name)
        if value is None:
            continue
        rebuilt = [
            icalendar.vDDDLists(
                [_wall_time(item.dt, tz) for item in values.dts], _without_tzid(values.params)
            )
            for values in (value if isinstance(value, list) else [value])
        ]
        event[name] = rebuilt if isinstance(value, list) else rebuilt[0]
    rules = event.get("RRULE")
    for rule in rules if isinstance(rules, list) else ([] if rules is None else [rules]):
        if "UNTIL" in rule:
            rule["UNTIL"] = [_wall_time(until, tz) for until in rule["UNTIL"]]


def _zone_floating_recurrence_id(event: _Component, zone: Any) -> None:
    """A floating RECURRENCE-ID in a zoned series names the slot at that wall time in the
    master's zone (the expander matches it so); writing it so keeps the override's key equal
    to the key of the slot it replaces."""
    prop = event.get("RECURRENCE-ID")
    if prop is None or isinstance(prop, list):
        return
    rid = prop.dt
    if isinstance(rid, datetime) and rid.utcoffset() is None:
        event["RECURRENCE-ID"] = icalendar.vDDDTypes(rid.replace(tzinfo=zone), dict(prop.params))


def _wall_time(value: Any, tz: ZoneInfo) -> Any:
    """An aware datetime as floating wall time in ``tz``; a PERIOD tuple element-wise; any
    other value (a date, a floating time, a duration) unchanged and identical."""
    if isinstance(value, tuple):
        converted = tuple(_wall_time(part, tz) for part in value)
        return value if converted == value else converted
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return value.astimezone(tz).replace(tzinfo=None)
    return value


def _without_tzid(params: Any) -> dict[str, Any]:
    return {key: value for key, value in params.items() if key.upper() != "TZID"}


# --- one object's occurrences ------------------------------------------------------------


class _ObjectContext:
    """What every occurrence of one calendar object needs: the series masters (for link
    inheritance), the original overrides (for RANGE=THISANDFUTURE) and the viewer."""

    def __init__(
        self,
        events: list[_Component],
        masters: dict[str, _Component],
        *,
        calendar: str,
        href: str,
        tz: ZoneInfo,
        me: str,
    ) -> None:
        self.calendar = calendar
        self.href = href
        self.tz = tz
        self.me = normalise_address(me) if me else ""
        self.masters = masters
        self.overrides: dict[tuple[str, str], _Component] = {}
        for event in events:
            rid = event.get("RECURRENCE-ID")
            if rid is not None:
                self.overrides[(_text(event.get("UID")), _iso_key(rid.dt))] = event

    def occurrence(self, component: _Component) -> Occurrence:
        uid = _text(component.get("UID"))
        raw_start = component["DTSTART"].dt
        raw_end = component["DTEND"].dt if "DTEND" in component else raw_start
        all_day = not isinstance(raw_start, datetime)
        if all_day:
            start = _local_midnight(raw_start, self.tz)
            end = (
                _local_midnight(raw_end, self.tz)
                if not isinstance(raw_end, datetime)
                else _to_utc(raw_end, self.tz)
            )
            if end <= start:  # DTEND = DTSTART or missing: one day (RFC 5545 §3.6.1)
                end = _local_midnight(raw_start + _ONE_DAY, self.tz)
        else:
            start = _to_utc(raw_start, self.tz)
            end = max(_to_utc(raw_end, self.tz), start)

        organizer, organizer_name = _organizer(component)
        attendees = _attendees(component)
        my_partstat = next((a.partstat for a in attendees if a.email == self.me), None)
        organized_by_me = bool(self.me) and organizer == self.me
        if organized_by_me and my_partstat is None:
            my_partstat = ACCEPTED

        return Occurrence(
            calendar=self.calendar,
            uid=uid,
            recurrence_id=self._recurrence_id(uid, component),
            start=start,
            end=end,
            all_day=all_day,
            title=_text(component.get("SUMMARY")),
            location=_text(component.get("LOCATION")),
            link=self._link(uid, component),
            status=_status(component),
            transparent=_text(component.get("TRANSP")).strip().upper() == "TRANSPARENT",
            organizer=organizer,
            organizer_name=organizer_name,
            attendees=attendees,
            my_partstat=my_partstat,
            organized_by_me=organized_by_me,
            href=self.href,
        )

    def _recurrence_id(self, uid: str, component: _Component) -> str:
        """The occurrence's slot in its series, or "" for a single (non-recurring) event.

        The expander sets RECURRENCE-ID on every occurrence it returns (the generated start
        for plain series instances). An override without its master in this object (invited
        to one instance only) is still a series occurrence and keeps its RECURRENCE-ID.
        """
        master = self.masters.get(uid)
        if master is not None and "RRULE" not in master and "RDATE" not in master:
            return ""
        prop = component.get("RECURRENCE-ID")
        if prop is None:  # not expected from the expander: treat as a single event
            return ""
        rid = prop.dt
        if str(prop.params.get("RANGE", "")).upper() == "THISANDFUTURE":
            # Instances generated from a THISANDFUTURE override carry the override's own
            # RECURRENCE-ID; recover each one's slot from the shift the override applies.
            original = self.overrides.get((uid, _iso_key(rid)))
            if original is not None:
                shift = _shift(original["DTSTART"].dt, rid)
                if shift is not None:
                    return _iso_key(component["DTSTART"].dt - shift)
        return _iso_key(rid)

    def _link(self, uid: str, component: _Component) -> str | None:
        """Join link; Yandex overrides are full copies without X-TELEMOST-CONFERENCE, so an
        override inherits the master's Telemost link before falling back to prose links."""
        master = self.masters.get(uid)
        return (
            telemost_link(component)
            or (telemost_link(master) if master is not None else None)
            or find_join_link(component)
            or (find_join_link(master) if master is not None else None)
        )


# --- value helpers -------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A property as text; repeated properties (a list in icalendar) give the first."""
    if isinstance(value, list):
        value = value[0] if value else None
    return "" if value is None else str(value)


def _sequence(component: _Component) -> int:
    try:
        return int(component.get("SEQUENCE", 0))
    except (TypeError, ValueError):
        return 0


def _status(component: _Component) -> str:
    status = _text(component.get("STATUS")).strip().upper()
    if status == CANCELLED:
        return CANCELLED
    if status == TENTATIVE:
        return TENTATIVE
    return CONFIRMED


def _params(value: Any) -> Any:
    return getattr(value, "params", None) or {}


def _param(value: Any, name: str) -> str:
    return _text(_params(value).get(name)).strip()


def _organizer(component: _Component) -> tuple[str | None, str]:
    value = component.get("ORGANIZER")
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None, ""
    email = normalise_address(value)
    return (email or None), _param(value, "CN")


def _attendees(component: _Component) -> tuple[Attendee, ...]:
    """ATTENDEEs with normalised addresses; a missing PARTSTAT means NEEDS-ACTION. The same
    person listed twice (e.g. under @ya.ru and @yandex.ru) is kept once, with an answer
    preferred over NEEDS-ACTION."""
    value = component.get("ATTENDEE")
    values = value if isinstance(value, list) else ([] if value is None else [value])
    by_email: dict[str, Attendee] = {}
    for item in values:
        email = normalise_address(item)
        if not email:
            continue
        attendee = Attendee(
            email=email,
            name=_param(item, "CN"),
            partstat=_param(item, "PARTSTAT").upper() or NEEDS_ACTION,
        )
        known = by_email.get(email)
        if known is None or (known.partstat == NEEDS_ACTION and attendee.partstat != NEEDS_ACTION):
            by_email[email] = attendee if known is None else _merge(known, attendee)
    return tuple(by_email.values())


def _merge(known: Attendee, later: Attendee) -> Attendee:
    return Attendee(email=known.email, name=known.name or later.name, partstat=later.partstat)


def _to_utc(value: date, tz: ZoneInfo) -> datetime:
    """An iCalendar time as an aware UTC instant; floating times are wall time in ``tz``."""
    if not isinstance(value, datetime):
        return _local_midnight(value, tz).astimezone(UTC)
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _local_midnight(value: date, tz: ZoneInfo) -> datetime:
    day = value.date() if isinstance(value, datetime) else value
    return datetime.combine(day, time(0), tzinfo=tz)


def _iso_key(value: date) -> str:
    """Stable text of a RECURRENCE-ID: a date as ``YYYY-MM-DD``; a zoned time in UTC; a
    floating time as written (it names a wall-clock slot, not an instant)."""
    if not isinstance(value, datetime):
        return value.isoformat()
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=None).isoformat()
    return value.astimezone(UTC).isoformat()


def _shift(start: date, rid: date) -> timedelta | None:
    if isinstance(start, datetime) != isinstance(rid, datetime):
        return None
    if (isinstance(start, datetime) and isinstance(rid, datetime)
            and (start.tzinfo is None) != (rid.tzinfo is None)):
        return None
    return start - rid


def _overlaps(occurrence: Occurrence, start: datetime, end: datetime) -> bool:
    """[occurrence.start, occurrence.end) meets [start, end); a zero-length occurrence counts
    when it starts inside the window."""
    if occurrence.end > occurrence.start:
        return occurrence.start < end and occurrence.end > start
    return start <= occurrence.start < end


def _sort_key(occurrence: Occurrence) -> tuple[datetime, str, str, str]:
    return (occurrence.start, occurrence.title, occurrence.uid, occurrence.recurrence_id)
