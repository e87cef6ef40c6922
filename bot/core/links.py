"""Addresses and join links: pure functions over iCalendar values.

Two jobs:

* ``normalise_address`` turns an ORGANIZER/ATTENDEE value or a login into one comparable form:
  Yandex writes one mailbox under several domains (``@ya.ru``, ``@yandex.com``, …), so "me"
  must be folded to ``@yandex.ru`` the same way as every attendee (see docs/yandex-caldav.md).
* ``find_join_link`` picks the video-call link of an event: Telemost's own
  ``X-TELEMOST-CONFERENCE`` first, else the first known video link in CONFERENCE, LOCATION,
  DESCRIPTION, URL. ``URL`` on a Yandex event is the calendar's event page, never the call.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "TELEMOST_PROPERTY",
    "find_join_link",
    "find_video_link",
    "is_video_host",
    "normalise_address",
    "telemost_link",
]

TELEMOST_PROPERTY = "X-TELEMOST-CONFERENCE"

# Domains Yandex treats as one mailbox: the same person may appear under any of them.
_YANDEX_ALIASES = frozenset(
    {"ya.ru", "yandex.com", "yandex.by", "yandex.kz", "yandex.ua", "narod.ru"}
)
_MAILTO = "mailto:"

# Properties scanned for a video link, in priority order (after X-TELEMOST-CONFERENCE).
_LINK_PROPERTIES = ("CONFERENCE", "LOCATION", "DESCRIPTION", "URL")

# A candidate link in prose: with a scheme, or a bare "host.tld/path" (Google Meet and Zoom
# links are often pasted into LOCATION without "https://"). The look-behind keeps e-mail
# addresses ("x@zoom.us") and the middle of longer words out.
_CANDIDATE = re.compile(
    r"""https?://[^\s<>"'`]+"""
    r"""|(?<![\w@./:-])(?:[a-z0-9-]+\.)+[a-z]{2,}/[^\s<>"'`]*""",
    re.IGNORECASE,
)
# Punctuation that ends a sentence rather than a URL.
_TRAILING = ".,;:!?'\"»“”’…*_~"
_BRACKETS = {")": "(", "]": "[", "}": "{", ">": "<"}


def normalise_address(value: Any) -> str:
    """Return the comparable form of a calendar address or login.

    Strips ``mailto:`` (any case, repeated), surrounding blanks and angle brackets, lower-cases,
    and folds Yandex's alias domains (ya.ru, yandex.com/.by/.kz/.ua, narod.ru) to yandex.ru.
    Idempotent: ``normalise_address(normalise_address(x)) == normalise_address(x)``.
    """
    text = str(value).strip().lower()
    while True:
        before = text
        if text.startswith("<") and text.endswith(">"):
            text = text[1:-1].strip()
        if text.startswith(_MAILTO):
            text = text[len(_MAILTO) :].strip()
        if text == before:
            break
    local, at, domain = text.rpartition("@")
    if at and domain in _YANDEX_ALIASES:
        return f"{local}@yandex.ru"
    return text


def is_video_host(host: str) -> bool:
    """True for hosts of the video services we offer as a join link."""
    host = host.lower().rstrip(".")
    return (
        host in ("telemost.yandex.ru", "telemost.360.yandex.ru")
        or host == "zoom.us"
        or host.endswith(".zoom.us")
        or host == "meet.google.com"
        or host in ("teams.microsoft.com", "teams.live.com")
        or host == "meet.jit.si"
        or "jitsi" in host
        or host == "salutejazz.ru"
        or host.endswith(".salutejazz.ru")
    )


def _is_calendar_page(url: str) -> bool:
    """True for the Yandex Calendar web page of an event (the URL property), not a call."""
    host = _host(url)
    return host is not None and (host == "calendar.yandex.ru" or host.startswith("calendar."))


def _host(url: str) -> str | None:
    try:
        return urlsplit(url if "://" in url else f"https://{url}").hostname
    except ValueError:  # e.g. "Port out of range", bad IPv6 brackets
        return None


def _trim(url: str) -> str:
    """Drop punctuation that belongs to the sentence around a link, not to the link."""
    while url:
        last = url[-1]
        # sentence punctuation, or a closing bracket that the link itself did not open
        if last in _TRAILING or (last in _BRACKETS
                                 and url.count(_BRACKETS[last]) < url.count(last)):
            url = url[:-1]
        else:
            break
    return url


def find_video_link(text: str) -> str | None:
    """Return the first video-call link (Telemost, Zoom, Meet, Teams, Jitsi, SaluteJazz) in
    free text, without trailing punctuation and with ``https://`` added to bare links."""
    if not text:
        return None
    for match in _CANDIDATE.finditer(str(text)):
        url = _trim(match.group(0))
        if "://" not in url:
            url = f"https://{url}"
        host = _host(url)
        if host and is_video_host(host):
            return url
    return None


def _values(component: Any, name: str) -> list[str]:
    """All values of a property as text; a repeated property gives a list in icalendar."""
    value = component.get(name)
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [str(v) for v in values]


def telemost_link(component: Any) -> str | None:
    """The component's own ``X-TELEMOST-CONFERENCE`` link, if any."""
    for value in _values(component, TELEMOST_PROPERTY):
        found = _CANDIDATE.search(value.strip())
        if found:
            url = _trim(found.group(0))
            return url if "://" in url else f"https://{url}"
    return None


def find_join_link(component: Any) -> str | None:
    """Return the join link of an icalendar component (a VEVENT), or None.

    ``X-TELEMOST-CONFERENCE`` wins; otherwise the first video link found in CONFERENCE,
    LOCATION, DESCRIPTION, URL, in that order. A URL that is the calendar's own event page
    (``calendar.yandex.ru/...``) is never a join link.
    """
    link = telemost_link(component)
    if link:
        return link
    for name in _LINK_PROPERTIES:
        for value in _values(component, name):
            if name == "URL" and _is_calendar_page(value.strip()):
                continue
            link = find_video_link(value)
            if link:
                return link
    return None
