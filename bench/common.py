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
  (Radicale checks every item for a UID clash, under one global write lock), so 200 × 50
  objects would take minutes; files take well under a second.
- Besides ``YandexQuirks``' counters (``bytes_sent`` = response bodies as sent, gzip when the
  client asks for it, as niquests does), the child counts ``bytes_plain``: the same bodies
  uncompressed, so a benchmark can show both.
- ``Meter``: wall time and process CPU time (all threads) of a block; ``rss_peak_mb`` /
  ``rss_now_mb`` for memory.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote

ROOT = Path(__file__).resolve().parent.parent


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
        try:
            self.call("stop")
        except (OSError, RuntimeError, ValueError):
            pass
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

    def _read(self) -> Any:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("bench server process ended")
        reply = json.loads(line)
        if isinstance(reply, dict) and "error" in reply:
            raise RuntimeError(f"bench server: {reply['error']}")
        return reply

    def call(self, op: str, **args: Any) -> Any:
        """One command to the child; returns its JSON answer."""
        with self._lock:
            assert self._proc is not None and self._proc.stdin is not None
            self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self._proc.stdin.flush()
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
        """Create users (login → password): htpasswd plus one PROPFIND per user (which
        creates the principal), in parallel in the child."""
        self.call("add_users", users=dict(users))

    def make_calendars(self, specs: Iterable[tuple[str, str, str]]) -> list[str]:
        """MKCALENDAR for (login, slug, display name) triples, in parallel; returns hrefs."""
        return list(self.call("make_calendars", specs=[list(s) for s in specs]))

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


def _serve() -> None:
    import logging

    from tests.radicale_server import RadicaleServer

    logging.basicConfig(level=logging.WARNING)
    out = sys.stdout
    server = RadicaleServer().start()
    assert server.quirks is not None
    quirks = server.quirks
    # RadicaleServer keeps its storage folder private; the benchmark seeds files into it.
    storage = server._dir / "collections"  # noqa: SLF001
    plain = _PlainBytes(server._server.get_app())  # type: ignore[union-attr]  # noqa: SLF001
    server._server.set_app(plain)  # type: ignore[union-attr]  # noqa: SLF001
    out.write(json.dumps({"url": server.url, "storage": str(storage)}) + "\n")
    out.flush()
    pool = ThreadPoolExecutor(max_workers=8)

    def add_users(users: dict[str, str]) -> None:
        # add_user rewrites htpasswd under its own lock, then PROPFINDs: parallel is safe
        list(pool.map(lambda item: server.add_user(*item), users.items()))

    def make_calendars(specs: list[list[str]]) -> list[str]:
        return list(pool.map(lambda s: server.make_calendar(s[0], s[1], s[2]), specs))

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
