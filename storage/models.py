"""Peewee models. Times are stored as UTC (naive in the column, aware at the repository edge)."""

from __future__ import annotations

from peewee import (
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
    class Meta:
        database = database


class SchemaVersion(BaseModel):
    """One row: the schema version this database was upgraded to."""

    version = IntegerField()


class AccountRow(BaseModel):
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

    class Meta:
        table_name = "account"


class CalendarRow(BaseModel):
    account = ForeignKeyField(AccountRow, backref="calendars", on_delete="CASCADE")
    href = CharField(max_length=512)
    name = CharField(max_length=256)
    watched = BooleanField(default=True)
    position = IntegerField(default=0)

    class Meta:
        table_name = "calendar"
        indexes = ((("account", "href"), True),)


ALL_MODELS: list[type[BaseModel]] = [SchemaVersion, AccountRow, CalendarRow]
