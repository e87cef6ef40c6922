"""Frozen value types of the calendar domain.

Every datetime here is timezone-aware. Timed occurrences carry UTC instants; all-day
occurrences are resolved to midnight in the viewer's zone (an all-day event is a *date*,
which only has instants once somebody looks at it from a zone) and say so with ``all_day``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# RFC 5545 §3.2.12 participation statuses we act on; a missing PARTSTAT means NEEDS-ACTION.
ACCEPTED = "ACCEPTED"
DECLINED = "DECLINED"
TENTATIVE = "TENTATIVE"
NEEDS_ACTION = "NEEDS-ACTION"

CONFIRMED = "CONFIRMED"
CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A Yandex login and its app password. ``repr`` never shows the password."""

    login: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CalendarInfo:
    """One event calendar (a CalDAV collection), keyed by href: display names repeat."""

    href: str
    name: str


@dataclass(frozen=True, slots=True)
class RawObject:
    """One calendar object resource as the server returned it."""

    href: str
    etag: str
    ics: str


@dataclass(frozen=True, slots=True)
class Attendee:
    """An attendee with a normalised address (see ``links.normalise_address``)."""

    email: str
    name: str
    partstat: str


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One meeting occurrence, keyed by (calendar, UID, RECURRENCE-ID or start)."""

    calendar: str
    uid: str
    # ISO form of RECURRENCE-ID (UTC, or the date for all-day series) for an occurrence of a
    # series, "" for a single event: a moved single event or occurrence keeps its key.
    recurrence_id: str
    start: datetime  # aware; UTC for timed events, viewer-zone midnight for all-day
    end: datetime
    all_day: bool
    title: str
    location: str = ""
    link: str | None = None  # join link (Telemost first), never the event page URL
    status: str = CONFIRMED  # CONFIRMED | TENTATIVE | CANCELLED
    transparent: bool = False
    organizer: str | None = None  # normalised address
    organizer_name: str = ""
    attendees: tuple[Attendee, ...] = ()
    my_partstat: str | None = None  # the account's own answer; None when not invited
    organized_by_me: bool = False
    href: str = ""  # the object resource it came from

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.calendar, self.uid, self.recurrence_id)

    @property
    def cancelled(self) -> bool:
        return self.status == CANCELLED

    @property
    def declined(self) -> bool:
        return self.my_partstat == DECLINED


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """What the user asked to be told. ``daily_at`` is "HH:MM" in the user's zone or None."""

    daily_at: str | None = "09:00"
    daily_weekdays: bool = True
    leads: tuple[int, ...] = (10,)
    status: bool = True
    changes: bool = True
    responses: bool = True

    @classmethod
    def off(cls) -> NotificationSettings:
        return cls(daily_at=None, leads=(), status=False, changes=False, responses=False)


@dataclass(frozen=True, slots=True)
class Account:
    """A connected Mattermost user as the services see it (no password here)."""

    user_id: str
    login: str
    timezone: str
    language: str
    notifications: NotificationSettings
    needs_password: bool = False
    status_refused: bool = False  # Mattermost refused to set custom statuses (403/501)
    last_sync_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WatchedCalendar:
    href: str
    name: str
    watched: bool


@dataclass(frozen=True, slots=True)
class MeetingRef:
    """Which meeting a notice is about, enough to answer it or snooze its reminder.

    ``recurrence_id`` None means the whole series (or a single meeting); otherwise the one
    occurrence with that RECURRENCE-ID (ISO, as in ``Occurrence.recurrence_id``).
    """

    calendar: str
    href: str
    uid: str
    recurrence_id: str | None
    start: datetime
    title: str = ""

    @classmethod
    def of(cls, occ: Occurrence, *, series: bool) -> MeetingRef:
        return cls(occ.calendar, occ.href, occ.uid,
                   None if series or not occ.recurrence_id else occ.recurrence_id,
                   occ.start, occ.title)


# Kinds of notices whose order matters: a change and the answers that follow it thread under
# the first post about the meeting, so an account's notices of these kinds go out one by one.
THREADED_KINDS = frozenset({"change", "response"})


@dataclass(frozen=True, slots=True)
class Notice:
    """A message the engine decided to send; recorded before it is sent.

    ``notice_id`` is unique per account and derived from what the notice says, so the same
    decision taken twice (two polls, two processes) records one row. ``thread_keys`` name the
    meetings it is about: when the first of them already has a thread the notice replies
    there, and the post becomes the thread of those that have none. ``expires_at``: no longer
    worth sending after this (a reminder of a started meeting); ``not_before``: not before this
    (a snoozed reminder). ``refs`` and ``actions`` ("answer", "snooze") are the buttons the
    post gets (one row of buttons per ref) when the action endpoint is configured.
    """

    notice_id: str
    kind: str
    message: str
    thread_keys: tuple[str, ...] = ()
    expires_at: datetime | None = None
    not_before: datetime | None = None
    refs: tuple[MeetingRef, ...] = ()
    actions: tuple[str, ...] = ()

    @property
    def threaded(self) -> bool:
        return self.kind in THREADED_KINDS


@dataclass(frozen=True, slots=True)
class Answered:
    """The end of an answer to an invitation written to the server.

    ``state`` is "answered" (the object now carries the user's new PARTSTAT; ``stored`` is the
    object as read back) or "gone" (the server dropped the user's copy, which Yandex does after
    a decline: the expected end of a decline, ``stored`` is None).
    """

    state: str  # "answered" | "gone"
    stored: RawObject | None = None
