"""The "📆 In a meeting" custom status: a pure decision, no I/O, no clock.

The shell reads the user's presence and custom status from Mattermost
(:class:`CurrentStatus`), keeps what the bot itself last set (:class:`BotStatus`), and asks
:func:`decide_status` what to do: :class:`Keep`, :class:`Set` or :class:`Clear`.

Choices (the bot never tramples a status the user set by hand, and never overrides Do Not
Disturb):

- **Whose status is it.** The current status is the bot's when its emoji and text equal
  what the bot last set (text compared after Mattermost's 100-character cut). Any other
  non-empty status is the user's and is left alone: we never overwrite it, and since we
  never overwrite it there is nothing to restore afterwards either. A status whose
  ``expires_at`` has passed counts as empty, whatever the server still reports.
- **Do Not Disturb.** While presence is ``dnd`` the bot never *sets* a status (no new
  one, no extended one). It may still *clear* its own status when no meeting is running:
  that removes only what the bot put there and changes nothing about DND.
- **Busy block.** Busy occurrences are timed, opaque, not declined, not cancelled. The
  block starts from those in progress at ``now`` and absorbs every busy occurrence that
  overlaps or touches it; a gap of at most one minute counts as touching (calendars
  often end a meeting at :59 or start the next at :01, and a one-minute flicker of the
  status would be noise). The status expires at the end of the block, so Mattermost
  removes it by itself even if the bot is down.
- **The block changed.** If our status is up and the block now ends elsewhere (a meeting
  was moved, extended, or cancelled), the status is set again with the new expiry; if no
  block is left, it is cleared early.
- **The user cleared ours.** If the status is empty while the bot's last status was for
  this very block (same expiry, not yet expired), the user removed it by hand: Keep.
  It comes back only for a block with another end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.model import Occurrence

STATUS_EMOJI = "calendar"  # 📆
MAX_TEXT = 100  # Mattermost cuts custom status text to 100 characters
TOUCHING_GAP = timedelta(minutes=1)
_SAME_EXPIRY = timedelta(seconds=1)  # expires_at round-trips as RFC 3339: sub-seconds may go
DND = "dnd"


@dataclass(frozen=True)
class CurrentStatus:
    """What Mattermost says now: presence ("online", "away", "dnd", "offline") and the
    custom status; the three custom fields are None when there is none."""

    presence: str
    emoji: str | None
    text: str | None
    expires_at: datetime | None


@dataclass(frozen=True)
class BotStatus:
    """The custom status the bot last set, as the shell stored it."""

    emoji: str
    text: str
    expires_at: datetime


@dataclass(frozen=True)
class Keep:
    """Do nothing."""


@dataclass(frozen=True)
class Set:
    """Put the bot's status up (or replace the bot's own one) until ``expires_at``."""

    emoji: str
    text: str
    expires_at: datetime


@dataclass(frozen=True)
class Clear:
    """Remove the custom status; only ever returned when it is the bot's."""


StatusDecision = Keep | Set | Clear


def decide_status(
    occurrences: Iterable[Occurrence],
    *,
    now: datetime,
    current: CurrentStatus,
    last_set: BotStatus | None,
    text: str,
) -> StatusDecision:
    """What to do with the user's custom status at ``now`` (rules in the module doc)."""
    block_end = busy_block_end(occurrences, now=now)
    empty = _is_empty(current, now)
    ours = not empty and _is_ours(current, last_set)
    if not empty and not ours:
        return Keep()  # the user's own status
    if block_end is None:
        return Clear() if ours else Keep()
    if current.presence == DND:
        return Keep()
    if ours and _same_instant(current.expires_at, block_end):
        return Keep()
    if empty and last_set is not None and _same_instant(last_set.expires_at, block_end):
        return Keep()  # the user cleared our status during this block
    return Set(emoji=STATUS_EMOJI, text=text[:MAX_TEXT], expires_at=block_end)


def is_busy(occurrence: Occurrence) -> bool:
    """Occurrences that make the user busy: timed, opaque, not declined, not cancelled."""
    return not (
        occurrence.all_day or occurrence.transparent or occurrence.declined or occurrence.cancelled
    )


def busy_block_end(occurrences: Iterable[Occurrence], *, now: datetime) -> datetime | None:
    """End of the busy block running at ``now`` (see module doc), or None when free."""
    busy = sorted((o for o in occurrences if is_busy(o) and o.end > now), key=lambda o: o.start)
    running = [o.end for o in busy if o.start <= now]
    if not running:
        return None
    end = max(running)
    for occurrence in busy:  # sorted by start: one pass absorbs chains
        if occurrence.start > end + TOUCHING_GAP:
            break
        end = max(end, occurrence.end)
    return end


def _is_empty(current: CurrentStatus, now: datetime) -> bool:
    if not current.emoji and not current.text:
        return True
    return current.expires_at is not None and current.expires_at <= now


def _is_ours(current: CurrentStatus, last_set: BotStatus | None) -> bool:
    if last_set is None:
        return False
    return current.emoji == last_set.emoji and (current.text or "") == last_set.text[:MAX_TEXT]


def _same_instant(a: datetime | None, b: datetime) -> bool:
    return a is not None and abs(a - b) < _SAME_EXPIRY
