"""One contract suite for ``CalendarSource``: the in-memory fake and the real adapter.

Every test taking ``env`` runs twice: against ``FakeCalendarSource`` and against
``YandexCalDAV`` talking to a real Radicale behind ``YandexQuirks`` (marked ``contract``).
The Radicale-only tests below them check what only a real server can show: retries, auth
refusal, request counts and the middleware's Yandex quirks.
"""

from __future__ import annotations

import base64
import itertools
import logging
import re
import threading
import time
import traceback
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.adapters.caldav_client import YandexCalDAV, _ClientPool, canonical_href
from bot.core.ical import parse_occurrences
from bot.core.ical_write import new_meeting, partstat_of
from bot.core.model import Credentials, Occurrence
from bot.errors import AuthRefused, CalendarError, ServerUnavailable
from bot.metrics import REGISTRY
from bot.ports import CalendarSource
from tests.fake_calendar import (
    WRITE_APPLIED_504,
    WRITE_CONFLICT_412,
    WRITE_LOST_504,
    FakeCalendarSource,
)
from tests.radicale_server import RadicaleServer, free_port

PASSWORD = "app-pass-Secr3t-xyz"  # distinctive, so a leak is easy to spot
WEEK_START = datetime(2026, 3, 2, tzinfo=UTC)  # Monday
WEEK_END = WEEK_START + timedelta(days=7)
_logins = itertools.count(1)

# -- Yandex-shaped ICS ------------------------------------------------------------------------

VTIMEZONE_MOSCOW = """BEGIN:VTIMEZONE
TZID:Europe/Moscow
TZURL:http://tzurl.org/zoneinfo/Europe/Moscow
X-LIC-LOCATION:Europe/Moscow
BEGIN:STANDARD
TZOFFSETFROM:+0300
TZOFFSETTO:+0300
TZNAME:MSK
DTSTART:20110327T020000
RDATE:20110327T020000
END:STANDARD
END:VTIMEZONE"""


def yandex_event(
    uid: str,
    start: str,
    end: str,
    summary: str,
    *,
    rrule: str | None = None,
    sequence: int = 0,
    conference: str = "https://telemost.yandex.ru/j/12345678901234",
) -> str:
    """A VCALENDAR as Yandex serves it: local Moscow times with an inline VTIMEZONE."""
    lines = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Yandex LLC//Yandex Calendar//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        VTIMEZONE_MOSCOW,
        "BEGIN:VEVENT",
        f"DTSTART;TZID=Europe/Moscow:{start}",
        f"DTEND;TZID=Europe/Moscow:{end}",
        f"SUMMARY:{summary}",
        f"UID:{uid}",
        f"SEQUENCE:{sequence}",
        "DTSTAMP:20260201T090000Z",
        "CREATED:20260201T090000Z",
        "LAST-MODIFIED:20260201T090000Z",
        "ORGANIZER;CN=Alice:mailto:alice@yandex.ru",
        "ATTENDEE;PARTSTAT=ACCEPTED;CN=Alice:mailto:alice@yandex.ru",
        "ATTENDEE;PARTSTAT=NEEDS-ACTION;CN=Bob:mailto:bob@yandex.ru",
        f"URL:https://calendar.yandex.ru/event?event_id={zlib.crc32(uid.encode())}",
        f"X-TELEMOST-CONFERENCE:{conference}",
        "TRANSP:OPAQUE",
        "CATEGORIES:Мои события",
    ]
    if rrule:
        lines.append(f"RRULE:{rrule}")
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join("\r\n".join(chunk.splitlines()) for chunk in lines)


WEEKLY_STANDUP = yandex_event(
    "weekly-standup@yandex.ru",
    "20260105T100000",
    "20260105T101500",
    "Стендап",
    rrule="FREQ=WEEKLY;BYDAY=MO",
)
SINGLE_REVIEW = yandex_event(
    "review-1@yandex.ru", "20260304T150000", "20260304T160000", "Ревью дизайна"
)
FAR_PLANNING = yandex_event(
    "planning-2027@yandex.ru", "20270115T120000", "20270115T130000", "Планирование 2027"
)


# -- environments -----------------------------------------------------------------------------


@dataclass
class Env:
    """A CalendarSource with a fresh account, plus seeding that goes around it."""

    kind: str
    source: CalendarSource
    creds: Credentials
    _seed: FakeCalendarSource | RadicaleServer
    server: RadicaleServer | None = None

    def add_calendar(
        self, slug: str, name: str | None, components: tuple[str, ...] = ("VEVENT",)
    ) -> str:
        return canonical_href(self._seed.make_calendar(self.creds.login, slug, name, components))

    def put(self, cal_href: str, filename: str, ics: str) -> str:
        return canonical_href(self._seed.put(self.creds.login, cal_href, filename, ics))

    def delete(self, href: str) -> None:
        self._seed.delete(self.creds.login, href)

    def requests(self) -> int:
        """Requests the source made (HTTP requests seen by the server, or fake calls)."""
        if isinstance(self._seed, FakeCalendarSource):
            return self._seed.requests
        assert self.server is not None
        assert self.server.quirks is not None
        return self.server.quirks.counters.requests

    # -- for the write path -----------------------------------------------------------------

    def add_user(self, login: str) -> Credentials:
        """Another account on the same server (same password)."""
        if isinstance(self._seed, FakeCalendarSource):
            self._seed.add_account(login, PASSWORD)
        else:
            self._seed.add_user(login, PASSWORD)
        return Credentials(login, PASSWORD)

    def add_calendar_of(self, login: str, slug: str, name: str) -> str:
        return canonical_href(self._seed.make_calendar(login, slug, name))

    def put_as(self, login: str, cal_href: str, filename: str, ics: str) -> str:
        return canonical_href(self._seed.put(login, cal_href, filename, ics))

    def puts(self) -> int:
        """PUT requests the source sent (seen by the middleware, or simulated by the fake)."""
        if isinstance(self._seed, FakeCalendarSource):
            return self._seed.wire["PUT"]
        assert self.server is not None
        assert self.server.quirks is not None
        return self.server.quirks.counters.by_method["PUT"]

    def fail_next_write(self, kind: str, times: int = 1) -> None:
        """The next PUTs fail as ``kind``: WRITE_APPLIED_504, WRITE_LOST_504 or
        WRITE_CONFLICT_412 (the fake's names; the middleware gets the same faults)."""
        if isinstance(self._seed, FakeCalendarSource):
            self._seed.fail_next_write(kind, times=times)
            return
        assert self.server is not None
        assert self.server.quirks is not None
        if kind == WRITE_CONFLICT_412:
            self.server.quirks.conflict_next_write(times)
        else:
            self.server.quirks.fail_next_write(applied=kind == WRITE_APPLIED_504, times=times)

    def revoke(self) -> None:
        """The account's app password stops working (401 on every request)."""
        if isinstance(self._seed, FakeCalendarSource):
            self._seed.set_password(self.creds.login, PASSWORD + "-revoked")
            return
        assert self.server is not None
        assert self.server.quirks is not None
        self.server.quirks.refuse_auth(self.creds.login)

    def stored(self, href: str, login: str | None = None) -> str | None:
        """The object's ICS as the server holds it now, read around the source."""
        login = login or self.creds.login
        if isinstance(self._seed, FakeCalendarSource):
            obj = self._seed.stored(login, href)
            return None if obj is None else obj.ics
        answer = self._seed.request("GET", href, login=login, seed=True)
        return answer.text if answer.status == 200 else None

    def hrefs_in(self, cal_href: str, login: str | None = None) -> list[str]:
        """Every object href of a calendar, read around the source."""
        login = login or self.creds.login
        if isinstance(self._seed, FakeCalendarSource):
            return sorted(self._seed.objects(login, cal_href))
        answer = self._seed.request(
            "PROPFIND", cal_href, login=login, headers={"Depth": "1"}, seed=True,
            body=b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/>'
                 b"</D:prop></D:propfind>")
        hrefs = [canonical_href(h) for h in re.findall(
            r"<(?:\w+:)?response><(?:\w+:)?href>([^<]+)</", answer.text)]
        return sorted(h for h in hrefs if h != canonical_href(cal_href))


@pytest.fixture(scope="module")
def radicale() -> Iterator[RadicaleServer]:
    """One Radicale + YandexQuirks for the whole module; tests use fresh accounts."""
    with RadicaleServer() as server:
        yield server


def _adapter(server_url: str, **overrides: object) -> YandexCalDAV:
    options: dict[str, object] = {"timeout": 5.0, "sleep": lambda s: None, "batch_size": 5}
    options.update(overrides)
    return YandexCalDAV(server_url, **options)  # type: ignore[arg-type]


@pytest.fixture(params=["fake", pytest.param("radicale", marks=pytest.mark.contract)])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    """A fresh Yandex-style account on the fake or on Radicale (adapter batch size 5)."""
    login = f"user{next(_logins)}@yandex.ru"
    creds = Credentials(login, PASSWORD)
    if request.param == "fake":
        fake = FakeCalendarSource()
        fake.add_account(login, PASSWORD)
        yield Env("fake", fake, creds, fake)
        return
    server: RadicaleServer = request.getfixturevalue("radicale")
    assert server.quirks is not None
    server.add_user(login, PASSWORD)
    server.quirks.reset_faults()
    server.quirks.reset_counters()
    adapter = _adapter(server.url)
    try:
        yield Env("radicale", adapter, creds, server, server=server)
    finally:
        adapter.close()
        server.quirks.reset_faults()


@pytest.fixture
def radicale_env(radicale: RadicaleServer) -> Iterator[Env]:
    """A fresh account on Radicale only, for tests of real-server behaviour."""
    assert radicale.quirks is not None
    login = f"user{next(_logins)}@yandex.ru"
    radicale.add_user(login, PASSWORD)
    radicale.quirks.reset_faults()
    radicale.quirks.reset_counters()
    adapter = _adapter(radicale.url)
    try:
        yield Env("radicale", adapter, Credentials(login, PASSWORD), radicale, server=radicale)
    finally:
        adapter.close()
        radicale.quirks.reset_faults()


def _seed_week(env: Env) -> tuple[str, dict[str, str]]:
    calendar = env.add_calendar("events-12345", "Мой календарь")
    hrefs = {
        "weekly": env.put(calendar, "weekly-standup.ics", WEEKLY_STANDUP),
        "single": env.put(calendar, "review-1.ics", SINGLE_REVIEW),
        "far": env.put(calendar, "planning-2027.ics", FAR_PLANNING),
    }
    return calendar, hrefs


def _assert_secret_absent(
    exc: BaseException, caplog: pytest.LogCaptureFixture, login: str = "alice@yandex.ru"
) -> None:
    """Neither the password nor its Basic-auth token is in the exception chain or the logs."""
    token = base64.b64encode(f"{login}:{PASSWORD}".encode()).decode()
    rendered = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)
    # No chained niquests exception: its .request holds the Authorization header.
    assert exc.__context__ is None
    assert exc.__cause__ is None
    for text in [rendered] + [record.getMessage() for record in caplog.records]:
        assert PASSWORD not in text
        assert token not in text


# -- the contract (fake and Radicale) ---------------------------------------------------------


def test_list_calendars_skips_todo_collection_and_keys_by_href(env: Env) -> None:
    """Two event calendars with one name are both listed by href; the VTODO list is skipped."""
    first = env.add_calendar("events-12345", "Календарь")
    second = env.add_calendar("events-67891", "Календарь")
    todos = env.add_calendar("todos-67890", "Дела", ("VTODO",))

    calendars = env.source.list_calendars(env.creds)

    assert {c.href for c in calendars} == {first, second}
    assert todos not in {c.href for c in calendars}
    assert [c.name for c in calendars] == ["Календарь", "Календарь"]
    assert "%40" in first  # Yandex spelling of the login in hrefs
    assert "@" not in first


def test_calendar_without_displayname_still_gets_a_name_from_its_path(env: Env) -> None:
    """A collection with no displayname is still listed, named after its path."""
    href = env.add_calendar("events-55555", None)

    (calendar,) = env.source.list_calendars(env.creds)

    assert calendar.href == href
    # The adapter falls back to the last path segment; Radicale itself already answers a
    # missing displayname with the collection path ("user@yandex.ru/events-55555").
    assert calendar.name.endswith("events-55555")


def test_fetch_window_returns_recurring_master_unexpanded_and_single_event(env: Env) -> None:
    """A weekly series begun in January and a single event are in a March week; 2027 is not."""
    calendar, hrefs = _seed_week(env)

    objects = env.source.fetch_window(env.creds, calendar, WEEK_START, WEEK_END)

    by_href = {o.href: o for o in objects}
    assert set(by_href) == {hrefs["weekly"], hrefs["single"]}
    weekly = by_href[hrefs["weekly"]].ics
    assert weekly.count("BEGIN:VEVENT") == 1  # the master, not expanded instances
    assert "RRULE:FREQ=WEEKLY;BYDAY=MO" in weekly
    assert "DTSTART;TZID=Europe/Moscow:20260105T100000" in weekly
    assert "X-TELEMOST-CONFERENCE:https://telemost.yandex.ru/j/12345678901234" in weekly
    assert all(o.etag for o in objects)


def test_etags_in_window_match_fetch_window_and_change_after_put(env: Env) -> None:
    """The ETag-only query agrees with the full query, and an edit moves the ETag."""
    calendar, hrefs = _seed_week(env)
    full = env.source.fetch_window(env.creds, calendar, WEEK_START, WEEK_END)

    etags = env.source.etags_in_window(env.creds, calendar, WEEK_START, WEEK_END)
    assert etags == {o.href: o.etag for o in full}

    moved = SINGLE_REVIEW.replace("T150000", "T170000").replace("T160000", "T180000")
    env.put(calendar, "review-1.ics", moved)
    after = env.source.etags_in_window(env.creds, calendar, WEEK_START, WEEK_END)

    assert after[hrefs["single"]] != etags[hrefs["single"]]
    assert after[hrefs["weekly"]] == etags[hrefs["weekly"]]


def test_fetch_objects_crosses_batches_and_omits_deleted_href(env: Env) -> None:
    """Twelve hrefs (over two batches of five) come back in order, minus the deleted one."""
    calendar = env.add_calendar("events-12345", "Мой календарь")
    hrefs = [
        env.put(
            calendar,
            f"meeting-{n}.ics",
            yandex_event(f"meeting-{n}@yandex.ru", "20260303T110000", "20260303T113000", f"M{n}"),
        )
        for n in range(12)
    ]
    env.delete(hrefs[4])
    gone_calendar = calendar.replace("events-12345", "events-00000") + "ghost.ics"

    objects = env.source.fetch_objects(env.creds, [*hrefs, gone_calendar])

    assert [o.href for o in objects] == hrefs[:4] + hrefs[5:]
    assert all("BEGIN:VEVENT" in o.ics and o.etag for o in objects)
    if env.server is not None and env.server.quirks is not None:
        assert env.server.quirks.counters.by_report["calendar-multiget"] == 4  # 3 + ghost


def test_object_exists_is_false_after_delete(env: Env) -> None:
    """An object is there until it is deleted; then the source says it is gone."""
    _calendar, hrefs = _seed_week(env)
    assert env.source.object_exists(env.creds, hrefs["single"])

    env.delete(hrefs["single"])

    assert not env.source.object_exists(env.creds, hrefs["single"])
    assert env.source.object_exists(env.creds, hrefs["weekly"])


def test_hrefs_are_accepted_in_either_at_spelling(env: Env) -> None:
    """An href with a literal '@' names the same object as its '%40' spelling."""
    _calendar, hrefs = _seed_week(env)
    literal = hrefs["single"].replace("%40", "@")

    assert env.source.object_exists(env.creds, literal)
    assert [o.href for o in env.source.fetch_objects(env.creds, [literal])] == [hrefs["single"]]


def test_wrong_password_is_refused_once_without_leaking_it(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong app password raises AuthRefused after one request, and the password is nowhere."""
    caplog.set_level(logging.DEBUG)
    wrong = Credentials(env.creds.login, PASSWORD + "-wrong")
    before = env.requests()

    with pytest.raises(AuthRefused) as info:
        env.source.list_calendars(wrong)

    assert env.requests() - before == 1
    assert wrong.password not in "".join(traceback.format_exception(info.value))
    _assert_secret_absent(info.value, caplog, env.creds.login)


def test_window_on_a_missing_calendar_is_a_calendar_error(env: Env) -> None:
    """Asking for a calendar that does not exist is a CalendarError, not a refusal."""
    missing = env.add_calendar("events-12345", "x").replace("events-12345", "events-404")

    with pytest.raises(CalendarError) as info:
        env.source.etags_in_window(env.creds, missing, WEEK_START, WEEK_END)

    assert not isinstance(info.value, (AuthRefused, ServerUnavailable))


def test_naive_window_bounds_are_rejected(env: Env) -> None:
    """Bounds must be aware datetimes."""
    calendar = env.add_calendar("events-12345", "x")

    with pytest.raises(ValueError, match="timezone-aware"):
        env.source.fetch_window(env.creds, calendar, datetime(2026, 3, 2), WEEK_END)


# -- the write path (fake and Radicale) -------------------------------------------------------

MSK = ZoneInfo("Europe/Moscow")
NINTH = "2026-03-09T07:00:00+00:00"  # the standup of Monday 9 March, 10:00 Moscow time
ROOM = re.compile(r"X-TELEMOST-CONFERENCE:https://telemost\.yandex\.ru/j/\d{14}\r?$", re.M)


def invitation(login: str, base: str = SINGLE_REVIEW) -> str:
    """A Yandex meeting organized by Alice in which ``login`` is invited (RSVP=TRUE)."""
    return base.replace(
        "ATTENDEE;PARTSTAT=NEEDS-ACTION;CN=Bob:mailto:bob@yandex.ru",
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Me:mailto:{login}",
    )


def _seed_invitation(env: Env, base: str = SINGLE_REVIEW) -> tuple[str, str]:
    calendar = env.add_calendar("events-12345", "Мой календарь")
    return calendar, env.put(calendar, "meeting.ics", invitation(env.creds.login, base))


def _read(env: Env, ics: str, login: str | None = None) -> list[Occurrence]:
    """The occurrences of the seeded week as ``login`` (the account) sees them."""
    return parse_occurrences(ics, calendar="c", href="h", start=WEEK_START, end=WEEK_END,
                             tz=MSK, me=login or env.creds.login)


def test_get_object_returns_the_stored_object_and_none_when_gone(env: Env) -> None:
    """get_object gives the listing's ETag and the data; a deleted object is None."""
    calendar, hrefs = _seed_week(env)
    listed = env.source.etags_in_window(env.creds, calendar, WEEK_START, WEEK_END)

    obj = env.source.get_object(env.creds, hrefs["single"])

    assert obj is not None
    assert obj.href == hrefs["single"]
    assert obj.etag == listed[hrefs["single"]]
    assert "SUMMARY:Ревью дизайна" in obj.ics
    env.delete(hrefs["single"])
    assert env.source.get_object(env.creds, hrefs["single"]) is None


@pytest.mark.parametrize("partstat", ["ACCEPTED", "TENTATIVE"])
def test_answer_a_single_event(env: Env, partstat: str) -> None:
    """Accept or maybe: one PUT; the stored copy carries the answer, RSVP gone, Alice kept."""
    _, href = _seed_invitation(env)
    before = env.source.get_object(env.creds, href)

    answered = env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                            partstat=partstat, recurrence_id=None)

    assert answered.state == "answered"
    assert answered.stored is not None
    assert before is not None
    assert answered.stored.etag != before.etag
    stored = env.stored(href)
    assert stored is not None
    assert partstat_of(stored, env.creds.login, None) == partstat
    assert partstat_of(stored, "alice@yandex.ru", None) == "ACCEPTED"
    assert "RSVP" not in stored
    assert env.puts() == 1


@pytest.mark.parametrize("partstat", ["ACCEPTED", "TENTATIVE"])
def test_answer_a_whole_series(env: Env, partstat: str) -> None:
    """Accept or maybe on the weekly standup: every occurrence reads that answer."""
    _, href = _seed_invitation(env, WEEKLY_STANDUP)

    answered = env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                            partstat=partstat, recurrence_id=None)

    assert answered.state == "answered"
    assert answered.stored is not None
    (occurrence,) = _read(env, answered.stored.ics)
    assert occurrence.my_partstat == partstat
    assert partstat_of(answered.stored.ics, env.creds.login, NINTH) == partstat
    stored = env.stored(href)
    assert stored is not None
    assert stored.count("BEGIN:VEVENT") == 1


def test_answer_one_occurrence_creates_an_override_and_leaves_the_others(env: Env) -> None:
    """Declining 9 March adds an override; 2 and 16 March still need an answer."""
    _, href = _seed_invitation(env, WEEKLY_STANDUP)

    answered = env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                            partstat="DECLINED", recurrence_id=NINTH)

    assert answered.state == "answered"
    stored = env.stored(href)
    assert stored is not None
    assert stored.count("BEGIN:VEVENT") == 2
    window = parse_occurrences(stored, calendar="c", href="h", start=WEEK_START,
                               end=WEEK_END + timedelta(days=7), tz=MSK, me=env.creds.login)
    assert {o.recurrence_id: o.my_partstat for o in window} == {
        "2026-03-02T07:00:00+00:00": "NEEDS-ACTION", NINTH: "DECLINED",
    }
    assert partstat_of(stored, env.creds.login, "2026-03-16T07:00:00+00:00") == "NEEDS-ACTION"


def test_decline_ends_with_the_copy_gone(env: Env) -> None:
    """After a decline the server drops the invitee's copy: "gone", and GET finds nothing."""
    _, href = _seed_invitation(env)

    answered = env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                            partstat="DECLINED", recurrence_id=None)

    assert answered.state == "gone"
    assert answered.stored is None
    assert env.source.get_object(env.creds, href) is None
    assert not env.source.object_exists(env.creds, href)


def test_a_412_is_read_again_and_written_once_more(env: Env) -> None:
    """The object changed between GET and PUT: re-read, re-apply, a second PUT succeeds."""
    _, href = _seed_invitation(env)
    env.fail_next_write(WRITE_CONFLICT_412)

    answered = env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                            partstat="ACCEPTED", recurrence_id=None)

    assert answered.state == "answered"
    assert env.puts() == 2
    stored = env.stored(href)
    assert stored is not None
    assert partstat_of(stored, env.creds.login, None) == "ACCEPTED"


def test_two_412s_are_a_write_conflict(env: Env) -> None:
    """A second 412 gives up with error.write_conflict after exactly two PUTs."""
    _, href = _seed_invitation(env)
    env.fail_next_write(WRITE_CONFLICT_412, times=2)

    with pytest.raises(CalendarError) as info:
        env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                     partstat="ACCEPTED", recurrence_id=None)

    assert info.value.key == "error.write_conflict"
    assert env.puts() == 2
    stored = env.stored(href)
    assert stored is not None
    assert partstat_of(stored, env.creds.login, None) == "NEEDS-ACTION"


def test_a_504_after_the_write_was_applied_is_not_written_again(env: Env) -> None:
    """504, but the read back shows the answer: success after one PUT."""
    _, href = _seed_invitation(env)
    env.fail_next_write(WRITE_APPLIED_504)

    answered = env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                            partstat="TENTATIVE", recurrence_id=None)

    assert answered.state == "answered"
    assert env.puts() == 1
    assert answered.stored is not None
    assert partstat_of(answered.stored.ics, env.creds.login, None) == "TENTATIVE"


def test_a_504_that_lost_the_write_gets_exactly_one_more_put(env: Env) -> None:
    """504 and nothing written: one more PUT against the ETag just read, then success."""
    _, href = _seed_invitation(env)
    env.fail_next_write(WRITE_LOST_504)

    answered = env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                            partstat="ACCEPTED", recurrence_id=None)

    assert answered.state == "answered"
    assert env.puts() == 2
    stored = env.stored(href)
    assert stored is not None
    assert partstat_of(stored, env.creds.login, None) == "ACCEPTED"


def test_two_lost_writes_are_server_unavailable(env: Env) -> None:
    """504 twice with nothing written: ServerUnavailable after two PUTs, object unchanged."""
    _, href = _seed_invitation(env)
    env.fail_next_write(WRITE_LOST_504, times=2)

    with pytest.raises(ServerUnavailable):
        env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                     partstat="ACCEPTED", recurrence_id=None)

    assert env.puts() == 2
    stored = env.stored(href)
    assert stored is not None
    assert partstat_of(stored, env.creds.login, None) == "NEEDS-ACTION"


def test_a_decline_answered_504_is_gone_without_a_second_put(env: Env) -> None:
    """A decline applied behind a 504: the read back's 404 is the expected "gone"."""
    _, href = _seed_invitation(env)
    env.fail_next_write(WRITE_APPLIED_504)

    answered = env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                            partstat="DECLINED", recurrence_id=None)

    assert answered.state == "gone"
    assert env.puts() == 1


def test_answer_with_a_revoked_password_is_refused(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """A 401 on the write path is AuthRefused, as when polling; nothing is written."""
    caplog.set_level(logging.DEBUG)
    _, href = _seed_invitation(env)
    env.revoke()

    with pytest.raises(AuthRefused) as info:
        env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                     partstat="ACCEPTED", recurrence_id=None)

    assert env.puts() == 0
    _assert_secret_absent(info.value, caplog, env.creds.login)


def test_not_invited_writes_nothing(env: Env) -> None:
    """Answering a meeting the account is not invited to: error.not_invited, no PUT."""
    calendar = env.add_calendar("events-12345", "x")
    href = env.put(calendar, "review.ics", SINGLE_REVIEW)

    with pytest.raises(CalendarError) as info:
        env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                     partstat="ACCEPTED", recurrence_id=None)

    assert info.value.key == "error.not_invited"
    assert env.puts() == 0


def test_a_meeting_gone_before_the_answer(env: Env) -> None:
    """No object at the href: error.meeting_gone before anything is written."""
    _calendar, href = _seed_invitation(env)
    env.delete(href)

    with pytest.raises(CalendarError) as info:
        env.source.answer_invitation(env.creds, href, me=env.creds.login,
                                     partstat="ACCEPTED", recurrence_id=None)

    assert info.value.key == "error.meeting_gone"
    assert env.puts() == 0


def _meeting(env: Env, uid: str, guests: list[str]) -> str:
    start = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    return new_meeting(uid=uid, start=start, end=start + timedelta(minutes=30),
                       title="Синк, по плану", organizer=env.creds.login,
                       organizer_name="Me", guests=guests, tz=MSK,
                       now=datetime(2026, 3, 1, tzinfo=UTC))


def test_create_event_reads_back_with_a_minted_telemost_room(env: Env) -> None:
    """The new object is read back with its Telemost link, organizer and attendees."""
    calendar = env.add_calendar("events-12345", "Мой календарь")
    uid = "bot-0001@yc-bot"

    stored = env.source.create_event(
        env.creds, calendar, uid, _meeting(env, uid, ["alice@yandex.ru", "bob@ya.ru"]))

    assert stored.href == calendar + "bot-0001%40yc-bot.ics"
    assert stored.etag
    assert ROOM.search(stored.ics)
    (occurrence,) = _read(env, stored.ics)
    assert occurrence.link is not None
    assert occurrence.link.startswith(
        "https://telemost.yandex.ru/j/")
    assert occurrence.organizer == env.creds.login
    assert occurrence.title == "Синк, по плану"
    assert {(a.email, a.partstat) for a in occurrence.attendees} == {
        (env.creds.login, "ACCEPTED"), ("alice@yandex.ru", "NEEDS-ACTION"),
        ("bob@yandex.ru", "NEEDS-ACTION")}
    assert occurrence.start == datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    assert env.puts() == 1
    assert env.hrefs_in(calendar) == [stored.href]


def test_create_event_answered_504_after_it_was_stored_makes_no_duplicate(env: Env) -> None:
    """504 but stored: the read back finds it, no second PUT, one object in the calendar."""
    calendar = env.add_calendar("events-12345", "x")
    env.fail_next_write(WRITE_APPLIED_504)

    stored = env.source.create_event(
        env.creds, calendar, "bot-0002", _meeting(env, "bot-0002", ["alice@yandex.ru"]))

    assert env.puts() == 1
    assert env.hrefs_in(calendar) == [stored.href]
    assert ROOM.search(stored.ics)


def test_create_event_whose_put_was_lost_is_sent_once_more(env: Env) -> None:
    """504 and not stored: exactly one more PUT, one object."""
    calendar = env.add_calendar("events-12345", "x")
    env.fail_next_write(WRITE_LOST_504)

    stored = env.source.create_event(
        env.creds, calendar, "bot-0003", _meeting(env, "bot-0003", []))

    assert env.puts() == 2
    assert env.hrefs_in(calendar) == [stored.href]


def test_create_event_never_replaces_an_existing_object(env: Env) -> None:
    """If-None-Match: an object of another meeting at that href is a write_conflict."""
    calendar = env.add_calendar("events-12345", "x")
    env.put(calendar, "bot-0004.ics", SINGLE_REVIEW)

    with pytest.raises(CalendarError) as info:
        env.source.create_event(
            env.creds, calendar, "bot-0004", _meeting(env, "bot-0004", []))

    assert info.value.key == "error.write_conflict"
    stored = env.stored(calendar + "bot-0004.ics")
    assert stored is not None
    assert "review-1@yandex.ru" in stored


def test_invitations_reach_attendees_and_answers_reach_the_organizer(env: Env) -> None:
    """The organizer's new meeting lands in the guest's calendar; the guest's answers show
    in the organizer's copy; after the guest's decline only the guest's copy is gone."""
    guest = env.add_user(f"guest{next(_logins)}@yandex.ru")
    guest_calendar = env.add_calendar_of(guest.login, "events-777", "Гость")
    calendar = env.add_calendar("events-12345", "Мой календарь")
    uid = f"bot-{next(_logins)}"
    mine = env.source.create_event(env.creds, calendar, uid, _meeting(env, uid, [guest.login]))
    (delivered,) = env.hrefs_in(guest_calendar, guest.login)

    answered = env.source.answer_invitation(guest, delivered, me=guest.login,
                                            partstat="ACCEPTED", recurrence_id=None)
    organizer_view = env.stored(mine.href)

    assert answered.state == "answered"
    assert organizer_view is not None
    assert partstat_of(organizer_view, guest.login, None) == (
        "ACCEPTED")
    declined = env.source.answer_invitation(guest, delivered, me=guest.login,
                                            partstat="DECLINED", recurrence_id=None)
    assert declined.state == "gone"
    assert env.stored(delivered, guest.login) is None
    organizer_view = env.stored(mine.href)
    assert organizer_view is not None
    assert partstat_of(organizer_view, guest.login, None) == (
        "DECLINED")
    if env.server is not None and env.server.quirks is not None:
        counters = env.server.quirks.counters
        assert (counters.invitations_delivered, counters.answers_copied,
                counters.declined_dropped) == (1, 2, 1)


# -- the real adapter against Radicale + YandexQuirks -----------------------------------------


@pytest.mark.contract
def test_credentials_go_out_with_the_first_request(radicale_env: Env) -> None:
    """auth_type='basic': no anonymous request is ever sent (no 401 round trip)."""
    radicale_env.add_calendar("events-12345", "x")

    radicale_env.source.list_calendars(radicale_env.creds)

    assert radicale_env.server is not None
    assert radicale_env.server.quirks is not None
    counters = radicale_env.server.quirks.counters
    assert counters.requests == 3
    assert counters.anonymous == 0


@pytest.mark.contract
def test_revoked_app_password_is_refused_without_retry(
    radicale_env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """A 401 for a known login (revoked app password) is AuthRefused after one request."""
    caplog.set_level(logging.DEBUG)
    calendar, _ = _seed_week(radicale_env)
    assert radicale_env.server is not None
    assert radicale_env.server.quirks is not None
    radicale_env.server.quirks.refuse_auth(radicale_env.creds.login)

    with pytest.raises(AuthRefused) as info:
        radicale_env.source.etags_in_window(radicale_env.creds, calendar, WEEK_START, WEEK_END)

    assert radicale_env.server.quirks.counters.requests == 1
    _assert_secret_absent(info.value, caplog, radicale_env.creds.login)


@pytest.mark.contract
def test_every_second_request_failing_with_504_still_succeeds(radicale_env: Env) -> None:
    """With every 2nd request answered 504, each call succeeds through one retry."""
    calendar, hrefs = _seed_week(radicale_env)
    assert radicale_env.server is not None
    assert radicale_env.server.quirks is not None
    radicale_env.server.quirks.fail_every(2)
    source, creds = radicale_env.source, radicale_env.creds

    calendars = source.list_calendars(creds)
    objects = source.fetch_window(creds, calendar, WEEK_START, WEEK_END)
    etags = source.etags_in_window(creds, calendar, WEEK_START, WEEK_END)

    assert [c.href for c in calendars] == [calendar]
    assert {o.href for o in objects} == {hrefs["weekly"], hrefs["single"]}
    assert etags == {o.href: o.etag for o in objects}
    assert radicale_env.server.quirks.counters.injected_failures >= 3


@pytest.mark.contract
def test_server_answering_504_to_everything_is_unavailable_after_retries(
    radicale: RadicaleServer, caplog: pytest.LogCaptureFixture
) -> None:
    """All requests 504 → ServerUnavailable after exactly `retries` attempts, backing off."""
    caplog.set_level(logging.DEBUG)
    assert radicale.quirks is not None
    login = f"user{next(_logins)}@yandex.ru"
    radicale.add_user(login, PASSWORD)
    radicale.quirks.reset_counters()
    radicale.quirks.fail_all(504)
    delays: list[float] = []
    adapter = _adapter(radicale.url, retries=4, backoff=1.0, max_backoff=3.0, sleep=delays.append)
    try:
        with pytest.raises(ServerUnavailable) as info:
            adapter.list_calendars(Credentials(login, PASSWORD))
    finally:
        radicale.quirks.reset_faults()
        adapter.close()

    assert radicale.quirks.counters.requests == 4
    assert len(delays) == 3
    assert 0.5 <= delays[0] <= 1.0
    assert 1.0 <= delays[1] <= 2.0
    assert 1.5 <= delays[2] <= 3.0
    assert info.value.params["reason"] == "status 504"
    _assert_secret_absent(info.value, caplog, login)


@pytest.mark.contract
def test_unreachable_server_is_unavailable_without_leaking_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connection refused is retried, then ServerUnavailable with no password anywhere."""
    caplog.set_level(logging.DEBUG)
    adapter = _adapter(f"http://127.0.0.1:{free_port()}/", retries=2)
    try:
        with pytest.raises(ServerUnavailable) as info:
            adapter.list_calendars(Credentials("alice@yandex.ru", PASSWORD))
    finally:
        adapter.close()

    assert info.value.params["reason"].startswith("connection")
    _assert_secret_absent(info.value, caplog)


@pytest.mark.contract
def test_slow_server_times_out_into_server_unavailable(radicale_env: Env) -> None:
    """A server slower than the timeout gives ServerUnavailable, reason 'timeout'."""
    assert radicale_env.server is not None
    assert radicale_env.server.quirks is not None
    radicale_env.server.quirks.latency(1.0)
    adapter = _adapter(radicale_env.server.url, timeout=0.2, retries=2)
    try:
        with pytest.raises(ServerUnavailable) as info:
            adapter.list_calendars(radicale_env.creds)
    finally:
        adapter.close()

    assert info.value.params["reason"] == "timeout"
    assert radicale_env.server.quirks.counters.requests == 2


@pytest.mark.contract
def test_concurrent_requests_are_capped_by_the_global_semaphore(radicale_env: Env) -> None:
    """Eight accounts polled from eight threads never have more than 2 requests in flight."""
    assert radicale_env.server is not None
    assert radicale_env.server.quirks is not None
    server = radicale_env.server
    accounts = []
    for n in range(8):
        login = f"cap{next(_logins)}-{n}@yandex.ru"
        server.add_user(login, PASSWORD)
        accounts.append(Credentials(login, PASSWORD))
    server.quirks.reset_counters()
    server.quirks.latency(0.02)
    adapter = _adapter(server.url, max_concurrency=2)
    errors: list[BaseException] = []

    def poll(creds: Credentials) -> None:
        try:
            adapter.list_calendars(creds)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=poll, args=(c,)) for c in accounts]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        adapter.close()

    assert not errors
    counters = server.quirks.counters
    assert counters.requests == 24
    assert 1 <= counters.max_in_flight <= 2


@pytest.mark.contract
def test_sync_collection_is_refused_and_hidden_by_the_middleware(radicale_env: Env) -> None:
    """REPORT sync-collection → 403 supported-report; PROPFIND shows no sync-token or report."""
    server = radicale_env.server
    assert server is not None
    assert server.quirks is not None
    calendar, _ = _seed_week(radicale_env)
    login = radicale_env.creds.login

    report = server.request(
        "REPORT",
        calendar,
        login=login,
        headers={"Depth": "1"},
        body=b'<?xml version="1.0" encoding="utf-8"?>'
        b'<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level>'
        b"<D:prop><D:getetag/></D:prop></D:sync-collection>",
    )
    propfind = server.request(
        "PROPFIND",
        calendar,
        login=login,
        headers={"Depth": "0"},
        body=b'<?xml version="1.0" encoding="utf-8"?>'
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:sync-token/><D:supported-report-set/>'
        b"<D:displayname/></D:prop></D:propfind>",
    )

    assert report.status == 403
    assert "supported-report" in report.text
    assert propfind.status == 207
    assert "sync-token" not in propfind.text
    assert "sync-collection" not in propfind.text
    assert "calendar-query" in propfind.text  # the rest of supported-report-set is kept
    counters = server.quirks.counters
    assert counters.sync_refused == 1
    assert counters.by_report["sync-collection"] == 1


@pytest.mark.contract
def test_expand_element_is_stripped_so_the_server_returns_the_master(radicale_env: Env) -> None:
    """<C:expand/> is removed from REPORT bodies: the weekly master comes back unexpanded."""
    server = radicale_env.server
    assert server is not None
    assert server.quirks is not None
    calendar, _hrefs = _seed_week(radicale_env)

    answer = server.request(
        "REPORT",
        calendar,
        login=radicale_env.creds.login,
        headers={"Depth": "1"},
        body=b'<?xml version="1.0" encoding="utf-8"?>'
        b'<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        b'<D:prop><D:getetag/><C:calendar-data><C:expand start="20260302T000000Z"'
        b' end="20260309T000000Z"/></C:calendar-data></D:prop>'
        b'<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        b'<C:time-range start="20260302T000000Z" end="20260309T000000Z"/>'
        b"</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>",
    )

    assert answer.status == 207
    assert "RRULE:FREQ=WEEKLY" in answer.text  # an expanded answer has no RRULE
    assert server.quirks.counters.expand_stripped == 1


@pytest.mark.contract
def test_adapter_never_asks_for_server_side_expansion(radicale_env: Env) -> None:
    """fetch_window sends a plain calendar-query: the middleware finds nothing to strip."""
    calendar, _ = _seed_week(radicale_env)

    radicale_env.source.fetch_window(radicale_env.creds, calendar, WEEK_START, WEEK_END)

    assert radicale_env.server is not None
    assert radicale_env.server.quirks is not None
    counters = radicale_env.server.quirks.counters
    assert counters.expand_stripped == 0
    assert counters.by_report["calendar-query"] == 1


@pytest.mark.contract
def test_etag_only_query_sends_no_calendar_data(radicale_env: Env) -> None:
    """etags_in_window transfers far fewer bytes than fetch_window for the same window."""
    calendar, _ = _seed_week(radicale_env)
    server = radicale_env.server
    assert server is not None
    assert server.quirks is not None
    creds = radicale_env.creds
    source = _adapter(server.url, relist_seconds=0)  # the REPORT alone, no ctag PROPFIND

    source.etags_in_window(creds, calendar, WEEK_START, WEEK_END)
    etag_bytes = server.quirks.counters.bytes_sent
    server.quirks.reset_counters()
    source.fetch_window(creds, calendar, WEEK_START, WEEK_END)

    assert etag_bytes * 3 < server.quirks.counters.bytes_sent


@pytest.mark.contract
def test_unchanged_ctag_answers_from_the_last_listing(radicale_env: Env) -> None:
    """While the ctag holds still a poll is one PROPFIND; a PUT moves it and lists again;
    after relist_seconds the window is listed even with the same ctag."""
    calendar, hrefs = _seed_week(radicale_env)
    server = radicale_env.server
    assert server is not None
    assert server.quirks is not None
    clock = [0.0]
    source = _adapter(server.url, relist_seconds=600, monotonic=lambda: clock[0])
    creds = radicale_env.creds
    first = source.etags_in_window(creds, calendar, WEEK_START, WEEK_END)
    server.quirks.reset_counters()
    assert source.etags_in_window(creds, calendar, WEEK_START, WEEK_END) == first
    assert dict(server.quirks.counters.by_method) == {"PROPFIND": 1}
    radicale_env.put(calendar, "review-1.ics", SINGLE_REVIEW.replace("SUMMARY:", "SUMMARY:x"))
    after = source.etags_in_window(creds, calendar, WEEK_START, WEEK_END)
    assert after[hrefs["single"]] != first[hrefs["single"]]
    server.quirks.reset_counters()
    clock[0] = 601.0
    source.etags_in_window(creds, calendar, WEEK_START, WEEK_END)
    assert dict(server.quirks.counters.by_method) == {"PROPFIND": 1, "REPORT": 1}
    source.close()


@pytest.mark.contract
def test_a_403_with_a_dav_precondition_is_not_a_refused_password(radicale_env: Env) -> None:
    """Radicale's 403 <supported-report/> (multiget on a non-calendar) is a CalendarError."""
    radicale_env.add_calendar("events-12345", "x")
    not_a_calendar = "/" + radicale_env.creds.login.replace("@", "%40") + "/stray.ics"

    with pytest.raises(CalendarError) as info:
        radicale_env.source.fetch_objects(radicale_env.creds, [not_a_calendar])

    assert not isinstance(info.value, AuthRefused)
    assert info.value.params["status"] == 403


@pytest.mark.contract
def test_radicale_serves_yandex_style_logins_with_owner_only_rights(radicale_env: Env) -> None:
    """'@' logins work in both path spellings, and another account's calendar is forbidden."""
    server = radicale_env.server
    assert server is not None
    calendar, hrefs = _seed_week(radicale_env)
    intruder = f"user{next(_logins)}@yandex.ru"
    server.add_user(intruder, "other")
    literal = calendar.replace("%40", "@")

    own = server.request(
        "PROPFIND", literal, login=radicale_env.creds.login, headers={"Depth": "0"}
    )
    read = server.request("GET", hrefs["single"], login=intruder)
    write = server.request(
        "PUT",
        calendar + "x.ics",
        login=intruder,
        body=SINGLE_REVIEW.encode(),
        headers={"Content-Type": "text/calendar"},
    )

    assert own.status == 207  # answered with the %40 spelling
    assert calendar in own.text
    assert read.status == 403
    assert write.status == 403


@pytest.mark.contract
def test_a_put_answered_504_has_still_been_applied(radicale_env: Env) -> None:
    """Like Yandex, the middleware carries out a PUT and then answers 504."""
    server = radicale_env.server
    assert server is not None
    assert server.quirks is not None
    calendar = radicale_env.add_calendar("events-12345", "x")
    server.quirks.fail_every(1)

    answer = server.request(
        "PUT",
        calendar + "late.ics",
        login=radicale_env.creds.login,
        body=SINGLE_REVIEW.encode(),
        headers={"Content-Type": "text/calendar"},
    )
    server.quirks.reset_faults()

    assert answer.status == 504
    assert radicale_env.source.object_exists(radicale_env.creds, calendar + "late.ics")


@pytest.mark.contract
def test_a_401_on_the_put_itself_is_auth_refused(
    radicale_env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """The GET works, the PUT is refused: AuthRefused after that one PUT, no secret leaked."""
    caplog.set_level(logging.DEBUG)
    _, href = _seed_invitation(radicale_env)
    assert radicale_env.server is not None
    assert radicale_env.server.quirks is not None
    radicale_env.server.quirks.fail_next_write(applied=False, status=401)

    with pytest.raises(AuthRefused) as info:
        radicale_env.source.answer_invitation(radicale_env.creds, href,
                                              me=radicale_env.creds.login,
                                              partstat="ACCEPTED", recurrence_id=None)

    assert radicale_env.puts() == 1
    _assert_secret_absent(info.value, caplog, radicale_env.creds.login)


@pytest.mark.contract
def test_the_read_back_is_retried_like_any_read_but_the_put_is_not(radicale_env: Env) -> None:
    """Every 3rd request 504: GET, PUT (2xx), GET 504 → retried; one PUT in all."""
    _, href = _seed_invitation(radicale_env)
    assert radicale_env.server is not None
    assert radicale_env.server.quirks is not None
    radicale_env.server.quirks.fail_every(3)

    answered = radicale_env.source.answer_invitation(
        radicale_env.creds, href, me=radicale_env.creds.login, partstat="ACCEPTED",
        recurrence_id=None)

    counters = radicale_env.server.quirks.counters
    assert answered.state == "answered"
    assert counters.by_method["PUT"] == 1
    assert counters.by_method["GET"] == 3
    assert counters.injected_failures == 1


@pytest.mark.contract
def test_a_403_on_a_write_is_not_a_refused_password(radicale_env: Env) -> None:
    """Creating a meeting in a calendar the account may not write is a CalendarError(403)."""
    server = radicale_env.server
    assert server is not None
    other = f"user{next(_logins)}@yandex.ru"
    server.add_user(other, PASSWORD)
    foreign = canonical_href(server.make_calendar(other, "events-1", "Чужой"))

    with pytest.raises(CalendarError) as info:
        radicale_env.source.create_event(radicale_env.creds, foreign, "bot-403",
                                         _meeting(radicale_env, "bot-403", []))

    assert not isinstance(info.value, AuthRefused)
    assert info.value.params["status"] == 403
    assert radicale_env.source.list_calendars(radicale_env.creds) == []  # still logged in


@pytest.mark.contract
def test_a_slow_telemost_room_is_waited_for(radicale_env: Env) -> None:
    """With the room minted a moment after the PUT, create_event re-reads until it is there."""
    server = radicale_env.server
    assert server is not None
    assert server.quirks is not None
    server.quirks.telemost_delay(0.3)
    calendar = radicale_env.add_calendar("events-12345", "x")
    source = _adapter(server.url, sleep=time.sleep, room_wait=5.0)
    try:
        stored = source.create_event(radicale_env.creds, calendar, "bot-slow",
                                     _meeting(radicale_env, "bot-slow", []))
    finally:
        source.close()

    assert ROOM.search(stored.ics)
    assert "Ссылка на видеовстречу: https://telemost.yandex.ru/j/" in stored.ics.replace(
        "\r\n ", "")
    assert server.quirks.counters.by_method["GET"] >= 2
    assert server.quirks.counters.by_method[
        "PUT"] == 1


@pytest.mark.contract
def test_writes_log_no_calendar_data_or_password(
    radicale_env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG, answering and creating log caldav.write lines but no ICS text or secret."""
    caplog.set_level(logging.DEBUG)
    calendar, href = _seed_invitation(radicale_env)
    radicale_env.fail_next_write(WRITE_LOST_504)

    radicale_env.source.answer_invitation(radicale_env.creds, href, me=radicale_env.creds.login,
                                          partstat="ACCEPTED", recurrence_id=None)
    radicale_env.source.create_event(radicale_env.creds, calendar, "bot-logs",
                                     _meeting(radicale_env, "bot-logs", []))

    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("caldav.write op=answer") for m in messages)
    assert any(m.startswith("caldav.write op=create") for m in messages)
    token = base64.b64encode(f"{radicale_env.creds.login}:{PASSWORD}".encode()).decode()
    for message in messages:
        assert "BEGIN:V" not in message
        assert "Ревью" not in message
        assert "Синк" not in message
        assert PASSWORD not in message
        assert token not in message


def _metric(method: str, result: str) -> float:
    value = REGISTRY.get_sample_value(
        "yc_bot_caldav_requests_total", {"method": method, "result": result})
    return value or 0.0


@pytest.mark.contract
def test_every_request_is_counted_and_an_unchanged_ctag_too(radicale_env: Env) -> None:
    """Requests are counted by method and result; the ctag short-cut counts as unchanged."""
    calendar, href = _seed_invitation(radicale_env)
    source, creds = radicale_env.source, radicale_env.creds
    before = {key: _metric(*key) for key in [
        ("PROPFIND", "ok"), ("PROPFIND", "unchanged"), ("REPORT", "ok"), ("GET", "ok"),
        ("GET", "4xx"), ("PUT", "ok"), ("PUT", "5xx")]}
    radicale_env.fail_next_write(WRITE_LOST_504)

    source.etags_in_window(creds, calendar, WEEK_START, WEEK_END)
    source.etags_in_window(creds, calendar, WEEK_START, WEEK_END)
    source.answer_invitation(creds, href, me=creds.login, partstat="ACCEPTED",
                             recurrence_id=None)
    source.get_object(creds, calendar + "missing.ics")

    delta = {key: _metric(*key) - value for key, value in before.items()}
    assert delta == {("PROPFIND", "ok"): 1, ("PROPFIND", "unchanged"): 1, ("REPORT", "ok"): 1,
                     ("GET", "ok"): 3, ("GET", "4xx"): 1, ("PUT", "ok"): 1, ("PUT", "5xx"): 1}


@pytest.mark.contract
def test_middleware_mints_rooms_and_drops_declined_copies_on_plain_puts(
    radicale_env: Env,
) -> None:
    """Raw PUTs: X-TELEMOST-REQUIRED gets a room; an invitee's DECLINED copy is deleted."""
    server = radicale_env.server
    assert server is not None
    assert server.quirks is not None
    login = radicale_env.creds.login
    calendar, href = _seed_invitation(radicale_env)
    asking = SINGLE_REVIEW.replace(
        "X-TELEMOST-CONFERENCE:https://telemost.yandex.ru/j/12345678901234",
        "X-TELEMOST-REQUIRED:TRUE").replace("UID:review-1@", "UID:room-1@")

    put = server.request("PUT", calendar + "room.ics", login=login, body=asking.encode(),
                         headers={"Content-Type": "text/calendar"})
    declined = invitation(login).replace("PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Me",
                                         "PARTSTAT=DECLINED;CN=Me")
    drop = server.request("PUT", href, login=login, body=declined.encode(),
                          headers={"Content-Type": "text/calendar"})

    assert put.status == 201
    assert ROOM.search(server.request("GET", calendar + "room.ics", login=login).text)
    assert drop.status in (200, 201, 204)
    assert "etag" not in drop.headers
    assert server.request("GET", href, login=login).status == 404
    counters = server.quirks.counters
    assert counters.telemost_minted == 1
    assert counters.declined_dropped == 1


# -- pieces of the adapter and the fake -------------------------------------------------------


def test_client_pool_reuses_a_client_per_credentials_and_evicts_the_oldest() -> None:
    """Same credentials → same client; a new password → a new one; LRU evicts and closes."""
    made: list[_StubClient] = []

    def factory(creds: Credentials) -> _StubClient:
        made.append(_StubClient(creds.login))
        return made[-1]

    pool = _ClientPool(factory, size=2)  # type: ignore[arg-type]
    alice, bob = Credentials("alice@yandex.ru", "a"), Credentials("bob@yandex.ru", "b")
    with pool.lease(alice) as first:
        pass
    with pool.lease(alice) as again:
        pass
    with pool.lease(Credentials("alice@yandex.ru", "new")):
        pass
    with pool.lease(bob):
        pass

    assert first is again
    assert len(made) == 3
    assert made[0].closed
    assert not made[1].closed
    assert not made[2].closed


@dataclass
class _StubClient:
    login: str
    closed: bool = False

    def close(self) -> None:
        self.closed = True


def test_credentials_in_the_configured_url_are_dropped() -> None:
    """A server URL with user:password@ is reduced to scheme, host and path."""
    adapter = YandexCalDAV(f"https://alice%40yandex.ru:{PASSWORD}@caldav.yandex.ru/")

    assert adapter.url == "https://caldav.yandex.ru/"


def test_canonical_href_spells_at_as_percent_40_and_keeps_paths() -> None:
    """Decoded, encoded and absolute spellings of one href agree."""
    expected = "/calendars/alice%40yandex.ru/events-1/a%20b.ics"

    assert canonical_href("/calendars/alice@yandex.ru/events-1/a b.ics") == expected
    assert canonical_href("/calendars/alice%40yandex.ru/events-1/a%20b.ics") == expected
    assert canonical_href("https://caldav.yandex.ru" + expected) == expected


def test_fake_can_be_told_to_fail_for_one_account_a_given_number_of_times() -> None:
    """fail_with(ServerUnavailable, times=1) fails one call of that login only."""
    fake = FakeCalendarSource()
    fake.add_account("alice@yandex.ru", "a")
    fake.add_account("bob@yandex.ru", "b")
    alice, bob = Credentials("alice@yandex.ru", "a"), Credentials("bob@yandex.ru", "b")
    fake.fail_with(ServerUnavailable, login="alice@yandex.ru", times=1)

    assert fake.list_calendars(bob) == []
    with pytest.raises(ServerUnavailable):
        fake.list_calendars(alice)
    assert fake.list_calendars(alice) == []


def test_fake_revoked_password_and_touch() -> None:
    """A changed password refuses the old one; touch moves an ETag without an edit."""
    fake = FakeCalendarSource()
    fake.add_account("alice@yandex.ru", "old")
    calendar = fake.add_calendar("alice@yandex.ru", "events-1", "Мой")
    href = fake.put("alice@yandex.ru", calendar, "a.ics", SINGLE_REVIEW)
    creds = Credentials("alice@yandex.ru", "old")
    before = fake.etags_in_window(creds, calendar, WEEK_START, WEEK_END)[href]

    new_etag = fake.touch("alice@yandex.ru", href)
    fake.set_password("alice@yandex.ru", "new")

    assert new_etag != before
    with pytest.raises(AuthRefused):
        fake.list_calendars(creds)
    (obj,) = fake.fetch_objects(Credentials("alice@yandex.ru", "new"), [href])
    assert obj.etag == new_etag
    assert obj.ics == SINGLE_REVIEW


def test_kept_clients_run_no_background_thread_per_account(radicale: RadicaleServer) -> None:
    """The adapter keeps a client per account; their connection pools must not each start a
    watcher thread (urllib3-future's default: one per pool, waking every 5 s, as much CPU per
    account-minute as the idle poll itself)."""
    adapter = _adapter(radicale.url)
    logins = [f"watch{next(_logins)}@yandex.ru" for _ in range(12)]
    for login in logins:
        radicale.add_user(login, PASSWORD)
        radicale.make_calendar(login, "events-1", "Work")
    try:
        adapter.list_calendars(Credentials(logins[0], PASSWORD))  # the first pool, warmed
        before = threading.active_count()
        for login in logins[1:]:
            assert adapter.list_calendars(Credentials(login, PASSWORD))
        assert threading.active_count() - before < len(logins) - 1
        watchers = [t for t in threading.enumerate()
                    if "idle_conn_watch" in repr(getattr(t, "_target", None))]
        assert watchers == []
    finally:
        adapter.close()
