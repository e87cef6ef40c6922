"""The only place that reads and writes rows; it hands out domain values, never models."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from bot.clock import utc_now
from bot.core.model import (
    Account,
    CalendarInfo,
    Credentials,
    NotificationSettings,
    WatchedCalendar,
)
from storage.crypto import Vault
from storage.db import write_transaction
from storage.models import AccountRow, CalendarRow, ObjectRow, OccurrenceRow


def to_db_time(value: datetime | None) -> datetime | None:
    """Aware → naive UTC for the column (SQLite and PostgreSQL alike)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to storage")
    return value.astimezone(UTC).replace(tzinfo=None)


def from_db_time(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _leads_text(leads: Iterable[int]) -> str:
    return ",".join(str(v) for v in leads)


def _leads(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def _account(row: AccountRow) -> Account:
    return Account(
        user_id=row.mm_user_id,
        login=row.login,
        timezone=row.timezone,
        language=row.language,
        notifications=NotificationSettings(
            daily_at=row.daily_at,
            daily_weekdays=row.daily_weekdays,
            leads=_leads(row.remind_leads),
            status=row.status_on,
            changes=row.changes_on,
            responses=row.responses_on,
        ),
        needs_password=row.needs_password,
        status_refused=bool(row.status_blocked),
        last_sync_at=from_db_time(row.last_sync_at),
        last_error=row.last_error,
        last_error_at=from_db_time(row.last_error_at),
    )


class Repository:
    """Accounts, their calendars and settings. Every method is one transaction."""

    def __init__(self, vault: Vault, clock: Callable[[], datetime] = utc_now) -> None:
        self._vault = vault
        self.clock = clock  # stamps "poll this account now" (tests give a manual clock)

    # -- accounts -------------------------------------------------------------------------
    def _row(self, user_id: str) -> AccountRow | None:
        return AccountRow.get_or_none(AccountRow.mm_user_id == user_id)

    def account(self, user_id: str) -> Account | None:
        row = self._row(user_id)
        return None if row is None else _account(row)

    def accounts(self, users: Iterable[str] | None = None) -> list[Account]:
        """Every account, or those of ``users``."""
        query = AccountRow.select().order_by(AccountRow.id)
        if users is None:
            return [_account(row) for row in query]
        wanted = list(users)
        found: list[Account] = []
        for batch in range(0, len(wanted), 500):
            found += [_account(row) for row in
                      query.where(AccountRow.mm_user_id.in_(wanted[batch:batch + 500]))]
        return found

    def account_with_credentials(self, user_id: str) -> tuple[Account, Credentials] | None:
        """Both from one row read (a poll needs both, every minute)."""
        row = self._row(user_id)
        if row is None:
            return None
        return _account(row), Credentials(row.login, self._vault.decrypt(row.password_enc))

    def credentials(self, user_id: str) -> Credentials | None:
        row = self._row(user_id)
        if row is None:
            return None
        return Credentials(row.login, self._vault.decrypt(row.password_enc))

    def save_account(
        self,
        *,
        user_id: str,
        creds: Credentials,
        timezone: str | None,
        language: str,
        calendars: list[CalendarInfo],
        notifications: NotificationSettings,
        now: datetime,
    ) -> Account:
        """Connect (checked credentials), all in one transaction.

        A new user gets ``notifications``, ``timezone`` and every calendar watched. A user
        connecting again keeps their settings, language and the status marker; the same login
        also keeps its calendar choices and snapshot, while another login (another Yandex
        account) starts from its own calendars with a silent first sync. ``timezone`` None
        keeps the stored zone (required for a new user).
        """
        with write_transaction():
            row = self._row(user_id)
            if row is None:
                if timezone is None:
                    raise ValueError("a new account needs a time zone")
                row = AccountRow.create(
                    mm_user_id=user_id,
                    login=creds.login,
                    password_enc=self._vault.encrypt(creds.password),
                    timezone=timezone,
                    language=language,
                    created_at=to_db_time(now),
                    daily_at=notifications.daily_at,
                    daily_weekdays=notifications.daily_weekdays,
                    remind_leads=_leads_text(notifications.leads),
                    status_on=notifications.status,
                    changes_on=notifications.changes,
                    responses_on=notifications.responses,
                    poll_due_at=to_db_time(now),
                )
                for position, info in enumerate(calendars):
                    CalendarRow.create(account=row, href=info.href, name=info.name,
                                       watched=True, position=position)
                return _account(row)
            same_login = row.login.lower() == creds.login.lower()
            if not same_login:
                # another Yandex account: nothing of the old one's calendars applies
                ObjectRow.delete().where(ObjectRow.account == row).execute()
                OccurrenceRow.delete().where(OccurrenceRow.account == row).execute()
                CalendarRow.delete().where(CalendarRow.account == row).execute()
            fields: dict[str, object] = {
                "login": creds.login, "password_enc": self._vault.encrypt(creds.password),
                "needs_password": False, "auth_notice_sent": False, "dirty": True,
                "poll_due_at": to_db_time(now),
                "snapshot_rev": AccountRow.snapshot_rev + 1,
            }
            if not same_login:
                fields["window_end"] = None
            if timezone is not None and timezone != row.timezone:
                fields["timezone"] = timezone
                CalendarRow.update(synced=False).where(CalendarRow.account == row).execute()
            AccountRow.update(**fields).where(AccountRow.id == row.id).execute()
            self._replace_calendars(row, calendars)
            return _account(AccountRow.get_by_id(row.id))

    def delete_account(self, user_id: str) -> bool:
        with write_transaction():
            row = self._row(user_id)
            if row is None:
                return False
            CalendarRow.delete().where(CalendarRow.account == row).execute()
            row.delete_instance()
            return True

    def _update(self, user_id: str, *, notify: bool = True, **fields: object) -> Account:
        """Change the row; ``notify``: a setting changed, so its lease holder re-reads it."""
        if notify:
            fields["dirty"] = True
        with write_transaction():
            AccountRow.update(**fields).where(AccountRow.mm_user_id == user_id).execute()
            row = self._row(user_id)
        if row is None:
            raise KeyError(user_id)
        return _account(row)

    def set_credentials(self, user_id: str, creds: Credentials) -> Account:
        """New login and/or password (already checked); clears "needs a new password"."""
        return self._update(
            user_id,
            login=creds.login,
            password_enc=self._vault.encrypt(creds.password),
            needs_password=False,
            auth_notice_sent=False,
            poll_due_at=to_db_time(self.clock()),  # a fixed password is used at once
        )

    def set_timezone(self, user_id: str, timezone: str) -> Account:
        """A new zone re-reads every calendar silently: all-day and floating times resolve in
        the user's zone, and a zone change is not a change of any meeting."""
        with write_transaction():
            account = self._update(user_id, timezone=timezone, poll_due_at=to_db_time(self.clock()))
            CalendarRow.update(synced=False).where(
                CalendarRow.account == self._row(user_id)).execute()
        return account

    def set_language(self, user_id: str, language: str) -> Account:
        return self._update(user_id, language=language)

    def set_notifications(self, user_id: str, settings: NotificationSettings) -> Account:
        """Store the settings; turning the status on again retries a server that refused it."""
        extra = {"status_blocked": False} if settings.status else {}
        return self._update(
            user_id,
            **extra,
            daily_at=settings.daily_at,
            daily_weekdays=settings.daily_weekdays,
            remind_leads=_leads_text(settings.leads),
            status_on=settings.status,
            changes_on=settings.changes,
            responses_on=settings.responses,
        )

    def record_error(self, user_id: str, error_key: str, now: datetime) -> None:
        """Remember the last failure as a text key (shown translated by `check`)."""
        self._update(user_id, notify=False, last_error=error_key, last_error_at=to_db_time(now))

    def set_needs_password(self, user_id: str, value: bool) -> None:
        self._update(user_id, notify=False, needs_password=value)

    # -- calendars ------------------------------------------------------------------------
    def calendars(self, user_id: str) -> list[WatchedCalendar]:
        query = (
            CalendarRow.select()
            .join(AccountRow)
            .where(AccountRow.mm_user_id == user_id)
            .order_by(CalendarRow.position, CalendarRow.id)
        )
        return [WatchedCalendar(r.href, r.name, r.watched) for r in query]

    def replace_calendars(self, user_id: str, found: list[CalendarInfo]) -> list[WatchedCalendar]:
        """Take the server's current list: known hrefs keep their choice, new ones are watched,
        vanished ones are dropped."""
        with write_transaction():
            row = self._row(user_id)
            if row is None:
                raise KeyError(user_id)
            self._replace_calendars(row, found)
        return self.calendars(user_id)

    @staticmethod
    def _replace_calendars(row: AccountRow, found: list[CalendarInfo]) -> None:
        known = {c.href: c for c in CalendarRow.select().where(CalendarRow.account == row)}
        keep = {info.href for info in found}
        for href, gone in known.items():
            if href not in keep:
                gone.delete_instance()
        for position, info in enumerate(found):
            cal = known.get(info.href)
            if cal is None:
                CalendarRow.create(account=row, href=info.href, name=info.name, watched=True,
                                   position=position)
            elif (cal.name, cal.position) != (info.name, position):
                cal.name, cal.position = info.name, position
                cal.save()

    def set_watched(self, user_id: str, hrefs: set[str]) -> list[WatchedCalendar]:
        with write_transaction():
            row = self._row(user_id)
            if row is None:
                raise KeyError(user_id)
            for cal in CalendarRow.select().where(CalendarRow.account == row):
                watched = cal.href in hrefs
                if cal.watched != watched:
                    # a calendar watched again starts with a silent first sync
                    cal.watched, cal.synced = watched, False
                    cal.save()
            AccountRow.update(dirty=True, poll_due_at=to_db_time(self.clock())).where(
                AccountRow.id == row.id).execute()
        return self.calendars(user_id)
