"""Knowing when the websocket is logged in, with mmpy-bot left as it is.

mmpy-bot's ``EventHandler.start`` runs the driver's websocket loop, which reconnects forever
(5 s apart) and hands only ``posted`` events on; nothing tells the bot that it was away. We
give ``Bot`` an ``EventHandler`` of our own whose websocket class reports each log-in (the
server's ``hello``, sent on every (re)connect) and each end of the receiving loop. The bot
then answers the commands it missed, retries the notices that failed meanwhile, and
``/healthz`` knows the connection's state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from mattermostautodriver.websocket import Websocket
from mmpy_bot.event_handler import EventHandler

from bot import metrics

log = logging.getLogger(__name__)


class Connection:
    """The websocket's state, shared by the event loop, the tick and the health check."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connected = False
        self.logins = 0
        self._listeners: list[Callable[[bool], None]] = []

    def on_login(self, listener: Callable[[bool], None]) -> None:
        """``listener(first)`` runs after every log-in, on a thread of its own (the websocket
        loop must not wait for it)."""
        self._listeners.append(listener)

    def logged_in(self) -> None:
        with self._lock:
            self.connected = True
            self.logins += 1
            first = self.logins == 1
        metrics.WEBSOCKET_UP.set(1)
        if not first:
            metrics.WEBSOCKET_RECONNECTS.inc()
        log.info("websocket.logged_in first=%s", first)
        for listener in self._listeners:
            threading.Thread(target=self._run, args=(listener, first), daemon=True,
                             name="yc-ws-login").start()

    @staticmethod
    def _run(listener: Callable[[bool], None], first: bool) -> None:
        try:
            listener(first)
        except Exception:
            log.exception("websocket.login_listener_failed")

    def logged_out(self) -> None:
        with self._lock:
            was = self.connected
            self.connected = False
        metrics.WEBSOCKET_UP.set(0)
        if was:
            log.warning("websocket.lost")


def _observed(connection: Connection) -> type[Websocket]:
    class ObservedWebsocket(Websocket):  # type: ignore[misc]  # the driver is untyped
        async def _authenticate_websocket(self, websocket: Any, event_handler: Any) -> Any:
            result = await super()._authenticate_websocket(websocket, event_handler)
            connection.logged_in()
            return result

        async def _start_loop(self, websocket: Any, event_handler: Any) -> None:
            try:
                await super()._start_loop(websocket, event_handler)
            finally:
                connection.logged_out()

    return ObservedWebsocket


class ObservingEventHandler(EventHandler):  # type: ignore[misc]  # mmpy_bot is untyped: the base is Any
    """mmpy-bot's event handler, with a websocket that reports to ``connection``."""

    def __init__(self, *args: Any, connection: Connection, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection = connection

    def start(self) -> None:
        # Blocking, like the original: the driver's loop runs until the bot stops.
        self.driver.init_websocket(self._handle_event, websocket_cls=_observed(self.connection))
