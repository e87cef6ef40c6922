"""The only place that reads and writes rows; it hands out domain values, never models."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from bot.core.model import (
    Account,
    CalendarInfo,
    Credentials,
    NotificationSettings,
    WatchedCalendar,
)
from storage.crypto import Vault
from storage.models import AccountRow, CalendarRow, database


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
        last_sync_at=from_db_time(row.last_sync_at),
        last_error=row.last_error,
        last_error_at=from_db_time(row.last_error_at),
    )


class Repository:
    """Accounts, their calendars and settings. Every method is one transaction."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    # -- accounts -------------------------------------------------------------------------
    def _row(self, user_id: str) -> AccountRow | None:
        return AccountRow.get_or_none(AccountRow.mm_user_id == user_id)

    def account(self, user_id: str) -> Account | None:
        row = self._row(user_id)
        return None if row is None else _account(row)

    def accounts(self) -> list[Account]:
        return [_account(row) for row in AccountRow.select().order_by(AccountRow.id)]

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
        timezone: str,
        language: str,
        calendars: list[CalendarInfo],
        notifications: NotificationSettings,
        now: datetime,
    ) -> Account:
        """Create the account (or replace a previous connection of the same user)."""
        with database.atomic():
            AccountRow.delete().where(AccountRow.mm_user_id == user_id).execute()
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
            )
            for position, info in enumerate(calendars):
                CalendarRow.create(
                    account=row, href=info.href, name=info.name, watched=True, position=position
                )
        return _account(row)

    def delete_account(self, user_id: str) -> bool:
        with database.atomic():
            row = self._row(user_id)
            if row is None:
                return False
            CalendarRow.delete().where(CalendarRow.account == row).execute()
            row.delete_instance()
            return True

    def _update(self, user_id: str, **fields: object) -> Account:
        with database.atomic():
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
        )

    def set_timezone(self, user_id: str, timezone: str) -> Account:
        """A new zone re-reads every calendar silently: all-day and floating times resolve in
        the user's zone, and a zone change is not a change of any meeting."""
        with database.atomic():
            account = self._update(user_id, timezone=timezone)
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

    def record_sync(self, user_id: str, now: datetime) -> None:
        self._update(user_id, last_sync_at=to_db_time(now))

    def record_error(self, user_id: str, error_key: str, now: datetime) -> None:
        """Remember the last failure as a text key (shown translated by `check`)."""
        self._update(user_id, last_error=error_key, last_error_at=to_db_time(now))

    def set_needs_password(self, user_id: str, value: bool) -> None:
        self._update(user_id, needs_password=value)

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
        with database.atomic():
            row = self._row(user_id)
            if row is None:
                raise KeyError(user_id)
            known = {c.href: c for c in CalendarRow.select().where(CalendarRow.account == row)}
            keep = {info.href for info in found}
            for href, cal in known.items():
                if href not in keep:
                    cal.delete_instance()
            for position, info in enumerate(found):
                cal = known.get(info.href)
                if cal is None:
                    CalendarRow.create(
                        account=row, href=info.href, name=info.name, watched=True,
                        position=position,
                    )
                elif (cal.name, cal.position) != (info.name, position):
                    cal.name, cal.position = info.name, position
                    cal.save()
        return self.calendars(user_id)

    def set_watched(self, user_id: str, hrefs: set[str]) -> list[WatchedCalendar]:
        with database.atomic():
            row = self._row(user_id)
            if row is None:
                raise KeyError(user_id)
            for cal in CalendarRow.select().where(CalendarRow.account == row):
                watched = cal.href in hrefs
                if cal.watched != watched:
                    # a calendar watched again starts with a silent first sync
                    cal.watched, cal.synced = watched, False
                    cal.save()
        return self.calendars(user_id)
