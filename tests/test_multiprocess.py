"""Several bot processes on one PostgreSQL, as an admin runs them: three ``python bot.py``
OS processes against the project's fake Mattermost and Radicale, a few dozen accounts with
reminders falling due; one process is killed with SIGKILL in the middle. Every reminder and
every change notice arrives exactly once, every command is answered exactly once, and the
survivors take over the dead process's accounts within 60 s. On SQLite, a second process on
the same file refuses to start with one clear message."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.fake_mattermost import FakeMattermost
from tests.ics_builder import event
from tests.pg import fresh_database
from tests.radicale_server import RadicaleServer

pytestmark = pytest.mark.multiprocess
ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = 24
PROCESSES = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bot_env(fake: FakeMattermost, caldav_url: str, db_url: str, tmp: Path) -> dict[str, str]:
    (tmp / "none.toml").write_text("")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MATTERMOST_", "BOT_", "YC_", "WEBHOOK_"))}
    env.update({
        "YC_SETTINGS": str(tmp / "none.toml"),
        "MATTERMOST_URL": fake.url, "MATTERMOST_PORT": str(fake.port),
        "BOT_TOKEN": fake.token, "SSL_VERIFY": "false",
        "YC_CALDAV_URL": caldav_url, "YC_DATABASE_URL": db_url,
        "YC_SECRET_KEY": "multi-process-secret", "YC_POLL_SECONDS": "5",
        "YC_TICK_SECONDS": "0.5", "YC_CALDAV_TIMEOUT": "5",
    })
    return env


class Bots:
    """``python bot.py`` processes, each with its own log file and HTTP port."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env, self.tmp = env, tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, n: int) -> None:
        for _ in range(n):
            log = self.tmp / f"bot{len(self.procs)}.log"
            env = dict(self.env, YC_ACTIONS_PORT=str(_free_port()))
            with log.open("wb") as out:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "bot.py"], cwd=ROOT, env=env, stdout=out,
                    stderr=subprocess.STDOUT))
            self.logs.append(log)

    def tails(self) -> str:
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:]
                         for p in self.logs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def world(fake_mattermost: FakeMattermost,
          tmp_path: Path) -> Iterator[tuple[FakeMattermost, RadicaleServer, str, Bots]]:
    db_url = fresh_database()
    with RadicaleServer() as radicale:
        bots = Bots(_bot_env(fake_mattermost, radicale.url, db_url, tmp_path), tmp_path)
        try:
            yield fake_mattermost, radicale, db_url, bots
        finally:
            bots.stop()


def _owners(db_url: str) -> dict[str, str | None]:
    with psycopg2.connect(db_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT mm_user_id, owner FROM account")
        return dict(cursor.fetchall())


def _all_synced(db_url: str, accounts: int) -> bool:
    """Every account's calendars have their first (silent) sync: what is added from now on
    is a change to announce."""
    with psycopg2.connect(db_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM calendar WHERE synced")
        synced = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM calendar")
        total = cursor.fetchone()
    return bool(synced and total and total[0] >= accounts and synced[0] == total[0])


def _wait(predicate: Any, timeout: float, what: str, bots: Bots) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{bots.tails()}")


def test_three_processes_one_killed_nothing_doubled_or_lost(world) -> None:
    """Three bots share 24 accounts; SIGKILL one while reminders fall due (one of them claimed
    by the dying process) and commands are in flight: each reminder, each change notice and
    each answer arrives exactly once, and the dead process's accounts are taken over within
    60 s."""
    fake, radicale, db_url, bots = world
    users = [f"mpuser{n:02d}" for n in range(ACCOUNTS)]
    calendars: dict[str, str] = {}
    for n, user in enumerate(users):
        login = f"mp{n:02d}@yandex.ru"
        radicale.add_user(login, f"pw-{n}")
        calendars[user] = radicale.make_calendar(login, f"events-{n}", "Work")
        fake.add_user(user, f"ivan{n:02d}", locale="en", timezone="Europe/Moscow")
    bots.start(PROCESSES)
    _wait(lambda: fake.connected_sockets >= PROCESSES, 60, "three websockets", bots)

    commands: list[tuple[str, str, int]] = []  # (user, post id, replies expected)

    def say(user: str, text: str, replies: int = 1) -> None:
        commands.append((user, fake.user_says(user, text), replies))

    for n, user in enumerate(users):
        say(user, f"connect mp{n:02d}@yandex.ru pw-{n}", replies=2)  # + "delete it" note
    _wait(lambda: sum("Connected" in p["message"] for p in fake.posts) >= ACCOUNTS, 90,
          "every connect answered", bots)
    for user in users:
        say(user, "remind 1")
    _wait(lambda: sum("Saved" in p["message"] for p in fake.posts) >= ACCOUNTS, 60,
          "every remind answered", bots)
    _wait(lambda: all(_owners(db_url).values()), 30, "every account leased", bots)
    _wait(lambda: _all_synced(db_url, ACCOUNTS), 30, "every first sync", bots)

    # Meetings added after the baseline: one change notice each, then a reminder one minute
    # before the start; starts spread so that reminders fall due before and after the kill.
    t0 = datetime.now(UTC)
    starts = {user: t0 + timedelta(seconds=95 + 2 * n) for n, user in enumerate(users)}
    for n, user in enumerate(users):
        radicale.put(f"mp{n:02d}@yandex.ru", calendars[user], f"m{n}.ics",
                     event(f"mp-meeting-{n}", starts[user], starts[user] + timedelta(minutes=30),
                           f"Meeting {n:02d}"))
    time.sleep(max(0.0, (t0 + timedelta(seconds=45) - datetime.now(UTC)).total_seconds()))

    owners = _owners(db_url)
    victim_owner, _ = Counter(owners.values()).most_common(1)[0]
    victim_accounts = {u for u, o in owners.items() if o == victim_owner}
    pid = int(str(victim_owner).split("-")[-2])
    victim = next(p for p in bots.procs if p.pid == pid)
    # Die one second before one of its reminders is due: the reminder is claimed then (two
    # seconds ahead) and its sender waits for the due time, so the claim dies with the process
    # and a survivor must take it over in time for the meeting.
    dues = sorted(starts[u] - timedelta(minutes=1) for u in victim_accounts
                  if starts[u] - timedelta(minutes=1) > datetime.now(UTC) + timedelta(seconds=3))
    assert dues, "the victim holds no reminder still to come"
    time.sleep(max(0.0, (dues[0] - timedelta(seconds=1.05) - datetime.now(UTC)).total_seconds()))
    for user in users:  # commands in flight while the process dies
        say(user, "check")
    time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    victim.wait(timeout=10)

    _wait(lambda: not (victim_accounts & {u for u, o in _owners(db_url).items()
                                          if o == victim_owner}), 75, "takeover", bots)
    takeover = time.monotonic() - killed_at
    bot_posts = lambda: [p for p in fake.posts if p["user_id"] == fake.bot_user_id]  # noqa: E731
    _wait(lambda: sum("⏰" in p["message"] for p in bot_posts()) >= ACCOUNTS
          and sum("Next reminder" in p["message"] for p in bot_posts()) >= ACCOUNTS,
          150, "every reminder and every check answer", bots)
    time.sleep(3)  # anything doubled would arrive now

    posts = bot_posts()
    dm = {fake.dm_channel_id(u): u for u in users}
    reminders = Counter(dm[p["channel_id"]] for p in posts if "Meeting" in p["message"]
                        and "⏰" in p["message"])
    added = Counter(dm[p["channel_id"]] for p in posts if "New meeting" in p["message"])
    assert reminders == Counter({u: 1 for u in users}), bots.tails()
    assert added == Counter({u: 1 for u in users}), bots.tails()
    replies = Counter(p["props"].get("yc_reply_to") for p in posts if p["props"].get("yc_reply_to"))
    for user, post_id, expected in commands:
        assert replies[post_id] == expected, (user, post_id, bots.tails())
    assert takeover <= 60, takeover


def test_second_process_on_one_sqlite_file_refuses(fake_mattermost: FakeMattermost,
                                                   tmp_path: Path) -> None:
    """On SQLite, a second ``bot.py`` on the same file stops at once with one clear line."""
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    env = _bot_env(fake_mattermost, "http://127.0.0.1:9/", db_url, tmp_path)
    bots = Bots(env, tmp_path)
    try:
        bots.start(1)
        _wait(lambda: fake_mattermost.connected_sockets >= 1, 60, "the first bot", bots)
        second = subprocess.run([sys.executable, "bot.py"], cwd=ROOT,
                                env=dict(env, YC_ACTIONS_PORT=str(_free_port())),
                                capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 2
        assert "Another bot process already uses the SQLite database" in second.stderr
        assert "PostgreSQL" in second.stderr
        assert "Traceback" not in second.stderr
        assert bots.procs[0].poll() is None  # the first one keeps running
    finally:
        bots.stop()
