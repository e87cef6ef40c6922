"""Time zone names typed by users: exact IANA names, any case, or a unique city; otherwise a
"did you mean" suggestion."""

from __future__ import annotations

import difflib
from functools import cache
from zoneinfo import available_timezones

from bot.errors import BadInput


@cache
def _zones() -> dict[str, str]:
    """lower-case name → canonical IANA name (only Area/City names and UTC)."""
    names = {z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/"))}
    names.add("UTC")
    return {name.lower(): name for name in names}


@cache
def _cities() -> dict[str, list[str]]:
    by_city: dict[str, list[str]] = {}
    for name in _zones().values():
        city = name.rsplit("/", 1)[-1].lower()
        by_city.setdefault(city, []).append(name)
        by_city.setdefault(city.replace("_", " "), []).append(name)
    return by_city


def resolve_zone(value: str) -> str:
    """Canonical IANA name for what the user typed, or BadInput with a suggestion."""
    typed = value.strip()
    key = typed.lower()
    zones = _zones()
    if key in zones:
        return zones[key]
    matches = sorted(set(_cities().get(key, [])))
    if len(matches) == 1:
        return matches[0]
    close = difflib.get_close_matches(key, list(zones), n=1, cutoff=0.6)
    if close:
        raise BadInput("error.unknown_zone_suggest", value=typed[:40], suggestion=zones[close[0]])
    city = difflib.get_close_matches(key, list(_cities()), n=1, cutoff=0.7)
    if city:
        suggestion = sorted(_cities()[city[0]])[0]
        raise BadInput("error.unknown_zone_suggest", value=typed[:40], suggestion=suggestion)
    raise BadInput("error.unknown_zone", value=typed[:40])
