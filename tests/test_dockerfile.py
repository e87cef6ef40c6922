"""The container recipe, read as text (Docker does not run here): installs from the runtime lock,
exposes the bot's HTTP port, checks /healthz with Python's urllib, runs as uid 10001 with /data."""

from __future__ import annotations

import http.server
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from bot.config import FIELDS

ROOT = Path(__file__).resolve().parent.parent


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continuation lines joined."""
    joined: list[str] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    result = []
    for text in joined:
        word, _, rest = text.strip().partition(" ")
        result.append((word.upper(), " ".join(rest.split())))
    return result


def _all(name: str) -> list[str]:
    return [args for word, args in _instructions() if word == name]


def _index(predicate: str) -> int:
    for index, (word, args) in enumerate(_instructions()):
        if word == "RUN" and predicate in args:
            return index
    raise AssertionError(f"no RUN with {predicate!r}")


def test_base_image_is_python_311() -> None:
    """The image runs the Python the lock was compiled for."""
    assert _all("FROM")
    assert _all("FROM")[0].startswith("python:3.11")


def test_installs_from_the_runtime_lock_then_the_project_without_deps() -> None:
    """Dependencies come from requirements.lock with hashes; the project adds no resolution."""
    assert any(args.split()[0] == "requirements.lock" for args in _all("COPY"))
    lock_step = _index("-r requirements.lock")
    assert "--require-hashes" in _instructions()[lock_step][1]
    project_step = _index("--no-deps .")
    assert lock_step < project_step
    runs = " ".join(_all("RUN"))
    assert "pip install" in runs
    assert "requirements-test.lock" not in runs
    for args in _all("RUN"):
        for match in re.finditer(r"pip install ([^&]*)", args):
            assert "-r requirements.lock" in match.group(1) or "--no-deps" in match.group(1), args


def test_the_postgresql_driver_is_in_the_runtime_lock() -> None:
    """psycopg2-binary (a runtime dependency) is pinned in the lock the image installs."""
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    assert re.search(r"^psycopg2-binary==\S+", lock, re.MULTILINE)


def test_exposes_the_actions_port() -> None:
    """EXPOSE names the default of YC_ACTIONS_PORT."""
    assert _all("EXPOSE") == [str(FIELDS["YC_ACTIONS_PORT"][1])]


def test_runs_unprivileged_with_a_data_volume() -> None:
    """uid 10001, USER set before CMD, /data a volume the user owns, the database on it."""
    runs = " ".join(_all("RUN"))
    assert "useradd" in runs
    assert "--uid 10001" in runs
    assert "chown botuser /data" in runs
    assert _all("USER") == ["botuser"]
    assert _all("VOLUME") == ['["/data"]']
    assert any("YC_DATABASE_URL=sqlite:////data/bot.db" in args for args in _all("ENV"))
    assert _all("CMD") == ['["python", "bot.py"]']


def test_copied_files_exist() -> None:
    """Every source a COPY names is in the repository."""
    for args in _all("COPY"):
        for source in args.split()[:-1]:
            assert (ROOT / source).exists(), source


def _healthcheck_command() -> str:
    (check,) = _all("HEALTHCHECK")
    assert re.search(r"--interval=\S+ .*--timeout=\S+", check)
    command = check.split(" CMD ", 1)[1]
    assert not command.startswith("["), "shell form, so ${YC_ACTIONS_PORT:-8579} is expanded"
    return command


def test_healthcheck_gets_healthz_with_urllib() -> None:
    """The check GETs 127.0.0.1:${YC_ACTIONS_PORT:-8579}/healthz with urllib; no curl or wget."""
    command = _healthcheck_command()
    assert "http://127.0.0.1:${YC_ACTIONS_PORT:-8579}/healthz" in command
    assert "urllib" in command
    assert "curl" not in command
    assert "wget" not in command
    assert command.startswith("python -c ")


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: ClassVar[list[str]] = []  # every request's path, across handler instances

    def do_GET(self) -> None:  # the stdlib's name
        self.paths.append(self.path)
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    _Health.status, _Health.paths = 200, []


def _run_check(port: int) -> int:
    """The HEALTHCHECK command as /bin/sh runs it, with this interpreter as `python`."""
    command = _healthcheck_command().replace("python -c ", f"{shlex.quote(sys.executable)} -c ", 1)
    env = {**os.environ, "YC_ACTIONS_PORT": str(port), "HTTP_PROXY": "http://127.0.0.1:9"}
    return subprocess.run(  # noqa: S603 - the Dockerfile's own HEALTHCHECK command
        ["sh", "-c", command],  # noqa: S607 - sh from PATH, as Docker runs the shell form
        env=env, capture_output=True, timeout=30).returncode


def test_healthcheck_passes_on_200_and_fails_otherwise(health_server: http.server.HTTPServer) -> None:
    """Run for real against a local server: 200 passes, 503 fails, nothing listening fails."""
    port = health_server.server_address[1]
    assert _run_check(port) == 0
    assert _Health.paths == ["/healthz"]
    _Health.status = 503
    assert _run_check(port) != 0
    free = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    unused = free.server_address[1]
    free.server_close()
    assert _run_check(unused) != 0
