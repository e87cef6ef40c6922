"""Ports: the small interfaces the engine and the services use, each with a real adapter and
a fake (the calendar server, the messenger), and the stores the engine needs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

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
        """Every object with an occurrence overlapping [start, end), unexpanded (Yandex ignores
        a server-side ``expand``: recurrences are expanded by the core)."""
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


# -- the messenger (Mattermost) ---------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What we read from a user object: zone, locale, the current custom status, and what
    ``meet`` and ``stats`` need (address, admin role)."""

    timezone: str | None
    locale: str | None
    custom_status: dict[str, Any] | None
    username: str = ""
    email: str = ""
    is_admin: bool = False


@dataclass(frozen=True)
class SentPost:
    """A post as read back from a channel (to find what a sender that died had posted)."""

    post_id: str
    root_id: str
    props: Mapping[str, Any] = field(default_factory=dict)


class MessengerError(Exception):
    """A Mattermost call failed. ``permanent``: the server refused the request itself (400,
    403, 404, 413) and the same request will never succeed; otherwise it may later (5xx,
    connection trouble, a revoked bot token the admin can fix)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class StatusRefused(Exception):
    """The server refused custom statuses: 403 (the bot lacks the permission) or 501 (custom
    statuses are switched off)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"custom status refused with {code}")
        self.code = code


class Messenger(Protocol):
    """Mattermost as the engine and the chat front see it (REST v4 through the bot's driver).

    Every call raises ``MessengerError`` on failure (status calls: ``StatusRefused`` for
    403/501)."""

    @property
    def bot_user_id(self) -> str: ...

    def post(self, channel_id: str, message: str, *, root_id: str = "",
             props: Mapping[str, Any] | None = None, pending_post_id: str = "") -> str:
        """Create one post (the caller splits long texts); returns its id."""
        ...

    def direct_channel(self, user_id: str) -> str:
        """The DM channel between the bot and the user (created on first use)."""
        ...

    def update_post(self, post_id: str, message: str, props: Mapping[str, Any] | None) -> None:
        ...

    def ephemeral(self, user_id: str, channel_id: str, message: str, root_id: str = "") -> None:
        ...

    def delete_post(self, post_id: str) -> bool:
        """False when the bot may not (no ``delete_others_posts``) or the post is gone."""
        ...

    def own_posts_since(self, channel_id: str, since: datetime) -> list[SentPost]:
        """The bot's posts in the channel created since ``since``."""
        ...

    def profile(self, user_id: str) -> Profile: ...

    def users_by_username(self, usernames: Sequence[str]) -> dict[str, Profile]:
        """Known users by username (lower case); unknown names are absent."""
        ...

    def presence(self, user_id: str) -> str:
        """online / away / dnd / offline."""
        ...

    def set_custom_status(self, user_id: str, emoji: str, text: str,
                          expires_at: datetime) -> None: ...

    def clear_custom_status(self, user_id: str) -> None: ...

    def open_dialog(self, trigger_id: str, url: str, dialog: Mapping[str, Any]) -> None: ...

    def channels_active_since(self, since: datetime) -> list[tuple[str, str]]:
        """(channel id, channel type) of the bot's channels with posts since ``since``."""
        ...

    def posts_since(self, channel_id: str, since: datetime) -> list[dict[str, Any]]:
        """Raw posts of a channel created since ``since``, oldest first."""
        ...
