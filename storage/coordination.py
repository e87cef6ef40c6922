"""Coordination of several bot processes on one database, decided by rows and constraints.

- **Processes** write a heartbeat row; the number of live ones tells each its fair share.
- **Account leases** (``account.owner`` / ``account.lease_until``): only the holder polls an
  account and decides its reminders, agenda and status. The holder renews its leases while it
  lives; leases that expired (their holder died or hung) are free for the taking. Taking uses
  ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: two processes never take
  the same account, and neither waits for the other.
- **The inbox**: every process hears every chat post; the one whose ``INSERT … ON CONFLICT DO
  NOTHING`` of the post id wins answers it. A claim that expired without being done (its
  process died while answering) can be taken over.

On SQLite only one process runs (``storage.db.claim_sqlite_file``); the same code then simply
finds every lease its own.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from bot.stores import InboxPost
from storage.db import is_sqlite, sqlite_write_lock, tuples, write_transaction
from storage.models import AccountRow, InboxRow, ProcessRow, database
from storage.repository import to_db_time


class CoordinationStore:
    # -- processes ----------------------------------------------------------------------------
    def heartbeat(self, process_id: str, now: datetime) -> None:
        with write_transaction():
            (ProcessRow.insert(process_id=process_id, started_at=to_db_time(now),
                               heartbeat_at=to_db_time(now))
             .on_conflict(conflict_target=[ProcessRow.process_id],
                          update={ProcessRow.heartbeat_at: to_db_time(now)}).execute())

    def live_processes(self, now: datetime, ttl: timedelta) -> int:
        return int(ProcessRow.select().where(
            ProcessRow.heartbeat_at >= to_db_time(now - ttl)).count())

    def forget_process(self, process_id: str) -> None:
        """A clean stop: the process's row and leases go at once (no waiting for expiry)."""
        with write_transaction():
            ProcessRow.delete().where(ProcessRow.process_id == process_id).execute()
            AccountRow.update(owner=None, lease_until=None).where(
                AccountRow.owner == process_id).execute()

    def prune_processes(self, before: datetime) -> None:
        with sqlite_write_lock():
            ProcessRow.delete().where(ProcessRow.heartbeat_at < to_db_time(before)).execute()

    # -- leases -------------------------------------------------------------------------------
    def account_count(self) -> int:
        return int(AccountRow.select().count())

    def renew(self, process_id: str, until: datetime) -> set[str]:
        """Extend this process's leases; returns the accounts it still holds."""
        with sqlite_write_lock():
            rows = (AccountRow.update(lease_until=to_db_time(until))
                    .where(AccountRow.owner == process_id)
                    .returning(AccountRow.mm_user_id).tuples().execute())
            return {r[0] for r in rows}

    def acquire(self, process_id: str, now: datetime, until: datetime, limit: int) -> set[str]:
        """Take up to ``limit`` accounts that nobody holds (or whose lease expired)."""
        if limit <= 0:
            return set()
        p = database.obj.param
        lock = "" if is_sqlite() else " FOR UPDATE SKIP LOCKED"
        sql = (f"UPDATE account SET owner = {p}, lease_until = {p}, dirty = {p} "
               "WHERE id IN (SELECT id FROM account WHERE owner IS NULL OR lease_until IS NULL "
               f"OR lease_until < {p} ORDER BY id LIMIT {p}{lock}) RETURNING mm_user_id")
        with write_transaction():
            rows = database.execute_sql(
                sql, (process_id, to_db_time(until), False, to_db_time(now), limit)).fetchall()
        return {r[0] for r in rows}

    def release(self, process_id: str, users: set[str]) -> None:
        """Give leases back (rebalancing after another process joined)."""
        if not users:
            return
        with sqlite_write_lock():
            AccountRow.update(owner=None, lease_until=None).where(
                (AccountRow.owner == process_id) & AccountRow.mm_user_id.in_(list(users))
            ).execute()

    def take_dirty(self, process_id: str) -> set[str]:
        """Accounts of this holder whose settings changed since it last looked (the flag is
        cleared in the same statement). Nothing changed: one read, no write."""
        if not AccountRow.select(AccountRow.id).where(
                (AccountRow.owner == process_id) & (AccountRow.dirty == True)).exists():  # noqa: E712
            return set()
        with sqlite_write_lock():
            rows = (AccountRow.update(dirty=False)
                    .where((AccountRow.owner == process_id) & (AccountRow.dirty == True))  # noqa: E712
                    .returning(AccountRow.mm_user_id).tuples().execute())
            return {r[0] for r in rows}

    def take_poll_requests(self, process_id: str, now: datetime) -> set[str]:
        """Accounts of this holder for which a poll was asked (``poll_due_at`` passed).
        None asked: one read, no write."""
        if not AccountRow.select(AccountRow.id).where(
                (AccountRow.owner == process_id)
                & (AccountRow.poll_due_at <= to_db_time(now))).exists():
            return set()
        with sqlite_write_lock():
            rows = (AccountRow.update(poll_due_at=None)
                    .where((AccountRow.owner == process_id)
                           & (AccountRow.poll_due_at <= to_db_time(now)))
                    .returning(AccountRow.mm_user_id).tuples().execute())
            return {r[0] for r in rows}

    # -- the inbox ----------------------------------------------------------------------------
    def claim_post(self, process_id: str, post_id: str, channel_id: str, created_at: datetime,
                   payload: dict[str, Any], now: datetime, hold: timedelta) -> bool:
        """True when this process is the one to answer the post (it won the insert)."""
        with sqlite_write_lock():
            rows = (InboxRow.insert(
                post_id=post_id, channel_id=channel_id, created_at=to_db_time(created_at),
                claimed_by=process_id, claim_until=to_db_time(now + hold),
                payload=json.dumps(payload, ensure_ascii=False))
                .on_conflict_ignore().returning(InboxRow.post_id).tuples().execute())
            return bool(list(rows))

    def post_done(self, post_id: str, now: datetime) -> None:
        with sqlite_write_lock():
            InboxRow.update(done_at=to_db_time(now)).where(InboxRow.post_id == post_id).execute()

    def known_posts(self, post_ids: list[str]) -> set[str]:
        if not post_ids:
            return set()
        return {r[0] for r in tuples(InboxRow.select(InboxRow.post_id)
                                     .where(InboxRow.post_id.in_(post_ids)))}

    def take_orphans(self, process_id: str, now: datetime, hold: timedelta,
                     limit: int = 20) -> list[InboxPost]:
        """Posts claimed by a process that did not answer them before its claim expired."""
        p = database.obj.param
        lock = "" if is_sqlite() else " FOR UPDATE SKIP LOCKED"
        sql = (f"UPDATE inbox SET claimed_by = {p}, claim_until = {p} WHERE post_id IN "
               f"(SELECT post_id FROM inbox WHERE done_at IS NULL AND claim_until < {p} "
               f"ORDER BY created_at LIMIT {p}{lock}) RETURNING post_id, payload")
        with write_transaction():
            rows = database.execute_sql(
                sql, (process_id, to_db_time(now + hold), to_db_time(now), limit)).fetchall()
        return [InboxPost(str(r[0]), json.loads(r[1]), True) for r in rows]

    def prune_inbox(self, before: datetime) -> None:
        with sqlite_write_lock():
            InboxRow.delete().where(InboxRow.created_at < to_db_time(before)).execute()
