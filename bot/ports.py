"""Ports: the small interfaces the services use, each with a real adapter and a fake."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from bot.core.model import CalendarInfo, Credentials, RawObject


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
