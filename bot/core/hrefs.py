"""The one spelling of a CalDAV href the bot uses everywhere (keys, stored copies, requests).

An absolute path, percent-encoded one canonical way (``quote(unquote(path), safe="/")``), so
``@`` is ``%40`` exactly as Yandex spells it (``/calendars/alice%40yandex.ru/events-123/``).
caldav decodes hrefs when it parses a multistatus and servers hand them out encoded; both end
up the same here, so hrefs stay stable as keys and can be sent back as they are.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit


def canonical_href(href: str) -> str:
    """Accepts a full URL or a path, encoded or not."""
    path = urlsplit(href).path if "://" in href else href
    if not path.startswith("/"):
        path = "/" + path
    return quote(unquote(path), safe="/")


def new_object_href(calendar_href: str, uid: str) -> str:
    """Where a new object with this UID is stored: ``<calendar>/<uid>.ics``."""
    return canonical_href(canonical_href(calendar_href).rstrip("/") + "/"
                          + quote(uid, safe="") + ".ics")
