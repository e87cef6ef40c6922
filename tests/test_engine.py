"""The notification engine on a fake calendar source, a recording messenger and a real SQLite
file: reminders, agenda, status, exactly-once across restarts, trouble with Yandex, changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.model import NotificationSettings
from bot.errors import ServerUnavailable
from storage.repository import Repository
from tests.engine_kit import ManualClock, RecordingMessenger, make_engine, run_tick
from tests.fake_calendar import FakeCalendarSource
from tests.ics_builder import event

START = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # Friday 08:00 in Moscow
LOGIN = "ivan@yandex.ru"
USER = "u-ivan"


@pytest.fixture
def world(repo: Repository):
    source = FakeCalendarSource()
    source.add_account(LOGIN, "pw")
    cal = source.add_calendar(LOGIN, "events-1", "Work")
    clock = ManualClock(START)
    messenger = RecordingMessenger()
    engine, services = make_engine(repo, source, clock, messenger)
    services.connect(USER, LOGIN, "pw", zone="Europe/Moscow", profile_zone=None, language="en")
    yield source, cal, clock, messenger, engine, services, repo
    engine.shutdown()


def test_reminder_with_telemost_link_sent_once(world) -> None:
    """A meeting a little over ten minutes ahead gets one reminder with the Join link."""
    source, cal, clock, messenger, engine, *_ = world
    source.put(LOGIN, cal, "a.ics", event("a", START + timedelta(minutes=10, seconds=30),
                                          START + timedelta(minutes=40), "Standup"))
    run_tick(engine)
    assert not [m for m in messenger.messages() if "Standup" in m]
    clock.advance(seconds=31)
    run_tick(engine)
    clock.advance(seconds=5)
    run_tick(engine)
    reminders = [m for m in messenger.messages() if "Standup" in m]
    assert len(reminders) == 1
    assert "In 10 min" in reminders[0]
    assert "08:10–08:40" in reminders[0]
    assert "[**Join**](https://telemost.yandex.ru/j/12345678901234)" in reminders[0]


def test_restart_between_poll_and_reminder(world, repo: Repository) -> None:
    """A new engine on the same database sends the due reminder once and repeats nothing."""
    source, cal, clock, messenger, engine, _services, _ = world
    source.put(LOGIN, cal, "a.ics", event("a", START + timedelta(minutes=20),
                                          START + timedelta(minutes=50), "Planning"))
    run_tick(engine)
    engine.shutdown()
    clock.advance(minutes=11)
    second, _ = make_engine(repo, source, clock, messenger)
    run_tick(second)
    clock.advance(seconds=10)
    run_tick(second)
    third, _ = make_engine(repo, source, clock, messenger)
    run_tick(third)
    assert len([m for m in messenger.messages() if "Planning" in m]) == 1
    second.shutdown()
    third.shutdown()


def test_failed_post_is_retried_not_lost(world) -> None:
    """Mattermost refusing a post once delays the reminder, it does not lose it."""
    source, cal, clock, messenger, engine, *_ = world
    source.put(LOGIN, cal, "a.ics", event("a", START + timedelta(minutes=5),
                                          START + timedelta(minutes=35), "Retro"))
    messenger.fail_posts = 1
    run_tick(engine)
    clock.advance(seconds=6)
    run_tick(engine)
    assert len([m for m in messenger.messages() if "Retro" in m]) == 1


def test_no_reminder_for_declined_cancelled_allday(world) -> None:
    """Declined, cancelled and all-day meetings are not reminded."""
    source, cal, clock, messenger, engine, *_ = world
    at = START + timedelta(minutes=5)
    source.put(LOGIN, cal, "d.ics", event("d", at, at + timedelta(minutes=30), "Declined",
                                          attendees={LOGIN: "DECLINED"}))
    source.put(LOGIN, cal, "c.ics", event("c", at, at + timedelta(minutes=30), "Cancelled",
                                          status="CANCELLED"))
    run_tick(engine)
    clock.advance(seconds=10)
    run_tick(engine)
    assert messenger.messages() == []


def test_morning_agenda_once_without_declined(world, repo: Repository) -> None:
    """At 09:00 Moscow the day's meetings arrive once, declined ones left out."""
    source, cal, clock, messenger, engine, _services, _ = world
    repo.set_notifications(USER, NotificationSettings(leads=()))
    day = START + timedelta(hours=4)
    source.put(LOGIN, cal, "a.ics", event("a", day, day + timedelta(hours=1), "Design review"))
    source.put(LOGIN, cal, "b.ics", event("b", day, day + timedelta(hours=1), "Skipped one",
                                          attendees={LOGIN: "DECLINED"}))
    run_tick(engine)  # 08:00: first poll
    clock.advance(hours=1, seconds=1)  # 09:00:01
    run_tick(engine)
    clock.advance(minutes=5)
    run_tick(engine)
    agendas = [m for m in messenger.messages() if "your meetings" in m]
    assert len(agendas) == 1
    assert "Design review" in agendas[0]
    assert "Skipped one" not in agendas[0]
    assert "12:00–13:00" in agendas[0]


def test_status_set_with_block_expiry_and_left_alone(world) -> None:
    """In a meeting: the custom status expires at the end of the back-to-back block; the
    user's own status is not touched."""
    source, cal, clock, messenger, engine, _services, repo = world
    repo.set_notifications(USER, NotificationSettings(leads=(), daily_at=None))
    source.put(LOGIN, cal, "a.ics", event("a", START - timedelta(minutes=10),
                                          START + timedelta(minutes=20), "First"))
    source.put(LOGIN, cal, "b.ics", event("b", START + timedelta(minutes=20),
                                          START + timedelta(minutes=50), "Second"))
    run_tick(engine)
    puts = [c for c in messenger.status_calls if c[0] == "PUT"]
    assert len(puts) == 1
    assert puts[0][2]["expires_at"] == (START + timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert puts[0][2]["emoji"] == "calendar"
    assert puts[0][2]["text"] == "In a meeting"
    clock.advance(seconds=30)
    run_tick(engine)
    assert len(messenger.status_calls) == 1  # nothing more while the block holds


def test_users_own_status_and_dnd_left_alone(world) -> None:
    """A hand-set status or Do Not Disturb means no PUT at all."""
    source, cal, clock, messenger, engine, _services, _repo = world
    source.put(LOGIN, cal, "a.ics", event("a", START - timedelta(minutes=10),
                                          START + timedelta(minutes=20), "First"))
    messenger.custom[USER] = {"emoji": "palm_tree", "text": "On holiday"}
    run_tick(engine)
    assert messenger.status_calls == []
    messenger.custom.clear()
    messenger.presences[USER] = "dnd"
    clock.advance(minutes=6)
    run_tick(engine)
    assert messenger.status_calls == []


def test_status_refused_told_once_and_switched_off(world) -> None:
    """A 403 on the custom status API: one message naming what the admin must grant."""
    source, cal, clock, messenger, engine, _services, repo = world
    source.put(LOGIN, cal, "a.ics", event("a", START - timedelta(minutes=10),
                                          START + timedelta(minutes=20), "First"))
    messenger.status_error = 403
    run_tick(engine)
    clock.advance(minutes=6)
    run_tick(engine)
    told = [m for m in messenger.messages() if "System Admin" in m]
    assert len(told) == 1
    assert repo.account(USER).notifications.status is False  # type: ignore[union-attr]


def test_cancelled_meeting_clears_status_early(world) -> None:
    """Our status is cleared when the meeting in progress is cancelled."""
    source, cal, clock, messenger, engine, _services, _repo = world
    href = source.put(LOGIN, cal, "a.ics", event("a", START - timedelta(minutes=10),
                                                 START + timedelta(minutes=50), "Long"))
    run_tick(engine)
    assert [c[0] for c in messenger.status_calls] == ["PUT"]
    source.put(LOGIN, cal, "a.ics", event("a", START - timedelta(minutes=10),
                                          START + timedelta(minutes=50), "Long",
                                          status="CANCELLED"))
    assert href
    clock.advance(seconds=70)
    run_tick(engine)
    assert [c[0] for c in messenger.status_calls] == ["PUT", "DELETE"]


def test_401_told_once_nothing_deleted_then_resumes(world) -> None:
    """A revoked app password: one message, settings kept, polling resumes after `password`."""
    source, _cal, clock, messenger, engine, services, repo = world
    run_tick(engine)
    source.set_password(LOGIN, "new-pw")
    for _ in range(3):
        clock.advance(minutes=31)
        run_tick(engine)
    told = [m for m in messenger.messages() if "password" in m]
    assert len(told) == 1
    account = repo.account(USER)
    assert account is not None
    assert account.needs_password
    assert repo.calendars(USER)
    assert account.notifications == NotificationSettings()
    services.change_password(USER, "new-pw")
    clock.advance(minutes=31)
    run_tick(engine)
    assert repo.account(USER).needs_password is False  # type: ignore[union-attr]


def test_one_failing_account_does_not_touch_another(world) -> None:
    """504s for one login back off that account; the other still gets its reminder."""
    source, _cal, clock, messenger, engine, services, repo = world
    source.add_account("anna@yandex.ru", "pw2")
    cal2 = source.add_calendar("anna@yandex.ru", "events-9", "Anna")
    services.connect("u-anna", "anna@yandex.ru", "pw2", zone=None, profile_zone=None,
                     language="en")
    source.put("anna@yandex.ru", cal2, "x.ics", event("x", START + timedelta(minutes=10, seconds=20),
                                                      START + timedelta(minutes=30), "Anna's"))
    source.fail_with(ServerUnavailable, login=LOGIN)
    run_tick(engine)
    clock.advance(seconds=30)
    run_tick(engine)
    assert len([m for m in messenger.messages("u-anna") if "Anna's" in m]) == 1
    assert repo.account(USER).last_error  # type: ignore[union-attr]


def test_changes_first_sync_silent_then_each_change_once(world) -> None:
    """After connect nothing is announced; a move, a deletion, an addition and an attendee's
    answer each give one message; touching only the etag gives none."""
    source, cal, clock, messenger, engine, _services, repo = world
    repo.set_notifications(USER, NotificationSettings(leads=(), daily_at=None, status=False))
    tomorrow = START + timedelta(days=1, hours=5)
    source.put(LOGIN, cal, "m.ics", event("m", tomorrow, tomorrow + timedelta(hours=1), "Move me"))
    source.put(LOGIN, cal, "d.ics", event("d", tomorrow, tomorrow + timedelta(hours=1), "Drop me"))
    source.put(LOGIN, cal, "o.ics", event("o", tomorrow, tomorrow + timedelta(hours=1), "Mine",
                                          organizer=LOGIN,
                                          attendees={LOGIN: "ACCEPTED", "anna@ya.ru": "NEEDS-ACTION"}))
    run_tick(engine)
    assert messenger.messages() == []

    def poll() -> list[str]:
        before = len(messenger.posts)
        clock.advance(seconds=70)  # past the poll interval and its jitter
        run_tick(engine)
        return [p["message"] for p in messenger.posts[before:]]

    source.touch(LOGIN, cal + "m.ics")
    assert poll() == []
    later = tomorrow + timedelta(hours=2)
    source.put(LOGIN, cal, "m.ics", event("m", later, later + timedelta(hours=1), "Move me",
                                          stamp="20261126T100000Z"))
    moved = poll()
    assert len(moved) == 1
    assert "Moved" in moved[0]
    assert "→" in moved[0]
    assert "13:00–14:00 → " in moved[0]
    assert "15:00–16:00" in moved[0]
    source.delete(LOGIN, cal + "d.ics")
    cancelled = poll()
    assert len(cancelled) == 1
    assert "Cancelled" in cancelled[0]
    assert "Drop me" in cancelled[0]
    source.put(LOGIN, cal, "n.ics", event("n", later, later + timedelta(hours=1), "Brand new"))
    added = poll()
    assert len(added) == 1
    assert "New meeting" in added[0]
    source.put(LOGIN, cal, "o.ics", event("o", tomorrow, tomorrow + timedelta(hours=1), "Mine",
                                          organizer=LOGIN,
                                          attendees={LOGIN: "ACCEPTED", "anna@ya.ru": "DECLINED"}))
    answered = poll()
    assert len(answered) == 1
    assert "anna" in answered[0]
    assert "declined" in answered[0]
    source.put(LOGIN, cal, "o.ics", event("o", tomorrow, tomorrow + timedelta(hours=1), "Mine",
                                          organizer=LOGIN,
                                          attendees={LOGIN: "ACCEPTED", "anna@ya.ru": "ACCEPTED"}))
    poll()
    first, second = [p for p in messenger.posts if "Answers to" in p["message"]]
    assert second["root_id"] == first["id"]


def test_calendar_deleted_in_yandex_is_dropped_not_fatal(world) -> None:
    """A watched calendar that vanished (404) is dropped from the list; polling goes on."""
    source, cal, clock, _messenger, engine, services, repo = world
    home = source.add_calendar(LOGIN, "events-2", "Home")
    repo.replace_calendars(USER, services.source.list_calendars(repo.credentials(USER)))
    run_tick(engine)
    with source._lock:
        del source._accounts[LOGIN].calendars[home]
    clock.advance(seconds=70)
    run_tick(engine)
    assert [c.href for c in repo.calendars(USER)] == [cal]
    assert repo.account(USER).last_sync_at == clock.now  # type: ignore[union-attr]


# -- the status marker -------------------------------------------------------------------------


def _puts(messenger: RecordingMessenger) -> list[str]:
    return [c[2]["expires_at"] for c in messenger.status_calls if c[0] == "PUT"]


def _z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_status_of_a_later_meeting_is_recorded_and_kept_up_to_date(world) -> None:
    """After the bot's status for one meeting expired, the next meeting's status is recorded
    as the bot's: extending that meeting moves the status's expiry, cancelling it clears it."""
    from storage.engine_store import EngineStore

    source, cal, clock, messenger, engine, _services, repo = world
    repo.set_notifications(USER, NotificationSettings(leads=(), daily_at=None))
    source.put(LOGIN, cal, "a.ics", event("a", START - timedelta(minutes=10),
                                          START + timedelta(minutes=20), "First"))
    second = START + timedelta(hours=1)
    source.put(LOGIN, cal, "b.ics", event("b", second, second + timedelta(minutes=30), "Second"))
    run_tick(engine)
    assert _puts(messenger) == [_z(START + timedelta(minutes=20))]
    messenger.custom.pop(USER)  # Mattermost removes an expired status by itself
    clock.advance(hours=1, seconds=1)
    run_tick(engine)
    assert _puts(messenger)[1:] == [_z(second + timedelta(minutes=30))]
    marker = EngineStore().status_marker(USER)
    assert marker is not None
    assert marker.expires_at == second + timedelta(minutes=30)
    source.put(LOGIN, cal, "b.ics", event("b", second, second + timedelta(minutes=50), "Second",
                                          stamp="20261126T100000Z"))
    clock.advance(seconds=70)
    run_tick(engine)
    assert _puts(messenger)[2:] == [_z(second + timedelta(minutes=50))]
    source.put(LOGIN, cal, "b.ics", event("b", second, second + timedelta(minutes=50), "Second",
                                          status="CANCELLED", stamp="20261126T110000Z"))
    clock.advance(seconds=70)
    run_tick(engine)
    assert messenger.status_calls[-1][0] == "DELETE"
    assert USER not in messenger.custom
    assert EngineStore().status_marker(USER) is None


def test_concurrent_status_checks_leave_a_consistent_marker(world) -> None:
    """Two status checks of one account at once (each with its own view of the meetings):
    only one of them changes Mattermost, and the stored marker is what Mattermost shows."""
    import threading

    from bot.engine.status import StatusKeeper
    from storage.engine_store import EngineStore
    from storage.models import database

    _source, _cal, clock, messenger, engine, _services, repo = world
    account = repo.account(USER)
    assert account is not None
    ends = [START + timedelta(minutes=20), START + timedelta(minutes=40)]
    views = [[_occurrence(START - timedelta(minutes=10), end)] for end in ends]
    both_read = threading.Barrier(2)
    profile = messenger.profile

    def slow_profile(user_id: str):  # both checks read Mattermost before either writes
        found = profile(user_id)
        both_read.wait(5)
        return found

    messenger.profile = slow_profile  # type: ignore[method-assign]
    keeper = StatusKeeper(store=EngineStore(), outbox=engine.outbox, messenger=messenger)
    results: list[object] = [None, None]

    def check(i: int) -> None:
        try:
            results[i] = keeper.check(account, views[i], None, clock())
        finally:
            database.close()

    threads = [threading.Thread(target=check, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    stored = EngineStore().status_marker(USER)
    assert stored is not None
    assert len(_puts(messenger)) == 1
    assert messenger.custom[USER]["expires_at"] == _z(stored.expires_at)
    assert results == [stored, stored]


def _occurrence(start: datetime, end: datetime):
    from bot.core.model import Occurrence

    return Occurrence("/c/", "m", "", start, end, False, "Meeting")


# -- the planner's memory ----------------------------------------------------------------------


def test_reminded_ids_do_not_pile_up_over_days(world) -> None:
    """Hourly meetings reminded over ten simulated days: what the planner keeps of the
    reminders it decided stays about three days' worth, and each meeting is reminded once."""
    source, cal, clock, messenger, engine, _services, repo = world
    repo.set_notifications(USER, NotificationSettings(leads=(10,), daily_at=None, status=False))
    first = START + timedelta(minutes=30)
    source.put(LOGIN, cal, "h.ics", event("h", first, first + timedelta(minutes=10), "Hourly",
                                          extra="RRULE:FREQ=HOURLY"))
    run_tick(engine)
    sizes = []
    for hour in range(24 * 10):
        clock.now = first + timedelta(hours=hour, minutes=-8)
        run_tick(engine, rounds=2)
        if hour % 24 == 23:
            sizes.append(len(engine.planner._views[USER].reminded))
    reminders = [m for m in messenger.messages() if "Hourly" in m]
    assert len(reminders) == 24 * 10
    assert max(sizes) <= 24 * 4, sizes


# -- back from trouble -------------------------------------------------------------------------


class GatedSource(FakeCalendarSource):
    """A fake whose ETag listings wait while ``gate`` is closed (a poll in flight)."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def etags_in_window(self, creds, calendar_href, start, end):  # type: ignore[no-untyped-def]
        if not self.gate.is_set():
            self.waiting.set()
            self.gate.wait(10)
        return super().etags_in_window(creds, calendar_href, start, end)


def test_new_password_polls_at_the_next_tick(world) -> None:
    """After a 401, a `password` that Yandex accepts brings polling back on the next tick,
    not after the 30-minute probe interval."""
    source, cal, clock, _messenger, engine, services, repo = world
    run_tick(engine)
    source.set_password(LOGIN, "new-pw")
    clock.advance(seconds=70)
    run_tick(engine)
    assert repo.account(USER).needs_password  # type: ignore[union-attr]
    services.change_password(USER, "new-pw")
    source.put(LOGIN, cal, "a.ics", event("a", START + timedelta(hours=3),
                                          START + timedelta(hours=4), "Seen at once"))
    clock.advance(seconds=1)
    run_tick(engine)
    account = repo.account(USER)
    assert account is not None
    assert account.last_sync_at == clock.now
    assert not account.needs_password
    assert any(o.title == "Seen at once" for o in engine.store.snapshot(USER).values())


def test_new_password_during_a_poll_in_flight_polls_again_at_once(repo: Repository) -> None:
    """A `password` accepted while the refused poll is still running: that poll's 401 does
    not push the next poll 30 minutes away; the new password is used on the next ticks."""
    source = GatedSource()
    source.add_account(LOGIN, "pw")
    source.add_calendar(LOGIN, "events-1", "Work")
    clock = ManualClock(START)
    messenger = RecordingMessenger()
    engine, services = make_engine(repo, source, clock, messenger)
    try:
        services.connect(USER, LOGIN, "pw", zone="Europe/Moscow", profile_zone=None,
                         language="en")
        run_tick(engine)
        source.set_password(LOGIN, "new-pw")  # revoked: the next poll is refused
        source.gate.clear()
        clock.advance(seconds=70)
        engine.tick()  # the poll starts with the old password and waits in the listing
        assert source.waiting.wait(5)
        services.change_password(USER, "new-pw")
        engine.tick()  # sees the poll request while the old poll is still running
        source.gate.set()
        engine.drain()
        for _ in range(3):
            clock.advance(seconds=1)
            run_tick(engine)
        account = repo.account(USER)
        assert account is not None
        assert not account.needs_password
        assert account.last_sync_at is not None
        assert account.last_sync_at > START + timedelta(
            seconds=70)
    finally:
        engine.shutdown()


def test_notices_failed_while_mattermost_was_down_go_when_it_is_back(world) -> None:
    """Mattermost down for minutes: when the websocket is back the notices waiting out their
    backoff go at once; a reminder whose meeting started meanwhile is dropped, not sent."""
    from storage.models import NoticeRow
    from storage.repository import to_db_time

    source, cal, clock, messenger, engine, _services, repo = world
    repo.set_notifications(USER, NotificationSettings(leads=(10,), daily_at=None, status=False))
    early, later = START + timedelta(minutes=11), START + timedelta(minutes=19)
    source.put(LOGIN, cal, "e.ics", event("e", early, early + timedelta(minutes=30), "Early"))
    source.put(LOGIN, cal, "l.ics", event("l", later, later + timedelta(minutes=30), "Later"))
    messenger.fail_posts = 10**6
    back = START + timedelta(minutes=11, seconds=5)
    while clock.now < back:
        clock.advance(seconds=5)
        run_tick(engine, rounds=1)
    rows = {r.message.split("**")[1]: r for r in NoticeRow.select() if r.kind == "reminder"}
    assert set(rows) == {"Early", "Later"}
    for row in rows.values():  # both still waiting out a backoff that ends after `back`
        assert row.sent_at is None
        assert not row.dropped
        assert row.attempts >= 3
        assert row.next_attempt_at > to_db_time(back)
    messenger.fail_posts = 0
    engine.mattermost_back()
    run_tick(engine, rounds=1)
    sent = [p for p in messenger.posts if "Later" in p["message"]]
    assert len(sent) == 1
    assert sent[0]["at"] == back
    assert not [p for p in messenger.posts if "Early" in p["message"]]
    early_row = NoticeRow.get_by_id(rows["Early"].id)
    assert early_row.dropped
    assert early_row.drop_reason == "expired"


def test_late_agenda_after_a_restart_waits_for_the_first_poll(world, repo: Repository) -> None:
    """Started again at 09:30 (agenda at 09:00 missed): the agenda is built after the first
    poll, so a meeting deleted while the bot was down is not in it."""
    source, cal, clock, messenger, engine, _services, _ = world
    repo.set_notifications(USER, NotificationSettings(leads=(), status=False))
    noon = START + timedelta(hours=4)
    source.put(LOGIN, cal, "k.ics", event("k", noon, noon + timedelta(hours=1), "Kept"))
    source.put(LOGIN, cal, "d.ics", event("d", noon + timedelta(hours=1),
                                          noon + timedelta(hours=2), "Deleted meanwhile"))
    run_tick(engine)  # 08:00: polled, both stored
    engine.shutdown()
    source.delete(LOGIN, cal + "d.ics")
    clock.advance(hours=1, minutes=30)
    second, _ = make_engine(repo, source, clock, messenger)
    try:
        for _ in range(40):
            run_tick(second)
            if any("your meetings" in m for m in messenger.messages()):
                break
            clock.advance(seconds=5)
        agendas = [m for m in messenger.messages() if "your meetings" in m]
        assert len(agendas) == 1
        assert "Kept" in agendas[0]
        assert "Deleted meanwhile" not in agendas[0]
    finally:
        second.shutdown()


def test_slow_reload_does_not_put_back_an_older_snapshot(world) -> None:
    """A view reload that read the database before a poll's commit and finishes after the
    poll's own reload does not overwrite the newer view (with the poll's freshness on it)."""
    import threading

    from storage.engine_store import EngineStore

    source, cal, clock, _messenger, engine, _services, _repo = world
    run_tick(engine)
    planner = engine.planner
    read, go_on = threading.Event(), threading.Event()

    class SlowStore(EngineStore):
        def upcoming(self, users, start, end):  # type: ignore[no-untyped-def]
            found = super().upcoming(users, start, end)
            if threading.current_thread().name == "slow-reload":
                read.set()
                go_on.wait(10)
            return found

    planner.store = SlowStore()
    slow = threading.Thread(target=planner.load, args=([USER], clock()), name="slow-reload")
    slow.start()
    assert read.wait(10)  # it holds the snapshot of before the poll below
    at = START + timedelta(hours=2)
    source.put(LOGIN, cal, "n.ics", event("n", at, at + timedelta(hours=1), "New one"))
    clock.advance(seconds=70)
    engine.tick()
    engine.drain()  # the poll stored it and reloaded the view (fresh)
    assert [o.title for o in planner._views[USER].upcoming] == ["New one"]
    go_on.set()
    slow.join(10)
    view = planner._views[USER]
    assert [o.title for o in view.upcoming] == ["New one"]
    assert view.fresh


def test_poll_ending_after_the_lease_was_lost_does_not_bring_the_account_back(world) -> None:
    """The planner stops deciding for an account whose lease went elsewhere, even when a poll
    of it finishes afterwards."""
    _source, _cal, clock, _messenger, engine, _services, _repo = world
    run_tick(engine)
    engine.planner.forget([USER])  # the lease was lost
    engine.planner.polled(USER, clock(), changed=True)
    assert USER not in engine.planner.held()
