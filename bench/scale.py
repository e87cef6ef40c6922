#!/usr/bin/env python
"""Scale benchmark: accounts handled per core per minute, one and two engine processes on one
PostgreSQL, against the naive full re-read; reminder lateness while it runs.

Run on demand (never in CI)::

    .venv/bin/python bench/scale.py                  # 2,000 accounts: 13-15 minutes
    .venv/bin/python bench/scale.py --accounts 5000  # the target size: see "Sizes" below
    .venv/bin/python bench/scale.py --quick          # a tiny run (smoke test), ~40 s

What runs, as in production:

- Radicale + ``YandexQuirks`` in a **child process** (``bench.common.ServerProcess``) with
  ``--latency-ms`` added to every request; its storage on ``/dev/shm`` when there is one;
- the engine processes are real OS processes (``multiprocessing``, spawn), each with its own
  ``Engine`` built as ``bot.app`` builds it (``EngineStore``, ``OutboxStore``,
  ``CoordinationStore``, ``YandexCalDAV`` with the adapter's defaults, ``YC_WORKERS``,
  ``YC_HORIZON_DAYS``), the real wall clock, its tick driven like mmpy-bot drives it (one
  ``schedule`` job, a loop sleeping ``min(1, YC_TICK_SECONDS)``), INFO logging to a file, and
  a stand-in for Mattermost (``bench.common.BenchMessenger``: ``--post-latency-ms`` per call);
- one PostgreSQL for all of them: the embedded server of ``tests.pg`` (a fresh database).

The run:

1. **Seed** N accounts, each with one calendar (``--singles`` single meetings over the
   horizon, a daily stand-up series, a weekly 1:1, a meeting in progress for one in five, and
   the measured meeting), written as files into Radicale's storage; the accounts go into the
   database as ``connect`` would store them, reminders off for now.
2. **Warm-up** (not measured): two engine processes take every account and poll it once
   (the first, silent sync), then stop.
3. **Phase P=1**, then **phase P=2**, ``--phase`` seconds each: one, then two engine
   processes take the accounts (leases) and run. Accounts' calendars are idle but for a
   background writer that changes a single meeting of ``--change-rate`` (1 %) of the accounts
   per minute (a real PUT: moved or renamed; each is a change notice to post). Every account
   has one measured meeting whose reminder falls due inside one of the phases (half in each),
   spread evenly between ``settle`` seconds after the phase start and shortly before its end;
   the reminder lead is set just before phase 1 (whole minutes: the phase start is chosen so
   the due instants land where planned), so nothing is due during the warm-up.
4. **Naive**: caldav's ``Calendar.search(start, end, event=True, expand=True)`` of the same
   60-day window, one ``DAVClient`` per account, on ``--naive-sample`` accounts (after one
   unmeasured cycle), CPU of this process.
5. **Profile**: ``--profile-sample`` idle polls run one by one in this process under
   ``cProfile`` (thread CPU time), grouped by package (our code, peewee, psycopg2, caldav,
   niquests/urllib3-future, lxml, …), the main calls timed; and the same polls once with the
   adapter's client LRU large enough to hold every account.

Figures (per phase; CPU is sampled with ``psutil`` at the window's edges, per engine process,
for the PostgreSQL server with its backends, and for Radicale; the window starts ``settle``
seconds into the phase, after the leases were taken and the planner's views read):

- **accounts per core per minute** = 60 / (CPU seconds one account costs per minute), at
  ``YC_POLL_SECONDS`` (60). The cost is the engine processes' CPU (not the database's or
  Radicale's: those are shown apart), split into the poll jobs (thread CPU of each, by kind:
  ``idle`` = the ctag did not move, one PROPFIND; ``listed`` = idle, but the adapter listed
  the window because its last listing was older than 5 minutes; ``changed``) and the rest
  (ticks, planner, senders, status, leases). A fresh process lists every calendar on its first
  poll, so a short window holds more listings than a long run: the headline is the steady
  state, the rest per account-minute plus the poll jobs mixed as a long run mixes them (one
  listing every 300 s of ``RELIST_SECONDS``, polls every 60 s ± 10 %; simulated), and the
  window's raw figure is printed beside it;
- **speedup2** = capacity with two processes ÷ capacity with one, where a configuration's
  capacity is the accounts per minute its processes would handle if each had a core of its
  own (Σ over processes of 60 / its per-account cost): it shows what a second process costs
  in coordination (its own tick, leases, claims) rather than what this 2-core machine, also
  running Radicale and PostgreSQL, could host;
- **naive_per_core** = 60 / (client CPU seconds of one naive re-read);
- **lateness** = the reminder's arrival at the stand-in Mattermost - its due time (as
  ``bench/reminders.py`` measures it), over every measured reminder of both phases; one that
  never arrived counts as infinitely late.

Sizes: the rig, not the bot, decides how many accounts fit in a run. Radicale parses every
object with vobject the first time it is read (8-10 ms an object), so the warm-up costs about
60 ms of Radicale CPU, 100 ms of engine CPU and 20 ms of PostgreSQL CPU per account (about
0.13 s of wall time per account on two cores); at 60 s polls Radicale then needs ~8 ms per
poll. At 5,000 accounts the engine processes, Radicale and PostgreSQL together ask for about
two cores, all the machine this was written on has, and the warm-up alone takes about ten
minutes; so the default is 2,000 accounts (the per-account figures hardly depend on N, the
report says what 5,000 would need), and ``--accounts 5000`` runs the target size when there
are the cores and the time (about 25 minutes) for it. The lead is whole minutes, so phase 1
may wait up to a minute after the warm-up for its planned start.

The last line reads ``scale-bench: accounts=N processes=P accounts_per_core=X
naive_per_core=Y speedup2=S p99=Z`` (P: the most engine processes run; X: the steady-state
figure of that phase).
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import logging
import math
import multiprocessing
import os
import pstats
import random
import re
import shutil
import statistics
import sys
import sysconfig
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], not the project
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    BenchMessenger,
    ServerProcess,
    bench_database,
    build_engine,
    postgres_pid,
    process_tree_cpu,
)
from bench.reminders import fmt, percentile  # noqa: E402
from bot.adapters.caldav_client import RELIST_SECONDS  # noqa: E402
from bot.config import FIELDS  # noqa: E402

TARGET_PER_CORE = 10_000  # idle accounts per core per minute
TARGET_IDLE_MS = 6.0  # CPU of one idle account poll
TARGET_P99 = 1.0  # seconds
TARGET_ACCOUNTS = 5_000
TARGET_BYTES, TARGET_CPU = 10.0, 5.0  # the polling targets against the naive re-read
SECRET = "bench-scale-secret"  # noqa: S105 - the throw-away key of a benchmark database
CALENDAR_NAME = "Мои события"
MEASURED = "Bench {user} meeting"
ZONES = ("Europe/Moscow", "Europe/Moscow", "Europe/Moscow", "Asia/Yekaterinburg",
         "Europe/Kaliningrad", "Asia/Novosibirsk", "UTC")
# The measured meetings start this long after seeding; the reminder lead set before phase 1
# brings their due instants into the phases (leads are whole minutes, at most 1440).
MEETINGS_AFTER = 2 * 3600
SINGLES_MAX = 12


def say(text: str = "") -> None:
    print(text, flush=True)


def progress(text: str) -> None:
    print(f"  … {text}", file=sys.stderr, flush=True)


# -- the accounts and their calendars --------------------------------------------------------


@dataclass
class Acct:
    index: int
    user: str
    login: str
    password: str
    zone: str
    href: str = ""
    group: int = 0  # 0: the measured reminder falls due in phase 1, 1: in phase 2
    offset: int = 0  # seconds after the group's first due instant
    versions: int = 0  # changes made to its single meetings so far


def make_accounts(count: int, rng: random.Random, spread: int) -> list[Acct]:
    accounts = [Acct(i, f"u{i:05d}", f"scale{i:05d}@yandex.ru", f"pw-{i:05d}-{rng.randrange(10**6)}",
                     rng.choice(ZONES), group=i % 2) for i in range(count)]
    for group in (0, 1):
        members = [a for a in accounts if a.group == group]
        offsets = [math.floor(spread * (k + 0.5) / max(len(members), 1))
                   for k in range(len(members))]
        rng.shuffle(offsets)
        for account, offset in zip(members, offsets, strict=True):
            account.offset = offset
    return accounts


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(microsecond=0)


def single_ics(account: Acct, k: int, background: float, horizon: int, version: int) -> str:
    """The k-th single meeting; ``version`` n > 0 is the n-th change (odd: moved an hour
    later per move, even: renamed)."""
    from tests.ics_builder import event

    day = 2 + (7 * k) % max(horizon - 3, 1)  # a week apart, from the day after tomorrow
    moves = (version + 1) // 2
    start = _at(background) + timedelta(days=day, hours=moves)
    title = f"Single {account.user} s{k}" + (f" v{version}" if version and version % 2 == 0
                                             else "")
    team = {account.login: "ACCEPTED", "boss@yandex.ru": "ACCEPTED",
            "anna@yandex.ru": "TENTATIVE", "boris@yandex.ru": "NEEDS-ACTION"}
    return event(f"single-{k}-{account.user}", start, start + timedelta(hours=1), title,
                 attendees=team, location=f"Room {100 + k}",
                 stamp=f"2026112{version % 10}T100000Z")



def calendar_objects(account: Acct, *, meeting_at: float, now: float, singles: int,
                     horizon: int) -> dict[str, str]:
    """One account's calendar (filename → ICS)."""
    from tests.ics_builder import event

    team = {account.login: "ACCEPTED", "boss@yandex.ru": "ACCEPTED",
            **{f"colleague{(account.index + k) % 97}@yandex.ru": "ACCEPTED" for k in range(3)}}
    objects: dict[str, str] = {}
    start = _at(meeting_at)
    objects["measured.ics"] = event(f"measured-{account.user}", start,
                                    start + timedelta(minutes=30),
                                    MEASURED.format(user=account.user), attendees=team)
    # Background meetings: away from the phases' reminder dues (their lead is a few minutes
    # to two hours): half a day after the measured meetings, day after day.
    background = meeting_at + 12 * 3600
    standup = _at(background) - timedelta(days=10)
    objects["standup.ics"] = event(f"standup-{account.user}", standup,
                                   standup + timedelta(minutes=15), "Daily standup",
                                   attendees=team, extra="RRULE:FREQ=DAILY;COUNT=90")
    one2one = _at(background) + timedelta(days=1, minutes=30) - timedelta(weeks=4)
    objects["one2one.ics"] = event(f"one2one-{account.user}", one2one,
                                   one2one + timedelta(minutes=30), "1:1",
                                   extra="RRULE:FREQ=WEEKLY")
    for k in range(singles):
        objects[f"single-{k}.ics"] = single_ics(account, k, background, horizon, 0)
    if account.index % 5 == 0:  # in a meeting now: the bot sets the custom status
        busy = _at(now) - timedelta(minutes=20)
        objects["busy.ics"] = event(f"busy-{account.user}", busy, busy + timedelta(hours=4),
                                    "Workshop", telemost=None)
    return objects


# -- an engine process ----------------------------------------------------------------------


class PollProbe:
    """Times every poll job of an engine in its worker thread (``time.thread_time``) and
    says what kind of poll it was, from the requests it sent (``YandexCalDAV._send``) and the
    poll's result."""

    def __init__(self, engine: Any, source: Any) -> None:
        self.polls: list[tuple[float, str, float, float, int, str]] = []
        local = threading.local()
        send, poll, job = source._send, engine.syncer.poll, engine._poll_job

        def counted(client: Any, creds: Any, method: str, *args: Any, **kwargs: Any) -> Any:
            local.requests += 1
            local.reports += method == "REPORT"
            return send(client, creds, method, *args, **kwargs)

        def polled(user: str, now: datetime) -> Any:
            result = poll(user, now)
            local.changed = result.changed
            return result

        def timed_job(user: str) -> None:
            local.requests = local.reports = 0
            local.changed = None
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            try:
                job(user)
            finally:
                if local.changed is None:
                    kind = "failed"  # an error, a refusal, or a snapshot written meanwhile
                elif local.changed:
                    kind = "changed"
                else:
                    kind = "listed" if local.reports else "idle"
                self.polls.append((time.time(), kind, time.thread_time() - cpu0,
                                   time.perf_counter() - wall0, local.requests, user))

        source._send = counted
        engine.syncer.poll = polled
        engine._poll_job = timed_job


def engine_main(conn: Any, cfg: dict[str, Any]) -> None:
    """One engine process: build, report ready, run from the "go" time until "stop", send
    what it measured."""
    import schedule

    from bench.reminders import SchedulerLoop, TimedTick, setup_logging
    from bot.adapters.caldav_client import YandexCalDAV
    from bot.clock import utc_now
    from storage.crypto import Vault
    from storage.db import open_database
    from storage.repository import Repository

    warnings = setup_logging(Path(cfg["log"]), "INFO")
    db = open_database(cfg["db"])
    repo = Repository(Vault(SECRET), clock=utc_now)
    options = {"max_clients": cfg["max_clients"]} if cfg["max_clients"] else {}
    source = YandexCalDAV(cfg["caldav"], timeout=20.0, **options)
    messenger = BenchMessenger(latency=cfg["post_latency"])
    engine = build_engine(repo, source, messenger, clock=utc_now, poll_seconds=cfg["poll"],
                          horizon_days=cfg["horizon"], workers=cfg["workers"],
                          process_id=cfg["process_id"])
    probe = PollProbe(engine, source)
    timed = TimedTick(engine.tick, None)
    engine.tick = timed  # type: ignore[method-assign]  # register() schedules self.tick
    scheduler = schedule.Scheduler()
    loop = SchedulerLoop(scheduler, period=min(1.0, cfg["tick"]))
    conn.send(("ready", os.getpid()))
    _, start_at = conn.recv()
    time.sleep(max(0.0, start_at - time.time()))
    engine.register(scheduler, cfg["tick"])
    loop.start()
    conn.recv()  # stop
    loop.stopping.set()
    loop.join(timeout=cfg["tick"] + 30)
    held = len(engine.leases.held)
    # Polls still queued (an overloaded process has a backlog) are dropped, the running ones
    # and the posts finish: what was decided goes out, as in a clean stop.
    engine._polls.shutdown(wait=False, cancel_futures=True)
    engine.drain(timeout=30)
    engine.shutdown()
    source.close()
    conn.send(("done", {
        "polls": probe.polls,
        "ticks": [(s.started, s.wall, s.cpu) for s in timed.samples],
        "posts": list(messenger.posts),
        "status": dict(messenger.status_calls),
        "warnings": dict(warnings.counts),
        "held": held,
    }))
    db.close()


@dataclass
class Child:
    name: str
    process: Any
    conn: Any
    pid: int = 0
    result: dict[str, Any] = field(default_factory=dict)


def spawn(names: Sequence[str], cfg: dict[str, Any], work_dir: Path) -> list[Child]:
    ctx = multiprocessing.get_context("spawn")
    children = []
    for name in names:
        parent_end, child_end = ctx.Pipe()
        own = dict(cfg, process_id=f"scale-{name}", log=str(work_dir / f"{name}.log"))
        process = ctx.Process(target=engine_main, args=(child_end, own), name=name, daemon=True)
        process.start()
        children.append(Child(name, process, parent_end))
    for child in children:
        if not child.conn.poll(120):
            raise RuntimeError(f"engine process {child.name} did not start")
        _, child.pid = child.conn.recv()
    return children


def stop(children: Sequence[Child]) -> None:
    for child in children:
        child.conn.send(("stop",))
    for child in children:
        try:
            if child.conn.poll(120):
                _, child.result = child.conn.recv()
        except (EOFError, OSError):
            pass
        if not child.result:
            say(f"!! engine process {child.name} ended without its figures "
                f"(exit code {child.process.exitcode})")
        child.process.join(timeout=30)
        if child.process.is_alive():
            child.process.kill()


def child_rss_mb(children: Sequence[Child]) -> dict[str, float]:
    import psutil

    return {child.name: psutil.Process(child.pid).memory_info().rss / 2**20
            for child in children}


def child_cpu(children: Sequence[Child]) -> dict[str, float]:
    import psutil

    found = {}
    for child in children:
        times = psutil.Process(child.pid).cpu_times()
        found[child.name] = times.user + times.system
    return found


# -- the rig --------------------------------------------------------------------------------


class Changer(threading.Thread):
    """Changes one single meeting of a random account every ``60 / (rate · N)`` seconds
    while ``active`` (a real PUT to Radicale)."""

    def __init__(self, server: ServerProcess, accounts: list[Acct], rate: float,
                 background: dict[str, float], horizon: int, singles: int,
                 rng: random.Random) -> None:
        super().__init__(name="changer", daemon=True)
        self.server, self.accounts, self.rng = server, accounts, rng
        self.background, self.horizon, self.singles = background, horizon, singles
        self.interval = 60.0 / max(rate * len(accounts), 1e-9)
        self.active = threading.Event()
        self.stopping = threading.Event()
        self.made: list[tuple[float, str]] = []
        self.failed = 0

    def run(self) -> None:
        if self.singles == 0:
            return
        while not self.stopping.wait(self.interval * self.rng.uniform(0.5, 1.5)):
            if not self.active.is_set():
                continue
            account = self.rng.choice(self.accounts)
            k = self.rng.randrange(self.singles)
            account.versions += 1
            ics = single_ics(account, k, self.background[account.user], self.horizon,
                             account.versions)
            try:
                self.server.put(account.login, account.href, f"single-{k}.ics", ics)
                self.made.append((time.time(), account.user))
            except Exception:  # a benchmark must go on; counted
                self.failed += 1


@dataclass
class Window:
    start: float
    end: float
    cpu: dict[str, float]  # engine process name → CPU seconds in the window
    db_cpu: float
    server_cpu: float
    counters: dict[str, Any]

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Phase:
    label: str
    processes: int
    start: float
    duration: float
    window: Window
    children: list[Child]
    changes: int
    load: float = 0.0
    rss: dict[str, float] = field(default_factory=dict)  # engine process → MB at the end


def run_phase(label: str, count: int, start_at: float, args: argparse.Namespace,
              cfg: dict[str, Any], work_dir: Path, server: ServerProcess, pg_pid: int | None,
              changer: Changer, children: list[Child] | None = None,
              then: Callable[[], None] | None = None) -> Phase:
    """``count`` engine processes from ``start_at`` for ``args.phase`` seconds; the window is
    from ``settle`` seconds in to the end. ``then`` runs after the window, before the
    processes stop (the next phase's processes start meanwhile)."""
    children = children or spawn([f"{label}-{k + 1}" for k in range(count)], cfg, work_dir)
    if time.time() > start_at:
        say(f"NOTE: the {label} processes were ready only {time.time() - start_at:.1f}s after "
            "the planned start")
    for child in children:
        child.conn.send(("go", start_at))
    time.sleep(max(0.0, start_at - time.time()))
    changer.active.set()
    made0 = len(changer.made)
    time.sleep(max(0.0, start_at + args.settle - time.time()))
    server.reset_counters()
    w0 = time.time()
    cpu0, db0, srv0 = child_cpu(children), _db_cpu(pg_pid), server.cpu()
    end = start_at + args.phase
    note = w0 + 30
    while (now := time.time()) < end:
        if now >= note:
            progress(f"{label}: +{now - start_at:.0f}s of {args.phase:g}s")
            note += 30
        if now >= end - args.tail:
            changer.active.clear()
        time.sleep(min(1.0, max(0.0, end - now)))
    cpu1, db1, srv1 = child_cpu(children), _db_cpu(pg_pid), server.cpu()
    w1 = time.time()
    rss = child_rss_mb(children)
    counters = server.counters()
    changer.active.clear()
    changes = len(changer.made) - made0
    if then is not None:
        then()
    stop(children)
    window = Window(w0, w1, {k: cpu1[k] - cpu0[k] for k in cpu0}, db1 - db0, srv1 - srv0,
                    counters)
    return Phase(label, count, start_at, args.phase, window, children, changes,
                 os.getloadavg()[0], rss)


def dump(path: Path, phases: Sequence[Phase], accounts: Sequence[Acct],
         due_of: Callable[[Acct], float]) -> None:
    """Everything the engine processes measured, for a closer look (``--keep``)."""
    import json

    data = {"due": {a.user: due_of(a) for a in accounts},
            "phases": [{"label": p.label, "start": p.start, "window": [p.window.start,
                        p.window.end], "cpu": p.window.cpu, "children": {
                            c.name: c.result for c in p.children}} for p in phases]}
    path.write_text(json.dumps(data), encoding="utf-8")
    say(f"raw figures: {path}")


def _db_cpu(pg_pid: int | None) -> float:
    return process_tree_cpu(pg_pid) if pg_pid else 0.0


def synced_count() -> int:
    from storage.models import AccountRow

    return int(AccountRow.select().where(AccountRow.last_sync_at.is_null(False)).count())


def set_leads(minutes: int) -> None:
    """Every account's reminder lead (one bulk UPDATE, flagged for the lease holders)."""
    from storage.models import AccountRow

    AccountRow.update(remind_leads=str(minutes), dirty=True).execute()


# -- where the CPU of an idle poll goes ------------------------------------------------------


def _category(filename: str, name: str) -> str:
    """The package a profiled function belongs to."""
    root = str(ROOT)
    if filename == "~":  # a built-in: by the type or module in its name
        for key, label in (("lxml", "lxml (XML parsing)"), ("psycopg2", "psycopg2 (driver)"),
                           ("socket", "sockets (syscalls)"), ("_ssl", "sockets (syscalls)"),
                           ("select", "sockets (syscalls)"), ("sqlite3", "sqlite3")):
            if key in name:
                return label
        return "built-ins (str, dict, …)"
    path = filename.replace("\\", "/")
    if "site-packages/" not in path:
        if path.startswith(root + "/bot/") or path.startswith(root + "/storage/"):
            return "ours (bot/, storage/)"
        if path.startswith(root + "/"):
            return "bench and tests"
    for key, label in (("/peewee.py", "peewee"), ("/playhouse/", "peewee"),
                       ("/psycopg2/", "psycopg2 (driver)"), ("/caldav/", "caldav"),
                       ("/niquests/", "niquests + urllib3-future (HTTP)"),
                       ("/urllib3_future/", "niquests + urllib3-future (HTTP)"),
                       ("/urllib3/", "niquests + urllib3-future (HTTP)"),
                       ("/qh3/", "niquests + urllib3-future (HTTP)"),
                       ("/jh2/", "niquests + urllib3-future (HTTP)"),
                       ("/h11/", "niquests + urllib3-future (HTTP)"),
                       ("/wassima/", "niquests + urllib3-future (HTTP)"),
                       ("/charset_normalizer/", "niquests + urllib3-future (HTTP)"),
                       ("/idna/", "niquests + urllib3-future (HTTP)"),
                       ("/lxml/", "lxml (XML parsing)"),
                       ("/cryptography/", "cryptography (Fernet)"),
                       ("/prometheus_client/", "prometheus_client (metrics)")):
        if key in path:
            return label
    if "site-packages" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    stdlib = sysconfig.get_paths()["stdlib"]
    if path.startswith(stdlib):
        module = path[len(stdlib) + 1:].split("/", 1)[0].removesuffix(".py")
        return f"stdlib {module}"
    return "other"


def profile_idle(args: argparse.Namespace, server: ServerProcess, accounts: list[Acct],
                 pg_pid: int | None) -> dict[str, float]:
    """Idle polls one by one in this process (categories, main calls, client LRU hit/miss),
    then idle ticks of an engine holding every account."""
    from bench.poll import poll_job
    from bot.adapters.caldav_client import YandexCalDAV
    from bot.clock import utc_now
    from storage.crypto import Vault
    from storage.repository import Repository

    sample = accounts[: args.profile_sample]
    n = len(sample)
    repo = Repository(Vault(SECRET), clock=utc_now)
    source = YandexCalDAV(server.url, timeout=20.0)  # as bot/app.py builds it
    big = YandexCalDAV(server.url, timeout=20.0, max_clients=n + 1)
    # Its own schedule is far off (the polls here are called one by one), so its ticks only
    # decide: leases, the planner over every account's view, the outbox.
    engine = build_engine(repo, source, BenchMessenger(), clock=utc_now, poll_seconds=10**6,
                          horizon_days=args.horizon, workers=1, process_id="scale-profile")
    engine.tick()  # takes every lease, reads every view
    engine.drain()
    figures: dict[str, float] = {}

    def cycle(label: str, profiler: cProfile.Profile | None = None) -> float:
        server.reset_counters()
        cpu0, db0, srv0 = time.thread_time(), _db_cpu(pg_pid), server.cpu()
        if profiler is not None:
            profiler.enable()
        for account in sample:
            poll_job(engine, account.user, utc_now())
        if profiler is not None:
            profiler.disable()
        cpu = (time.thread_time() - cpu0) / n * 1e3
        figures[f"{label}_db"] = (_db_cpu(pg_pid) - db0) / n * 1e3
        figures[f"{label}_server"] = (server.cpu() - srv0) / n * 1e3
        figures[f"{label}_requests"] = server.counters()["requests"] / n
        figures[label] = cpu
        return cpu

    ticks = cProfile.Profile()
    try:
        cycle("first_listing")  # this process has no listing yet: every poll lists
        cycle("idle_miss")  # the adapter's defaults: the LRU holds 64 clients
        engine.syncer.source = big
        cycle("big_first")  # new clients, new listings
        cycle("idle_hit")
        # -- where it goes: the main calls, then everything by package (LRU as shipped)
        engine.syncer.source = source
        spent, calls, undo = _time_calls(engine, source)
        try:
            cycle("idle_timed")
        finally:
            for restore in reversed(undo):
                restore()
        profiler = cProfile.Profile()
        cycle("idle_profiled", profiler)
        # -- idle ticks, one a second as on mmpy-bot's scheduler (a lease round every 5 s)
        tick_cpu = []
        for k in range(args.profile_ticks):
            time.sleep(max(0.0, 1.0 - (time.perf_counter() % 1.0)) if k else 0.0)
            cpu0 = time.thread_time()
            ticks.enable()
            engine.tick()
            ticks.disable()
            tick_cpu.append(time.thread_time() - cpu0)
            engine.drain()
        figures["tick_ms"] = statistics.mean(tick_cpu) * 1e3 if tick_cpu else 0.0
        figures["tick_views"] = len(engine.planner.held())
    finally:
        engine.shutdown()
        source.close()
        big.close()

    say(f"\n== where the CPU of an idle poll goes: {n} idle polls one by one in this process "
        "(thread CPU; the ctag did not move) ==")
    thrash = ("a new DAVClient and connection every poll" if n > source._pool._size
              else "the sample fits: no misses")
    say(f"client LRU as shipped (max_clients={source._pool._size}, {n} accounts: {thrash}): "
        f"{figures['idle_miss']:.2f} ms; LRU holding every account: "
        f"{figures['idle_hit']:.2f} ms (PostgreSQL server {figures['idle_miss_db']:.2f} ms, "
        f"Radicale {figures['idle_miss_server']:.2f} ms, {figures['idle_miss_requests']:.2f} "
        "requests per poll)")
    say(f"first poll of an account in a fresh process (lists the window): "
        f"{figures['first_listing']:.2f} ms")
    say("main calls, per poll (thread CPU; indented = inside the call above):")
    total = figures["idle_timed"]
    for label in spent:
        if calls[label]:
            say(f"  {label:58}{spent[label] / n * 1e3:7.2f} ms {calls[label] / n:5.1f} calls")
    say(f"  {'the whole poll job':58}{total:7.2f} ms")
    for label, share in _by_package("an idle poll", profiler, n, total).items():
        figures[f"cat:{label}"] = share
    if args.profile_ticks:
        say(f"\n== an idle tick of an engine holding {figures['tick_views']:.0f} accounts "
            f"({args.profile_ticks} ticks, one a second) ==")
        say(f"thread CPU per tick: {figures['tick_ms']:.2f} ms = "
            f"{figures['tick_ms'] * 60 / max(figures['tick_views'], 1):.3f} ms per account-minute "
            f"at YC_TICK_SECONDS=1")
        for label, share in _by_package("an idle tick", ticks, args.profile_ticks,
                                        figures["tick_ms"], top=8).items():
            figures[f"tick:{label}"] = share
    return figures


def _by_package(what: str, profiler: cProfile.Profile, n: int, total: float,
                top: int = 12) -> dict[str, float]:
    """Print the profile by package and its hottest functions; returns package → share."""
    stats = pstats.Stats(profiler)
    by: dict[str, float] = defaultdict(float)
    waiting = 0.0
    raw = stats.stats  # type: ignore[attr-defined]  # (file, line, name) → (cc, nc, tt, ct, callers)
    for (filename, _line, name), (_cc, _nc, tottime, _ct, callers) in raw.items():
        if filename == "~" and any(w in name for w in _WAITS):
            waiting += tottime
        elif filename == "~" and callers:
            # a built-in (str, re, dict, …) counts for the package that called it
            for (c_file, _c_line, c_name), caller in callers.items():
                by[_category(c_file, c_name)] += caller[2]
        else:
            by[_category(filename, name)] += tottime
    busy = sum(by.values()) or 1.0
    # The profile runs on the wall clock (a thread-CPU timer costs a system call per event and
    # inflated the profiled poll fourfold); the calls that wait (for Radicale, PostgreSQL, a
    # lock) are set apart, the rest is shared out over the measured thread CPU.
    say(f"{what} by package (cProfile, own time of each function, a built-in's counted for its "
        f"caller; {waiting / n * 1e3:.2f} ms waiting for sockets, PostgreSQL and locks set "
        f"apart, the other {busy / n * 1e3:.2f} ms profiled shared out over the {total:.2f} ms "
        "measured):")
    for label, seconds in sorted(by.items(), key=lambda kv: -kv[1])[:top]:
        say(f"  {label:44}{total * seconds / busy:7.2f} ms {100 * seconds / busy:5.1f} %")
    say("hottest functions (own time, as profiled):")
    hottest = sorted(((k, v) for k, v in raw.items()
                      if not (k[0] == "~" and any(w in k[2] for w in _WAITS))),
                     key=lambda kv: -kv[1][2])[:top]
    for (filename, line, name), (_cc, ncalls, tottime, _ct, _callers) in hottest:
        where = filename.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        say(f"  {tottime / n * 1e3:6.3f} ms {ncalls / n:6.1f}x  {where}:{line}({name})")
    return {label: seconds / busy for label, seconds in by.items()}


# Built-ins that block (their wall time is waiting, not CPU): socket I/O, the database's
# answer (psycopg2 waits for the server inside execute), locks, sleeps.
_WAITS = ("recv", "send", "connect", "'poll'", "select", "epoll", "of 'psycopg2",
          "acquire", "time.sleep", "getaddrinfo")


def _time_calls(engine: Any, source: Any) -> tuple[dict[str, float], Counter[str],
                                                   list[Callable[[], None]]]:
    from bot.adapters import caldav_client

    spent: dict[str, float] = {}
    calls: Counter[str] = Counter()
    undo: list[Callable[[], None]] = []
    syncer, store = engine.syncer, engine.store
    rows = [
        (syncer.repo, "account_with_credentials", "repo.account_with_credentials()"),
        (syncer.repo._vault, "decrypt", "  Fernet decrypt of the app password"),
        (store, "poll_state", "store.poll_state()"),
        (store, "object_etags", "store.object_etags()"),
        (source, "etags_in_window", "source.etags_in_window()"),
        (source._pool, "_factory", "  new DAVClient (client LRU miss)"),
        (source, "_ctag", "  ctag PROPFIND"),
        (source, "_request_once", "    HTTP request/response (niquests + caldav DAVResponse)"),
        (caldav_client, "_first_prop", "    read the ctag from the parsed answer"),
        (store, "touch_sync", "store.touch_sync() (one UPDATE)"),
        (engine.planner, "polled", "planner.polled()"),
    ]
    for owner, name, label in rows:
        if not hasattr(owner, name):
            continue
        original = getattr(owner, name)
        own = name in vars(owner)
        spent[label] = 0.0

        def wrapper(*a: Any, _original: Any = original, _label: str = label, **kw: Any) -> Any:
            started = time.thread_time()
            try:
                return _original(*a, **kw)
            finally:
                spent[_label] += time.thread_time() - started
                calls[_label] += 1

        setattr(owner, name, wrapper)
        undo.append(lambda owner=owner, name=name, original=original, own=own:
                    setattr(owner, name, original) if own else delattr(owner, name))
    return spent, calls, undo


# -- the naive re-read ------------------------------------------------------------------------


def naive(args: argparse.Namespace, server: ServerProcess,
          accounts: list[Acct]) -> dict[str, float]:
    from bench.poll import NaiveAccount
    from bot.clock import utc_now
    from bot.core.sync import poll_window

    sample = accounts[: args.naive_sample]
    start, end = poll_window(utc_now(), args.horizon)
    clients = {a.user: NaiveAccount(server.url, a.login, a.password, [a.href]) for a in sample}
    pool = ThreadPoolExecutor(max_workers=args.workers)
    failures = 0

    def one(account: Acct) -> None:
        nonlocal failures
        try:
            clients[account.user].poll(start, end)
        except Exception:
            failures += 1

    list(pool.map(one, sample))  # connections, caches
    server.reset_counters()
    cpu0, srv0, wall0 = time.process_time(), server.cpu(), time.perf_counter()
    for _ in range(args.naive_cycles):
        list(pool.map(one, sample))
    polls = len(sample) * args.naive_cycles
    figures = {"cpu_ms": (time.process_time() - cpu0) / polls * 1e3,
               "server_ms": (server.cpu() - srv0) / polls * 1e3,
               "wall": time.perf_counter() - wall0,
               "bytes": server.counters()["bytes_sent"] / polls,
               "requests": server.counters()["requests"] / polls,
               "failures": failures, "polls": polls}
    pool.shutdown()
    for client in clients.values():
        client.close()
    return figures


# -- figures ----------------------------------------------------------------------------------


def listing_share(poll: float, relist: float, tick: float, rng: random.Random) -> float:
    """The share of polls that list the window in a long run: a listing whenever the last one
    is ``relist`` seconds old, polls every ``poll`` s ± 10 % (plus half a tick of dispatch)."""
    if relist <= 0:
        return 1.0
    since, polls, listings = 0.0, 0, 0
    for _ in range(20_000):
        since += poll * (1 + rng.uniform(-0.1, 0.1)) + tick / 2
        polls += 1
        if since >= relist:
            listings += 1
            since = 0.0
    return listings / polls


@dataclass
class Cost:
    """What one engine process cost in a window."""

    name: str
    accounts: int  # distinct accounts it polled in the window
    cpu: float  # process CPU seconds in the window
    minutes: float
    polls: dict[str, list[float]]  # kind → thread CPU seconds of each poll job
    ticks: list[tuple[float, float, float]]  # (started, wall, cpu) in the window

    @property
    def poll_cpu(self) -> float:
        return sum(sum(v) for v in self.polls.values())

    @property
    def rest_per_account_minute(self) -> float:
        return (self.cpu - self.poll_cpu) / max(self.accounts * self.minutes, 1e-9)

    def mean(self, kind: str, fallback: float = 0.0) -> float:
        values = self.polls.get(kind) or []
        return statistics.mean(values) if values else fallback

    def count(self, *kinds: str) -> int:
        return sum(len(self.polls.get(k) or []) for k in kinds)

    def steady(self, listed_share: float, changed_share: float, per_minute: float,
               *fallbacks: Cost) -> float:
        """CPU seconds per account-minute at ``per_minute`` polls an account a minute, the
        polls mixed as in a long run. A kind of poll this process has no sample of (an
        overloaded one may never finish its first, listing round in the window) is costed
        from the first of ``fallbacks`` that has one."""
        def cost_of(kind: str) -> float | None:
            for source in (self, *fallbacks):
                if source.polls.get(kind):
                    return source.mean(kind)
            return None

        idle = cost_of("idle")
        listed = cost_of("listed")
        changed = cost_of("changed")
        idle = idle if idle is not None else (listed or 0.0)
        listed = listed if listed is not None else idle
        changed = changed if changed is not None else listed
        poll = ((1 - changed_share) * ((1 - listed_share) * idle + listed_share * listed)
                + changed_share * changed)
        return self.rest_per_account_minute + per_minute * poll

    def raw(self) -> float:
        """CPU seconds per account-minute in the window, everything included."""
        return self.cpu / max(self.accounts * self.minutes, 1e-9)


def merge(found: Sequence[Cost]) -> Cost:
    """Several processes' costs as one (their accounts are disjoint)."""
    polls: dict[str, list[float]] = defaultdict(list)
    for cost in found:
        for kind, values in cost.polls.items():
            polls[kind] += values
    return Cost("all", sum(c.accounts for c in found), sum(c.cpu for c in found),
                found[0].minutes if found else 1.0, dict(polls),
                [t for c in found for t in c.ticks])


def costs(phase: Phase) -> list[Cost]:
    w = phase.window
    found = []
    for child in phase.children:
        polls: dict[str, list[float]] = defaultdict(list)
        users = set()
        for ended, kind, cpu, _wall, _requests, user in child.result.get("polls", []):
            if w.start <= ended <= w.end:
                polls[kind].append(cpu)
                users.add(user)
        ticks = [t for t in child.result.get("ticks", []) if w.start <= t[0] <= w.end]
        found.append(Cost(child.name, len(users), w.cpu.get(child.name, 0.0), w.seconds / 60,
                          dict(polls), ticks))
    return found


@dataclass
class Lateness:
    due: int
    arrived: int
    duplicates: int
    values: list[float]
    waits: list[float] = field(default_factory=list)  # due → the next tick of the poster
    after: list[float] = field(default_factory=list)  # that tick's start → the post
    carried: int = 0  # posted only by a later phase's processes (left over at the phase end)

    def q(self, quantile: float, values: list[float] | None = None) -> float:
        chosen = self.values if values is None else values
        return percentile(chosen, quantile) if chosen else math.inf


def lateness(phases: Sequence[Phase], accounts: Sequence[Acct], group: int | None,
             due_of: Callable[[Acct], float]) -> Lateness:
    pattern = re.compile(r"Bench (u\d+) meeting")
    arrivals: dict[str, list[tuple[float, str]]] = defaultdict(list)
    ticks: dict[str, list[float]] = {}
    own = {child.name for child in phases[0].children} if phases else set()
    for phase in phases:
        for child in phase.children:
            ticks[child.name] = sorted(t[0] for t in child.result.get("ticks", []))
            for at, user, text in child.result.get("posts", []):
                found = pattern.search(text)
                if found and found.group(1) == user:
                    arrivals[user].append((at, child.name))
    wanted = [a for a in accounts if group is None or a.group == group]
    found_late = Lateness(len(wanted), 0, 0, [])
    for account in wanted:
        times = sorted(arrivals.get(account.user, []))
        found_late.duplicates += max(0, len(times) - 1)
        if not times:
            found_late.values.append(math.inf)
            continue
        due = due_of(account)
        at, poster = times[0]
        found_late.arrived += 1
        found_late.values.append(at - due)
        if group is not None and poster not in own:
            found_late.carried += 1
            continue
        starts = ticks.get(poster, [])
        k = bisect.bisect_left(starts, due)
        if k < len(starts) and starts[k] <= at:
            found_late.waits.append(starts[k] - due)
            found_late.after.append(at - starts[k])
    return found_late


def change_notices(phase: Phase) -> int:
    pattern = re.compile(r"Single u\d+ s\d")
    return sum(1 for child in phase.children for _at, _user, text in child.result.get("posts", [])
               if pattern.search(text))


# -- the run ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--phase", type=float, default=180.0,
                        help="seconds each phase (P=1, P=2) runs")
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds into a phase before its window and its reminders begin")
    parser.add_argument("--tail", type=float, default=5.0,
                        help="the last reminder of a phase is due this long before its end")
    parser.add_argument("--gap", type=float, default=15.0, help="seconds between the phases")
    parser.add_argument("--poll", type=int, default=60, help="YC_POLL_SECONDS")
    parser.add_argument("--tick", type=float, default=FIELDS["YC_TICK_SECONDS"][1],
                        help="YC_TICK_SECONDS (default: the bot's)")
    parser.add_argument("--workers", type=int, default=FIELDS["YC_WORKERS"][1],
                        help="YC_WORKERS (default: the bot's)")
    parser.add_argument("--horizon", type=int, default=FIELDS["YC_HORIZON_DAYS"][1],
                        help="YC_HORIZON_DAYS (default: the bot's)")
    parser.add_argument("--singles", type=int, default=2,
                        help=f"single meetings per calendar, spread over the horizon "
                             f"(0-{SINGLES_MAX}; the changes edit them)")
    parser.add_argument("--change-rate", type=float, default=0.01,
                        help="share of the accounts that change a meeting per minute")
    parser.add_argument("--latency-ms", type=float, default=20.0,
                        help="added to every CalDAV request")
    parser.add_argument("--post-latency-ms", type=float, default=10.0,
                        help="how long the stand-in Mattermost takes for every call")
    parser.add_argument("--max-clients", type=int, default=0,
                        help="YandexCalDAV max_clients in the engine processes (default: the "
                             "adapter's, as bot/app.py builds it)")
    parser.add_argument("--naive-sample", type=int, default=100)
    parser.add_argument("--naive-cycles", type=int, default=2)
    parser.add_argument("--profile-sample", type=int, default=200)
    parser.add_argument("--profile-ticks", type=int, default=10,
                        help="idle ticks profiled, one a second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny run for smoke tests (~40 s)")
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.phase, args.settle, args.tail, args.gap = 16, 8.0, 2.0, 1.0, 4.0
        args.poll, args.naive_sample, args.naive_cycles, args.profile_sample = 5, 6, 1, 6
        args.profile_ticks = 2
        args.post_latency_ms, args.latency_ms = 2.0, 2.0
    if args.accounts < 2 or not 0 <= args.singles <= SINGLES_MAX:
        parser.error(f"need at least 2 accounts and 0-{SINGLES_MAX} singles")
    if args.phase - args.settle - args.tail < 1:
        parser.error("--phase must exceed --settle + --tail")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    say(f"config: accounts={args.accounts} phases=P1,P2 x {args.phase:g}s (window from "
        f"+{args.settle:g}s) poll={args.poll}s tick={args.tick:g}s workers={args.workers} "
        f"horizon={args.horizon}d singles={args.singles} change_rate={args.change_rate:g}/min "
        f"latency={args.latency_ms:g}ms post_latency={args.post_latency_ms:g}ms "
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} dir={work_dir}")
    old_tmp = os.environ.get("TMPDIR")
    shm = Path("/dev/shm")  # noqa: S108 - tmpfs for Radicale's storage, in a private mkdtemp
    if shm.is_dir() and os.access(shm, os.W_OK):
        os.environ["TMPDIR"] = str(shm)  # the server child inherits it
    try:
        with ServerProcess() as server:
            if old_tmp is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = old_tmp
            return run(args, server, work_dir)
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)


def run(args: argparse.Namespace, server: ServerProcess, work_dir: Path) -> int:
    from bot.clock import utc_now
    from bot.core.model import CalendarInfo, Credentials, NotificationSettings
    from storage.crypto import Vault
    from storage.db import open_database
    from storage.repository import Repository

    rng = random.Random(args.seed)  # noqa: S311 - benchmark data, not secrets
    url = bench_database("postgresql", work_dir)
    db = open_database(url)
    pg_pid = postgres_pid(url)
    repo = Repository(Vault(SECRET), clock=utc_now)
    spread = max(1, int(args.phase - args.settle - args.tail))
    accounts = make_accounts(args.accounts, rng, spread)

    # -- 1. seed ---------------------------------------------------------------------------
    clock0 = time.perf_counter()
    seeded_at = math.ceil(time.time())
    # quick: the shortest lead (one minute) and an allowance for seeding and the warm-up
    meetings_at = seeded_at + (MEETINGS_AFTER if not args.quick else 60 + args.settle + 16)
    between = args.phase + args.gap  # phase 2 starts this long after phase 1
    hrefs = server.seed_accounts({a.login: a.password for a in accounts},
                                 [(a.login, "events-1", CALENDAR_NAME) for a in accounts])
    background: dict[str, float] = {}
    for account, href in zip(accounts, hrefs, strict=True):
        account.href = href
        meeting = meetings_at + account.group * between + account.offset
        background[account.user] = meeting + 12 * 3600
        server.write_objects(account.login, href, calendar_objects(
            account, meeting_at=meeting, now=seeded_at, singles=args.singles,
            horizon=args.horizon))
    now = utc_now()
    for account in accounts:
        local = now.astimezone(ZoneInfo(account.zone))
        repo.save_account(
            user_id=account.user, creds=Credentials(account.login, account.password),
            timezone=account.zone, language="en",
            calendars=[CalendarInfo(account.href, CALENDAR_NAME)],
            notifications=NotificationSettings(daily_at=f"{(local.hour + 12) % 24:02d}:00",
                                               daily_weekdays=False, leads=()),
            now=now)
    objects = sum(len(list((server.storage / "collection-root" / a.login / "events-1")
                           .glob("*.ics"))) for a in accounts[:50]) / min(50, len(accounts))
    args.objects = objects
    say(f"seeded: {len(accounts)} accounts, {objects:.1f} objects per calendar, "
        f"in {time.perf_counter() - clock0:.1f}s (files in Radicale's storage; accounts stored "
        "as connect stores them)")

    cfg = {"db": url, "caldav": server.url, "poll": args.poll, "horizon": args.horizon,
           "workers": args.workers, "tick": args.tick, "post_latency": args.post_latency_ms / 1000,
           "max_clients": args.max_clients}
    server.latency(args.latency_ms / 1000)

    # -- 2. warm-up: every account's first, silent sync ------------------------------------
    clock0 = time.perf_counter()
    srv0, db0 = server.cpu(), _db_cpu(pg_pid)
    warm = spawn(["warmup-1", "warmup-2"], cfg, work_dir)
    for child in warm:
        child.conn.send(("go", time.time()))
    deadline = time.time() + max(120.0, 1.0 * len(accounts))
    note = time.time() + 15
    while (done := synced_count()) < len(accounts) and time.time() < deadline:
        if time.time() >= note:
            progress(f"warm-up: {done}/{len(accounts)} accounts synced")
            note += 15
        time.sleep(0.5)
    warm_cpu = sum(child_cpu(warm).values())
    stop(warm)
    warm_wall = time.perf_counter() - clock0
    say(f"warm-up: {synced_count()}/{len(accounts)} accounts synced by 2 engine processes in "
        f"{warm_wall:.1f}s (CPU: engine processes {warm_cpu:.1f}s, Radicale "
        f"{server.cpu() - srv0:.1f}s, PostgreSQL {_db_cpu(pg_pid) - db0:.1f}s; load "
        f"{os.getloadavg()[0]:.2f}); posts {sum(len(c.result.get('posts', [])) for c in warm)}"
        f" (expected 0), status set {sum(c.result.get('status', {}).get('set', 0) for c in warm)}")

    # -- the lead that brings the measured reminders into the phases -------------------------
    ready = time.time() + (8.0 if not args.quick else 4.0)  # processes spawned and started
    lead = math.floor((meetings_at - args.settle - ready) / 60)
    if lead < 1:
        say("NOTE: the warm-up outlasted its allowance: phase 1 starts late, its first "
            "reminders are due before it")
        lead = 1
    first_start = max(meetings_at - 60 * lead - args.settle, ready)  # phase 1 start
    set_leads(lead)

    def due_of(account: Acct) -> float:
        return meetings_at + account.group * between + account.offset - 60 * lead

    say(f"reminders: lead {lead} min for every account; {sum(a.group == 0 for a in accounts)} "
        f"due in phase 1, {sum(a.group == 1 for a in accounts)} in phase 2, spread over "
        f"{spread}s from +{args.settle:g}s; phase 1 starts in {first_start - time.time():.0f}s")

    # -- 3. the phases ----------------------------------------------------------------------
    changer = Changer(server, accounts, args.change_rate, background, args.horizon,
                      args.singles, random.Random(args.seed + 1))  # noqa: S311
    changer.start()
    ready_next: list[Child] = []
    phases = [run_phase("P1", 1, first_start, args, cfg, work_dir, server, pg_pid, changer,
                        then=lambda: ready_next.extend(spawn(["P2-1", "P2-2"], cfg, work_dir)))]
    phases.append(run_phase("P2", 2, first_start + between, args, cfg, work_dir, server,
                            pg_pid, changer, children=ready_next))
    if args.keep:
        dump(work_dir / "phases.json", phases, accounts, due_of)
    changer.stopping.set()
    changer.join(timeout=10)

    # -- 4. naive, 5. profile --------------------------------------------------------------
    say(f"naive: {min(args.naive_sample, len(accounts))} accounts x {args.naive_cycles} "
        "cycle(s) of search(expand=True) …")
    base = naive(args, server, accounts)
    figures = profile_idle(args, server, accounts, pg_pid)
    db.close()
    report(args, accounts, phases, base, figures, due_of)
    return 0


def _split(cost: Cost) -> str:
    ticks = sum(t[2] for t in cost.ticks)
    whole = max(cost.cpu, 1e-9)
    return (f"poll jobs {100 * cost.poll_cpu / whole:.0f}%, ticks {100 * ticks / whole:.0f}%, "
            f"the rest (senders, status, lease upkeep, GC) "
            f"{100 * (cost.cpu - cost.poll_cpu - ticks) / whole:.0f}%")


def report_phase(args: argparse.Namespace, phase: Phase, later: Sequence[Phase],
                 accounts: list[Acct], group: int, due_of: Callable[[Acct], float],
                 listed_share: float, everything: Cost) -> dict[str, float]:
    w = phase.window
    per_minute = 60 / args.poll
    found = costs(phase)
    pooled = merge(found)
    polls = pooled.count("idle", "listed", "changed", "failed")
    changed_share = pooled.count("changed") / max(polls, 1)
    say(f"\n== phase {phase.label}: {phase.processes} engine process(es), {len(accounts)} "
        f"accounts, window {w.seconds:.0f}s (+{args.settle:g}s … +{phase.duration:g}s) ==")
    capacity = 0.0
    for cost in found:
        child = next(c for c in phase.children if c.name == cost.name)
        if cost.accounts:
            capacity += 60 / cost.steady(listed_share, changed_share, per_minute, pooled,
                                         everything)
        tick_cpu = [t[2] * 1e3 for t in cost.ticks] or [0.0]
        tick_wall = [t[1] * 1e3 for t in cost.ticks] or [0.0]
        idle = sorted(v * 1e3 for v in cost.polls.get("idle", [])) or [0.0]
        say(f"{cost.name} (pid {child.pid}): {cost.accounts} accounts polled, "
            f"{child.result.get('held', 0)} leases at the end; polls idle={cost.count('idle')} "
            f"listed={cost.count('listed')} changed={cost.count('changed')} "
            f"failed={cost.count('failed')}; CPU {cost.cpu:.1f}s = "
            f"{100 * cost.cpu / w.seconds:.0f}% of a core; RSS {phase.rss.get(cost.name, 0):.0f} MB")
        say(f"  poll job CPU ms: idle mean={statistics.mean(idle):.2f} "
            f"p50={percentile(idle, 0.5):.2f} p99={percentile(idle, 0.99):.2f}; listed "
            f"mean={cost.mean('listed') * 1e3:.2f}; changed mean={cost.mean('changed') * 1e3:.2f}")
        say(f"  ticks: {len(cost.ticks)}, CPU ms mean={statistics.mean(tick_cpu):.1f} "
            f"p99={percentile(tick_cpu, 0.99):.1f}, wall ms mean={statistics.mean(tick_wall):.1f}"
            f" p99={percentile(tick_wall, 0.99):.1f}; CPU: {_split(cost)}")
        if child.result.get("warnings"):
            say("  warnings: " + " ".join(
                f"{k}={v}" for k, v in Counter(child.result["warnings"]).most_common(6)))
    account_minutes = max(pooled.accounts * pooled.minutes, 1e-9)
    steady = pooled.steady(listed_share, changed_share, per_minute, everything)
    raw = pooled.raw()
    kept_up = polls / w.seconds * 60 / max(len(accounts) * per_minute, 1)
    if kept_up < 0.9:
        say(f"!! OVERLOADED: the processes made {100 * kept_up:.0f}% of the polls due (the "
            "machine, or one process's core, is full): per-poll costs below stand, the raw "
            "window figure and the lateness are those of an overloaded rig")
    say(f"all processes: {polls} polls = {polls / w.seconds * 60:.0f} per minute "
        f"({pooled.accounts} accounts; demand {len(accounts) * per_minute:.0f} per minute); "
        f"accounts polled by two processes within 30 s: {_polled_by_several(phase)}; changed "
        f"polls {100 * changed_share:.1f}% ({phase.changes} changes PUT in the phase, "
        f"{change_notices(phase)} change notices posted)")
    say(f"PostgreSQL server: {w.db_cpu:.1f}s CPU = {w.db_cpu / max(polls, 1) * 1e3:.2f} ms per "
        f"poll; Radicale: {w.server_cpu:.1f}s = {w.server_cpu / max(polls, 1) * 1e3:.2f} ms per "
        f"poll; {w.counters['requests'] / max(polls, 1):.2f} requests and "
        f"{w.counters['bytes_sent'] / max(polls, 1):,.0f} bytes (wire) per poll")
    late = lateness([phase, *later], accounts, group, due_of)
    say(f"reminders due in the phase: {late.arrived}/{late.due} arrived, duplicates="
        f"{late.duplicates}; lateness s p50={fmt(late.q(0.5))} p90={fmt(late.q(0.9))} "
        f"p99={fmt(late.q(0.99))} max={fmt(max(late.values))}")
    if late.carried:
        say(f"  {late.carried} of them were still unsent when the phase ended: the next phase's "
            "processes sent them")
    if late.waits:
        which = "of the others" if late.carried else "of which"
        say(f"  {which}: waiting for the next tick (YC_TICK_SECONDS={args.tick:g}): "
            f"p50={fmt(late.q(0.5, late.waits))} p99={fmt(late.q(0.99, late.waits))}; from that "
            f"tick's start to the post: p50={fmt(late.q(0.5, late.after))} "
            f"p99={fmt(late.q(0.99, late.after))} max={fmt(max(late.after))}")
    say(f"  load average at the end of the phase: {phase.load:.2f} (other programs on the "
        "machine count too)")
    db = w.db_cpu / account_minutes
    say(f"CPU per account-minute (engine processes): raw window {raw * 1e3:.2f} ms "
        f"({100 * pooled.count('listed') / max(polls, 1):.0f}% of polls listed) → "
        f"{60 / raw:,.0f} accounts per core; steady state ({100 * listed_share:.0f}% listed) "
        f"{steady * 1e3:.2f} ms → {60 / steady:,.0f} accounts per core; with the database "
        f"{60 / (steady + db):,.0f}")
    return {"steady": steady, "raw": raw, "capacity": capacity, "db": db, "kept_up": kept_up,
            "server": w.server_cpu / account_minutes, "idle": pooled.mean("idle"),
            "rest": pooled.rest_per_account_minute,
            "bytes": w.counters["bytes_sent"] / max(polls, 1)}


def report(args: argparse.Namespace, accounts: list[Acct], phases: list[Phase],
           base: dict[str, float], figures: dict[str, float],
           due_of: Callable[[Acct], float]) -> None:
    listed_share = listing_share(args.poll, RELIST_SECONDS, args.tick,
                                 random.Random(args.seed))  # noqa: S311 - a simulation
    n = len(accounts)
    everything = merge([cost for phase in phases for cost in costs(phase)])
    summary = {phase.label: report_phase(args, phase, phases[index + 1:], accounts, index,
                                         due_of, listed_share, everything)
               for index, phase in enumerate(phases)}
    p1, p2 = summary["P1"], summary[phases[-1].label]
    everyone = lateness(phases, accounts, None, due_of)
    per_core = 60 / p2["steady"]
    naive_per_core = 60 / (base["cpu_ms"] / 1e3) if base["cpu_ms"] else math.inf
    naive_minute = base["cpu_ms"] * 60 / args.poll  # ms per account-minute
    speedup2 = p2["capacity"] / p1["capacity"] if p1["capacity"] else math.inf
    bytes_ratio = base["bytes"] / max(p2["bytes"], 1)
    say(f"\n== accounts per core per minute at YC_POLL_SECONDS={args.poll} ==")
    say(f"{'':46}{'P=1':>10}{'P=2':>10}{'naive':>10}")
    say(f"{'CPU per account-minute, ms (steady state)':46}{p1['steady'] * 1e3:>10.2f}"
        f"{p2['steady'] * 1e3:>10.2f}{naive_minute:>10.2f}")
    say(f"{'  idle poll job (mean), ms':46}{p1['idle'] * 1e3:>10.2f}{p2['idle'] * 1e3:>10.2f}"
        f"{base['cpu_ms']:>10.2f}")
    say(f"{'  ticks, senders, leases … per account-min, ms':46}{p1['rest'] * 1e3:>10.2f}"
        f"{p2['rest'] * 1e3:>10.2f}")
    say(f"{'  raw window (all of it / account-minutes), ms':46}{p1['raw'] * 1e3:>10.2f}"
        f"{p2['raw'] * 1e3:>10.2f}")
    say(f"{'accounts per core (engine processes)':46}{60 / p1['steady']:>10,.0f}"
        f"{per_core:>10,.0f}{naive_per_core:>10,.0f}")
    say(f"{'  including the PostgreSQL server':46}{60 / (p1['steady'] + p1['db']):>10,.0f}"
        f"{60 / (p2['steady'] + p2['db']):>10,.0f}")
    say(f"{'capacity, accounts/min (a core per process)':46}{p1['capacity']:>10,.0f}"
        f"{p2['capacity']:>10,.0f}")
    say(f"{'bytes per poll (wire)':46}{p1['bytes']:>10,.0f}{p2['bytes']:>10,.0f}"
        f"{base['bytes']:>10,.0f}")
    say(f"speedup2 (capacity of two processes ÷ one) = {speedup2:.2f}; ours ÷ naive per core = "
        f"{per_core / naive_per_core:.1f}x (CPU), naive ÷ ours = {bytes_ratio:.1f}x (bytes); "
        f"naive: {base['requests']:.2f} requests and {base['server_ms']:.1f} ms of Radicale per "
        f"poll, {int(base['failures'])} failed, no database, no reminders")

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    say("\n== targets ==")
    say(f"≥{TARGET_PER_CORE:,} idle accounts per core per minute     {per_core:8,.0f}   "
        f"{verdict(per_core >= TARGET_PER_CORE)}")
    say(f"≤{TARGET_IDLE_MS:g} ms CPU per idle account poll           {p2['steady'] * 1e3:8.2f} ms "
        f"per account-minute in the engine (poll job {p2['idle'] * 1e3:.2f} ms + the rest "
        f"{p2['rest'] * 1e3:.2f}; one by one in this process "
        f"{figures.get('idle_miss', 0.0):.2f} ms)   {verdict(p2['steady'] * 1e3 <= TARGET_IDLE_MS)}")
    say(f"≥{TARGET_CPU:g}x less CPU than the naive re-read         "
        f"{per_core / naive_per_core:8.1f}x   {verdict(per_core / naive_per_core >= TARGET_CPU)}")
    say(f"≥{TARGET_BYTES:g}x fewer bytes than the naive re-read       {bytes_ratio:8.1f}x   "
        f"{verdict(bytes_ratio >= TARGET_BYTES)}   (small calendars here, {args.objects:.1f} "
        "objects: the ratio grows with the calendar, bench/poll.py measures it at 50)")
    size = "" if n >= TARGET_ACCOUNTS else f" (measured at {n:,} accounts, not {TARGET_ACCOUNTS:,})"
    say(f"p99 reminder lateness < {TARGET_P99:g} s at {TARGET_ACCOUNTS:,} accounts    "
        f"{fmt(everyone.q(0.99))} s over {everyone.due} reminders{size}   "
        f"{verdict(everyone.q(0.99) < TARGET_P99)}")

    say("\n== what limits the scale ==")
    say(f"one engine process: its threads share one interpreter lock, so a process gets at most "
        f"one core: ~{60 / p1['steady']:,.0f} accounts at {args.poll}s polls "
        f"({p1['steady'] * 1e3:.2f} ms per account-minute); beyond that, more processes")
    need = TARGET_ACCOUNTS * (p2["steady"] + p2["db"] + p2["server"]) / 60
    say(f"{TARGET_ACCOUNTS:,} accounts at {args.poll}s polls ask for: engine processes "
        f"{TARGET_ACCOUNTS * p2['steady'] / 60:.2f} cores, PostgreSQL "
        f"{TARGET_ACCOUNTS * p2['db'] / 60:.2f}, Radicale {TARGET_ACCOUNTS * p2['server'] / 60:.2f}"
        f" → {need:.2f} of this machine's {os.cpu_count()} cores (Radicale stands in for Yandex, "
        "whose CPU is not ours)")
    ranked = sorted(((k[4:], v) for k, v in figures.items() if k.startswith("cat:")),
                    key=lambda kv: -kv[1])
    say("an idle poll's CPU by package: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in ranked[:8]))
    say(f"client LRU: {figures.get('idle_miss', 0.0):.2f} ms per idle poll with the adapter's 64 "
        f"clients ({min(args.profile_sample, n)} accounts polled in turn) vs "
        f"{figures.get('idle_hit', 0.0):.2f} ms with every account's client kept")
    say(f"scale-bench: accounts={n} processes={phases[-1].processes} "
        f"accounts_per_core={per_core:.0f} naive_per_core={naive_per_core:.0f} "
        f"speedup2={speedup2:.2f} p99={fmt(everyone.q(0.99))}")


def _polled_by_several(phase: Phase) -> int:
    """Accounts polled by two processes within one poll interval of each other in the window
    (a lease held twice would show here; a handover shows once)."""
    w = phase.window
    last: dict[str, tuple[str, float]] = {}
    twice = set()
    events = sorted((p[0], child.name, p[5]) for child in phase.children
                    for p in child.result.get("polls", []) if w.start <= p[0] <= w.end)
    for at, name, user in events:
        seen = last.get(user)
        if seen is not None and seen[0] != name and at - seen[1] < 30:
            twice.add(user)
        last[user] = (name, at)
    return len(twice)


if __name__ == "__main__":
    sys.exit(main())
