"""Peewee models. Times are stored as UTC (naive in the column, aware at the repository edge)."""

from __future__ import annotations

from peewee import (
    AutoField,
    BooleanField,
    CharField,
    DatabaseProxy,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

database = DatabaseProxy()


class BaseModel(Model):
    """The models with a numeric key declare it (``id = AutoField()``), exactly as peewee would
    add it, so that the type checker knows the ``id`` column too."""

    class Meta:
        database = database


class SchemaVersion(BaseModel):
    """One row: the schema version this database was upgraded to."""

    id = AutoField()
    version = IntegerField()


class AccountRow(BaseModel):
    id = AutoField()
    mm_user_id = CharField(unique=True, max_length=64)
    login = CharField(max_length=254)
    password_enc = TextField()
    timezone = CharField(max_length=64)
    language = CharField(max_length=8, default="en")
    created_at = DateTimeField()
    # notification settings
    daily_at = CharField(max_length=5, null=True)
    daily_weekdays = BooleanField(default=True)
    remind_leads = CharField(max_length=64, default="10")
    status_on = BooleanField(default=True)
    changes_on = BooleanField(default=True)
    responses_on = BooleanField(default=True)
    # health
    needs_password = BooleanField(default=False)
    last_sync_at = DateTimeField(null=True)
    last_error = TextField(null=True)
    last_error_at = DateTimeField(null=True)
    # engine state (schema 2)
    auth_notice_sent = BooleanField(default=False)  # told about the 401 of this episode
    status_blocked = BooleanField(default=False)  # the server refused custom statuses (403/501)
    bot_status_text = CharField(max_length=128, null=True)  # what the bot last set, if still set
    bot_status_emoji = CharField(max_length=64, null=True)
    bot_status_expires = DateTimeField(null=True)
    window_end = DateTimeField(null=True)  # end of the window the stored snapshot covers
    # coordination (schema 3): which process holds the account, and what it must re-read
    owner = CharField(max_length=128, null=True, index=True)  # process id of the lease holder
    lease_until = DateTimeField(null=True)  # the lease is free for the taking after this
    poll_due_at = DateTimeField(null=True)  # a poll is wanted at once (password fixed, …)
    dirty = BooleanField(default=False)  # settings changed since the holder read them
    snapshot_rev = IntegerField(default=0)  # bumped by every write of the stored snapshot

    class Meta:
        table_name = "account"


class CalendarRow(BaseModel):
    id = AutoField()
    account = ForeignKeyField(AccountRow, backref="calendars", on_delete="CASCADE")
    href = CharField(max_length=512)
    name = CharField(max_length=256)
    watched = BooleanField(default=True)
    position = IntegerField(default=0)
    synced = BooleanField(default=False)  # (schema 2) baseline taken: later diffs may notify

    class Meta:
        table_name = "calendar"
        indexes = ((("account", "href"), True),)


class ObjectRow(BaseModel):
    """The last good copy of one calendar object in the polled window (for cheap polling)."""

    id = AutoField()
    account = ForeignKeyField(AccountRow, on_delete="CASCADE")
    calendar = CharField(max_length=512)
    href = CharField(max_length=512)
    etag = CharField(max_length=256)
    ics = TextField()

    class Meta:
        table_name = "object"
        indexes = ((("account", "href"), True),)


class OccurrenceRow(BaseModel):
    """The stored snapshot: one row per occurrence in the polled window."""

    id = AutoField()
    account = ForeignKeyField(AccountRow, on_delete="CASCADE")
    href = CharField(max_length=512, null=True)  # (schema 3) the object it was expanded from
    calendar = CharField(max_length=512)
    uid = CharField(max_length=512)
    rid = CharField(max_length=64)
    start = DateTimeField(index=True)
    end = DateTimeField()
    data = TextField()  # the Occurrence as JSON (storage.serial)

    class Meta:
        table_name = "occurrence"
        indexes = ((("account", "calendar", "uid", "rid"), True),)


class NoticeRow(BaseModel):
    """A notice recorded before it is sent, marked after Mattermost accepted it."""

    id = AutoField()
    account = ForeignKeyField(AccountRow, on_delete="CASCADE")
    notice_id = CharField(max_length=700)
    kind = CharField(max_length=16)  # reminder | agenda | change | response | system
    message = TextField()
    thread_key = CharField(max_length=600, null=True)  # later notices reply in this thread
    created_at = DateTimeField()
    expires_at = DateTimeField(null=True)  # not worth sending after this (a started meeting)
    sent_at = DateTimeField(null=True, index=True)
    post_id = CharField(max_length=64, null=True)
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(null=True)  # not before this (backoff, or a snooze's time)
    dropped = BooleanField(default=False)  # expired or given up before it could be sent
    # schema 3: claims (several senders), resumable parts, what it is about
    claimed_by = CharField(max_length=128, null=True)
    claim_until = DateTimeField(null=True)  # another sender may take it over after this
    parts = TextField(default="")  # ids of the parts already posted, comma-separated
    ref = TextField(null=True)  # (JSON) the meeting it is about and its buttons, see Notice
    threaded = BooleanField(default=False)  # sent in order with the account's other threaded ones
    drop_reason = CharField(max_length=32, null=True)

    class Meta:
        table_name = "notice"
        indexes = ((("account", "notice_id"), True),)


class ThreadRow(BaseModel):
    """The post that started a meeting's thread of notices (attendees' answers)."""

    id = AutoField()
    account = ForeignKeyField(AccountRow, on_delete="CASCADE")
    thread_key = CharField(max_length=600)
    post_id = CharField(max_length=64)

    class Meta:
        table_name = "thread"
        indexes = ((("account", "thread_key"), True),)


class ProcessRow(BaseModel):
    """A running bot process (schema 3): its heartbeat tells the others how many share the
    accounts, so each takes its share of the leases."""

    process_id = CharField(primary_key=True, max_length=128)
    started_at = DateTimeField()
    heartbeat_at = DateTimeField(index=True)

    class Meta:
        table_name = "process"


class InboxRow(BaseModel):
    """An incoming chat post (schema 3), claimed by the one process that answers it.

    The row is inserted with ``ON CONFLICT DO NOTHING``: whoever inserts it answers. ``done_at``
    is set once the reply is posted; a claim that expired without it (the process died) is
    taken over by another process, which first looks whether the reply went out after all.
    """

    post_id = CharField(primary_key=True, max_length=64)
    channel_id = CharField(max_length=64)
    created_at = DateTimeField(index=True)  # the post's own time (for pruning)
    claimed_by = CharField(max_length=128)
    claim_until = DateTimeField()
    done_at = DateTimeField(null=True)
    payload = TextField()  # the websocket event, to answer it again after a takeover

    class Meta:
        table_name = "inbox"


ALL_MODELS: list[type[BaseModel]] = [
    SchemaVersion, AccountRow, CalendarRow, ObjectRow, OccurrenceRow, NoticeRow, ThreadRow,
    ProcessRow, InboxRow,
]
