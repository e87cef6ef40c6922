"""Small Yandex-shaped ICS documents built in tests (times in Europe/Moscow)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

MSK = ZoneInfo("Europe/Moscow")

VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Moscow
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0300
TZOFFSETTO:+0300
TZNAME:MSK
END:STANDARD
END:VTIMEZONE"""


def event(uid: str, start: datetime, end: datetime, title: str = "Sync", *,
          telemost: str | None = "https://telemost.yandex.ru/j/12345678901234",
          location: str = "", status: str = "CONFIRMED", organizer: str = "boss@yandex.ru",
          attendees: dict[str, str] | None = None, stamp: str = "20261120T100000Z",
          transp: str = "OPAQUE", extra: str = "") -> str:
    """One VEVENT in a VCALENDAR; ``attendees`` maps address → PARTSTAT."""
    fmt = "%Y%m%dT%H%M%S"
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Yandex LLC//Yandex Calendar//EN",
        VTIMEZONE, "BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{stamp}", f"LAST-MODIFIED:{stamp}",
        f"DTSTART;TZID=Europe/Moscow:{start.astimezone(MSK).strftime(fmt)}",
        f"DTEND;TZID=Europe/Moscow:{end.astimezone(MSK).strftime(fmt)}",
        f"SUMMARY:{title}", f"STATUS:{status}", f"TRANSP:{transp}", "SEQUENCE:0",
        f"URL:https://calendar.yandex.ru/event?event_id={abs(hash(uid)) % 10**8}",
        f"ORGANIZER;CN=Boss:mailto:{organizer}",
    ]
    if telemost:
        lines.append(f"X-TELEMOST-CONFERENCE:{telemost}")
    if location:
        lines.append(f"LOCATION:{location}")
    for address, partstat in (attendees or {}).items():
        lines.append(f"ATTENDEE;PARTSTAT={partstat};CN={address.split('@')[0]}:mailto:{address}")
    if extra:
        lines.append(extra)
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"
