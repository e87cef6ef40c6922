"""One error root. User-facing errors carry a message key (see ``bot.core.texts``) and its
parameters, never a password; one place (the plugin boundary) turns them into replies."""

from __future__ import annotations

from typing import Any


class BotError(Exception):
    """An error with safe, translatable text for the user."""

    key = "error.internal"

    def __init__(self, key: str | None = None, **params: Any) -> None:
        self.key = key or type(self).key
        self.params = params
        super().__init__(self.key)

    def __str__(self) -> str:  # never includes parameters: they may hold user data
        return self.key


class BadInput(BotError):
    """The user typed something we cannot act on; nothing was changed."""

    key = "error.bad_input"


class NotConnected(BotError):
    key = "error.not_connected"


class CalendarError(BotError):
    """Any failure talking to the CalDAV server."""

    key = "error.caldav"


class AuthRefused(CalendarError):
    """401/403: Yandex refused the login or app password. Never retried."""

    key = "error.auth_refused"


class ServerUnavailable(CalendarError):
    """Timeout, connection failure or 5xx after bounded retries."""

    key = "error.unreachable"


class IcsError(Exception):
    """A calendar object that cannot be parsed; skipped and logged, never shown."""
