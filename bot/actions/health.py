"""``GET /healthz``: healthy when the websocket is logged in, the database answers and the
engine's tick ran within the last minute."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.adapters.websocket import Connection
from bot.engine import Engine
from bot.version import VERSION
from storage.db import ping

MAX_TICK_AGE = timedelta(minutes=1)


class HealthCheck:
    def __init__(self, *, connection: Connection, engine: Engine,
                 clock: Callable[[], datetime]) -> None:
        self.connection = connection
        self.engine = engine
        self.clock = clock

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        websocket = self.connection.connected
        database = ping()
        last = self.engine.last_tick_at
        age = (self.clock() - last).total_seconds() if last is not None else None
        ticking = age is not None and age < MAX_TICK_AGE.total_seconds()
        details = {"status": "ok" if websocket and database and ticking else "unhealthy",
                   "websocket": websocket, "database": database,
                   "tick_age_seconds": None if age is None else round(age, 1),
                   "version": VERSION}
        return websocket and database and ticking, details
