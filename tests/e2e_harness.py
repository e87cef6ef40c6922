"""Run the real, unmodified ``mmpy_bot.Bot`` in a thread against ``FakeMattermost``.

Typical use::

    def test_ping(fake_mattermost):              # fixture below: env scrubbed, fake started
        def make_bot():
            return Bot(settings=bot_settings(fake_mattermost), plugins=[Echo()],
                       enable_logging=False)

        with run_bot(make_bot, fake_mattermost) as running:
            post_id = fake_mattermost.user_says(ALICE, "ping")
            fake_mattermost.wait_for_post(lambda p: p["root_id"] == post_id)
            running.bot.driver ...                # the bot's own driver, if needed

Why it looks like this (mmpy-bot 2.2.1, mattermostautodriver 2.3.0):

* ``Bot()`` logs in inside its constructor (``GET /users/me``, no retry), so the fake must
  be running first, and ``Bot.run()`` drives the websocket with
  ``asyncio.get_event_loop().run_until_complete(...)``, so the thread needs its own event loop
  set *before* the bot is constructed. The factory is therefore called in the bot's thread.
* ``Bot.stop()`` does not end ``run()``: the websocket loop sits in ``receive_str()``.
  ``driver.disconnect()`` only clears a flag, which the loop checks after the next frame.
  Closing the socket from the server is worse: ``receive_str()`` raises, the client logs it,
  sleeps ``keepalive_delay`` (5 s) and reconnects. So ``stop()`` clears the flag and then has
  the fake send one harmless frame (``nudge_websockets``): the loop returns, the client closes
  its socket, ``run()`` falls into its ``finally`` and calls ``Bot.stop()`` (plugins'
  ``on_stop``, worker threads joined) in the bot's thread. If that does not happen in time
  (e.g. the client was between reconnects), the loop's tasks are cancelled.
* mmpy-bot's scheduler is the global ``schedule.default_scheduler``; its jobs outlive the bot,
  so ``stop()`` clears them.
* ``Settings`` fields are read from environment variables of the same name, which win over
  constructor arguments: scrub them (``scrub_mattermost_env``) before building settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import schedule
from mmpy_bot import Bot, Settings

from tests.fake_mattermost import FakeMattermost

log = logging.getLogger(__name__)

_ENV_PREFIXES = ("MATTERMOST_", "BOT_", "WEBHOOK_")
_SETTINGS_FIELDS = frozenset(f.name for f in dataclasses.fields(Settings))


def _mmpy_env_names(environ: Mapping[str, str]) -> list[str]:
    return sorted(
        name for name in environ if name.startswith(_ENV_PREFIXES) or name in _SETTINGS_FIELDS
    )


def scrub_mattermost_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Delete MATTERMOST_*/BOT_*/WEBHOOK_* and every other mmpy-bot ``Settings`` variable."""
    for name in _mmpy_env_names(os.environ):
        monkeypatch.delenv(name, raising=False)


def bot_settings(fake: FakeMattermost, **overrides: Any) -> Settings:
    """``Settings`` pointing at ``fake``; ``SCHEDULER_PERIOD`` 0.05 s so stop is quick.

    Raises RuntimeError when environment variables would silently override the values.
    """
    leaked = _mmpy_env_names(os.environ)
    if leaked:
        raise RuntimeError(f"scrub_mattermost_env first; these would override Settings: {leaked}")
    values: dict[str, Any] = {
        "MATTERMOST_URL": fake.url,
        "MATTERMOST_PORT": fake.port,
        "BOT_TOKEN": fake.token,
        "BOT_TEAM": "team",
        "SSL_VERIFY": False,
        "WEBHOOK_HOST_ENABLED": False,
        "SCHEDULER_PERIOD": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


class RunningBot:
    """A ``mmpy_bot.Bot`` built by ``bot_factory`` and run in its own thread and event loop.

    ``start()`` returns once the bot's websocket is authenticated at the fake; ``stop()`` ends
    ``run()``, joins the thread and clears the global scheduler. Both are idempotent. Use as a
    context manager, or call ``start()``/``stop()`` yourself.
    """

    def __init__(
        self,
        fake: FakeMattermost,
        bot_factory: Callable[[], Bot],
        *,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
        keepalive_delay: float | None = None,
    ) -> None:
        """``keepalive_delay``: seconds between websocket reconnects (driver default 5)."""
        self.fake = fake
        self._factory = bot_factory
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._keepalive_delay = keepalive_delay
        self._bot: Bot | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._constructed = threading.Event()
        self._used = False
        self._construct_error: BaseException | None = None
        self.run_error: BaseException | None = None  # what run() raised, if anything

    @property
    def bot(self) -> Bot:
        """The running bot (available after ``start()``)."""
        if self._bot is None:
            raise RuntimeError("the bot is not started")
        return self._bot

    @property
    def alive(self) -> bool:
        """True while the bot's thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> RunningBot:
        """Construct the bot in a new thread, run it and wait for its websocket."""
        if self._thread is not None:
            return self
        if self._used:
            raise RuntimeError("a RunningBot runs once; make a new one")
        self._used = True
        if not self.fake.running:
            raise RuntimeError("start the FakeMattermost before the bot (Bot() logs in at once)")
        auth_before = self.fake.ws_auth_count
        self._thread = threading.Thread(target=self._main, name="e2e-bot", daemon=True)
        self._thread.start()
        if not self._constructed.wait(self._start_timeout):
            self._abandon("bot construction timed out")
        if self._construct_error is not None:
            self._thread.join(self._stop_timeout)
            raise self._construct_error
        connected = self.fake.wait_for(
            lambda: self.fake.ws_auth_count > auth_before or not self.alive,
            self._start_timeout,
        )
        if not connected or not self.alive:
            error = self.run_error
            self.stop()
            raise RuntimeError(f"bot did not connect its websocket: {error!r}") from error
        log.info("e2e.bot_started user=%s", self.bot.driver.username)
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # before Bot(): run() uses get_event_loop()
        self._loop = loop
        try:
            try:
                self._bot = self._factory()
                if self._keepalive_delay is not None:
                    self._bot.driver.options["keepalive_delay"] = self._keepalive_delay
            except BaseException as error:  # re-raised in start()
                self._construct_error = error
                return
            finally:
                self._constructed.set()
            try:
                self._bot.run()
            except BaseException as error:  # CancelledError on forced stop
                self.run_error = error
                log.debug("e2e.bot_run_ended error=%r", error)
        finally:
            self._close_loop(loop)

    @staticmethod
    def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
        """Cancel what mmpy-bot left on the loop (handler tasks it never awaits), close it."""
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def stop(self) -> None:
        """End ``run()`` quickly and reliably, join the thread, clear scheduler jobs."""
        thread = self._thread
        if thread is None:
            return
        try:
            bot = self._bot
            if bot is not None and thread.is_alive():
                bot.driver.disconnect()  # the websocket loop checks this after a frame...
                if self.fake.nudge_websockets():  # ...so send it one
                    thread.join(self._stop_timeout / 2)
            if thread.is_alive() and self._loop is not None:
                log.warning("e2e.bot_stop_forced: cancelling the bot's event loop tasks")
                self._cancel_loop_tasks()
                thread.join(self._stop_timeout / 2)
            if thread.is_alive():
                raise RuntimeError("bot thread did not stop (a handler blocks a worker?)")
            if bot is not None:
                bot.stop()  # no-op when run() already did it in its finally
                client = getattr(bot.driver.client, "client", None)
                if client is not None:
                    client.close()  # the driver's httpx pool: its sockets to the fake
        finally:
            schedule.default_scheduler.clear()
            self._thread = None

    def _cancel_loop_tasks(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def cancel_all() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()

        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(cancel_all)

    def _abandon(self, reason: str) -> None:
        self._cancel_loop_tasks()
        raise RuntimeError(reason)

    def __enter__(self) -> RunningBot:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_bot(bot_factory: Callable[[], Bot], fake: FakeMattermost, **kwargs: Any) -> RunningBot:
    """Start ``bot_factory()``'s bot against ``fake``; returns the started ``RunningBot``.

    Usable as ``with run_bot(...) as running:`` (stops on exit) or stop it yourself.
    ``kwargs`` go to ``RunningBot`` (``start_timeout``, ``stop_timeout``, ``keepalive_delay``).
    """
    return RunningBot(fake, bot_factory, **kwargs).start()


@pytest.fixture
def fake_mattermost(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMattermost]:
    """A started ``FakeMattermost`` with mmpy-bot's environment variables scrubbed.

    Registered for every test module by ``tests/conftest.py`` (``pytest_plugins``).
    """
    scrub_mattermost_env(monkeypatch)
    fake = FakeMattermost().start()
    try:
        yield fake
    finally:
        fake.stop()
