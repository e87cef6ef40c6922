"""The engine's stored state per account: the last good copy of each calendar object, the
occurrence snapshot expanded from them, the status marker and the 401 episode. Each public
method is one statement or one transaction.

A poll's result is committed only if nothing else wrote the snapshot meanwhile and this
process still holds the account's lease (``snapshot_rev`` and ``owner`` are checked in the
same UPDATE that bumps the revision): a process that lost its lease while polling, or a poll
racing a write made from the chat (an answer, a new meeting), stores nothing and simply polls
again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from bot.core.model import Notice, Occurrence
from bot.core.status import BotStatus
from bot.core.sync import ObjectCopy
from bot.stores import PollState, StaleSnapshot
from storage.db import sqlite_write_lock, tuples, write_transaction
from storage.models import (
    AccountRow,
    CalendarRow,
    ObjectRow,
    OccurrenceRow,
)
from storage.outbox import OutboxStore
from storage.repository import from_db_time, to_db_time
from storage.serial import dump_occurrence, load_occurrence

StoredObject = ObjectCopy  # the last good copy of a calendar object


class EngineStore:
    def __init__(self, outbox: OutboxStore | None = None) -> None:
        self._outbox = outbox or OutboxStore()

    # -- reading ------------------------------------------------------------------------------
    def poll_state(self, user_id: str) -> PollState:
        """Watched calendars, calendars without a baseline, the stored window end and the
        snapshot revision: one query (calendar joined to account)."""
        query = (CalendarRow.select(CalendarRow.href, CalendarRow.watched, CalendarRow.synced,
                                    AccountRow.window_end, AccountRow.snapshot_rev)
                 .join(AccountRow).where(AccountRow.mm_user_id == user_id)
                 .order_by(CalendarRow.position, CalendarRow.id))
        rows: list[tuple[str, bool, bool, datetime | None, int]] = list(tuples(query))
        if rows:
            return PollState(watched=[href for href, watched, *_ in rows if watched],
                             unsynced={href for href, _, synced, *_ in rows if not synced},
                             window_end=from_db_time(rows[0][3]), rev=int(rows[0][4] or 0))
        account = AccountRow.get_or_none(AccountRow.mm_user_id == user_id)
        if account is None:
            return PollState([], set(), None, 0)
        return PollState([], set(), from_db_time(account.window_end), int(account.snapshot_rev or 0))

    def object_etags(self, user_id: str) -> dict[str, tuple[str, str]]:
        """href → (calendar, etag), without the ICS bodies (the cheap idle poll reads this)."""
        query = (ObjectRow.select(ObjectRow.href, ObjectRow.calendar, ObjectRow.etag)
                 .join(AccountRow).where(AccountRow.mm_user_id == user_id))
        return {href: (calendar, etag) for href, calendar, etag in tuples(query)}

    def objects(self, user_id: str, hrefs: Iterable[str] | None = None) -> dict[str, StoredObject]:
        """The stored copies (all of them, or those of ``hrefs``)."""
        query = (ObjectRow.select(ObjectRow.href, ObjectRow.calendar, ObjectRow.etag, ObjectRow.ics)
                 .join(AccountRow).where(AccountRow.mm_user_id == user_id))
        if hrefs is not None:
            wanted = list(hrefs)
            if not wanted:
                return {}
            query = query.where(ObjectRow.href.in_(wanted))
        return {href: StoredObject(cal, etag, ics) for href, cal, etag, ics in tuples(query)}

    def snapshot(self, user_id: str) -> dict[tuple[str, str, str], Occurrence]:
        query = (OccurrenceRow.select(OccurrenceRow.data).join(AccountRow)
                 .where(AccountRow.mm_user_id == user_id))
        occs = (load_occurrence(data) for (data,) in tuples(query))
        return {o.key: o for o in occs}

    def upcoming(self, users: Iterable[str], start: datetime,
                 end: datetime) -> dict[str, list[Occurrence]]:
        """The given accounts' stored occurrences overlapping [start, end) (the planner's
        small view around now), sorted by start."""
        wanted = list(users)
        found: dict[str, list[Occurrence]] = {u: [] for u in wanted}
        for batch in range(0, len(wanted), 500):
            query = (OccurrenceRow.select(AccountRow.mm_user_id, OccurrenceRow.data)
                     .join(AccountRow)
                     .where(AccountRow.mm_user_id.in_(wanted[batch:batch + 500])
                            & (OccurrenceRow.start < to_db_time(end))
                            & (OccurrenceRow.end > to_db_time(start)))
                     .order_by(OccurrenceRow.start))
            for user_id, data in tuples(query):
                found[user_id].append(load_occurrence(data))
        return found

    # -- a poll's result ----------------------------------------------------------------------
    def commit_poll(
        self,
        user_id: str,
        *,
        process_id: str,
        rev: int,
        upsert: Mapping[str, StoredObject],
        delete: Iterable[str],
        occurrences: Mapping[str, list[Occurrence]],
        replace_all: bool,
        notices: list[Notice],
        synced_calendars: Iterable[str],
        window_end: datetime | None,
        now: datetime,
    ) -> list[str]:
        """Store a poll's result in one transaction: object copies, the occurrences of the
        objects it re-expanded (``occurrences``: href → its occurrences; with
        ``replace_all`` every stored occurrence is replaced, e.g. after the window moved),
        the notices its diff produced, calendars now baselined, and the sync time.

        Raises ``StaleSnapshot`` (and stores nothing) when the revision moved since ``rev`` or
        the lease is no longer this process's. Returns the ids of the notices newly recorded.
        """
        with write_transaction():
            bumped = AccountRow.update(
                snapshot_rev=AccountRow.snapshot_rev + 1, last_sync_at=to_db_time(now),
                auth_notice_sent=False, needs_password=False,
                **({"window_end": to_db_time(window_end)} if window_end is not None else {}),
            ).where((AccountRow.mm_user_id == user_id) & (AccountRow.snapshot_rev == rev)
                    & (AccountRow.owner == process_id)).execute()
            if not bumped:
                raise StaleSnapshot(user_id)
            account = AccountRow.get(AccountRow.mm_user_id == user_id)
            gone = list(delete)
            if gone:
                ObjectRow.delete().where(
                    (ObjectRow.account == account) & (ObjectRow.href.in_(gone))).execute()
            for href, obj in upsert.items():
                (ObjectRow.insert(account=account, calendar=obj.calendar, href=href,
                                  etag=obj.etag, ics=obj.ics)
                 .on_conflict(conflict_target=[ObjectRow.account, ObjectRow.href],
                              update={ObjectRow.etag: obj.etag, ObjectRow.ics: obj.ics,
                                      ObjectRow.calendar: obj.calendar})
                 .execute())
            if replace_all:
                OccurrenceRow.delete().where(OccurrenceRow.account == account).execute()
            else:
                touched = list(dict.fromkeys([*gone, *occurrences]))
                for batch in range(0, len(touched), 200):
                    OccurrenceRow.delete().where(
                        (OccurrenceRow.account == account)
                        & OccurrenceRow.href.in_(touched[batch:batch + 200])).execute()
            self._insert_occurrences(account.id, [o for occs in occurrences.values() for o in occs])
            synced = list(synced_calendars)
            if synced:
                CalendarRow.update(synced=True).where(
                    (CalendarRow.account == account) & (CalendarRow.href.in_(synced))).execute()
            return self._outbox.record({user_id: notices}, now).get(user_id, [])

    @staticmethod
    def _insert_occurrences(account_id: int, occurrences: list[Occurrence]) -> None:
        rows = [
            {"account": account_id, "href": o.href, "calendar": o.calendar, "uid": o.uid,
             "rid": o.recurrence_id, "start": to_db_time(o.start), "end": to_db_time(o.end),
             "data": dump_occurrence(o)}
            for o in {o.key: o for o in occurrences}.values()
        ]
        for batch in range(0, len(rows), 200):
            (OccurrenceRow.insert_many(rows[batch:batch + 200])
             .on_conflict(conflict_target=[OccurrenceRow.account, OccurrenceRow.calendar,
                                           OccurrenceRow.uid, OccurrenceRow.rid],
                          preserve=[OccurrenceRow.href, OccurrenceRow.start, OccurrenceRow.end,
                                    OccurrenceRow.data])
             .execute())

    def touch_sync(self, users: Iterable[str], now: datetime) -> None:
        """Idle polls: only the sync time moves (as commit_poll would set it), for several
        accounts in one UPDATE."""
        wanted = list(users)
        with sqlite_write_lock():
            for batch in range(0, len(wanted), 500):
                AccountRow.update(last_sync_at=to_db_time(now), auth_notice_sent=False,
                                  needs_password=False).where(
                    AccountRow.mm_user_id.in_(wanted[batch:batch + 500])).execute()

    def apply_local_write(self, user_id: str, href: str, calendar: str,
                          stored: StoredObject | None, occurrences: list[Occurrence]) -> None:
        """The bot itself wrote ``href`` (an answer from the chat, a meeting it created): put
        the object as read back, and its occurrences, into the snapshot, so the next poll
        finds nothing to announce about it. ``stored`` None: the server dropped the object
        (a declined invitation); its occurrences are kept as given (declined), so its
        disappearance is not announced as a cancellation either."""
        with write_transaction():
            account = AccountRow.get_or_none(AccountRow.mm_user_id == user_id)
            if account is None:
                return
            AccountRow.update(snapshot_rev=AccountRow.snapshot_rev + 1).where(
                AccountRow.id == account.id).execute()
            if stored is None:
                ObjectRow.delete().where((ObjectRow.account == account)
                                         & (ObjectRow.href == href)).execute()
            else:
                (ObjectRow.insert(account=account, calendar=calendar, href=href,
                                  etag=stored.etag, ics=stored.ics)
                 .on_conflict(conflict_target=[ObjectRow.account, ObjectRow.href],
                              update={ObjectRow.etag: stored.etag, ObjectRow.ics: stored.ics})
                 .execute())
            OccurrenceRow.delete().where((OccurrenceRow.account == account)
                                         & (OccurrenceRow.href == href)).execute()
            self._insert_occurrences(account.id, occurrences)

    # -- the status marker --------------------------------------------------------------------
    def status_marker(self, user_id: str) -> BotStatus | None:
        row = AccountRow.get_or_none(AccountRow.mm_user_id == user_id)
        return None if row is None else _marker(row)

    def status_markers(self, users: Iterable[str]) -> dict[str, BotStatus]:
        query = AccountRow.select().where(AccountRow.mm_user_id.in_(list(users))
                                          & AccountRow.bot_status_expires.is_null(False))
        return {r.mm_user_id: m for r in query if (m := _marker(r)) is not None}

    def swap_status_marker(self, user_id: str, old: BotStatus | None,
                           new: BotStatus | None) -> bool:
        """Replace the marker only if it is still ``old`` (compare-and-set): a status check
        that raced another one loses instead of overwriting it. True when swapped."""
        expected = (AccountRow.bot_status_expires.is_null() if old is None
                    else AccountRow.bot_status_expires == to_db_time(old.expires_at))
        with sqlite_write_lock():
            return bool(AccountRow.update(
                bot_status_emoji=new.emoji if new else None,
                bot_status_text=new.text if new else None,
                bot_status_expires=to_db_time(new.expires_at) if new else None,
            ).where((AccountRow.mm_user_id == user_id) & expected).execute())

    def block_status(self, user_id: str) -> None:
        """The server refused custom statuses: stop trying for this user (``check`` says so;
        ``status on`` tries again)."""
        with sqlite_write_lock():
            AccountRow.update(status_blocked=True, status_on=False, dirty=True).where(
                AccountRow.mm_user_id == user_id).execute()

    # -- a refused password -------------------------------------------------------------------
    def record_auth_failure(self, user_id: str, error_key: str, now: datetime) -> bool:
        """Mark "needs a new app password"; True when the user has not been told yet."""
        with write_transaction():
            row = AccountRow.get_or_none(AccountRow.mm_user_id == user_id)
            if row is None:
                return False
            first = not row.auth_notice_sent
            AccountRow.update(needs_password=True, auth_notice_sent=True, last_error=error_key,
                              last_error_at=to_db_time(now)).where(AccountRow.id == row.id).execute()
            return first


def _marker(row: AccountRow) -> BotStatus | None:
    expires = from_db_time(row.bot_status_expires)
    if expires is None:
        return None
    return BotStatus(row.bot_status_emoji or "", row.bot_status_text or "", expires)
