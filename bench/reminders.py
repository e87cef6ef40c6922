"""Reminder benchmark: how late do reminders arrive with N accounts, and what does a tick cost?

Run on demand (never in CI)::

    .venv/bin/python bench/reminders.py                   # 1,000 accounts: ~1.5 + 6 minutes
    .venv/bin/python bench/reminders.py --quick           # a tiny run (smoke test)
    .venv/bin/python bench/reminders.py --profile tick.prof

What runs, as in production:

- Radicale + ``YandexQuirks`` in a **child process** (``bench.common.ServerProcess``), so this
  process's CPU time is the bot's only;
- the real ``Engine`` (built as ``bot.app`` builds it: ``EngineStore``, ``OutboxStore``,
  ``CoordinationStore``, one process id; ``YC_HORIZON_DAYS`` of the bot's default) with the
  real ``YandexCalDAV`` adapter, a real SQLite file (``--database postgresql``: a fresh
  database on the embedded PostgreSQL of ``tests.pg``), the real wall clock
  (``bot.clock.utc_now``), INFO logging to a file;
- the tick driven like mmpy-bot does it: ``Engine.register`` puts one job on a private
  ``schedule.Scheduler()``, and one thread loops ``sleep(SCHEDULER_PERIOD); run_pending()``
  with ``SCHEDULER_PERIOD = min(1.0, tick)`` (``bot.app.mmpy_settings``);
- a messenger standing in for Mattermost (``bench.common.BenchMessenger``, a
  ``bot.ports.Messenger``): every call takes ``--post-latency-ms``, every DM is recorded with
  the wall time it was accepted.

The scenario: N accounts are connected (``Services.connect``), each with a meeting whose
reminder (start - 10 min) falls inside the run, spread evenly from ``--lead-in`` seconds
after the engine starts (so every account has been polled once first: about 0.15 s per
account here, Radicale being the bottleneck) to shortly before the end,
plus background meetings that must not fire: a daily series, a weekly series, yesterday's and
tomorrow's meetings, an all-day event, for some accounts a meeting in progress (sets the
custom status), a cancelled and a declined meeting due inside the run, a second calendar.

Lateness = the post's arrival - the reminder's due time, in seconds; a reminder that never
arrives counts as infinitely late. CPU per tick = ``time.thread_time()`` around each
``tick()`` call in the ticking thread (the decisions, SQLite reads and writes, dispatch);
polls and posts run on the engine's pools and show in the process total.

The last line reads ``reminder-bench: accounts=N p50=… p99=… max=… cpu_per_tick_ms=…``
(``cpu_per_tick_ms`` is the mean over the ticks of the reminder window).
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import io
import itertools
import logging
import math
import os
import pstats
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], not the project
    sys.path.insert(0, str(ROOT))

import schedule  # noqa: E402

from bench.common import (  # noqa: E402
    BenchMessenger,
    ServerProcess,
    bench_database,
    build_engine,
    cpu_seconds,
    postgres_pid,
    process_tree_cpu,
    rss_peak_mb,
)
from bot.adapters.caldav_client import YandexCalDAV  # noqa: E402
from bot.clock import utc_now  # noqa: E402
from bot.config import FIELDS  # noqa: E402
from bot.core.model import NotificationSettings  # noqa: E402
from bot.logs import RedactingFilter  # noqa: E402
from bot.services import Services  # noqa: E402
from storage.crypto import Vault  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.models import AccountRow  # noqa: E402
from storage.repository import Repository  # noqa: E402
from tests.ics_builder import MSK, VTIMEZONE, event  # noqa: E402

log = logging.getLogger("bench.reminders")

LEAD = timedelta(minutes=10)  # the default reminder lead (NotificationSettings.leads)
ZONES = ("Europe/Moscow", "Europe/Moscow", "Europe/Moscow", "Asia/Yekaterinburg",
         "Europe/Kaliningrad", "Asia/Novosibirsk", "UTC")
MEASURED = re.compile(r"Bench (u\d+) r(\d+)")
# The first poll of every account (REPORT, multiget, parse, store) is bound by Radicale's one
# process: about 0.15 s per account on the 2-core machine. Reminders start after it, so that
# the figures are those of a running bot, not of its first minutes.
FIRST_ROUND_PER_ACCOUNT = 0.18


# -- the stand-in for Mattermost -------------------------------------------------------------

TimedMessenger = BenchMessenger  # every call after ``latency`` seconds; DMs with arrival times


# -- the tick, timed, on a schedule loop like mmpy-bot's -----------------------------------


@dataclass(frozen=True)
class TickSample:
    started: float  # epoch seconds
    wall: float  # seconds
    cpu: float  # seconds of this thread's CPU


class TimedTick:
    """Wraps ``Engine.tick``: thread CPU and wall time of every call (optionally profiled)."""

    __name__ = "tick"  # schedule's Job copies the wrapped function's name

    def __init__(self, tick: Callable[[], None], profiler: cProfile.Profile | None) -> None:
        self._tick = tick
        self._profiler = profiler
        self.samples: list[TickSample] = []

    def __call__(self) -> None:
        started = time.time()
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        if self._profiler is not None:
            self._profiler.enable()
        try:
            self._tick()
        finally:
            if self._profiler is not None:
                self._profiler.disable()
            self.samples.append(TickSample(started, time.perf_counter() - wall0,
                                           time.thread_time() - cpu0))


class SchedulerLoop(threading.Thread):
    """mmpy-bot's scheduler thread (``ThreadPool.start_scheduler_thread``) on a private
    ``schedule.Scheduler``: sleep one period, run what is due, again."""

    def __init__(self, scheduler: schedule.Scheduler, period: float) -> None:
        super().__init__(name="scheduler", daemon=True)
        self._scheduler = scheduler
        self._period = period
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            time.sleep(self._period)
            self._scheduler.run_pending()


class StackSampler(threading.Thread):
    """A poor man's py-spy: samples every thread's Python stack (wall clock, so waiting for
    the GIL, a lock or a socket counts where it happens) and counts functions per thread
    group (``yc-poll``, ``yc-send``, ``scheduler``). Idle pool threads are left out."""

    IDLE = ("thread.py:_worker", "reminders.py:run")  # a pool thread or the loop, asleep

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(name="sampler", daemon=True)
        self._interval = interval
        self.stopping = threading.Event()
        self.busy: Counter[str] = Counter()  # group → samples not idle
        self.inclusive: dict[str, Counter[str]] = {}
        self.leaf: dict[str, Counter[str]] = {}

    def run(self) -> None:
        me = threading.get_ident()
        while not self.stopping.is_set():
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me or ident not in names:
                    continue
                stack = []
                f: Any = frame
                while f is not None:
                    code = f.f_code
                    stack.append(f"{Path(code.co_filename).name}:{code.co_name}")
                    f = f.f_back
                if stack[0] in self.IDLE or stack[:2] == ["threading.py:wait", "queue.py:get"]:
                    continue
                group = re.sub(r"_\d+$", "", names[ident])
                self.busy[group] += 1
                self.leaf.setdefault(group, Counter())[stack[0]] += 1
                inclusive = self.inclusive.setdefault(group, Counter())
                for name in set(stack):
                    inclusive[name] += 1
            time.sleep(self._interval)

    def report(self, top: int = 18) -> str:
        lines = []
        for group, total in self.busy.most_common():
            if not group.startswith(("yc-", "scheduler")) or total < 20:
                continue
            lines.append(f"[{group}] {total} busy samples; inclusive %, then leaf %:")
            for name, n in self.inclusive[group].most_common(top):
                lines.append(f"  {100 * n / total:5.1f}%  {name}")
            for name, n in self.leaf[group].most_common(8):
                lines.append(f"  leaf {100 * n / total:5.1f}%  {name}")
        return "\n".join(lines)


# -- the plan: accounts and their meetings ---------------------------------------------------


def make_accounts(count: int, rng: random.Random) -> list[tuple[str, str, str, str]]:
    return [(f"u{i:05d}", f"bench{i:05d}@yandex.ru", f"pw-{i:05d}-{rng.randrange(10**6)}",
             rng.choice(ZONES)) for i in range(count)]


def due_times(count: int, first: float, last: float, burst: float,
              rng: random.Random) -> list[float]:
    """``count`` due instants (whole seconds, as ICS carries them) spread evenly over
    [first, last], in random order; a ``burst`` fraction of them share the middle instant
    (meetings on the hour: everybody's reminder at :50)."""
    clustered = round(count * burst)
    middle = math.ceil((first + last) / 2)
    spread = count - clustered
    times = [math.ceil(first + (last - first) * (k + 0.5) / max(spread, 1)) for k in range(spread)]
    times += [middle] * clustered
    rng.shuffle(times)
    return [float(t) for t in times]


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(microsecond=0)


def _floor(moment: datetime, minutes: int) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % minutes, second=0)


def all_day(uid: str, day: datetime, title: str) -> str:
    """An all-day VEVENT (listed, never reminded, sets no status)."""
    first = day.astimezone(MSK).date()
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Yandex LLC//Yandex Calendar//EN",
             VTIMEZONE, "BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261120T100000Z",
             f"DTSTART;VALUE=DATE:{first:%Y%m%d}",
             f"DTEND;VALUE=DATE:{first + timedelta(days=1):%Y%m%d}",
             f"SUMMARY:{title}", "TRANSP:TRANSPARENT", "END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def objects_for(index: int, user: str, login: str, t0: float, due: Sequence[float],
                skip_at: float, rng: random.Random) -> tuple[dict[str, str], dict[str, str]]:
    """One account's calendar objects: (work calendar, personal calendar) filename → ICS."""
    now = _at(t0)
    team = {login: "ACCEPTED", "boss@yandex.ru": "ACCEPTED",
            **{f"colleague{(index + k) % 97}@yandex.ru": "ACCEPTED" for k in range(3)}}
    work: dict[str, str] = {}

    def add(uid: str, start: datetime, minutes: int, title: str, **kw: Any) -> None:
        work[f"{uid}.ics"] = event(uid, start, start + timedelta(minutes=minutes), title, **kw)

    for n, moment in enumerate(due):
        add(f"bench-{user}-r{n}", _at(moment) + LEAD, 30, f"Bench {user} r{n}", attendees=team)
    standup = _floor(now + timedelta(hours=3), 5) - timedelta(days=3)  # its reminders: hours away
    add(f"standup-{user}", standup, 15, "Daily standup", attendees=team,
        extra="RRULE:FREQ=DAILY;COUNT=30")
    add(f"one2one-{user}", _floor(now + timedelta(days=2, hours=4), 30), 30, "1:1",
        extra="RRULE:FREQ=WEEKLY;COUNT=10")
    add(f"review-{user}", _floor(now - timedelta(days=1), 60), 60, "Review", attendees=team)
    add(f"planning-{user}", _floor(now + timedelta(days=1), 60), 60, "Planning",
        attendees=team, location="Room 3")
    work[f"offsite-{user}.ics"] = all_day(f"offsite-{user}", now, "Offsite")
    if index % 5 == 0:  # in a meeting right now: the bot sets the custom status
        add(f"busy-{user}", _floor(now - timedelta(minutes=20), 1), 60, "Workshop")
    if index % 10 == 1:  # due inside the run, must never be reminded
        add(f"cancel-{user}", _at(skip_at) + LEAD, 30, f"Skip {user} cancelled",
            status="CANCELLED")
    if index % 10 == 2:
        add(f"decline-{user}", _at(skip_at) + LEAD, 30, f"Skip {user} declined",
            attendees={login: "DECLINED", "boss@yandex.ru": "ACCEPTED"})
    personal: dict[str, str] = {}
    if index % 4 == 3:
        gym = _floor(now + timedelta(days=1, hours=rng.randrange(2, 10)), 30)
        personal[f"gym-{user}.ics"] = event(f"gym-{user}", gym, gym + timedelta(hours=1), "Gym",
                                            telemost=None)
        dentist = _floor(now + timedelta(days=3), 60)
        personal[f"dentist-{user}.ics"] = event(f"dentist-{user}", dentist,
                                                dentist + timedelta(minutes=45), "Dentist",
                                                telemost=None)
    return work, personal


# -- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def fmt(seconds: float) -> str:
    return "inf" if math.isinf(seconds) else f"{seconds:.3f}"


class CountingHandler(logging.Handler):
    """Counts WARNING+ records by their stable key (the first word of the message)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        msg = str(record.msg)
        self.counts[msg.split(" ", 1)[0] or "?"] += 1


def setup_logging(path: Path, level: str) -> CountingHandler:
    """Like production (``bot.logs.setup_logging``) but into a file, plus a warning counter."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    counter = CountingHandler()
    root = logging.getLogger()
    root.setLevel(getattr(logging, level))
    root.addHandler(handler)
    root.addHandler(counter)
    return counter


def synced_accounts() -> int:
    return int(AccountRow.select().where(AccountRow.last_sync_at.is_null(False)).count())


def say(text: str) -> None:
    print(text, flush=True)


def progress(text: str) -> None:
    print(f"  … {text}", file=sys.stderr, flush=True)


# -- the run ---------------------------------------------------------------------------------


def watch(end: float, t0: float, accounts: int, timed: TimedTick,
          messenger: TimedMessenger) -> float | None:
    """Wait for the end of the run; returns when every account had been polled once."""
    first_round: float | None = None
    next_note = t0 + 30
    while (now := time.time()) < end:
        if first_round is None and synced_accounts() >= accounts:
            first_round = now - t0
            progress(f"all {accounts} accounts polled once at +{first_round:.1f}s")
        if now >= next_note:
            arrived = sum(1 for _, _, text in list(messenger.posts) if MEASURED.search(text))
            progress(f"+{now - t0:.0f}s ticks={len(timed.samples)} reminders={arrived}")
            next_note += 30
        time.sleep(min(1.0, max(0.0, end - now)))
    return first_round


def tail_seconds(tick: float) -> float:
    """The last reminder is due this long before the end: three ticks to be decided in."""
    return max(3 * tick, 3.0)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds of ticking after the engine starts "
                             "(default: lead-in + 180)")
    parser.add_argument("--tick", type=float, default=FIELDS["YC_TICK_SECONDS"][1],
                        help="YC_TICK_SECONDS (default: the bot's)")
    parser.add_argument("--poll", type=int, default=60, help="YC_POLL_SECONDS")
    parser.add_argument("--workers", type=int, default=8, help="YC_WORKERS")
    parser.add_argument("--lead-in", type=float, default=None,
                        help="seconds before the first reminder is due (default: "
                             f"max(60, {FIRST_ROUND_PER_ACCOUNT} x accounts), the first poll "
                             "round against Radicale on 2 cores)")
    parser.add_argument("--per-account", type=int, default=1,
                        help="measured meetings per account")
    parser.add_argument("--burst", type=float, default=0.0,
                        help="fraction of the reminders due at one and the same instant")
    parser.add_argument("--post-latency-ms", type=float, default=10.0,
                        help="how long the stand-in Mattermost takes for every call")
    parser.add_argument("--connect-threads", type=int, default=8)
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("--profile", metavar="FILE",
                        help="cProfile every tick() into FILE and print the top functions")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="a SQLite file (default) or a fresh database on the embedded "
                             "PostgreSQL (tests.pg; its server CPU is reported apart)")
    parser.add_argument("--horizon", type=int, default=FIELDS["YC_HORIZON_DAYS"][1],
                        help="YC_HORIZON_DAYS (default: the bot's)")
    parser.add_argument("--sample", action="store_true",
                        help="sample every thread's stack (wall clock) and print the hot spots")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (db, log)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny run for smoke tests: 8 accounts, ~13 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.duration, args.tick, args.poll = 8, 9.0, 1.0, 2
        args.workers, args.lead_in, args.post_latency_ms = 4, 4.0, 2.0
    if args.lead_in is None:
        args.lead_in = max(60.0, FIRST_ROUND_PER_ACCOUNT * args.accounts)
    if args.duration is None:
        args.duration = args.lead_in + 180.0
    tail = tail_seconds(args.tick)
    if args.accounts < 1 or args.duration - tail <= args.lead_in:
        parser.error("need at least one account and --duration > --lead-in + a few ticks")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)  # noqa: S311 - calendar data, not secrets
    work_dir = Path(tempfile.mkdtemp(prefix="reminder-bench-"))
    warnings = setup_logging(work_dir / "bot.log", args.log_level)
    logging.getLogger("bench").setLevel(logging.INFO)
    say(f"config: accounts={args.accounts} duration={args.duration:g}s "
        f"tick={args.tick:g}s poll={args.poll}s workers={args.workers} "
        f"post_latency={args.post_latency_ms:g}ms burst={args.burst:g} "
        f"horizon={args.horizon}d database={args.database} "
        f"load={os.getloadavg()[0]:.2f} dir={work_dir}")
    try:
        return run(args, rng, work_dir, warnings)
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)


def run(args: argparse.Namespace, rng: random.Random, work_dir: Path,
        warnings: CountingHandler) -> int:
    accounts = make_accounts(args.accounts, rng)
    url = bench_database(args.database, work_dir)
    db = open_database(url)
    pg_pid = postgres_pid(url)
    repo = Repository(Vault("bench-secret"), clock=utc_now)
    with ServerProcess() as server:
        # -- seed Radicale, connect every account ------------------------------------------
        clock0 = time.perf_counter()
        server.add_users({login: password for _, login, password, _ in accounts})
        specs = [(login, "events-1", "Мои события") for _, login, _, _ in accounts]
        specs += [(login, "events-2", "Personal") for i, (_, login, _, _) in enumerate(accounts)
                  if i % 4 == 3]
        hrefs = dict(zip([(s[0], s[1]) for s in specs], server.make_calendars(specs),
                         strict=True))
        seeded = time.perf_counter() - clock0

        source = YandexCalDAV(server.url, timeout=15.0)
        messenger = TimedMessenger(latency=args.post_latency_ms / 1000)
        engine = build_engine(repo, source, messenger, clock=utc_now, poll_seconds=args.poll,
                              horizon_days=args.horizon, workers=args.workers)
        services = Services(repo, source, clock=utc_now, default_timezone="Europe/Moscow",
                            store=engine.store, outbox=engine.outbox)
        clock0 = time.perf_counter()

        def connect(account: tuple[str, str, str, str]) -> None:
            user, login, password, zone = account
            services.connect(user, login, password, zone=zone, profile_zone=None, language="en")
            # the morning agenda stays on, at a time of day far from now, so that it does
            # not fire for everybody at once and blur the reminders
            local = utc_now().astimezone(ZoneInfo(zone))
            repo.set_notifications(user, NotificationSettings(
                daily_at=f"{(local.hour + 12) % 24:02d}:00", daily_weekdays=False))

        with ThreadPoolExecutor(args.connect_threads) as pool:
            list(pool.map(connect, accounts))
        connected = time.perf_counter() - clock0
        say(f"setup: radicale users+calendars {seeded:.1f}s, "
            f"{len(accounts)} accounts connected {connected:.1f}s")

        # -- meetings, relative to t0 (the engine starts ticking then) --------------------
        t0 = time.time() + 2.0
        first_due = t0 + args.lead_in
        last_due = t0 + args.duration - tail_seconds(args.tick)
        due_list = due_times(len(accounts) * args.per_account, first_due, last_due,
                             args.burst, rng)
        skip_at = math.ceil(first_due + (last_due - first_due) / 3)
        due: dict[tuple[str, int], float] = {}
        objects = 0
        for index, (user, login, _, _) in enumerate(accounts):
            mine = due_list[index * args.per_account:(index + 1) * args.per_account]
            due.update({(user, n): moment for n, moment in enumerate(mine)})
            work, personal = objects_for(index, user, login, t0, mine, skip_at, rng)
            server.write_objects(login, hrefs[(login, "events-1")], work)
            if personal:
                server.write_objects(login, hrefs[(login, "events-2")], personal)
            objects += len(work) + len(personal)
        say(f"meetings: {objects} objects, {len(due)} reminders due from "
            f"+{first_due - t0:.0f}s to +{last_due - t0:.0f}s")

        # -- the engine, ticking like inside mmpy-bot ------------------------------------
        profiler = cProfile.Profile() if args.profile else None
        timed = TimedTick(engine.tick, profiler)
        engine.tick = timed  # type: ignore[method-assign]  # register() schedules self.tick
        scheduler = schedule.Scheduler()
        loop = SchedulerLoop(scheduler, period=min(1.0, args.tick))
        sampler = StackSampler() if args.sample else None
        try:
            time.sleep(max(0.0, t0 - time.time()))
            cpu0, server_cpu0 = cpu_seconds(), server.cpu()
            pg_cpu0 = process_tree_cpu(pg_pid) if pg_pid else 0.0
            server.reset_counters()
            engine.register(scheduler, args.tick)
            loop.start()
            if sampler is not None:
                sampler.start()
            end = t0 + args.duration
            first_round = watch(end, t0, len(accounts), timed, messenger)
            loop.stopping.set()
            loop.join(timeout=args.tick + 60)
            engine.drain(timeout=30)
            run_end = time.time()
            cpu_bot, server_cpu = cpu_seconds() - cpu0, server.cpu() - server_cpu0
            pg_cpu = process_tree_cpu(pg_pid) - pg_cpu0 if pg_pid else None
            counters = server.counters()
        finally:
            loop.stopping.set()
            if sampler is not None:
                sampler.stopping.set()
            engine.shutdown()
            source.close()
    db.close()

    # -- figures -------------------------------------------------------------------------
    arrivals: dict[tuple[str, int], float] = {}
    duplicates = unexpected = other = 0
    for arrived, user, text in messenger.posts:
        found = MEASURED.search(text)
        if found and found.group(1) == user:
            key = (user, int(found.group(2)))
            if key in arrivals:
                duplicates += 1
            arrivals.setdefault(key, arrived)
        elif "Skip " in text:
            unexpected += 1
        else:
            other += 1
    lateness = [arrivals[k] - d if k in arrivals else math.inf for k, d in due.items()]
    missing = sum(1 for v in lateness if math.isinf(v))
    settled = [arrivals[k] - d if k in arrivals else math.inf for k, d in due.items()
               if first_round is not None and d >= t0 + first_round]
    p50, p90, p99 = (percentile(lateness, q) for q in (0.5, 0.9, 0.99))
    worst = max(lateness)

    window = [s for s in timed.samples if s.started >= first_due]
    ticks = window or timed.samples
    cpu_ms = [s.cpu * 1000 for s in ticks]
    wall_ms = [s.wall * 1000 for s in ticks]
    starts = [s.started for s in timed.samples]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    span = run_end - t0

    round_text = f"+{first_round:.1f}s" if first_round is not None else "NOT within the run"
    say(f"polls: first round done at {round_text}; "
        f"radicale requests={counters.get('requests')} "
        f"by_report={counters.get('by_report')} max_in_flight={counters.get('max_in_flight')}")
    say(f"posts: reminders {len(arrivals)}/{len(due)} missing={missing} duplicates={duplicates} "
        f"unexpected={unexpected} other={other}; status set={messenger.status_calls['set']} "
        f"cleared={messenger.status_calls['clear']}")
    if first_round is None or first_round > args.lead_in:
        say(f"NOTE: the first poll round outlasted --lead-in ({args.lead_in:g}s): reminders of "
            "accounts not yet polled count as late (raise --lead-in to see a running bot)")
    say(f"lateness s: p50={fmt(p50)} p90={fmt(p90)} p99={fmt(p99)} max={fmt(worst)} "
        f"min={fmt(min(lateness))}")
    starts = sorted(s.started for s in timed.samples)
    waits, after = [], []
    for key, moment in due.items():
        k = bisect.bisect_left(starts, moment)
        if key in arrivals and k < len(starts) and starts[k] <= arrivals[key]:
            waits.append(starts[k] - moment)  # the reminder waited for this tick
            after.append(arrivals[key] - starts[k])  # then: decided, recorded, claimed, posted
    if waits:
        say(f"  of which waiting for the next tick: p50={fmt(percentile(waits, 0.5))} "
            f"p99={fmt(percentile(waits, 0.99))}; from that tick's start to the post: "
            f"p50={fmt(percentile(after, 0.5))} p99={fmt(percentile(after, 0.99))} "
            f"max={fmt(max(after))}")
    if settled and len(settled) < len(lateness):
        say(f"lateness s, the {len(settled)} due after the first poll round: "
            f"p50={fmt(percentile(settled, 0.5))} p99={fmt(percentile(settled, 0.99))} "
            f"max={fmt(max(settled))}")
    say(f"ticks: {len(timed.samples)} in all, {len(window)} in the reminder window; "
        f"period mean={sum(gaps) / max(len(gaps), 1):.2f}s max={max(gaps, default=0):.2f}s")
    say(f"tick cpu ms (window): mean={sum(cpu_ms) / len(cpu_ms):.1f} "
        f"p50={percentile(cpu_ms, 0.5):.1f} p99={percentile(cpu_ms, 0.99):.1f} "
        f"max={max(cpu_ms):.1f}; all ticks max={max(s.cpu for s in timed.samples) * 1000:.1f}")
    say(f"tick wall ms (window): mean={sum(wall_ms) / len(wall_ms):.1f} "
        f"p50={percentile(wall_ms, 0.5):.1f} p99={percentile(wall_ms, 0.99):.1f} "
        f"max={max(wall_ms):.1f}; all ticks max={max(s.wall for s in timed.samples) * 1000:.1f}")
    say(f"process cpu: bot {cpu_bot:.1f}s over {span:.0f}s ({100 * cpu_bot / span:.0f}% of a "
        f"core; ticks {sum(s.cpu for s in timed.samples):.1f}s), radicale {server_cpu:.1f}s"
        f"{'' if pg_cpu is None else f', postgresql {pg_cpu:.1f}s'}; "
        f"bot rss peak {rss_peak_mb():.0f} MB")
    if warnings.counts:
        say("warnings: " + " ".join(f"{k}={v}" for k, v in warnings.counts.most_common()))
    if sampler is not None:
        say(sampler.report())
    if profiler is not None:
        profiler.dump_stats(args.profile)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
        say(text.getvalue())
    say(f"reminder-bench: accounts={len(accounts)} p50={fmt(p50)} p99={fmt(p99)} "
        f"max={fmt(worst)} cpu_per_tick_ms={sum(cpu_ms) / len(cpu_ms):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
