"""Storage of the notification engine: snapshots, object copies, notices, threads, and the
status marker. Each public method is one transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from bot.core.model import Notice, Occurrence
from bot.core.status import BotStatus
from storage.models import (
    AccountRow,
    CalendarRow,
    NoticeRow,
    ObjectRow,
    OccurrenceRow,
    ThreadRow,
    database,
)
from storage.repository import from_db_time, to_db_time
from storage.serial import dump_occurrence, load_occurrence


@dataclass(frozen=True)
class PendingNotice:
    pk: int
    user_id: str
    notice_id: str
    kind: str
    message: str
    thread_key: str | None
    expires_at: datetime | None
    attempts: int


@dataclass(frozen=True)
class StoredObject:
    calendar: str
    etag: str
    ics: str


@dataclass(frozen=True)
class PollState:
    """What a poll reads before it asks the server, in one query."""

    watched: list[str]  # hrefs of the watched calendars, in display order
    unsynced: set[str]  # calendars (watched or not) without a baseline
    window_end: datetime | None


# One writer at a time, queued in this process. Left to SQLite, a writer that finds the
# database locked polls for it with sleeps growing to 100 ms, so with eight pollers writing
# the tick (one thread) waited seconds for each of its transactions.
_WRITES = threading.Lock()


@contextmanager
def _transaction() -> Iterator[None]:
    with _WRITES, database.atomic():
        yield


class EngineStore:
    # -- snapshot -----------------------------------------------------------------------------
    def objects(self, user_id: str) -> dict[str, StoredObject]:
        query = (ObjectRow.select(ObjectRow.href, ObjectRow.calendar, ObjectRow.etag, ObjectRow.ics)
                 .join(AccountRow).where(AccountRow.mm_user_id == user_id))
        return {r.href: StoredObject(r.calendar, r.etag, r.ics) for r in query}

    def object_etags(self, user_id: str) -> dict[str, tuple[str, str]]:
        """href → (calendar, etag), without the ICS bodies (the cheap idle poll reads this)."""
        query = (ObjectRow.select(ObjectRow.href, ObjectRow.calendar, ObjectRow.etag)
                 .join(AccountRow).where(AccountRow.mm_user_id == user_id))
        return {r.href: (r.calendar, r.etag) for r in query}

    def snapshot(self, user_id: str) -> dict[tuple[str, str, str], Occurrence]:
        query = (OccurrenceRow.select(OccurrenceRow.data).join(AccountRow)
                 .where(AccountRow.mm_user_id == user_id))
        occs = (load_occurrence(r.data) for r in query)
        return {o.key: o for o in occs}

    def upcoming(self, start: datetime, end: datetime) -> dict[str, list[Occurrence]]:
        """Every account's stored occurrences overlapping [start, end) (the tick's cache)."""
        query = (OccurrenceRow.select(AccountRow.mm_user_id, OccurrenceRow.data)
                 .join(AccountRow)
                 .where((OccurrenceRow.start < to_db_time(end))
                        & (OccurrenceRow.end > to_db_time(start)))
                 .tuples())
        found: dict[str, list[Occurrence]] = {}
        for user_id, data in query:
            found.setdefault(user_id, []).append(load_occurrence(data))
        return found

    def commit_poll(
        self,
        user_id: str,
        *,
        upsert: dict[str, StoredObject],
        delete: Iterable[str],
        occurrences: list[Occurrence] | None,
        notices: list[Notice],
        synced_calendars: Iterable[str],
        window_end: datetime | None,
        now: datetime,
    ) -> list[str]:
        """Store a poll's result in one transaction: object copies, the new snapshot (None: the
        snapshot is unchanged), the notices its diff produced, calendars now baselined, and
        the sync time. Returns the ids of the notices newly recorded."""
        with _transaction():
            account = AccountRow.get(AccountRow.mm_user_id == user_id)
            hrefs = list(delete)
            if hrefs:
                ObjectRow.delete().where(
                    (ObjectRow.account == account) & (ObjectRow.href.in_(hrefs))).execute()
            for href, obj in upsert.items():
                (ObjectRow.insert(account=account, calendar=obj.calendar, href=href,
                                  etag=obj.etag, ics=obj.ics)
                 .on_conflict(conflict_target=[ObjectRow.account, ObjectRow.href],
                              update={ObjectRow.etag: obj.etag, ObjectRow.ics: obj.ics,
                                      ObjectRow.calendar: obj.calendar})
                 .execute())
            if occurrences is not None:
                OccurrenceRow.delete().where(OccurrenceRow.account == account).execute()
                rows = [
                    {"account": account.id, "calendar": o.calendar, "uid": o.uid,
                     "rid": o.recurrence_id, "start": to_db_time(o.start),
                     "end": to_db_time(o.end), "data": dump_occurrence(o)}
                    for o in {o.key: o for o in occurrences}.values()
                ]
                for batch in range(0, len(rows), 200):
                    OccurrenceRow.insert_many(rows[batch:batch + 200]).execute()
            synced = list(synced_calendars)
            if synced:
                CalendarRow.update(synced=True).where(
                    (CalendarRow.account == account) & (CalendarRow.href.in_(synced))).execute()
            if window_end is not None:
                account.window_end = to_db_time(window_end)
            account.last_sync_at = to_db_time(now)
            account.auth_notice_sent = False
            account.needs_password = False
            account.save()
            return self._insert_notices(account, notices, now)

    def _insert_notices(self, account: AccountRow, notices: list[Notice],
                        now: datetime) -> list[str]:
        inserted = []
        for notice in notices:
            exists = NoticeRow.select(NoticeRow.id).where(
                (NoticeRow.account == account) & (NoticeRow.notice_id == notice.notice_id)
            ).exists()
            if exists:
                continue
            NoticeRow.create(
                account=account, notice_id=notice.notice_id, kind=notice.kind,
                message=notice.message, thread_key=notice.thread_key,
                created_at=to_db_time(now), expires_at=to_db_time(notice.expires_at),
                next_attempt_at=to_db_time(now),
            )
            inserted.append(notice.notice_id)
        return inserted

    def poll_state(self, user_id: str) -> PollState:
        """Watched calendars, calendars without a baseline and the stored window end: one
        query (calendar joined to account) instead of three."""
        query = (CalendarRow.select(CalendarRow.href, CalendarRow.watched, CalendarRow.synced,
                                    AccountRow.window_end)
                 .join(AccountRow).where(AccountRow.mm_user_id == user_id)
                 .order_by(CalendarRow.position, CalendarRow.id).tuples())
        rows: list[tuple[str, bool, bool, datetime | None]] = list(query)  # type: ignore[arg-type]
        return PollState(watched=[href for href, watched, _, _ in rows if watched],
                         unsynced={href for href, _, synced, _ in rows if not synced},
                         window_end=from_db_time(rows[0][3]) if rows else self.window_end(user_id))

    def touch_sync(self, user_id: str, now: datetime) -> None:
        """An idle poll: only the sync time moves (as commit_poll would set it). One UPDATE,
        no read-then-write transaction."""
        AccountRow.update(last_sync_at=to_db_time(now), auth_notice_sent=False,
                          needs_password=False).where(AccountRow.mm_user_id == user_id).execute()

    def window_end(self, user_id: str) -> datetime | None:
        row = AccountRow.get_or_none(AccountRow.mm_user_id == user_id)
        return None if row is None else from_db_time(row.window_end)

    # -- notices ------------------------------------------------------------------------------
    def record_notices(self, user_id: str, notices: list[Notice], now: datetime) -> list[str]:
        """Record notices (ignoring ids already recorded); returns the ids newly recorded."""
        with _transaction():
            account = AccountRow.get_or_none(AccountRow.mm_user_id == user_id)
            if account is None:
                return []
            return self._insert_notices(account, notices, now)

    def record_many(self, batch: dict[str, list[Notice]], now: datetime) -> dict[str, list[str]]:
        """``record_notices`` for several users in ONE transaction (one tick's notices)."""
        recorded: dict[str, list[str]] = {}
        with _transaction():
            rows = AccountRow.select().where(AccountRow.mm_user_id.in_(list(batch)))
            for account in rows:
                recorded[account.mm_user_id] = self._insert_notices(
                    account, batch[account.mm_user_id], now)
        return recorded

    def notice_ids_since(self, since: datetime, prefix: str) -> dict[str, set[str]]:
        """user → ids of notices recorded since ``since`` whose id starts with ``prefix``."""
        query = (NoticeRow.select(AccountRow.mm_user_id, NoticeRow.notice_id).join(AccountRow)
                 .where((NoticeRow.created_at >= to_db_time(since))
                        & (NoticeRow.notice_id.startswith(prefix)))
                 .tuples())
        found: dict[str, set[str]] = {}
        for user_id, notice_id in query:
            found.setdefault(user_id, set()).add(notice_id)
        return found

    def pending(self, now: datetime, limit: int = 500) -> list[PendingNotice]:
        query = (NoticeRow.select(NoticeRow, AccountRow.mm_user_id).join(AccountRow)
                 .where(NoticeRow.sent_at.is_null() & (NoticeRow.dropped == False)  # noqa: E712
                        & (NoticeRow.next_attempt_at <= to_db_time(now)))
                 .order_by(NoticeRow.id).limit(limit))
        return [
            PendingNotice(r.id, r.account.mm_user_id, r.notice_id, r.kind, r.message,
                          r.thread_key, from_db_time(r.expires_at), r.attempts)
            for r in query
        ]

    def still_pending(self, pk: int) -> bool:
        """Neither sent nor dropped. A send job asks first: the tick may have read the notice
        as pending just before another job posted it and marked it sent."""
        return bool(NoticeRow.select(NoticeRow.id).where(
            (NoticeRow.id == pk) & NoticeRow.sent_at.is_null()
            & (NoticeRow.dropped == False)).exists())  # noqa: E712

    def mark_sent(self, pk: int, post_id: str, now: datetime) -> None:
        with _WRITES:
            NoticeRow.update(sent_at=to_db_time(now), post_id=post_id,
                             attempts=NoticeRow.attempts + 1).where(NoticeRow.id == pk).execute()

    def mark_failed(self, pk: int, retry_at: datetime) -> None:
        with _WRITES:
            NoticeRow.update(attempts=NoticeRow.attempts + 1,
                             next_attempt_at=to_db_time(retry_at)).where(NoticeRow.id == pk).execute()

    def mark_dropped(self, pk: int) -> None:
        with _WRITES:
            NoticeRow.update(dropped=True).where(NoticeRow.id == pk).execute()

    def thread_post(self, user_id: str, thread_key: str) -> str | None:
        row = (ThreadRow.select(ThreadRow.post_id).join(AccountRow)
               .where((AccountRow.mm_user_id == user_id) & (ThreadRow.thread_key == thread_key))
               .first())
        return None if row is None else str(row.post_id)

    def set_thread_post(self, user_id: str, thread_key: str, post_id: str) -> None:
        with _WRITES:
            account = AccountRow.get_or_none(AccountRow.mm_user_id == user_id)
            if account is None:
                return
            (ThreadRow.insert(account=account, thread_key=thread_key, post_id=post_id)
             .on_conflict_ignore().execute())

    def prune(self, before: datetime) -> None:
        """Forget sent or dropped notices older than ``before`` (their ids can't recur)."""
        with _WRITES:
            NoticeRow.delete().where(
                (NoticeRow.created_at < to_db_time(before))
                & (NoticeRow.sent_at.is_null(False) | (NoticeRow.dropped == True))  # noqa: E712
            ).execute()

    # -- account flags ------------------------------------------------------------------------
    def status_marker(self, user_id: str) -> BotStatus | None:
        row = AccountRow.get_or_none(AccountRow.mm_user_id == user_id)
        if row is None or row.bot_status_expires is None:
            return None
        return BotStatus(row.bot_status_emoji or "", row.bot_status_text or "",
                            from_db_time(row.bot_status_expires))  # type: ignore[arg-type]

    def status_markers(self) -> dict[str, BotStatus]:
        query = AccountRow.select().where(AccountRow.bot_status_expires.is_null(False))
        return {
            r.mm_user_id: BotStatus(r.bot_status_emoji or "", r.bot_status_text or "",
                                       from_db_time(r.bot_status_expires))  # type: ignore[arg-type]
            for r in query
        }

    def set_status_marker(self, user_id: str, marker: BotStatus | None) -> None:
        with _WRITES:
            AccountRow.update(
                bot_status_emoji=marker.emoji if marker else None,
                bot_status_text=marker.text if marker else None,
                bot_status_expires=to_db_time(marker.expires_at) if marker else None,
            ).where(AccountRow.mm_user_id == user_id).execute()

    def block_status(self, user_id: str) -> None:
        """The server refused custom statuses: stop trying for this user."""
        with _WRITES:
            AccountRow.update(status_blocked=True, status_on=False).where(
                AccountRow.mm_user_id == user_id).execute()

    def record_auth_failure(self, user_id: str, error_key: str, now: datetime) -> bool:
        """Mark "needs a new app password"; True when the user has not been told yet."""
        with _transaction():
            row = AccountRow.get_or_none(AccountRow.mm_user_id == user_id)
            if row is None:
                return False
            first = not row.auth_notice_sent
            row.needs_password = True
            row.auth_notice_sent = True
            row.last_error = error_key
            row.last_error_at = to_db_time(now)
            row.save()
            return first
