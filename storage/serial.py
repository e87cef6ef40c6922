"""Occurrence ↔ JSON for the stored snapshot."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.core.model import Attendee, Occurrence


def dump_occurrence(occ: Occurrence) -> str:
    data: dict[str, Any] = {
        "calendar": occ.calendar, "uid": occ.uid, "rid": occ.recurrence_id,
        "start": occ.start.isoformat(), "end": occ.end.isoformat(), "all_day": occ.all_day,
        "title": occ.title, "location": occ.location, "link": occ.link, "status": occ.status,
        "transparent": occ.transparent, "organizer": occ.organizer,
        "organizer_name": occ.organizer_name,
        "attendees": [[a.email, a.name, a.partstat] for a in occ.attendees],
        "my_partstat": occ.my_partstat, "organized_by_me": occ.organized_by_me, "href": occ.href,
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def load_occurrence(text: str) -> Occurrence:
    data = json.loads(text)
    return Occurrence(
        calendar=data["calendar"], uid=data["uid"], recurrence_id=data["rid"],
        start=datetime.fromisoformat(data["start"]), end=datetime.fromisoformat(data["end"]),
        all_day=data["all_day"], title=data["title"], location=data["location"],
        link=data["link"], status=data["status"], transparent=data["transparent"],
        organizer=data["organizer"], organizer_name=data["organizer_name"],
        attendees=tuple(Attendee(*a) for a in data["attendees"]),
        my_partstat=data["my_partstat"], organized_by_me=data["organized_by_me"],
        href=data["href"],
    )
