"""What one tick decides for one account: reminders, the morning agenda, the wanted status,
and when anything can next be due. Pure: the account's stored state and ``now`` come in, a
``TickPlan`` goes out; the engine records its notices and hands the status on."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.daily import DailyPlan, agenda_due, next_agenda_at
from bot.core.model import Account, Notice, Occurrence
from bot.core.notices import agenda_message, reminder_notice
from bot.core.reminders import due_reminders, is_remindable
from bot.core.status import BotStatus, busy_block_end

AGENDA_GRACE = timedelta(hours=2)  # a late agenda is still sent this long after its time
MAX_SLEEP = timedelta(hours=1)  # an account is looked at at least this often


@dataclass(frozen=True)
class AccountState:
    """What the database says about one account, as the planner needs it."""

    account: Account
    upcoming: Sequence[Occurrence]  # stored occurrences around now (a day back, two ahead)
    reminded: Collection[str]  # ids of reminders already recorded
    agenda_last: date | None  # the last agenda day recorded
    marker: BotStatus | None  # the status the bot last set
    fresh: bool  # a poll has run since the bot (re)started holding the account


@dataclass(frozen=True)
class TickPlan:
    notices: list[Notice] = field(default_factory=list)
    covered: list[str] = field(default_factory=list)  # reminder ids a sent one stands for
    status_end: datetime | None = None  # end of the busy block the status should show
    wake_at: datetime | None = None  # nothing above can change before this


def plan_tick(state: AccountState, now: datetime, *,
              lookahead: timedelta = timedelta(0)) -> TickPlan:
    """Reminders due now (or within ``lookahead``), the agenda if due, the wanted status and
    the next wake-up.

    A reminder due within ``lookahead`` is decided now and carries its due time as
    ``not_before``: the sender posts it at that moment instead of at the first tick after it,
    so the tick's period does not add to its lateness. The agenda waits for a poll since the
    start (``fresh``): built from the snapshot stored before the bot went down, it could list
    a meeting deleted meanwhile.
    """
    account = state.account
    tz = ZoneInfo(account.timezone)
    settings = account.notifications
    notices: list[Notice] = []
    covered: list[str] = []
    if settings.leads:
        at = now + lookahead
        for rem in due_reminders(state.upcoming, leads=settings.leads, now=at,
                                 already=state.reminded):
            notice = reminder_notice(rem, tz, account.language, max(now, rem.due_at))
            if rem.due_at > now:
                notice = replace(notice, not_before=rem.due_at)
            notices.append(notice)
            covered += [c for c in rem.covers if c != rem.notice_id]
    if settings.daily_at and state.fresh:
        plan = DailyPlan(time.fromisoformat(settings.daily_at), settings.daily_weekdays)
        day = agenda_due(plan, tz=tz, now=now, last_sent=state.agenda_last, grace=AGENDA_GRACE)
        if day is not None:
            notices.append(Notice(
                f"agenda|{day.isoformat()}", "agenda",
                agenda_message(state.upcoming, day, tz, account.language),
                expires_at=now + AGENDA_GRACE))
    status_end = busy_block_end(state.upcoming, now=now) if settings.status else None
    return TickPlan(notices=notices, covered=covered, status_end=status_end,
                    wake_at=next_wake(state, now, lookahead=lookahead))


def next_wake(state: AccountState, now: datetime, *,
              lookahead: timedelta = timedelta(0)) -> datetime:
    """The first moment after ``now`` at which a reminder (``lookahead`` before it is due),
    the agenda or the busy block can change: a reminder's due time, the agenda's time, a
    meeting's start or end, the bot's status expiry. Until then the tick skips this account."""
    settings = state.account.notifications
    moments = [now + MAX_SLEEP]
    leads = [timedelta(minutes=lead) for lead in settings.leads if lead > 0]
    for occ in state.upcoming:
        moments += [m for m in (occ.start, occ.end) if m > now]
        if leads and is_remindable(occ):
            moments += [wake for lead in leads if (wake := occ.start - lead - lookahead) > now]
    if settings.daily_at:
        plan = DailyPlan(time.fromisoformat(settings.daily_at), settings.daily_weekdays)
        moments.append(next_agenda_at(plan, tz=ZoneInfo(state.account.timezone), now=now))
    if state.marker is not None:
        moments.append(state.marker.expires_at)
    return min(moments)
