"""Shared helpers for the benchmarks (run on demand, never in CI).

- ``ServerProcess``: ``tests.radicale_server.RadicaleServer`` (Radicale + ``YandexQuirks``) in a
  **child process**, so the CPU time and memory of the benchmark process are the client's only.
  The child prints one JSON line with its URL, then obeys JSON-line commands on stdin
  (``latency``, ``reset_counters``, ``counters``, ``cpu``, ``add_users``, ``make_calendar``,
  ``put``); the parent talks CalDAV to it over HTTP like any client.
- Seeding: users and calendars go through HTTP (htpasswd + PROPFIND + MKCALENDAR, so Radicale
  creates its own metadata); calendar objects are written **straight into Radicale's
  filesystem storage** (``collection-root/<login>/<slug>/<name>.ics``), which Radicale lists
  and caches on first read. A PUT through HTTP costs 5-25 ms and grows with the collection
  (Radicale checks every item for a UID clash, under one global write lock), so 200 x 50
  objects would take minutes; files take well under a second.
- Two changes to the server as ``tests.radicale_server`` builds it, for the benchmarks only:
  HTTP/1.1 keep-alive (wsgiref closes every connection after one answer; Yandex does not, so
  without it every request would pay a new TCP connection on both sides), and Radicale's
  htpasswd cache (it would re-read the whole file of users on every request).
- Besides ``YandexQuirks``' counters (``bytes_sent`` = response bodies as sent, gzip when the
  client asks for it, as niquests does), the child counts ``bytes_plain``: the same bodies
  uncompressed, so a benchmark can show both.
- ``Meter``: wall time and process CPU time (all threads) of a block; ``rss_peak_mb`` /
  ``rss_now_mb`` for memory; ``process_tree_cpu``: CPU seconds of another process and its
  children (the PostgreSQL server with its backends, an engine process).
- The engine as the bot builds it (``build_engine``: ``Engine`` on ``EngineStore``,
  ``OutboxStore``, ``CoordinationStore``), a stand-in for Mattermost that implements
  ``bot.ports.Messenger`` (``BenchMessenger``: a fixed latency per call, every DM recorded
  with the wall time it was accepted), and the database of a run (``bench_database``: a SQLite
  file, or a fresh database on the embedded PostgreSQL of ``tests.pg``).
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # a script in bench/ has bench/ as sys.path[0], not the project
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from bot.engine import Engine
    from bot.ports import CalendarSource, Profile, SentPost
    from storage.repository import Repository


# -- measurement ----------------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU time of this process, every thread, user + system."""
    return time.process_time()


def rss_peak_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mb() -> float:
    """Current resident memory of this process."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return rss_peak_mb()
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Meter:
    """``with Meter() as m: ...`` → ``m.wall`` and ``m.cpu`` in seconds."""

    wall: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> Meter:
        self._wall0 = time.perf_counter()
        self._cpu0 = cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall0
        self.cpu = cpu_seconds() - self._cpu0


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid``, its live children, and the children it
    has already reaped (PostgreSQL's backends come and go with their connections)."""
    import psutil

    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in root.children(recursive=True):
            try:
                ct = child.cpu_times()
                total += ct.user + ct.system
            except psutil.Error:
                pass
        return float(total)
    except psutil.Error:
        return 0.0


# -- the database of a run -------------------------------------------------------------------


def bench_database(kind: str, work_dir: Path) -> str:
    """The URL of a fresh database: ``sqlite`` (a file in ``work_dir``) or ``postgresql`` (a
    new database on the embedded server of ``tests.pg``, started on first use)."""
    if kind == "sqlite":
        return f"sqlite:///{work_dir / 'bot.db'}"
    if kind == "postgresql":
        from tests.pg import fresh_database

        return fresh_database()
    raise ValueError(f"unknown database kind {kind!r}")


def postgres_pid(url: str) -> int | None:
    """The postmaster of a ``tests.pg`` URL (its socket directory is the data directory, which
    holds ``postmaster.pid``); None for another database."""
    host = parse_qs(urlsplit(url).query).get("host", [""])[0]
    pidfile = Path(host) / "postmaster.pid" if host else None
    if pidfile is None or not pidfile.is_file():
        return None
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None


# -- the engine as the bot builds it ------------------------------------------------------------

_processes = itertools.count(1)


def build_engine(repo: Repository, source: CalendarSource, messenger: Any, *,
                 clock: Callable[[], datetime], poll_seconds: int, horizon_days: int,
                 workers: int, process_id: str | None = None) -> Engine:
    """``Engine`` wired like ``bot.app.create_bot`` does (stores, coordination, one process
    id per engine)."""
    from bot.engine import Engine
    from storage.coordination import CoordinationStore
    from storage.engine_store import EngineStore
    from storage.outbox import OutboxStore

    outbox = OutboxStore()
    return Engine(
        repo=repo, store=EngineStore(outbox), outbox=outbox, coordination=CoordinationStore(),
        source=source, messenger=messenger, clock=clock,
        process_id=process_id or f"bench-{os.getpid()}-{next(_processes)}",
        poll_seconds=poll_seconds, horizon_days=horizon_days, workers=workers)


@dataclass
class BenchMessenger:
    """Mattermost for the benchmarks (``bot.ports.Messenger``): every call takes ``latency``
    seconds and succeeds; each post is recorded as (epoch seconds when accepted, user, text).
    DM channels are ``dm-<user>``."""

    latency: float = 0.0
    posts: list[tuple[float, str, str]] = field(default_factory=list)
    status_calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _custom: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def bot_user_id(self) -> str:
        return "bot"

    def _wait(self) -> None:
        if self.latency:
            time.sleep(self.latency)

    def direct_channel(self, user_id: str) -> str:
        return f"dm-{user_id}"  # cached by the real adapter: no round trip

    def post(self, channel_id: str, message: str, *, root_id: str = "",
             props: Mapping[str, Any] | None = None, pending_post_id: str = "") -> str:
        self._wait()
        with self.lock:
            self.posts.append((time.time(), channel_id.removeprefix("dm-"), message))
            return f"p{len(self.posts)}"

    def update_post(self, post_id: str, message: str, props: Mapping[str, Any] | None) -> None:
        self._wait()

    def ephemeral(self, user_id: str, channel_id: str, message: str, root_id: str = "") -> None:
        self._wait()

    def delete_post(self, post_id: str) -> bool:
        self._wait()
        return False

    def own_posts_since(self, channel_id: str, since: datetime) -> list[SentPost]:
        self._wait()
        return []

    def profile(self, user_id: str) -> Profile:
        from bot.ports import Profile

        self._wait()
        with self.lock:
            custom = self._custom.get(user_id)
        return Profile(timezone=None, locale="en", custom_status=custom, username=user_id)

    def users_by_username(self, usernames: Sequence[str]) -> dict[str, Profile]:
        self._wait()
        return {}

    def presence(self, user_id: str) -> str:
        self._wait()
        return "online"

    def set_custom_status(self, user_id: str, emoji: str, text: str,
                          expires_at: datetime) -> None:
        self._wait()
        with self.lock:
            self.status_calls["set"] += 1
            self._custom[user_id] = {
                "emoji": emoji, "text": text,
                "expires_at": expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}

    def clear_custom_status(self, user_id: str) -> None:
        self._wait()
        with self.lock:
            self.status_calls["clear"] += 1
            self._custom.pop(user_id, None)

    def open_dialog(self, trigger_id: str, url: str, dialog: Mapping[str, Any]) -> None:
        self._wait()

    def channels_active_since(self, since: datetime) -> list[tuple[str, str]]:
        return []

    def posts_since(self, channel_id: str, since: datetime) -> list[dict[str, Any]]:
        return []


# -- the server in a child process ----------------------------------------------------------


class ServerProcess:
    """Radicale + YandexQuirks in a child Python process; a context manager.

    ``counters()`` returns the middleware's counters as a dict (``requests``, ``bytes_sent`` =
    response body bytes as sent, i.e. gzip-compressed when the client asked for it, ...).
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.url = ""
        self.storage = Path()

    def start(self) -> ServerProcess:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.common", "--serve"],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        hello = self._read()
        self.url, self.storage = hello["url"], Path(hello["storage"])
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            self.call("stop")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _pipes(self) -> tuple[Any, Any]:
        """The child's stdin and stdout."""
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:
            raise RuntimeError("bench server process not started")
        return self._proc.stdin, self._proc.stdout

    def _read(self) -> Any:
        line = self._pipes()[1].readline()
        if not line:
            raise RuntimeError("bench server process ended")
        reply = json.loads(line)
        if isinstance(reply, dict) and "error" in reply:
            raise RuntimeError(f"bench server: {reply['error']}")
        return reply

    def call(self, op: str, **args: Any) -> Any:
        """One command to the child; returns its JSON answer."""
        with self._lock:
            stdin = self._pipes()[0]
            stdin.write(json.dumps({"op": op, **args}) + "\n")
            stdin.flush()
            return self._read()["result"]

    # -- switches and counters --------------------------------------------------------------

    def latency(self, seconds: float) -> None:
        self.call("latency", seconds=seconds)

    def reset_counters(self) -> None:
        self.call("reset_counters")

    def counters(self) -> dict[str, Any]:
        return dict(self.call("counters"))

    def cpu(self) -> float:
        """CPU seconds the server process has used so far."""
        return float(self.call("cpu"))

    # -- seeding ----------------------------------------------------------------------------

    def add_users(self, users: Mapping[str, str]) -> None:
        """Create users (login → password): the htpasswd file written once, then one
        PROPFIND per user (which creates the principal), in parallel in the child."""
        self.call("add_users", users=dict(users))

    def make_calendars(self, specs: Iterable[tuple[str, str, str]]) -> list[str]:
        """MKCALENDAR for (login, slug, display name) triples, in parallel; returns hrefs."""
        return list(self.call("make_calendars", specs=[list(s) for s in specs]))

    def seed_accounts(self, users: Mapping[str, str],
                      calendars: Iterable[tuple[str, str, str]]) -> list[str]:
        """``add_users`` + ``make_calendars`` for thousands of accounts in seconds: the
        htpasswd file is written once and the principal and calendar folders (with the
        ``.Radicale.props`` MKCALENDAR would write) straight into the storage, instead of
        two requests per account. Returns the calendars' hrefs, in order."""
        return list(self.call("seed_accounts", users=dict(users),
                              specs=[list(s) for s in calendars]))

    def write_objects(self, login: str, calendar_href: str, objects: Mapping[str, str]) -> None:
        """Drop ``filename → ICS`` into a calendar's folder in Radicale's filesystem storage.

        Only for objects no client has read yet (Radicale has not cached them); later edits
        go through ``put`` so they look like any server-side change.
        """
        folder = self.storage / "collection-root" / login / unquote(calendar_href.rstrip("/")
                                                                    .rsplit("/", 1)[-1])
        if not folder.is_dir():
            raise FileNotFoundError(folder)
        for name, ics in objects.items():
            (folder / name).write_text(ics, encoding="utf-8", newline="")

    def put(self, login: str, calendar_href: str, filename: str, ics: str) -> str:
        """A real HTTP PUT (past the middleware's counters and faults); returns the href."""
        return str(self.call("put", login=login, cal=calendar_href, filename=filename, ics=ics))


def principal(login: str) -> str:
    return "/" + quote(login, safe="") + "/"


# -- the child ------------------------------------------------------------------------------


class _PlainBytes:
    """WSGI wrapper around ``YandexQuirks``: counts response bodies uncompressed (seeding
    requests excluded, like the middleware does)."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.count = 0

    def reset(self) -> None:
        with self._lock:
            self.count = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers: list[tuple[str, str]] = []

        def capture(status: str, response_headers: list[tuple[str, str]],
                    exc_info: Any = None) -> Any:
            headers.extend(response_headers)
            return start_response(status, response_headers, exc_info)

        result = self._app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if environ.get("HTTP_X_TEST_SEED") != "1":
            gzipped = any(k.lower() == "content-encoding" and "gzip" in v.lower()
                          for k, v in headers)
            size = len(gzip.decompress(body)) if gzipped and body else len(body)
            with self._lock:
                self.count += size
        return [body]


def _keep_alive_handler() -> type:
    """wsgiref's request handler answers one request per connection (``Connection: close``);
    Yandex keeps connections open, and so does every client here (niquests). This one serves
    HTTP/1.1 requests on a connection until the client closes it, asks to, or is idle for two
    minutes; an answer without a Content-Length still ends the connection."""
    from wsgiref.simple_server import ServerHandler, WSGIRequestHandler

    class KeepAliveServerHandler(ServerHandler):
        http_version = "1.1"
        framed = False  # the answer carried a Content-Length (read before close() clears it)

        def cleanup_headers(self) -> None:
            super().cleanup_headers()
            self.framed = "Content-Length" in self.headers

    class KeepAliveHandler(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 120
        # wsgiref writes the status line and headers, then the body: with Nagle on, the body
        # waits for the client's delayed ACK (40 ms) on a kept-alive connection.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def handle(self) -> None:
            self.close_connection = True
            self._one()
            while not self.close_connection:
                self._one()

        def _one(self) -> None:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
                self.close_connection = True
                return
            if not self.parse_request():  # answered with an error; sets close_connection
                return
            handler = KeepAliveServerHandler(self.rfile, self.wfile, self.get_stderr(),
                                             self.get_environ(), multithread=True)
            handler.request_handler = self  # type: ignore[attr-defined]  # as wsgiref does
            handler.run(self.server.get_app())  # type: ignore[attr-defined]
            if not handler.framed:
                self.close_connection = True
            self.wfile.flush()

    return KeepAliveHandler


def _serve() -> None:
    import logging

    from tests.radicale_server import RadicaleServer

    logging.basicConfig(level=logging.WARNING)
    out = sys.stdout
    server = RadicaleServer().start()
    quirks = server.quirks
    if quirks is None:
        raise RuntimeError("RadicaleServer started without its middleware")
    # RadicaleServer keeps its storage folder private; the benchmark seeds files into it.
    storage = server._dir / "collections"
    plain = _PlainBytes(server._server.get_app())  # type: ignore[union-attr]
    server._server.set_app(plain)  # type: ignore[union-attr]
    # Radicale re-reads the whole htpasswd file on every request unless told to cache it
    # (checked by size and mtime, so users added later still count): with thousands of users
    # that scan would be most of the server's CPU, and Yandex has no such cost.
    quirks._app._auth._htpasswd_cache = True  # type: ignore[attr-defined]
    server._server.RequestHandlerClass = _keep_alive_handler()  # type: ignore[union-attr]
    out.write(json.dumps({"url": server.url, "storage": str(storage)}) + "\n")
    out.flush()
    pool = ThreadPoolExecutor(max_workers=8)

    def write_users(users: dict[str, str]) -> None:
        # RadicaleServer.add_user rewrites the whole htpasswd file per user (quadratic, and
        # racing Radicale's cache of it when users are added in parallel): written once here
        with server._users_lock:
            server._users.update(users)
            lines = [f"{user}:{secret}\n" for user, secret in server._users.items()]
            htpasswd = server._htpasswd
            tmp = htpasswd.with_suffix(".tmp")
            tmp.write_text("".join(lines), encoding="utf-8")
            tmp.replace(htpasswd)

    def add_users(users: dict[str, str]) -> None:
        write_users(users)

        def principal_of(login: str) -> None:  # the first request creates the principal
            answer = server.request("PROPFIND", principal(login), login=login,
                                    headers={"Depth": "0"}, seed=True)
            if answer.status != 207:
                raise RuntimeError(f"add_users: PROPFIND status={answer.status}")

        list(pool.map(principal_of, users))

    def make_calendars(specs: list[list[str]]) -> list[str]:
        return list(pool.map(lambda s: server.make_calendar(s[0], s[1], s[2]), specs))

    def seed_accounts(users: dict[str, str], specs: list[list[str]]) -> list[str]:
        # For thousands of accounts: no request at all, the folders are made here as Radicale
        # itself lays them out (a principal folder without props, a calendar folder with the
        # props of MKCALENDAR).
        write_users(users)
        hrefs = []
        for login, slug, name in specs:
            folder = storage / "collection-root" / login / slug
            folder.mkdir(parents=True, exist_ok=True)
            props = {"C:supported-calendar-component-set": "VEVENT", "D:displayname": name,
                     "tag": "VCALENDAR"}
            (folder / ".Radicale.props").write_text(json.dumps(props), encoding="utf-8")
            hrefs.append(principal(login) + quote(slug, safe="") + "/")
        return hrefs

    try:
        for line in sys.stdin:
            command = json.loads(line)
            op = command.pop("op")
            try:
                if op == "stop":
                    out.write(json.dumps({"result": None}) + "\n")
                    out.flush()
                    break
                result: Any = None
                if op == "latency":
                    quirks.latency(float(command["seconds"]))
                elif op == "reset_counters":
                    quirks.reset_counters()
                    plain.reset()
                elif op == "counters":
                    c = quirks.counters
                    result = {"requests": c.requests, "bytes_sent": c.bytes_sent,
                              "anonymous": c.anonymous, "by_method": dict(c.by_method),
                              "by_report": dict(c.by_report), "bytes_plain": plain.count,
                              "max_in_flight": c.max_in_flight}
                elif op == "cpu":
                    result = time.process_time()
                elif op == "add_users":
                    add_users(command["users"])
                elif op == "make_calendars":
                    result = make_calendars(command["specs"])
                elif op == "seed_accounts":
                    result = seed_accounts(command["users"], command["specs"])
                elif op == "put":
                    result = server.put(command["login"], command["cal"], command["filename"],
                                        command["ics"])
                else:
                    raise ValueError(f"unknown op {op}")
                out.write(json.dumps({"result": result}) + "\n")
            except Exception as exc:  # report to the parent, keep serving
                out.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
            out.flush()
    finally:
        pool.shutdown(wait=False)
        server.stop()


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    _serve()
