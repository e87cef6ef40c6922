"""Scenario-named ICS fixtures shaped like Yandex Calendar data (tests/fixtures/ics/)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "ics"


def load_ics(name: str) -> str:
    """Return the text of ``tests/fixtures/ics/<name>`` (the ``.ics`` suffix is optional)."""
    filename = name if name.endswith(".ics") else f"{name}.ics"
    return (FIXTURES / filename).read_text(encoding="utf-8")


def fixture_names() -> list[str]:
    """All fixture file names, sorted."""
    return sorted(path.name for path in FIXTURES.glob("*.ics"))
