"""`accept` typed in a notice's thread the moment the notice appeared: the sender records the
post id right after Mattermost's answer, so the plugin looks the thread up again for a moment
before it says the thread is not an invitation's."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from plugins.calendar import THREAD_LOOKUP_PAUSE, THREAD_LOOKUP_TRIES, CalendarPlugin


class _Outbox:
    def __init__(self, known_after: int | None) -> None:
        self.known_after, self.lookups = known_after, 0

    def notice_of_post(self, user_id: str, post_id: str) -> Any:
        self.lookups += 1
        if self.known_after is not None and self.lookups > self.known_after:
            return SimpleNamespace(post_id=post_id, user_id=user_id)
        return None


def _plugin(outbox: _Outbox) -> tuple[CalendarPlugin, list[float]]:
    plugin = CalendarPlugin(SimpleNamespace(outbox=outbox),  # type: ignore[arg-type]
                            clock=lambda: datetime(2026, 12, 2, tzinfo=UTC))
    pauses: list[float] = []
    plugin.sleep = pauses.append
    return plugin, pauses


def test_a_thread_recorded_a_moment_later_is_found() -> None:
    outbox = _Outbox(known_after=3)
    plugin, pauses = _plugin(outbox)
    found = plugin._notice_in_thread("u1", "post-1")
    assert found is not None
    assert found.post_id == "post-1"
    assert pauses == [THREAD_LOOKUP_PAUSE] * 3


def test_a_thread_that_is_no_notice_is_given_up_after_a_bounded_wait() -> None:
    outbox = _Outbox(known_after=None)
    plugin, pauses = _plugin(outbox)
    assert plugin._notice_in_thread("u1", "post-1") is None
    assert outbox.lookups == THREAD_LOOKUP_TRIES
    assert sum(pauses) <= 2.0


def test_no_thread_is_no_lookup() -> None:
    outbox = _Outbox(known_after=0)
    plugin, _ = _plugin(outbox)
    assert plugin._notice_in_thread("u1", "") is None
    assert outbox.lookups == 0
