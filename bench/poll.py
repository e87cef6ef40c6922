#!/usr/bin/env python
"""Polling benchmark: our cheap poll (the engine's poll job) against the naive re-read.

N accounts x M meetings spread over the polled horizon (a mix: single events, weekly series
with EXDATEs and moved occurrences, all-day events; about half with attendees) on Radicale
behind ``YandexQuirks`` with added latency per request. Radicale runs in a child process
(``bench.common``), so the CPU time and memory measured here are the client's alone.

Both sides poll the same window (``bot.core.sync.poll_window(now, YC_HORIZON_DAYS)``:
yesterday … 60 days ahead by default, ``now`` fixed for the run) over all accounts through a
pool of ``--workers`` threads:

- **ours**: the engine's poll job (``Syncer.poll`` then ``Planner.polled``, what
  ``Engine._poll_job`` runs) on the real ``Engine`` built as ``bot/app.py`` builds it, this
  process holding every account's lease, with ``YandexCalDAV`` configured as ``bot/app.py``
  does, on a real SQLite file (``--database postgresql``: the embedded PostgreSQL of
  ``tests.pg``, whose server CPU is then shown apart, not in the client's). The first poll of
  every account is its silent baseline sync; then ``--cycles`` idle cycles (nothing changed on
  the server) are measured: a ctag PROPFIND that has not moved ends the poll. The adapter
  lists the window anyway when its last listing is older than 5 minutes (Yandex's ctag may
  miss an edit); that idle cycle is measured too, by forgetting the adapter's listings first,
  and at ``YC_POLL_SECONDS=60`` one poll in five is such a one (the "60 s mix").
- **baseline**: what the older integration did - caldav's
  ``Calendar.search(start, end, event=True, expand=True)`` of the same window every cycle, one
  ``DAVClient`` (``auth_type="basic"``) per account, calendars known (no discovery per cycle,
  which flatters the baseline), plus a fingerprint of the expanded events to notice a change.

Per idle cycle: HTTP requests and response bytes (as sent, i.e. gzip since both clients ask
for it, and uncompressed; counted on the server side), client process CPU time per account
(``time.process_time``, every thread; the server's CPU is its own process's and shown apart),
wall time. "Time to notice one change": a real PUT moves one meeting, then that account polls once;
reported from the start of the PUT to the end of the poll that recorded the change notice
(ours: a "change" notice in the database; baseline: its fingerprint changed). In production
the poll interval (``YC_POLL_SECONDS``, 60 s ± 10 % jitter) dominates: a change waits for the
next poll, on average half an interval, then costs one poll cycle of that account.

Usage: ``python bench/poll.py [--accounts 200] [--meetings 50] [--latency-ms 20] [--workers 8]
[--cycles 3] [--samples 5] [--horizon 60] [--database sqlite|postgresql] [--profile]
[--max-clients N] [--quick]``. ``--profile`` adds a call-by-call CPU breakdown of our idle poll
and a cProfile of both sides; ``--max-clients`` tries another client LRU size without editing
the code. The last line is always ``poll-bench: accounts=N bytes_ratio=X cpu_ratio=Y``
(baseline ÷ ours, wire bytes and client CPU of one idle cycle with an unchanged ctag; the
report above it gives the same for the forced listing and for the 60 s mix).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/poll.py`

import caldav

from bench.common import (
    BenchMessenger,
    Meter,
    ServerProcess,
    bench_database,
    build_engine,
    postgres_pid,
    process_tree_cpu,
    rss_now_mb,
    rss_peak_mb,
)
from bot.adapters.caldav_client import RELIST_SECONDS, YandexCalDAV
from bot.config import FIELDS
from bot.core.sync import poll_window
from bot.engine import Engine
from bot.services import Services
from storage.crypto import Vault
from storage.db import open_database
from storage.models import AccountRow, NoticeRow
from storage.repository import Repository
from tests.ics_builder import event

MSK = ZoneInfo("Europe/Moscow")
POLL_SECONDS = 60
FLEET = 1000  # the sizing question: 1,000 accounts polled every 60 s
CORE_BUDGET = 0.25
RSS_BUDGET_MB = 300.0
TARGET_BYTES, TARGET_CPU = 10.0, 5.0

WORDS = [
    "sync", "planning", "review", "design", "budget", "roadmap", "retro", "hiring", "interview", "demo",
    "release", "backend", "frontend", "mobile", "data", "platform", "infra", "security", "quarterly",
    "weekly", "one-on-one", "customer", "partner", "onboarding", "incident", "postmortem",
    "architecture", "api", "billing", "search", "analytics", "marketing", "sales", "legal", "office",
    "travel", "workshop", "training"
]
PEOPLE = [
    "anna", "boris", "vera", "gleb", "daria", "egor", "zhanna", "ivan", "kira", "lev", "maria",
    "nikita", "olga", "pavel", "roman", "sofia", "timur", "ulyana", "fedor", "yulia"
]


# -- the calendars ----------------------------------------------------------------------------


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _people(rng: random.Random, me: str, k: int) -> dict[str, str]:
    answers = ("ACCEPTED", "ACCEPTED", "TENTATIVE", "DECLINED", "NEEDS-ACTION")
    found = {f"{p}@yandex.ru": rng.choice(answers) for p in rng.sample(PEOPLE, k)}
    found[me] = rng.choice(("ACCEPTED", "ACCEPTED", "NEEDS-ACTION", "TENTATIVE"))
    return found


def _msk(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, dtime(hour, minute), tzinfo=MSK)


def _fmt(moment: datetime) -> str:
    return moment.astimezone(MSK).strftime("%Y%m%dT%H%M%S")


def probe_ics(login: str, today: date, shift_hours: int) -> str:
    """The meeting the benchmark moves: tomorrow 12:00 Moscow (+ shift), with attendees."""
    start = _msk(today + timedelta(days=1), 12) + timedelta(hours=shift_hours)
    return event(f"probe-{login}", start, start + timedelta(hours=1), "Quarterly planning",
                 organizer="boris@yandex.ru",
                 attendees={login: "ACCEPTED", "boris@yandex.ru": "ACCEPTED",
                            "vera@yandex.ru": "NEEDS-ACTION"},
                 stamp=f"2026010{1 + shift_hours}T100000Z",
                 extra="DESCRIPTION:Agenda: goals\\, risks\\, staffing")


def _all_day(uid: str, day: date, title: str) -> str:
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Yandex LLC//Yandex Calendar//EN",
        "BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261120T100000Z",
        f"DTSTART;VALUE=DATE:{day:%Y%m%d}", f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
        f"SUMMARY:{title}", "TRANSP:TRANSPARENT", "SEQUENCE:0", "END:VEVENT", "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


def meeting_objects(login: str, count: int, now: datetime, rng: random.Random,
                    horizon: int = 60) -> dict[str, str]:
    """``count`` calendar objects (filename → ICS) for one account, the probe first.

    About 30 % weekly series (started 1-20 weeks ago; a third with an EXDATE, a quarter with a
    moved occurrence; some every other week or already ended), 10 % all-day events, the rest
    single meetings between a week ago and ``horizon`` days ahead. About half carry attendees.
    """
    today = now.astimezone(MSK).date()
    objects = {"probe.ics": probe_ics(login, today, 0)}
    for _ in range(1, count):
        uid = f"{rng.getrandbits(64):016x}@yandex.ru"
        name = f"{uid.split('@')[0]}.ics"
        kind = rng.random()
        title = _words(rng, rng.randint(1, 4)).capitalize()
        if kind < 0.10:
            day = today + timedelta(days=rng.randint(-7, horizon))
            objects[name] = _all_day(uid, day, title)
            continue
        with_people = rng.random() < 0.5
        mine = with_people and rng.random() < 0.3
        options: dict = {
            "telemost": (f"https://telemost.yandex.ru/j/{rng.randint(10**13, 10**14 - 1)}"
                         if rng.random() < 0.6 else None),
            "location": rng.choice(("", "", f"Room {rng.randint(100, 999)}",
                                    f"https://zoom.us/j/{rng.randint(10**9, 10**10 - 1)}")),
            "organizer": login if mine else f"{rng.choice(PEOPLE)}@yandex.ru",
            "attendees": _people(rng, login, rng.randint(2, 8)) if with_people else None,
        }
        description = f"DESCRIPTION:{_words(rng, rng.randint(5, 40))}"
        length = timedelta(minutes=rng.choice((30, 30, 60, 60, 90)))
        if kind < 0.40:  # weekly series
            weeks_ago = rng.randint(1, 20)
            first = _msk(today - timedelta(days=7 * weeks_ago + rng.randint(0, 6)),
                         rng.randint(9, 18), rng.choice((0, 30)))
            interval = 2 if rng.random() < 0.2 else 1
            rule = f"RRULE:FREQ=WEEKLY;INTERVAL={interval}"
            if rng.random() < 0.15:
                rule += f";COUNT={rng.randint(2, 10)}"  # may well have ended
            step = timedelta(weeks=interval)
            upcoming = first + step * max(0, -((first - now) // step))  # first one ≥ now
            extra = [rule, description]
            if rng.random() < 0.33:
                extra.append(f"EXDATE;TZID=Europe/Moscow:{_fmt(upcoming + step)}")
            ics = event(uid, first, first + length, title, extra="\r\n".join(extra), **options)
            if rng.random() < 0.25:  # one occurrence moved by an hour
                moved = upcoming + timedelta(hours=1)
                override = event(uid, moved, moved + length, title,
                                 extra=f"RECURRENCE-ID;TZID=Europe/Moscow:{_fmt(upcoming)}",
                                 **options)
                block = "BEGIN:VEVENT" + override.split("BEGIN:VEVENT")[1].split("END:VEVENT")[0]
                ics = ics.replace("END:VCALENDAR", block + "END:VEVENT\r\nEND:VCALENDAR")
        else:
            start = _msk(today + timedelta(days=rng.randint(-7, horizon)), rng.randint(9, 19),
                         rng.choice((0, 30)))
            ics = event(uid, start, start + length, title, extra=description, **options)
        objects[name] = ics
    return objects


# -- the baseline -----------------------------------------------------------------------------


class NaiveAccount:
    """The older integration's way: re-read and expand the whole window every cycle."""

    def __init__(self, url: str, login: str, password: str, calendars: list[str]) -> None:
        self.client = caldav.DAVClient(url=url, username=login, password=password,
                                       auth_type="basic", timeout=20)
        self.calendars = [self.client.calendar(url=urljoin(url, href)) for href in calendars]
        self.seen: frozenset[tuple[str, ...]] | None = None

    def poll(self, start: datetime, end: datetime) -> bool:
        """One cycle; True when the expanded events differ from the previous cycle's."""
        found: set[tuple[str, ...]] = set()
        for calendar in self.calendars:
            for obj in calendar.search(start=start, end=end, event=True, expand=True):
                found.add(_fingerprint(obj.icalendar_component))
        changed = self.seen is not None and frozenset(found) != self.seen
        self.seen = frozenset(found)
        return changed

    def close(self) -> None:
        self.client.close()


def _fingerprint(component) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    def text(name: str) -> str:
        value = component.get(name)
        return "" if value is None else str(value.to_ical() if hasattr(value, "to_ical")
                                            else value)
    attendees = component.get("ATTENDEE") or []
    if not isinstance(attendees, list):
        attendees = [attendees]
    answers = ",".join(sorted(f"{a}={a.params.get('PARTSTAT', '')}" for a in attendees))
    return (text("UID"), text("RECURRENCE-ID"), text("DTSTART"), text("DTEND"), text("SUMMARY"),
            text("LOCATION"), text("STATUS"), text("X-TELEMOST-CONFERENCE"), text("ORGANIZER"),
            answers)


# -- measuring --------------------------------------------------------------------------------


@dataclass
class Cycle:
    accounts: int
    wall: float
    cpu: float  # this process (the client), every thread
    server_cpu: float  # Radicale's process
    db_cpu: float  # the PostgreSQL server (0 on SQLite: its work is in ``cpu``)
    requests: int
    wire: int  # response bytes as sent (gzip)
    plain: int  # the same, uncompressed
    failures: int

    def per(self, value: float) -> float:
        return value / self.accounts

    @property
    def bot_cpu(self) -> float:
        """What the bot costs: its process and its database server."""
        return self.cpu + self.db_cpu


def mix(ctag: Cycle, listing: Cycle, every: int) -> Cycle:
    """The average idle cycle when one poll in ``every`` lists the window anyway."""
    def avg(a: float, b: float) -> float:
        return (a * (every - 1) + b) / every

    return Cycle(ctag.accounts, avg(ctag.wall, listing.wall), avg(ctag.cpu, listing.cpu),
                 avg(ctag.server_cpu, listing.server_cpu), avg(ctag.db_cpu, listing.db_cpu),
                 round(avg(ctag.requests, listing.requests)), round(avg(ctag.wire, listing.wire)),
                 round(avg(ctag.plain, listing.plain)), ctag.failures + listing.failures)


@dataclass
class Sample:
    put_to_notice: float
    poll: float
    noticed: bool
    requests: int
    wire: int


@dataclass
class Account:
    user: str
    login: str
    password: str
    calendar: str


class Bench:
    def __init__(self, args: argparse.Namespace, server: ServerProcess,
                 pg_pid: int | None = None) -> None:
        self.args = args
        self.server = server
        self.pg_pid = pg_pid
        self.pool = ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="bench")

    def _db_cpu(self) -> float:
        return process_tree_cpu(self.pg_pid) if self.pg_pid else 0.0

    def cycle(self, job: Callable[[Account], object], accounts: list[Account]) -> Cycle:
        """Every account once through the worker pool; client CPU is this process's."""
        failures: list[str] = []

        def guarded(account: Account) -> None:
            try:
                job(account)
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

        self.server.reset_counters()
        server_cpu, db_cpu = self.server.cpu(), self._db_cpu()
        with Meter() as meter:
            list(self.pool.map(guarded, accounts))
        db_cpu = self._db_cpu() - db_cpu
        counters = self.server.counters()
        if failures:
            kinds = sorted(set(failures))
            print(f"!! {len(failures)} of {len(accounts)} polls failed: {'; '.join(kinds[:3])}",
                  flush=True)
        return Cycle(len(accounts), meter.wall, meter.cpu, self.server.cpu() - server_cpu,
                     db_cpu, counters["requests"], counters["bytes_sent"],
                     counters["bytes_plain"], len(failures))

    def sample(self, account: Account, shift: int, today: date,
               poll: Callable[[Account], bool]) -> Sample:
        """PUT a moved probe meeting, then one poll of that account."""
        self.server.reset_counters()
        started = time.perf_counter()
        self.server.put(account.login, account.calendar, "probe.ics",
                        probe_ics(account.login, today, shift))
        put_done = time.perf_counter()
        noticed = poll(account)
        done = time.perf_counter()
        counters = self.server.counters()
        return Sample(done - started, done - put_done, noticed, counters["requests"],
                      counters["bytes_sent"])


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _median_cycle(cycles: list[Cycle]) -> Cycle:
    """The median cycle by CPU (requests and bytes are the same every idle cycle)."""
    return sorted(cycles, key=lambda c: c.cpu)[len(cycles) // 2]


def _count_changes(user: str | None) -> int:
    query = NoticeRow.select().join(AccountRow).where(NoticeRow.kind == "change")
    if user is not None:
        query = query.where(AccountRow.mm_user_id == user)
    return int(query.count())


def poll_job(engine: Engine, user: str, now: datetime) -> bool:
    """What ``Engine._poll_job`` runs for one account, without its scheduling and error
    handling (a failure here is counted by the cycle): the poll, then the planner's re-read
    of a new snapshot. True when a new snapshot was stored."""
    result = engine.syncer.poll(user, now)
    engine.planner.polled(user, now, changed=result.changed)
    return result.changed


def forget_listings(source: YandexCalDAV) -> None:
    """The next poll of every account lists its window as if the last listing were older than
    ``RELIST_SECONDS`` (the adapter keeps them in memory, keyed by login and calendar)."""
    with source._listings_lock:
        source._listings.clear()


# -- where ours spends its CPU ----------------------------------------------------------------


def breakdown(engine: Engine, source: YandexCalDAV, accounts: list[Account],
              now: datetime) -> None:
    """One sequential idle cycle in this thread, with the calls the poll job makes timed in
    thread CPU time (``time.thread_time``), then a cProfile of another one."""
    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    undo: list[Callable[[], None]] = []

    def timed(owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)
        own = name in vars(owner)

        def wrapper(*args: object, **kwargs: object) -> object:
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.thread_time() - started
                calls[label] += 1

        setattr(owner, name, wrapper)
        undo.append(lambda: setattr(owner, name, original) if own else delattr(owner, name))

    from bot.adapters import caldav_client

    # Calls that do not exist in this version of the code are skipped (the list also names
    # the cheaper calls proposed for the idle path, so the same breakdown works after them).
    syncer, store = engine.syncer, engine.store
    rows = [
        (syncer.repo, "account_with_credentials", "repo.account_with_credentials()"),
        (syncer.repo._vault, "decrypt", "  Fernet decrypt of the app password"),
        (store, "poll_state", "store.poll_state()"),
        (store, "object_etags", "store.object_etags()"),
        (store, "touch_sync", "store.touch_sync() (idle: one UPDATE)"),
        (store, "commit_poll", "store.commit_poll()"),
        (source, "etags_in_window", "source.etags_in_window()"),
        (source._pool, "_factory", "  new DAVClient (client LRU miss)"),
        (source, "_ctag", "  ctag PROPFIND"),
        (caldav_client, "_calendar_query", "  build the REPORT body"),
        (source, "_request_once", "  HTTP request/response (niquests + caldav DAVResponse)"),
        (caldav_client, "_parse_report", "  parse the multistatus"),
        (engine.planner, "polled", "planner.polled()"),
    ]
    rows = [row for row in rows if hasattr(row[0], row[1])]
    for owner, name, label in rows:
        timed(owner, name, label)
    try:
        total0, process0 = time.thread_time(), time.process_time()
        for account in accounts:
            poll_job(engine, account.user, now)
        total = time.thread_time() - total0
        process = time.process_time() - process0
    finally:
        for restore in reversed(undo):
            restore()
    n = len(accounts)
    print(f"\n== where ours spends CPU: one sequential idle cycle (ctag unchanged), {n} "
          f"accounts, thread CPU per poll (process CPU {process / n * 1e3:.2f} ms) ==")
    top = 0.0
    for _, _, label in rows:
        if not label.startswith(" "):
            top += spent[label]
        if calls[label]:
            print(f"{label:60}{spent[label] / n * 1e3:8.2f} ms{calls[label] / n:7.1f} calls")
    print(f"{'engine logic and the rest':60}{(total - top) / n * 1e3:8.2f} ms")
    print(f"{'total':60}{total / n * 1e3:8.2f} ms")

    profiler = cProfile.Profile()
    profiler.enable()
    for account in accounts:
        poll_job(engine, account.user, now)
    profiler.disable()
    _print_profile("ours (the poll job), ctag unchanged", profiler, n)


def profile_baseline(job: Callable[[Account], object], accounts: list[Account]) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for account in accounts:
        job(account)
    profiler.disable()
    _print_profile("baseline (caldav search expand=True)", profiler, len(accounts))


def _print_profile(label: str, profiler: cProfile.Profile, n: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(15)
    stats.sort_stats("cumulative").print_stats(30)
    print(f"\n== cProfile: {label}, one sequential idle cycle over {n} accounts ==")
    print(out.getvalue())


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Results:
    ours_first: Cycle
    ours: Cycle  # idle, ctag unchanged
    listing: Cycle  # idle, the forced ETag listing
    base_first: Cycle
    base: Cycle
    ours_samples: list[Sample]
    base_samples: list[Sample]
    silent: int
    memory: dict[str, float]
    objects_in_window: float


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    rss_start = rss_now_mb()
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = poll_window(now, args.horizon)
    today = now.astimezone(MSK).date()
    rng = random.Random(args.seed)  # noqa: S311 - calendar data, not secrets
    tmp = Path(tempfile.mkdtemp(prefix="poll-bench-"))
    print(f"poll benchmark: {args.accounts} accounts x {args.meetings} meetings, latency "
          f"{args.latency_ms:g} ms/request, {args.workers} workers, {args.cycles} idle cycle(s), "
          f"window {start:%Y-%m-%d %H:%M} … {end:%Y-%m-%d %H:%M} UTC "
          f"({(end - start).days} days: horizon {args.horizon}), database {args.database}",
          flush=True)
    try:
        with ServerProcess() as server:
            results = _run(args, server, tmp, now, today, rng)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(args, results, rss_start=rss_start)
    return 0


def _run(args: argparse.Namespace, server: ServerProcess, tmp: Path, now: datetime,
         today: date, rng: random.Random) -> Results:
    start, end = poll_window(now, args.horizon)
    # -- seed ----------------------------------------------------------------------------------
    with Meter() as seeding:
        accounts = [Account(f"u{i:05d}", f"user{i:05d}@yandex.ru", f"app-pw-{i:05d}", "")
                    for i in range(args.accounts)]
        server.add_users({a.login: a.password for a in accounts})
        hrefs = server.make_calendars(
            (a.login, f"events-{1_000_000 + i}", "My events") for i, a in enumerate(accounts))
        for account, href in zip(accounts, hrefs, strict=True):
            account.calendar = href
            server.write_objects(account.login, href,
                                 meeting_objects(account.login, args.meetings, now, rng,
                                                 args.horizon))
    print(f"seeded {args.accounts * args.meetings} objects in {seeding.wall:.1f} s "
          "(users/calendars over HTTP, objects as files in Radicale's storage)", flush=True)

    # -- ours: connect, first (silent) poll, idle cycles, one change ---------------------------
    url = bench_database(args.database, tmp)
    db = open_database(url)
    bench = Bench(args, server, postgres_pid(url))
    repo = Repository(Vault("bench-secret-key"), clock=lambda: now)
    options = {"max_clients": args.max_clients} if args.max_clients else {}
    source = YandexCalDAV(server.url, timeout=20.0, **options)  # as bot/app.py builds it
    engine = build_engine(repo, source, BenchMessenger(), clock=lambda: now,
                          poll_seconds=POLL_SECONDS, horizon_days=args.horizon,
                          workers=args.workers)
    services = Services(repo, source, clock=lambda: now, default_timezone="Europe/Moscow",
                        store=engine.store, outbox=engine.outbox)
    with Meter() as connecting:
        list(bench.pool.map(lambda a: services.connect(
            a.user, a.login, a.password, zone="Europe/Moscow", profile_zone=None,
            language="en"), accounts))
    # Only the lease holder may store a poll's result: this process takes every account.
    acquired, _ = engine.leases.maintain(now)
    engine.planner.load(acquired, now)
    print(f"connected {len(accounts)} accounts in {connecting.wall:.1f} s; "
          f"{len(acquired)} leases held", flush=True)
    server.latency(args.latency_ms / 1000)

    def ours_poll(account: Account) -> None:
        poll_job(engine, account.user, now)

    # One account alone first (lazy imports, caches): the memory after it is the base the
    # other accounts add to.
    ours_poll(accounts[0])
    rss_warm = rss_now_mb()
    ours_first = bench.cycle(ours_poll, accounts[1:] or accounts)
    print(f"ours: first poll cycle {ours_first.wall:.1f} s", flush=True)
    in_window = _objects_in_window(engine, accounts)
    ours_cycles = [bench.cycle(ours_poll, accounts) for _ in range(args.cycles)]
    listing_cycles = []
    for _ in range(args.cycles):
        forget_listings(source)
        listing_cycles.append(bench.cycle(ours_poll, accounts))
    silent = _count_changes(None)

    def ours_notice(account: Account) -> bool:
        before = _count_changes(account.user)
        poll_job(engine, account.user, now)
        return _count_changes(account.user) > before

    picks = accounts[:: max(1, len(accounts) // args.samples)][: args.samples]
    ours_samples = [bench.sample(a, 1, today, ours_notice) for a in picks]
    rss_ours, rss_ours_now = rss_peak_mb(), rss_now_mb()
    if args.profile:
        breakdown(engine, source, accounts, now)
    engine.shutdown()
    source.close()
    db.close()
    print("ours: done; baseline next", flush=True)

    # -- baseline ------------------------------------------------------------------------------
    naive = {a.user: NaiveAccount(server.url, a.login, a.password, [a.calendar])
             for a in accounts}

    def naive_poll(account: Account) -> bool:
        return naive[account.user].poll(start, end)

    naive_poll(accounts[0])
    base_first = bench.cycle(naive_poll, accounts[1:] or accounts)
    print(f"baseline: first poll cycle {base_first.wall:.1f} s", flush=True)
    base_cycles = [bench.cycle(naive_poll, accounts) for _ in range(args.cycles)]
    base_samples = [bench.sample(a, 2, today, naive_poll) for a in picks]
    if args.profile:
        profile_baseline(naive_poll, accounts)
    for client in naive.values():
        client.close()
    rss_all = rss_peak_mb()
    bench.pool.shutdown()
    memory = {"warm": rss_warm, "ours": rss_ours, "ours_now": rss_ours_now, "all": rss_all}
    return Results(ours_first, _median_cycle(ours_cycles), _median_cycle(listing_cycles),
                   base_first, _median_cycle(base_cycles), ours_samples, base_samples, silent,
                   memory, in_window)


def _objects_in_window(engine: Engine, accounts: list[Account]) -> float:
    """Calendar objects stored per account after the first poll (those the window holds)."""
    return sum(len(engine.store.object_etags(a.user)) for a in accounts) / len(accounts)


# -- the report -------------------------------------------------------------------------------


def report(args: argparse.Namespace, r: Results, *, rss_start: float) -> None:
    n = args.accounts
    ours, listing, base = r.ours, r.listing, r.base
    every = max(1, round(RELIST_SECONDS / POLL_SECONDS))
    avg = mix(ours, listing, every)

    def ratio(b: float, o: float) -> float:
        return b / o if o else float("inf")

    pg = args.database == "postgresql"
    print(f"\n== idle poll cycle (nothing changed on the server), {n} accounts, "
          f"{r.objects_in_window:.1f} objects per account in the window, median of "
          f"{args.cycles} ==")
    print("ours:ctag = the ctag has not moved (ends the poll); ours:list = the ETag listing the "
          f"adapter forces every {RELIST_SECONDS:g} s;\nours:60s = their mix at "
          f"YC_POLL_SECONDS={POLL_SECONDS} (one poll in {every} lists)")
    print(f"{'per account':34}{'ours:ctag':>11}{'ours:list':>11}{'ours:60s':>11}"
          f"{'baseline':>11}{'b/ctag':>9}{'b/60s':>9}")
    rows = [
        ("HTTP requests", "requests", "{:.2f}", 1.0),
        ("bytes received (wire, gzip)", "wire", "{:,.0f}", 1.0),
        ("bytes received (uncompressed)", "plain", "{:,.0f}", 1.0),
        ("client CPU ms", "cpu", "{:.2f}", 1e3),
    ]
    if pg:
        rows += [("database CPU ms (PostgreSQL)", "db_cpu", "{:.2f}", 1e3),
                 ("bot CPU ms (client + database)", "bot_cpu", "{:.2f}", 1e3)]
    rows += [("server CPU ms (Radicale)", "server_cpu", "{:.2f}", 1e3)]
    for label, name, fmt, scale in rows:
        values = [c.per(getattr(c, name)) * scale for c in (ours, listing, avg, base)]
        print(f"{label:34}" + "".join(f"{fmt.format(v):>11}" for v in values)
              + f"{ratio(values[3], values[0]):>8.1f}x{ratio(values[3], values[2]):>8.1f}x")
    print(f"{'cycle wall time, all accounts, s':34}{ours.wall:>11.2f}{listing.wall:>11.2f}"
          f"{avg.wall:>11.2f}{base.wall:>11.2f}{ratio(base.wall, ours.wall):>8.1f}x"
          f"{ratio(base.wall, avg.wall):>8.1f}x")
    failures = (ours.failures + listing.failures + base.failures + r.ours_first.failures
                + r.base_first.failures)
    if failures:
        print(f"!! {failures} polls failed in the cycles (first ones included): figures above "
              "are not clean")

    fo, fb = r.ours_first, r.base_first
    print(f"\n== first poll of each account (ours: the silent baseline sync, {r.silent} change "
          f"notices recorded, expected 0) ==")
    print(f"{'per account':36}{'ours':>12}{'baseline':>12}")
    print(f"{'HTTP requests':36}{fo.per(fo.requests):>12.2f}{fb.per(fb.requests):>12.2f}")
    print(f"{'bytes received (wire)':36}{fo.per(fo.wire):>12,.0f}{fb.per(fb.wire):>12,.0f}")
    print(f"{'client CPU ms':36}{fo.per(fo.cpu) * 1e3:>12.2f}{fb.per(fb.cpu) * 1e3:>12.2f}")
    if pg:
        print(f"{'database CPU ms':36}{fo.per(fo.db_cpu) * 1e3:>12.2f}{0.0:>12.2f}")

    print(f"\n== one moved meeting: from the PUT until that account's next poll has noticed it "
          f"(median of {len(r.ours_samples)}) ==")
    print(f"{'':36}{'ours':>12}{'baseline':>12}")
    for label, pick, fmt in (
        ("PUT → change noticed, ms", lambda s: s.put_to_notice * 1e3, "{:.1f}"),
        ("  of which the poll of the account", lambda s: s.poll * 1e3, "{:.1f}"),
        ("HTTP requests of that poll", lambda s: s.requests, "{:.0f}"),
        ("bytes received (wire)", lambda s: s.wire, "{:,.0f}"),
    ):
        o = _median([pick(s) for s in r.ours_samples])
        b = _median([pick(s) for s in r.base_samples])
        print(f"{label:36}{fmt.format(o):>12}{fmt.format(b):>12}")
    noticed = (f"{sum(s.noticed for s in r.ours_samples)}/{len(r.ours_samples)}",
               f"{sum(s.noticed for s in r.base_samples)}/{len(r.base_samples)}")
    print(f"{'noticed':36}{noticed[0]:>12}{noticed[1]:>12}")
    print(f"In production a change first waits for the account's next poll (every "
          f"{POLL_SECONDS} s ± 10 %: ≈{POLL_SECONDS / 2:.0f} s on average, at most "
          f"≈{POLL_SECONDS * 1.1:.0f} s); that wait dominates the poll itself.")

    cpu_per_account = avg.per(avg.bot_cpu)
    cores = cpu_per_account * FLEET / POLL_SECONDS
    base_cores = base.per(base.cpu) * FLEET / POLL_SECONDS
    bytes_ratio, cpu_ratio = ratio(base.wire, ours.wire), ratio(base.cpu, ours.bot_cpu)
    mix_bytes, mix_cpu = ratio(base.wire, avg.wire), ratio(base.cpu, avg.bot_cpu)
    plain_ratio = ratio(base.plain, ours.plain)
    per_account_mb = max(0.0, r.memory["ours_now"] - r.memory["warm"]) / max(1, n - 1)

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    what = "client + database " if pg else ""
    print(f"\n== targets (ours: {what}CPU) ==")
    print(f"idle cycle: ≥{TARGET_BYTES:g}x fewer bytes than baseline   {bytes_ratio:5.1f}x wire "
          f"(ctag unchanged), {plain_ratio:.1f}x uncompressed; {mix_bytes:.1f}x at the 60 s mix   "
          f"{verdict(min(bytes_ratio, mix_bytes) >= TARGET_BYTES)}")
    print(f"idle cycle: ≥{TARGET_CPU:g}x less CPU than baseline       {cpu_ratio:5.1f}x "
          f"(ctag unchanged); {mix_cpu:.1f}x at the 60 s mix   "
          f"{verdict(min(cpu_ratio, mix_cpu) >= TARGET_CPU)}")
    print(f"{FLEET} accounts every {POLL_SECONDS} s ≤ {CORE_BUDGET:.0%} of a core      "
          f"{cores:6.1%} ({cpu_per_account * 1e3:.2f} ms at the 60 s mix x {FLEET} / "
          f"{POLL_SECONDS} s)   {verdict(cores <= CORE_BUDGET)}   (baseline {base_cores:.0%})")
    print(f"client RSS peak < {RSS_BUDGET_MB:g} MB                  {r.memory['ours']:6.0f} MB   "
          f"{verdict(r.memory['ours'] < RSS_BUDGET_MB)}   (at start {rss_start:.0f} MB, after one "
          f"account {r.memory['warm']:.0f} MB, +{per_account_mb * 1024:.0f} KB per further "
          f"account → ≈{r.memory['warm'] + per_account_mb * FLEET:.0f} MB at {FLEET}; whole run "
          f"with the baseline {r.memory['all']:.0f} MB)")
    print(f"poll-bench: accounts={n} bytes_ratio={bytes_ratio:.1f} cpu_ratio={cpu_ratio:.1f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--accounts", type=int, help="accounts (default 200; quick: 4)")
    parser.add_argument("--meetings", type=int, help="meetings per account (default 50; quick: 10)")
    parser.add_argument("--latency-ms", type=float,
                        help="added latency per request (default 20; quick: 2)")
    parser.add_argument("--workers", type=int, default=8, help="poll threads (default 8)")
    parser.add_argument("--cycles", type=int, help="idle cycles per side (default 3; quick: 1)")
    parser.add_argument("--samples", type=int, help="change samples (default 5; quick: 1)")
    parser.add_argument("--horizon", type=int, default=FIELDS["YC_HORIZON_DAYS"][1],
                        help="YC_HORIZON_DAYS: days ahead both sides read (default: the bot's)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="a SQLite file (default: its CPU is the client's) or the embedded "
                             "PostgreSQL (its server CPU counted apart and added to ours)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the calendars")
    parser.add_argument("--profile", action="store_true",
                        help="also time ours call by call and cProfile both sides (sequential)")
    parser.add_argument("--max-clients", type=int,
                        help="YandexCalDAV max_clients (default: the adapter's, as in bot/app.py)")
    parser.add_argument("--quick", action="store_true", help="a tiny run for smoke testing")
    args = parser.parse_args(argv)
    defaults = {"accounts": (200, 4), "meetings": (50, 10), "latency_ms": (20.0, 2.0),
                "cycles": (3, 1), "samples": (5, 1)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if min(args.accounts, args.meetings, args.cycles, args.samples, args.workers) < 1:
        parser.error("--accounts, --meetings, --cycles, --samples and --workers must be ≥ 1")
    args.samples = min(args.samples, args.accounts)
    return args


if __name__ == "__main__":
    sys.exit(run(parse_args()))
