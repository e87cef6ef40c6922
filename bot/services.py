"""Use cases behind the chat commands. Each call works on one account (the Mattermost user id
of the message, never a name typed in it) and either completes or changes nothing."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.clock import utc_now
from bot.core.agenda import next_occurrence, range_bounds
from bot.core.changes import thread_key
from bot.core.commands import MeetRequest
from bot.core.daily import DailyPlan, next_agenda_at, scheduled_instant
from bot.core.hrefs import new_object_href
from bot.core.ical import parse_objects, parse_occurrences
from bot.core.ical_write import new_meeting
from bot.core.links import normalise_address
from bot.core.markdown import escape
from bot.core.model import (
    DECLINED,
    Account,
    Answered,
    Credentials,
    MeetingRef,
    Notice,
    NotificationSettings,
    Occurrence,
    RawObject,
    WatchedCalendar,
)
from bot.core.reminders import next_reminder
from bot.core.sync import ObjectCopy, poll_window
from bot.core.texts import language_of
from bot.core.zones import resolve_zone
from bot.errors import AuthRefused, BadInput, NotConnected
from bot.ports import CalendarSource, Profile
from bot.stores import Notices, Snapshots
from bot.version import VERSION
from storage.engine_store import EngineStore
from storage.outbox import OutboxStore
from storage.repository import Repository

log = logging.getLogger(__name__)

STARTED_AT = utc_now()
NEXT_SEARCH_DAYS = 30
SNOOZE = timedelta(minutes=5)


def me_address(login: str) -> str:
    """The account's own address: Yandex accepts a bare login, which means @yandex.ru."""
    return normalise_address(login if "@" in login else f"{login}@yandex.ru")


@dataclass(frozen=True)
class Stats:
    accounts: int
    use: dict[str, int]  # notification → accounts that have it on
    needs_password: int
    errors: dict[str, int]  # error key → accounts whose last poll failed so in the last day
    version: str
    uptime: timedelta


@dataclass(frozen=True)
class Meetings:
    account: Account
    tz: ZoneInfo
    occurrences: list[Occurrence]
    skipped: int  # objects that failed to parse (logged, not shown)


class Services:
    def __init__(
        self,
        repo: Repository,
        source: CalendarSource,
        *,
        clock: Callable[[], datetime],
        default_timezone: str,
        store: Snapshots | None = None,
        outbox: Notices | None = None,
        horizon_days: int = 60,
    ) -> None:
        self.horizon_days = horizon_days
        self.repo = repo
        self.source = source
        self.clock = clock
        self.default_timezone = default_timezone
        self.store: Snapshots = store or EngineStore()
        self.outbox: Notices = outbox or OutboxStore()

    # -- accounts -------------------------------------------------------------------------
    def account(self, user_id: str) -> Account:
        account = self.repo.account(user_id)
        if account is None:
            raise NotConnected()
        return account

    def language(self, user_id: str, locale: Callable[[], str | None]) -> str:
        """The user's reply language: the account's, else from the Mattermost profile's
        locale (``locale()`` reads it; a failure to read it means English)."""
        account = self.repo.account(user_id)
        if account is not None:
            return account.language
        try:
            return language_of(locale())
        except Exception:
            log.warning("profile.read_failed user=%s", user_id)
            return "en"

    def zone(self, user_id: str) -> str:
        """The user's time zone: the account's, else the default one."""
        account = self.repo.account(user_id)
        return account.timezone if account else self.default_timezone

    def _credentials(self, user_id: str) -> Credentials:
        try:
            creds = self.repo.credentials(user_id)
        except ValueError:  # stored under a key no longer configured: ask for a new one
            raise AuthRefused("error.stored_password_refused") from None
        if creds is None:
            raise NotConnected()
        return creds

    def connect(
        self,
        user_id: str,
        login: str,
        password: str,
        *,
        zone: str | None,
        profile_zone: str | None,
        language: str,
    ) -> tuple[Account, list[WatchedCalendar]]:
        """Check the login against the server before saving anything; then store it, in one
        transaction, with the default notifications and every event calendar watched.
        Connecting again (a new password, another login) keeps the user's settings, language
        and zone (unless a zone is given) and, for the same login, the calendar choices."""
        existing = self.repo.account(user_id)
        if zone:
            timezone: str | None = resolve_zone(zone)
        else:
            timezone = None if existing is not None else self._profile_zone(profile_zone)
        creds = Credentials(login.strip(), password)
        calendars = self.source.list_calendars(creds)  # raises AuthRefused / ServerUnavailable
        if not calendars:
            raise BadInput("error.no_calendars")
        account = self.repo.save_account(
            user_id=user_id,
            creds=creds,
            timezone=timezone,
            language=language if existing is None else existing.language,
            calendars=calendars,
            notifications=NotificationSettings(),
            now=self.clock(),
        )
        log.info("account.%s user=%s calendars=%d", "reconnected" if existing else "connected",
                 user_id, len(calendars))
        return account, self.repo.calendars(user_id)

    def _profile_zone(self, profile_zone: str | None) -> str:
        if profile_zone:
            try:
                return resolve_zone(profile_zone)
            except BadInput:
                log.info("account.profile_zone_unknown zone=%s", profile_zone)
        return self.default_timezone

    def disconnect(self, user_id: str) -> bool:
        removed = self.repo.delete_account(user_id)
        if removed:
            log.info("account.disconnected user=%s", user_id)
        return removed

    def change_login(self, user_id: str, login: str) -> Account:
        """Another login with the stored app password, checked first (another Yandex account
        brings its own calendars)."""
        old = self._credentials(user_id)
        return self._reconnect(user_id, Credentials(login.strip(), old.password))

    def change_password(self, user_id: str, password: str) -> Account:
        """A new app password, checked first; polling resumes at once."""
        old = self._credentials(user_id)
        return self._reconnect(user_id, Credentials(old.login, password))

    def _reconnect(self, user_id: str, creds: Credentials) -> Account:
        found = self.source.list_calendars(creds)
        if not found:
            raise BadInput("error.no_calendars")
        current = self.account(user_id)
        return self.repo.save_account(
            user_id=user_id, creds=creds, timezone=None, language=current.language,
            calendars=found, notifications=current.notifications, now=self.clock())

    def change_timezone(self, user_id: str, zone: str) -> Account:
        self.account(user_id)
        return self.repo.set_timezone(user_id, resolve_zone(zone))

    def set_language(self, user_id: str, language: str) -> Account:
        self.account(user_id)
        return self.repo.set_language(user_id, language)

    def set_notifications(self, user_id: str, settings: NotificationSettings) -> Account:
        self.account(user_id)
        return self.repo.set_notifications(user_id, settings)

    # -- calendars ------------------------------------------------------------------------
    def calendars(self, user_id: str, refresh: bool = True) -> list[WatchedCalendar]:
        """The account's event calendars, refreshed from the server when it answers."""
        creds = self._credentials(user_id)
        if refresh:
            try:
                return self.repo.replace_calendars(user_id, self.source.list_calendars(creds))
            except AuthRefused:
                raise
            except Exception:  # the stored list is still a good answer
                log.warning("calendars.refresh_failed user=%s", user_id, exc_info=True)
        return self.repo.calendars(user_id)

    def choose_calendars(self, user_id: str, choice: tuple[str, ...]) -> list[WatchedCalendar]:
        """`calendars 1 3` or `calendars all`; numbers are those of the last listing."""
        current = self.repo.calendars(user_id) if self.repo.account(user_id) else None
        if current is None:
            raise NotConnected()
        if any(word.lower() in ("all", "все", "всё") for word in choice):
            return self.repo.set_watched(user_id, {c.href for c in current})
        chosen: set[str] = set()
        for word in choice:
            for part in word.replace(",", " ").split():
                if not part.isdigit() or not 1 <= int(part) <= len(current):
                    raise BadInput("error.bad_calendar_number", value=part[:10],
                                   count=len(current))
                chosen.add(current[int(part) - 1].href)
        if not chosen:
            raise BadInput("error.bad_calendar_number", value="", count=len(current))
        return self.repo.set_watched(user_id, chosen)

    # -- meetings -------------------------------------------------------------------------
    def meetings(self, user_id: str, first: date, last: date) -> Meetings:
        account = self.account(user_id)
        tz = ZoneInfo(account.timezone)
        start, end = range_bounds(first, last, tz)
        occurrences, skipped = self._read_window(account, start, end)
        return Meetings(account, tz, occurrences, skipped)

    def next_meeting(self, user_id: str) -> tuple[Meetings, Occurrence | None]:
        account = self.account(user_id)
        tz = ZoneInfo(account.timezone)
        now = self.clock()
        occurrences, skipped = self._read_window(
            account, now - timedelta(days=1), now + timedelta(days=NEXT_SEARCH_DAYS)
        )
        return Meetings(account, tz, occurrences, skipped), next_occurrence(occurrences, now)

    def _read_window(
        self, account: Account, start: datetime, end: datetime
    ) -> tuple[list[Occurrence], int]:
        """The meetings in [start, end): the server's ETag listing of the range, the engine's
        stored copies of the objects that did not change, a multiget of those that did (or
        that the engine does not keep: outside its window). As fresh as Yandex, and a
        request's worth of bytes when nothing changed."""
        creds = self._credentials(account.user_id)
        tz = ZoneInfo(account.timezone)
        me = me_address(account.login)
        found: list[Occurrence] = []
        skipped = 0

        def on_error(href: str, exc: Exception) -> None:
            nonlocal skipped
            skipped += 1
            log.warning("ics.skipped user=%s href=%s error=%s", account.user_id, href, exc)

        for calendar in self.repo.calendars(account.user_id):
            if not calendar.watched:
                continue
            try:
                etags = self.source.etags_in_window(creds, calendar.href, start, end)
                stored = self.store.objects(account.user_id, etags) if self.store else {}
                fresh = [h for h, etag in etags.items()
                         if h not in stored or stored[h].etag != etag]
                objects = [RawObject(h, stored[h].etag, stored[h].ics)
                           for h in etags if h not in fresh]
                objects += self.source.fetch_objects(creds, fresh) if fresh else []
            except AuthRefused:
                # The stored app password stopped working (revoked): keep everything, say how
                # to fix it. Never a reason to delete the account.
                self.repo.set_needs_password(account.user_id, True)
                raise AuthRefused("error.stored_password_refused") from None
            found += parse_objects(
                objects, calendar=calendar.href, start=start, end=end, tz=tz, me=me,
                on_error=on_error,
            )
        found.sort(key=lambda o: (o.start, o.title))
        return found, skipped

    # -- answering invitations and snoozing reminders -------------------------------------
    def answer(self, user_id: str, ref: MeetingRef, partstat: str) -> Answered:
        """Set the user's own answer in Yandex (the series, or the one occurrence of
        ``ref``), then put the object as read back into the stored snapshot, so the next poll
        finds nothing to announce: the user's own answers stay silent, and the copy Yandex
        drops after a decline is not reported as a cancellation."""
        account = self.account(user_id)
        creds = self._credentials(user_id)
        me = me_address(account.login)
        try:
            result = self.source.answer_invitation(
                creds, ref.href, me=me, partstat=partstat, recurrence_id=ref.recurrence_id)
        except AuthRefused:
            self.repo.set_needs_password(user_id, True)
            raise AuthRefused("error.stored_password_refused") from None
        now = self.clock()
        start, end = poll_window(now, self.horizon_days)
        tz = ZoneInfo(account.timezone)
        if result.stored is not None:
            occurrences = parse_occurrences(result.stored.ics, calendar=ref.calendar,
                                            href=ref.href, start=start, end=end, tz=tz, me=me)
            copy: ObjectCopy | None = ObjectCopy(ref.calendar, result.stored.etag,
                                                 result.stored.ics)
        else:  # dropped by the server after a decline: keep its occurrences, declined
            occurrences = [replace(o, my_partstat=DECLINED)
                           for o in self.store.snapshot(user_id).values() if o.href == ref.href]
            copy = None
        self.store.apply_local_write(user_id, ref.href, ref.calendar, copy, occurrences)
        log.info("answer.done user=%s partstat=%s series=%s state=%s", user_id, partstat,
                 ref.recurrence_id is None, result.state)
        return result

    def snooze(self, user_id: str, ref: MeetingRef, reminder_id: str, message: str, *,
               answerable: bool) -> datetime:
        """Remind again in 5 minutes, or 1 minute before the start when that is sooner; never
        after the start, and once per reminder (the snooze's id is derived from the
        reminder's). Returns when; raises BadInput when it is too late or done already."""
        now = self.clock()
        at = min(now + SNOOZE, ref.start - timedelta(minutes=1))
        if at <= now:
            raise BadInput("error.snooze_too_late")
        recorded = self.outbox.record({user_id: [Notice(
            f"snooze|{reminder_id}", "reminder", message, expires_at=ref.start,
            not_before=at, refs=(ref,), actions=("answer",) if answerable else ())]}, now)
        if not recorded.get(user_id):
            raise BadInput("error.snooze_again")
        log.info("reminder.snoozed user=%s until=%s", user_id, at.isoformat())
        return at

    # -- meet ------------------------------------------------------------------------------
    def meet(self, user_id: str, request: MeetRequest, guests: list[Profile], *,
             thread_root: str = "") -> Occurrence:
        """Create the meeting in Yandex: the user organizes it, the first watched calendar
        holds it, Yandex makes a Telemost room for it and invites the guests by address.

        It goes into the stored snapshot before the write (a poll that sees the new object
        while Yandex is still minting the room must not announce the user's own creation) and
        again as read back after it; ``thread_root`` becomes the meeting's thread, where a
        later notice about it (the room's link, when Yandex adds it late) replies. Returns the
        new occurrence (``link`` None when Yandex had not added the room yet)."""
        account = self.account(user_id)
        creds = self._credentials(user_id)
        tz = ZoneInfo(account.timezone)
        now = self.clock()
        start = scheduled_instant(request.day, time.fromisoformat(request.at), tz)
        if start <= now:
            raise BadInput("error.meet_past")
        watched = [c for c in self.repo.calendars(user_id) if c.watched]
        if not watched:
            raise BadInput("error.no_calendars")
        me = me_address(account.login)
        addresses = []
        for guest in guests:
            if not guest.email:
                raise BadInput("error.meet_no_email", value="@" + guest.username)
            address = normalise_address(guest.email)
            if address != me and address not in addresses:
                addresses.append(address)
        uid = f"{uuid.uuid4()}@yc-mattermost-bot"
        ics = new_meeting(uid=uid, start=start, end=start + request.duration,
                          title=request.title, organizer=me, organizer_name=account.login,
                          guests=addresses, tz=tz, now=now, telemost=True)
        calendar = watched[0].href
        href = new_object_href(calendar, uid)
        window_start, window_end = poll_window(now, self.horizon_days)

        def expand(text: str) -> list[Occurrence]:
            return parse_occurrences(text, calendar=calendar, href=href, start=window_start,
                                     end=window_end, tz=tz, me=me)

        planned = expand(ics)
        self.store.apply_local_write(user_id, href, calendar, ObjectCopy(calendar, "", ics),
                                     planned)
        if thread_root and planned:
            self.outbox.set_thread_root(user_id, [thread_key(planned[0])], thread_root)
        try:
            created = self.source.create_event(creds, calendar, uid, ics)
        except Exception as exc:
            self.store.apply_local_write(user_id, href, calendar, None, [])  # nothing was made
            if isinstance(exc, AuthRefused):
                self.repo.set_needs_password(user_id, True)
                raise AuthRefused("error.stored_password_refused") from None
            raise
        occurrences = expand(created.ics)
        self.store.apply_local_write(user_id, href, calendar,
                                     ObjectCopy(calendar, created.etag, created.ics), occurrences)
        log.info("meet.created user=%s guests=%d link=%s", user_id, len(addresses),
                 bool(occurrences and occurrences[0].link))
        found = [o for o in occurrences if o.start == start] or parse_occurrences(
            created.ics, calendar=calendar, href=href, start=start - timedelta(minutes=1),
            end=start + request.duration, tz=tz, me=me)
        if not found:
            raise BadInput("error.write_ignored")
        return found[0]

    # -- for admins ------------------------------------------------------------------------
    def stats(self) -> Stats:
        """What `stats` shows a Mattermost system admin."""
        now = self.clock()
        accounts = self.repo.accounts()
        use = {
            "daily": sum(bool(a.notifications.daily_at) for a in accounts),
            "remind": sum(bool(a.notifications.leads) for a in accounts),
            "status": sum(a.notifications.status for a in accounts),
            "changes": sum(a.notifications.changes for a in accounts),
            "responses": sum(a.notifications.responses for a in accounts),
        }
        recent = now - timedelta(days=1)
        errors = Counter(a.last_error for a in accounts if a.last_error
                         and a.last_error_at is not None and a.last_error_at >= recent)
        return Stats(accounts=len(accounts), use=use,
                     needs_password=sum(a.needs_password for a in accounts),
                     errors=dict(errors.most_common()), version=VERSION,
                     uptime=now - STARTED_AT)

    # -- for `check` ----------------------------------------------------------------------
    def upcoming_info(self, account: Account) -> dict[str, str]:
        """The next agenda and the next reminder, from the stored state the engine decides
        on (whichever process holds the account)."""
        now = self.clock()
        tz = ZoneInfo(account.timezone)
        info: dict[str, str] = {}
        settings = account.notifications
        if settings.daily_at:
            plan = DailyPlan(time.fromisoformat(settings.daily_at), settings.daily_weekdays)
            info["next_agenda"] = next_agenda_at(plan, tz=tz, now=now).astimezone(tz).strftime(
                "%d.%m.%Y %H:%M")
        if settings.leads and self.store is not None and self.outbox is not None:
            user = account.user_id
            upcoming = self.store.upcoming([user], now - timedelta(days=1),
                                           now + timedelta(days=NEXT_SEARCH_DAYS))[user]
            reminded = self.outbox.recorded_ids([user], "rem|", now - timedelta(days=3))[user]
            rem = next_reminder(upcoming, leads=settings.leads, now=now, already=reminded)
            if rem is not None:
                info["next_reminder"] = (
                    rem.due_at.astimezone(tz).strftime("%d.%m.%Y %H:%M") + " — "
                    + (escape(rem.occurrence.title[:60]) or "…")
                )
        return info
