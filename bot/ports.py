"""Ports: the small interfaces the services use, each with a real adapter and a fake."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from bot.core.model import Answered, CalendarInfo, Credentials, RawObject


class CalendarSource(Protocol):
    """A CalDAV server seen through Yandex's quirks.

    Every method raises ``bot.errors.AuthRefused`` on 401/403 (never retried) and
    ``bot.errors.ServerUnavailable`` after bounded retries on timeouts, connection
    failures and 5xx. Bounds are aware datetimes.
    """

    def list_calendars(self, creds: Credentials) -> list[CalendarInfo]:
        """Event calendars of the account (VTODO-only collections skipped); also proves
        the login works."""
        ...

    def fetch_window(
        self, creds: Credentials, calendar_href: str, start: datetime, end: datetime
    ) -> list[RawObject]:
        """Every object with an occurrence overlapping [start, end), unexpanded (Y3)."""
        ...

    def etags_in_window(
        self, creds: Credentials, calendar_href: str, start: datetime, end: datetime
    ) -> dict[str, str]:
        """href → etag for objects in the window: one ETag-only calendar-query."""
        ...

    def fetch_objects(self, creds: Credentials, hrefs: Iterable[str]) -> list[RawObject]:
        """calendar-multiget of the given hrefs, in batches; hrefs that are gone are omitted."""
        ...

    def object_exists(self, creds: Credentials, href: str) -> bool:
        """False when the server answers 404 for the object (it was deleted)."""
        ...

    # -- writing -------------------------------------------------------------------------
    # Writes are never blindly retried: a write that got no clear answer (timeout, 5xx) is
    # followed by a read of the object, and only what that read shows decides what happens next.

    def get_object(self, creds: Credentials, href: str) -> RawObject | None:
        """The object as stored now (GET), or None when the server answers 404/410."""
        ...

    def answer_invitation(
        self, creds: Credentials, href: str, *, me: str, partstat: str,
        recurrence_id: str | None,
    ) -> Answered:
        """Set ``me``'s own PARTSTAT on the object at ``href``: the whole series when
        ``recurrence_id`` is None, else that one occurrence (an override, created from the
        series when there is none yet).

        GET, change the ATTENDEE line, PUT with ``If-Match`` (the ETag exactly as the server
        gave it); 412 → read again, apply again, PUT once more; a timeout or 5xx on the PUT →
        read back and decide (applied: done; not applied: one more PUT against the ETag just
        read; never a blind second PUT). A 404 on the read back after a decline is "gone"
        (success). Raises ``AuthRefused`` on 401, ``ServerUnavailable`` when the outcome cannot
        be established, ``CalendarError("error.not_invited")`` when ``me`` is not an attendee,
        ``CalendarError("error.meeting_gone")`` when the object is gone before anything was
        written, ``CalendarError("error.write_conflict")`` after a second 412.
        """
        ...

    def create_event(self, creds: Credentials, calendar_href: str, uid: str,
                     ics: str) -> RawObject:
        """Store a new object ``<calendar_href><uid>.ics`` with ``If-None-Match: *`` and return
        it as read back (the server may have added to it, e.g. a Telemost room). A timeout or
        5xx on the PUT → read back: there → done; absent → one more PUT (still
        ``If-None-Match: *``, so it can never make a second copy). Raises ``AuthRefused``,
        ``ServerUnavailable``, ``CalendarError``."""
        ...
