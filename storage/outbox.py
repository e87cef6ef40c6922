"""The outbox: notices recorded before they are sent, claimed by one sender, marked after
Mattermost accepted them. The rows and their constraints decide, not the memory of a process:

- recording is ``INSERT … ON CONFLICT DO NOTHING`` on (account, notice id), and notice ids are
  derived from what a notice says, so the same decision taken twice records one row;
- sending claims a row for a while (``UPDATE … RETURNING``, on PostgreSQL over ``SELECT … FOR
  UPDATE SKIP LOCKED``): no two senders, in one process or several, post the same notice; a
  sender that died leaves a claim that expires, and the next sender takes it over;
- the posts of a notice split into parts are recorded one by one, so a retry resumes at the
  first part not yet posted;
- an account's threaded notices (changes and answers) are claimable only in order: the next
  one waits until the one before it was sent or dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import metrics
from bot.core.model import MeetingRef, Notice
from bot.stores import COVERED, NOTICE_HOLD, ClaimedNotice
from storage.db import is_sqlite, sqlite_write_lock, tuples, write_transaction
from storage.models import AccountRow, NoticeRow, ThreadRow, database
from storage.repository import from_db_time, to_db_time


def _dump_ref(ref: MeetingRef) -> dict[str, Any]:
    return {"calendar": ref.calendar, "href": ref.href, "uid": ref.uid,
            "rid": ref.recurrence_id, "start": ref.start.isoformat(), "title": ref.title}


def _load_ref(data: Mapping[str, Any]) -> MeetingRef:
    return MeetingRef(data["calendar"], data["href"], data["uid"], data["rid"],
                      datetime.fromisoformat(data["start"]), data.get("title", ""))


def _dump_extra(notice: Notice) -> str | None:
    if not (notice.thread_keys or notice.refs or notice.actions):
        return None
    return json.dumps({"threads": list(notice.thread_keys),
                       "refs": [_dump_ref(r) for r in notice.refs],
                       "actions": list(notice.actions)}, ensure_ascii=False)


def _load_extra(text: str | None) -> tuple[tuple[str, ...], tuple[MeetingRef, ...],
                                           tuple[str, ...]]:
    if not text:
        return (), (), ()
    data = json.loads(text)
    return (tuple(data.get("threads", ())), tuple(_load_ref(r) for r in data.get("refs", ())),
            tuple(data.get("actions", ())))


_COLUMNS = ("n.id, a.mm_user_id, n.notice_id, n.kind, n.message, n.expires_at, n.attempts, "
            "n.parts, n.ref, n.created_at, n.next_attempt_at, n.claimed_by")


def _claimed(row: Sequence[Any]) -> ClaimedNotice:
    pk, user, notice_id, kind, message, expires, attempts, parts, ref, created, due, holder = row
    threads, refs, actions = _load_extra(ref)
    return ClaimedNotice(
        pk=int(pk), user_id=str(user), notice_id=str(notice_id), kind=str(kind),
        message=str(message), thread_keys=threads, expires_at=from_db_time(_as_time(expires)),
        attempts=int(attempts), parts=tuple(p for p in (parts or "").split(",") if p),
        refs=refs, actions=actions,
        created_at=from_db_time(_as_time(created)) or datetime.min.replace(tzinfo=UTC),
        not_before=from_db_time(_as_time(due)), claimed_by=str(holder or ""))


def _as_time(value: Any) -> datetime | None:
    """Raw SQL on SQLite hands back the text peewee stored; PostgreSQL a datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


class OutboxStore:
    """Every method is one statement or one transaction."""

    # -- recording ----------------------------------------------------------------------------
    def record(self, batch: Mapping[str, Sequence[Notice]], now: datetime) -> dict[str, list[str]]:
        """Record the notices of several accounts in ONE transaction; ids already recorded
        for an account are left as they are. Returns, per account, the ids newly recorded."""
        recorded: dict[str, list[str]] = {}
        wanted = {user: list(notices) for user, notices in batch.items() if notices}
        if not wanted:
            return recorded
        with write_transaction():
            accounts: dict[str, int] = dict(tuples(
                AccountRow.select(AccountRow.mm_user_id, AccountRow.id)
                .where(AccountRow.mm_user_id.in_(list(wanted)))))
            for user, notices in wanted.items():
                account = accounts.get(user)
                if account is None:  # disconnected meanwhile
                    continue
                rows = [self._row(account, n, now) for n in {n.notice_id: n for n in notices}.values()]
                inserted = (NoticeRow.insert_many(rows).on_conflict_ignore()
                            .returning(NoticeRow.notice_id).tuples().execute())
                recorded[user] = [r[0] for r in inserted]
        kinds = {(u, n.notice_id): n.kind for u, ns in wanted.items() for n in ns}
        for user, ids in recorded.items():
            for notice_id in ids:
                kind = kinds[(user, notice_id)]
                if kind != COVERED:
                    metrics.NOTICES.labels(kind, "recorded").inc()
        return recorded

    @staticmethod
    def _row(account: int, notice: Notice, now: datetime) -> dict[str, Any]:
        # "covered": the id of a reminder that another one stood for (two lead times due at
        # once): recorded as dropped, so it is never sent and never decided again.
        covered = notice.kind == COVERED
        return {
            "account": account, "notice_id": notice.notice_id, "kind": notice.kind,
            "message": notice.message,
            "thread_key": notice.thread_keys[0] if notice.thread_keys else None,
            "created_at": to_db_time(now), "expires_at": to_db_time(notice.expires_at),
            "next_attempt_at": to_db_time(max(now, notice.not_before or now)),
            "attempts": 0, "dropped": covered, "drop_reason": COVERED if covered else None,
            "parts": "", "threaded": notice.threaded, "ref": _dump_extra(notice),
        }

    def recorded_ids(self, users: Iterable[str], prefix: str,
                     since: datetime) -> dict[str, set[str]]:
        """Per account, ids of its notices recorded since ``since`` starting with ``prefix``."""
        wanted = list(users)
        found: dict[str, set[str]] = {u: set() for u in wanted}
        for batch in range(0, len(wanted), 500):
            query = (NoticeRow.select(AccountRow.mm_user_id, NoticeRow.notice_id).join(AccountRow)
                     .where(AccountRow.mm_user_id.in_(wanted[batch:batch + 500])
                            & (NoticeRow.created_at >= to_db_time(since))
                            & (NoticeRow.notice_id.startswith(prefix))))
            for user, notice_id in tuples(query):
                found[user].add(notice_id)
        return found

    # -- sending ------------------------------------------------------------------------------
    def claim(self, process_id: str, now: datetime, *, limit: int = 100,
              hold: timedelta = NOTICE_HOLD,
              ahead: timedelta = timedelta(0)) -> list[ClaimedNotice]:
        """Take up to ``limit`` notices that are due (by ``now + ahead``: the sender waits for
        ``not_before`` itself), unclaimed (or whose claim expired) and not waiting behind an
        earlier threaded notice of their account. When there is nothing to take, one read and
        no write (on SQLite the tick then never queues behind the pollers' writes)."""
        due_by = to_db_time(now + ahead)
        waiting = NoticeRow.select(NoticeRow.id).where(
            NoticeRow.sent_at.is_null() & (NoticeRow.dropped == False)  # noqa: E712
            & (NoticeRow.next_attempt_at <= due_by)
            & (NoticeRow.claim_until.is_null() | (NoticeRow.claim_until < to_db_time(now))))
        if not waiting.exists():
            return []
        p = database.obj.param
        lock = "" if is_sqlite() else " FOR UPDATE OF n SKIP LOCKED"
        sql = (
            f"UPDATE notice SET claimed_by = {p}, claim_until = {p}, attempts = attempts + 1 "
            "WHERE id IN (SELECT n.id FROM notice n "
            "WHERE n.sent_at IS NULL AND NOT n.dropped "
            f"AND n.next_attempt_at <= {p} AND (n.claim_until IS NULL OR n.claim_until < {p}) "
            "AND NOT (n.threaded AND EXISTS (SELECT 1 FROM notice e WHERE e.account_id = "
            "n.account_id AND e.threaded AND e.id < n.id AND e.sent_at IS NULL "
            f"AND NOT e.dropped)) ORDER BY n.id LIMIT {p}{lock}) RETURNING id"
        )
        at = to_db_time(now)
        with write_transaction():
            ids = [r[0] for r in database.execute_sql(
                sql, (process_id, to_db_time(now + hold), due_by, at, limit)).fetchall()]
            if not ids:
                return []
            rows = database.execute_sql(
                f"SELECT {_COLUMNS} FROM notice n JOIN account a ON a.id = n.account_id "
                f"WHERE n.id IN ({', '.join([p] * len(ids))}) ORDER BY n.id", ids).fetchall()
        return [_claimed(r) for r in rows]

    def extend_claim(self, notice: ClaimedNotice, until: datetime) -> bool:
        """The sender still works on it: hold it until ``until``, if the claim is still this
        one (every claim adds one to ``attempts``: a second sender of the same process that
        took the notice over holds another claim)."""
        with sqlite_write_lock():
            return bool(NoticeRow.update(claim_until=to_db_time(until)).where(
                (NoticeRow.id == notice.pk) & (NoticeRow.claimed_by == notice.claimed_by)
                & (NoticeRow.attempts == notice.attempts)
                & NoticeRow.sent_at.is_null() & (NoticeRow.dropped == False)  # noqa: E712
            ).execute())

    def add_part(self, pk: int, post_id: str) -> None:
        """One more part of the notice is posted (a retry resumes after it)."""
        with sqlite_write_lock():
            row = NoticeRow.get_or_none(NoticeRow.id == pk)
            if row is None:
                return
            parts = [p for p in (row.parts or "").split(",") if p] + [post_id]
            NoticeRow.update(parts=",".join(parts)).where(NoticeRow.id == pk).execute()

    def mark_sent(self, pk: int, post_id: str, now: datetime) -> None:
        with sqlite_write_lock():
            NoticeRow.update(sent_at=to_db_time(now), post_id=post_id, claimed_by=None,
                             claim_until=None).where(NoticeRow.id == pk).execute()

    def retry_at(self, pk: int, when: datetime) -> None:
        """Sending failed for now: release the claim, try again at ``when``."""
        with sqlite_write_lock():
            NoticeRow.update(next_attempt_at=to_db_time(when), claimed_by=None,
                             claim_until=None).where(NoticeRow.id == pk).execute()

    def drop(self, pk: int, reason: str) -> None:
        """Never send it (expired, given up after too many attempts, refused by the server)."""
        with sqlite_write_lock():
            NoticeRow.update(dropped=True, drop_reason=reason[:32], claimed_by=None,
                             claim_until=None).where(NoticeRow.id == pk).execute()

    def retry_now(self, now: datetime) -> int:
        """Mattermost is back: notices waiting out a backoff are due at once (their expiry
        still holds). Returns how many."""
        with sqlite_write_lock():
            return int(NoticeRow.update(next_attempt_at=to_db_time(now)).where(
                NoticeRow.sent_at.is_null() & (NoticeRow.dropped == False)  # noqa: E712
                & (NoticeRow.attempts > 0) & (NoticeRow.next_attempt_at > to_db_time(now))
            ).execute())

    # -- threads ------------------------------------------------------------------------------
    def thread_root(self, user_id: str, keys: Iterable[str]) -> str | None:
        """The post to reply under: the thread every key of the notice already has, if it is
        one and the same (a notice about several meetings with threads of their own, or some
        without one, starts a new post instead of hiding in one meeting's thread)."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return None
        rows: dict[str, str] = dict(tuples(
            ThreadRow.select(ThreadRow.thread_key, ThreadRow.post_id).join(AccountRow)
            .where((AccountRow.mm_user_id == user_id) & ThreadRow.thread_key.in_(wanted))))
        roots = {rows.get(k) for k in wanted}
        return str(roots.pop()) if len(roots) == 1 and None not in roots else None

    def set_thread_root(self, user_id: str, keys: Iterable[str], post_id: str) -> None:
        """``post_id`` starts the thread of every key that has none yet."""
        with write_transaction():
            account = AccountRow.get_or_none(AccountRow.mm_user_id == user_id)
            if account is None:
                return
            rows = [{"account": account.id, "thread_key": k, "post_id": post_id}
                    for k in dict.fromkeys(keys)]
            if rows:
                ThreadRow.insert_many(rows).on_conflict_ignore().execute()

    # -- lookups ------------------------------------------------------------------------------
    def notice_of_post(self, user_id: str, post_id: str) -> ClaimedNotice | None:
        """The sent notice one of whose parts is ``post_id`` (an answer typed in its thread)."""
        rows = database.execute_sql(
            f"SELECT {_COLUMNS} FROM notice n JOIN account a ON a.id = n.account_id "
            f"WHERE a.mm_user_id = {database.obj.param} AND n.parts LIKE {database.obj.param} "
            "ORDER BY n.id DESC", (user_id, f"%{post_id}%")).fetchall()
        for row in rows:
            found = _claimed(row)
            if post_id in found.parts:
                return found
        return None

    def pending_count(self) -> int:
        return int(NoticeRow.select().where(NoticeRow.sent_at.is_null()
                                            & (NoticeRow.dropped == False)).count())  # noqa: E712

    def prune(self, before: datetime) -> int:
        """Forget sent or dropped notices recorded before ``before`` (their ids can't recur:
        a reminder's id holds its meeting's start, a change's the objects' versions)."""
        with sqlite_write_lock():
            return int(NoticeRow.delete().where(
                (NoticeRow.created_at < to_db_time(before))
                & (NoticeRow.sent_at.is_null(False) | (NoticeRow.dropped == True))  # noqa: E712
            ).execute())
