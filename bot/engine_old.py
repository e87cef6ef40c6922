"""The notification engine: one short tick on mmpy-bot's scheduler, CalDAV polls on a bounded
worker pool, posts and status calls on a small sender pool.

Every tick decides reminders, the morning agenda and the "In a meeting" status from the stored
snapshot (kept in memory for the next two days), so their timing never depends on the poll
interval, and one slow account never delays another's notices. Every notice is recorded in the
database before it is sent and marked after Mattermost accepted it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.adapters.mattermost import Profile, StatusRefused
from bot.core.changes import diff_snapshots
from bot.core.daily import DailyPlan, agenda_due, next_agenda_at
from bot.core.ical import parse_occurrences
from bot.core.markdown import escape
from bot.core.model import Account, Notice, Occurrence
from bot.core.notices import (
    agenda_message,
    change_notices,
    reminder_message,
)
from bot.core.reminders import due_reminders, is_remindable, next_reminder
from bot.core.status import BotStatus, Clear, CurrentStatus, Set, busy_block_end, decide_status
from bot.core.texts import t
from bot.errors import AuthRefused, CalendarError, IcsError
from bot.ports import CalendarSource
from bot.services import me_address
from storage.engine_store import EngineStore, PendingNotice, StoredObject
from storage.repository import Repository

log = logging.getLogger(__name__)

WINDOW_BACK = timedelta(days=1)
WINDOW_DAYS = 8  # polled window: yesterday … a week ahead (the `week` view, change notices)
HORIZON_BACK = timedelta(hours=26)  # the tick's in-memory view around now
HORIZON_AHEAD = timedelta(hours=50)
MAX_BACKOFF = timedelta(minutes=30)
AUTH_PROBE = timedelta(minutes=30)  # a refused password is retried this seldom
STATUS_RECHECK = timedelta(minutes=5)
KEEP_NOTICES = timedelta(days=3)
ACCOUNTS_REFRESH = timedelta(seconds=30)  # settings changed in chat apply within this (or at once,
# when the plugin calls accounts_changed())
MAX_SLEEP = timedelta(hours=1)  # an account is looked at at least this often


class MessengerPort(Protocol):
    def direct(self, user_id: str, message: str, root_id: str = "") -> list[str]: ...
    def profile(self, user_id: str) -> Profile: ...
    def presence(self, user_id: str) -> str: ...
    def set_custom_status(self, user_id: str, emoji: str, text: str,
                          expires_at: datetime) -> None: ...
    def clear_custom_status(self, user_id: str) -> None: ...


def window_for(now: datetime) -> tuple[datetime, datetime]:
    """The polled window, anchored to the UTC day so it moves once a day: an idle poll then
    needs no parsing at all."""
    anchor = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    return anchor - WINDOW_BACK, anchor + timedelta(days=WINDOW_DAYS)


@dataclass
class _UserState:
    next_poll: datetime
    failures: int = 0
    upcoming: list[Occurrence] = field(default_factory=list)
    reminded: set[str] = field(default_factory=set)
    agenda_last: date | None = None
    marker: BotStatus | None = None  # what the bot last set as the user's custom status
    status_checked: tuple[datetime | None, datetime] | None = None  # (desired, when)
    # Nothing this account's tick decides (reminders, agenda, status) can change before
    # wake_at; None = look at it on the next tick (new snapshot, new settings, ...).
    wake_at: datetime | None = None
    settings: tuple[Any, ...] | None = None  # (zone, language, notifications) last looked at
    synced: bool = False  # a poll has stored a snapshot (gates the agenda)


class Engine:
    def __init__(
        self,
        *,
        repo: Repository,
        store: EngineStore,
        source: CalendarSource,
        messenger: Callable[[], MessengerPort],
        clock: Callable[[], datetime],
        poll_seconds: int,
        workers: int = 8,
        senders: int = 4,
        rng: random.Random | None = None,
    ) -> None:
        self.repo = repo
        self.store = store
        self.source = source
        self._messenger = messenger
        self.clock = clock
        self.poll_interval = timedelta(seconds=poll_seconds)
        self._rng = rng or random.Random()
        self._polls = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="yc-poll")
        self._sends = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="yc-send")
        self._lock = threading.RLock()
        self._users: dict[str, _UserState] = {}
        self._polling: set[str] = set()
        self._sending: set[int] = set()
        self._status_busy: set[str] = set()
        self._loaded = False
        self._last_prune: datetime | None = None
        self._futures: set[Future[None]] = set()
        self._accounts: list[Account] = []
        self._accounts_at: datetime | None = None
        self.ticks = 0

    def _submit(self, pool: ThreadPoolExecutor, job: Callable[..., None], *args: Any) -> None:
        future = pool.submit(job, *args)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget_future)

    def _forget_future(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until the polls, posts and status calls handed out so far are done (tests,
        benchmarks, shutdown)."""
        with self._lock:
            pending = list(self._futures)
        wait(pending, timeout=timeout)

    # -- lifecycle ----------------------------------------------------------------------------
    def register(self, scheduler: Any, tick_seconds: float) -> None:
        """One short job on mmpy-bot's scheduler (the global ``schedule``): no second loop."""
        scheduler.every(tick_seconds).seconds.do(self.tick)

    def accounts_changed(self) -> None:
        """An account was connected, changed or removed: re-read the accounts on the next tick."""
        self._accounts_at = None

    def shutdown(self) -> None:
        self._polls.shutdown(wait=False, cancel_futures=True)
        self._sends.shutdown(wait=False, cancel_futures=True)

    def _load(self, now: datetime) -> None:
        """Rebuild the in-memory view after a start: snapshot, what was already decided."""
        upcoming = self.store.upcoming(now - HORIZON_BACK, now + HORIZON_AHEAD)
        reminded = self.store.notice_ids_since(now - KEEP_NOTICES, "rem|")
        agendas = self.store.notice_ids_since(now - KEEP_NOTICES, "agenda|")
        markers = self.store.status_markers()
        for account in self.repo.accounts():
            # accounts with a stored snapshot spread their first polls over one interval
            state = self._state(account.user_id, now, initial=account.last_sync_at is not None)
            state.upcoming = upcoming.get(account.user_id, [])
            state.reminded = reminded.get(account.user_id, set())
            days = [date.fromisoformat(i.split("|", 1)[1]) for i in agendas.get(account.user_id, ())]
            state.agenda_last = max(days, default=None)
            state.marker = markers.get(account.user_id)
            state.synced = account.last_sync_at is not None
        self._loaded = True

    def _state(self, user_id: str, now: datetime, initial: bool = False) -> _UserState:
        state = self._users.get(user_id)
        if state is None:
            # spread the first polls of a restart over one interval; a new account polls now
            delay = self._rng.uniform(0, self.poll_interval.total_seconds()) if initial else 0
            state = _UserState(next_poll=now + timedelta(seconds=delay))
            self._users[user_id] = state
        return state

    # -- the tick -----------------------------------------------------------------------------
    def tick(self) -> None:
        """Decide and dispatch; never waits for the network. Cheap when little is due: the
        accounts are cached, an account is looked at only when something can be due
        (``wake_at``), and the tick's notices are recorded in one transaction."""
        now = self.clock()
        try:
            if not self._loaded:
                self._load(now)
            accounts = self._current_accounts(now)
            decided: dict[str, tuple[list[Notice], list[str]]] = {}
            for account in accounts:
                try:
                    found = self._tick_account(account, now)
                except Exception:
                    log.exception("tick.account_failed user=%s", account.user_id)
                    continue
                if found is not None:
                    decided[account.user_id] = found
            if decided:
                try:
                    self._record(decided, now)
                except Exception:
                    log.exception("tick.record_failed users=%d", len(decided))
            self._dispatch_pending(now)
            if self._last_prune is None or now - self._last_prune > timedelta(hours=1):
                self.store.prune(now - KEEP_NOTICES)
                self._last_prune = now
        except Exception:
            log.exception("tick.failed")
        self.ticks += 1

    def _current_accounts(self, now: datetime) -> list[Account]:
        """The accounts, re-read from the database every ACCOUNTS_REFRESH (reading 1000 rows
        each tick costs ~50 ms and, under load, seconds of waiting for the GIL)."""
        if self._accounts_at is None or now - self._accounts_at >= ACCOUNTS_REFRESH:
            self._accounts = self.repo.accounts()
            self._accounts_at = now
            known = {a.user_id for a in self._accounts}
            with self._lock:
                for gone in set(self._users) - known:
                    del self._users[gone]
        return self._accounts

    def _record(self, decided: dict[str, tuple[list[Notice], list[str]]], now: datetime) -> None:
        """Record the tick's notices in one transaction, then remember them in memory."""
        # covered ids (coinciding lead times) are recorded as dropped: never sent, never due
        try:
            self.store.record_many({
                user: notices + [Notice(c, "covered", "", expires_at=now) for c in covered]
                for user, (notices, covered) in decided.items()
            }, now)
        except Exception:
            for user in decided:  # not recorded: decide them again on the next tick
                if (state := self._users.get(user)) is not None:
                    state.wake_at = None
            raise
        for user, (notices, covered) in decided.items():
            state = self._users.get(user)
            if state is None:
                continue
            for notice in notices:
                if notice.kind == "reminder":
                    state.reminded.add(notice.notice_id)
                elif notice.kind == "agenda":
                    state.agenda_last = date.fromisoformat(notice.notice_id.split("|", 1)[1])
            state.reminded.update(covered)

    def _tick_account(self, account: Account,
                      now: datetime) -> tuple[list[Notice], list[str]] | None:
        """Notices due for this account (to record), or None when there are none."""
        user = account.user_id
        with self._lock:
            state = self._state(user, now)
            if user not in self._polling and now >= state.next_poll:
                self._polling.add(user)
                self._submit(self._polls, self._poll_job, user)
            settings_key = (account.timezone, account.language, account.notifications)
            if settings_key != state.settings:
                state.settings, state.wake_at = settings_key, None
            if state.wake_at is not None and now < state.wake_at:
                return None
            upcoming = state.upcoming
        tz = ZoneInfo(account.timezone)
        settings = account.notifications
        notices: list[Notice] = []
        covered: list[str] = []
        if settings.leads:
            for rem in due_reminders(upcoming, leads=settings.leads, now=now,
                                     already=state.reminded):
                notices.append(Notice(
                    rem.notice_id, "reminder", reminder_message(rem, tz, account.language, now),
                    expires_at=rem.occurrence.start,
                ))
                covered += [c for c in rem.covers if c != rem.notice_id]
        if settings.daily_at and (state.synced or account.last_sync_at is not None):
            plan = DailyPlan(time.fromisoformat(settings.daily_at), settings.daily_weekdays)
            day = agenda_due(plan, tz=tz, now=now, last_sent=state.agenda_last)
            if day is not None:
                notices.append(Notice(
                    f"agenda|{day.isoformat()}", "agenda",
                    agenda_message(upcoming, day, tz, account.language),
                    expires_at=now + timedelta(hours=2),
                ))
        wake = min(self._tick_status(account, state, now),
                   self._next_wake(account, upcoming, state.marker, now))
        with self._lock:
            if state.upcoming is upcoming:  # else a poll just stored a newer snapshot
                state.wake_at = wake
        return (notices, covered) if notices or covered else None

    def _next_wake(self, account: Account, upcoming: list[Occurrence],
                   marker: BotStatus | None, now: datetime) -> datetime:
        """The first moment after ``now`` at which a reminder, the agenda or the busy block
        can change: a reminder's due time, the agenda's time, a meeting's start or end, the
        bot's status expiry. Until then the tick skips this account."""
        settings = account.notifications
        moments = [now + MAX_SLEEP]
        leads = [timedelta(minutes=lead) for lead in settings.leads if lead > 0]
        for occ in upcoming:
            moments += [m for m in (occ.start, occ.end) if m > now]
            if leads and is_remindable(occ):
                moments += [due for lead in leads if (due := occ.start - lead) > now]
        if settings.daily_at:
            plan = DailyPlan(time.fromisoformat(settings.daily_at), settings.daily_weekdays)
            moments.append(next_agenda_at(plan, tz=ZoneInfo(account.timezone), now=now))
        if marker is not None:
            moments.append(marker.expires_at)
        return min(moments)

    # -- status ------------------------------------------------------------------------------
    def _tick_status(self, account: Account, state: _UserState, now: datetime) -> datetime:
        """Hand a status check to the sender pool only when the wanted expiry differs from
        what the bot last set; a Keep (the user's own status, DND) is re-checked seldom.
        Returns when to look again for the status' sake alone."""
        user = account.user_id
        wanted = busy_block_end(state.upcoming, now=now) if account.notifications.status else None
        marker = state.marker
        if marker is not None and marker.expires_at <= now:
            # Mattermost removed it by itself at its expiry
            state.marker = marker = None
            self.store.set_status_marker(user, None)
        if wanted == (marker.expires_at if marker else None):
            return now + MAX_SLEEP
        checked = state.status_checked
        if checked and checked[0] == wanted and now - checked[1] < STATUS_RECHECK:
            return checked[1] + STATUS_RECHECK
        with self._lock:
            if user in self._status_busy:
                return now  # a check is running: look again on the next tick
            self._status_busy.add(user)
        state.status_checked = (wanted, now)
        self._submit(self._sends, self._status_job, account, state)
        return now + STATUS_RECHECK

    def _status_job(self, account: Account, state: _UserState) -> None:
        user = account.user_id
        now = self.clock()
        occurrences = list(state.upcoming)
        try:
            messenger = self._messenger()
            profile = messenger.profile(user)
            raw = profile.custom_status or {}
            expires = _parse_time(raw.get("expires_at"))
            current = CurrentStatus(
                presence=messenger.presence(user),
                emoji=raw.get("emoji") or None,
                text=raw.get("text") or None,
                expires_at=expires,
            )
            last = state.marker
            if not account.notifications.status:
                occurrences = []
            decision = decide_status(occurrences, now=now, current=current, last_set=last,
                                     text=t(account.language, "status.text"))
            if isinstance(decision, Set):
                messenger.set_custom_status(user, decision.emoji, decision.text,
                                            decision.expires_at)
                state.marker = BotStatus(decision.emoji, decision.text, decision.expires_at)
                self.store.set_status_marker(user, state.marker)
                log.info("status.set user=%s expires=%s", user, decision.expires_at.isoformat())
            elif isinstance(decision, Clear):
                messenger.clear_custom_status(user)
                state.marker = None
                self.store.set_status_marker(user, None)
                log.info("status.cleared user=%s", user)
            # Keep: the marker stays, even if the user removed our status by hand, so the same
            # block is not set again; it is forgotten at its expiry (see _tick_status).
        except StatusRefused as refused:
            self._status_refused(account, refused.code, now)
        except Exception:
            log.warning("status.failed user=%s", user, exc_info=True)
        finally:
            with self._lock:
                self._status_busy.discard(user)

    def _status_refused(self, account: Account, code: int, now: datetime) -> None:
        """403/501: tell the user once what the admin must enable; stop trying for them."""
        log.warning("status.refused user=%s code=%s", account.user_id, code)
        self.store.block_status(account.user_id)
        lang = account.language
        message = t(lang, "notice.status_forbidden", reason=f"HTTP {code}",
                    fix=t(lang, "status.fix403" if code == 403 else "status.fix501"))
        self.store.record_notices(
            account.user_id,
            [Notice(f"status-refused|{now:%Y%m%dT%H%M%S}", "system", message)], now)

    def clear_status_now(self, user_id: str) -> None:
        """Disconnect: clear a status the bot set, only if it is still the bot's."""
        marker = self.store.status_marker(user_id)
        if marker is None:
            return
        try:
            messenger = self._messenger()
            raw = messenger.profile(user_id).custom_status or {}
            if raw.get("emoji") == marker.emoji and raw.get("text") == marker.text:
                messenger.clear_custom_status(user_id)
        except Exception:
            log.warning("status.clear_failed user=%s", user_id, exc_info=True)

    # -- sending ------------------------------------------------------------------------------
    def _dispatch_pending(self, now: datetime) -> None:
        for notice in self.store.pending(now):
            with self._lock:
                if notice.pk in self._sending:
                    continue
                self._sending.add(notice.pk)
            self._submit(self._sends, self._send_job, notice)

    def _send_job(self, notice: PendingNotice) -> None:
        now = self.clock()
        try:
            if not self.store.still_pending(notice.pk):
                return  # posted by a job that finished after this tick read `pending`
            if notice.kind == "covered" or (notice.expires_at and now >= notice.expires_at):
                self.store.mark_dropped(notice.pk)
                if notice.kind != "covered":
                    log.info("notice.expired user=%s id=%s", notice.user_id, notice.notice_id)
                return
            root = self.store.thread_post(notice.user_id, notice.thread_key) if notice.thread_key else None
            post_ids = self._messenger().direct(notice.user_id, notice.message, root or "")
            self.store.mark_sent(notice.pk, post_ids[0], self.clock())
            if notice.thread_key and root is None:
                self.store.set_thread_post(notice.user_id, notice.thread_key, post_ids[0])
            log.info("notice.sent user=%s kind=%s", notice.user_id, notice.kind)
        except Exception as exc:
            delay = min(timedelta(seconds=5 * 2 ** notice.attempts), timedelta(minutes=10))
            self.store.mark_failed(notice.pk, now + delay)
            log.warning("notice.failed user=%s id=%s attempt=%s error=%s", notice.user_id,
                        notice.notice_id, notice.attempts + 1, type(exc).__name__)
        finally:
            with self._lock:
                self._sending.discard(notice.pk)

    # -- polling ------------------------------------------------------------------------------
    def _poll_job(self, user: str) -> None:
        now = self.clock()
        state = self._users.get(user)
        try:
            self.poll_account(user, now)
            if state:
                state.failures = 0
                jitter = self._rng.uniform(-0.1, 0.1) * self.poll_interval.total_seconds()
                state.next_poll = now + self.poll_interval + timedelta(seconds=jitter)
        except AuthRefused:
            self._auth_refused(user, now)
            if state:
                state.next_poll = now + AUTH_PROBE
        except Exception as exc:
            log.warning("poll.failed user=%s error=%s", user, type(exc).__name__,
                        exc_info=not isinstance(exc, CalendarError))
            try:
                key = exc.key if isinstance(exc, CalendarError) else "error.internal"
                self.repo.record_error(user, key, now)
            except Exception:
                log.debug("poll.record_error_failed user=%s", user)
            if state:
                state.failures += 1
                backoff = min(self.poll_interval * (2 ** state.failures), MAX_BACKOFF)
                state.next_poll = now + backoff * self._rng.uniform(0.8, 1.2)
        finally:
            with self._lock:
                self._polling.discard(user)

    def _auth_refused(self, user: str, now: datetime) -> None:
        """A 401: "needs a new app password", told once, nothing deleted."""
        account = self.repo.account(user)
        if account is None:
            return
        first = self.store.record_auth_failure(user, "error.stored_password_refused", now)
        log.warning("poll.auth_refused user=%s told=%s", user, not first)
        if first:
            self.store.record_notices(user, [Notice(
                f"auth|{now:%Y%m%dT%H%M%S}", "system", t(account.language, "notice.auth"))], now)

    def poll_account(self, user: str, now: datetime) -> None:
        """One cheap poll: ETags over the window, multiget what changed, check what left;
        re-expand only when something changed or the window moved; diff; store it all with
        its notices in one transaction."""
        found = self.repo.account_with_credentials(user)
        if found is None:
            return
        account, creds = found
        start, end = window_for(now)
        known = self.store.poll_state(user)
        watched = known.watched
        stored = self.store.object_etags(user)
        seen: dict[str, tuple[str, str]] = {}
        for href in list(watched):
            try:
                etags = self.source.etags_in_window(creds, href, start, end)
            except CalendarError as exc:
                if exc.params.get("status") != 404:
                    raise
                # the calendar was deleted in Yandex: take the server's list, go on without it
                log.info("poll.calendar_gone user=%s calendar=%s", user, href)
                self.repo.replace_calendars(user, self.source.list_calendars(creds))
                watched.remove(href)
                continue
            for obj_href, etag in etags.items():
                seen[obj_href] = (href, etag)
        changed = [h for h, (_, etag) in seen.items() if stored.get(h, ("", ""))[1] != etag]
        left = [h for h in stored if h not in seen]
        fetched = {o.href: o for o in self.source.fetch_objects(creds, changed)} if changed else {}
        gone = [h for h in left if stored[h][0] not in watched
                or not self.source.object_exists(creds, h)]
        moved_out = [h for h in left if h not in gone]
        if moved_out:  # still exists, outside the window now: read it to tell where it went
            fetched.update({o.href: o for o in self.source.fetch_objects(creds, moved_out)})

        previous_end = known.window_end
        # Only watched calendars are polled, so only they can be baselined: an unwatched one
        # left unsynced (`calendars 1`, `timezone`) made every later poll a full re-parse.
        unsynced = known.unsynced & set(watched)
        nothing_new = not changed and not left and previous_end == end and not unsynced
        if nothing_new:
            self.store.touch_sync(user, now)
            return

        tz = ZoneInfo(account.timezone)
        me = me_address(account.login)
        objects = self.store.objects(user)
        upsert: dict[str, StoredObject] = {}
        occurrences: list[Occurrence] = []
        elsewhere: list[Occurrence] = []  # new times of meetings moved out of the window
        for href, (calendar, etag) in seen.items():
            raw = fetched.get(href)
            if raw is not None:
                try:
                    occurrences += parse_occurrences(raw.ics, calendar=calendar, href=href,
                                                     start=start, end=end, tz=tz, me=me)
                    upsert[href] = StoredObject(calendar, raw.etag or etag, raw.ics)
                    continue
                except IcsError as exc:
                    log.warning("poll.ics_skipped user=%s href=%s error=%s", user, href, exc)
            old = objects.get(href)
            if old is not None:  # unchanged, or changed but unreadable: keep the last good copy
                occurrences += self._parse_stored(old, href, start, end, tz, me, user)
        for href in moved_out:
            raw = fetched.get(href)
            if raw is not None:
                try:
                    elsewhere += parse_occurrences(
                        raw.ics, calendar=stored[href][0], href=href, start=end,
                        end=end + timedelta(days=366), tz=tz, me=me)
                except IcsError:
                    log.warning("poll.ics_skipped user=%s href=%s", user, href)

        notices: list[Notice] = []
        synced_before = set(watched) - unsynced
        if previous_end is not None and synced_before and (
            account.notifications.changes or account.notifications.responses
        ):
            before = {k: o for k, o in self.store.snapshot(user).items()
                      if o.calendar in synced_before}
            new = {o.key: o for o in occurrences + elsewhere if o.calendar in synced_before}
            diff = diff_snapshots(before, new, now=now, window_end=min(previous_end, end), me=me)
            notices = change_notices(
                diff, changes=account.notifications.changes,
                responses=account.notifications.responses, tz=tz, lang=account.language, now=now)
        recorded = self.store.commit_poll(
            user, upsert=upsert, delete=gone + moved_out, occurrences=occurrences,
            notices=notices, synced_calendars=watched, window_end=end, now=now,
        )
        state = self._users.get(user)
        if state is not None:
            upcoming = [o for o in occurrences
                        if o.end > now - HORIZON_BACK and o.start < now + HORIZON_AHEAD]
            with self._lock:
                state.upcoming = upcoming
                state.synced = True
                state.wake_at = None  # a new snapshot: look at it on the next tick
        log.info("poll.done user=%s changed=%d gone=%d notices=%d", user, len(changed),
                 len(gone), len(recorded))

    def _parse_stored(self, obj: StoredObject, href: str, start: datetime, end: datetime,
                      tz: ZoneInfo, me: str, user: str) -> list[Occurrence]:
        try:
            return parse_occurrences(obj.ics, calendar=obj.calendar, href=href, start=start,
                                     end=end, tz=tz, me=me)
        except IcsError as exc:
            log.warning("poll.ics_skipped user=%s href=%s error=%s", user, href, exc)
            return []

    # -- for `check` --------------------------------------------------------------------------
    def upcoming_info(self, account: Account) -> dict[str, str]:
        now = self.clock()
        tz = ZoneInfo(account.timezone)
        info: dict[str, str] = {}
        settings = account.notifications
        if settings.daily_at:
            plan = DailyPlan(time.fromisoformat(settings.daily_at), settings.daily_weekdays)
            info["next_agenda"] = next_agenda_at(plan, tz=tz, now=now).astimezone(tz).strftime(
                "%d.%m.%Y %H:%M")
        state = self._users.get(account.user_id)
        if settings.leads and state is not None:
            rem = next_reminder(state.upcoming, leads=settings.leads, now=now,
                                already=state.reminded)
            if rem is not None:
                info["next_reminder"] = (
                    rem.due_at.astimezone(tz).strftime("%d.%m.%Y %H:%M") + " — "
                    + (escape(rem.occurrence.title[:60]) or "…")
                )
        return info


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None

