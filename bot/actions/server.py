"""The bot's HTTP endpoint on ``YC_ACTIONS_PORT`` (all interfaces): ``GET /healthz``,
``GET /metrics`` and, when ``YC_ACTIONS_URL`` is set, the button clicks and dialog
submissions Mattermost posts (``POST /actions/<kind>``, ``POST /dialogs/<kind>``).

A small aiohttp application in a thread of its own with its own event loop, not mmpy-bot's
webhook server: that one polls its queues every half second (a delay the 3-second life of a
click's trigger id feels), binds to the host named in its URL rather than a port of ours, has
no way to open a dialog and no health or metrics route. Anything slow (the database, CalDAV)
runs on a small pool, so the endpoint never blocks the websocket loop or the scheduler, and a
click is answered within a second: when the CalDAV write takes longer, the click gets "sending
your answer…" and the post is updated once the write is done.

Everything arriving here is untrusted: bodies over 64 KiB, bodies that are not a JSON object,
and fields of the wrong type get 400 and change nothing; whether a click may act is decided by
its signed token (``bot.actions.handlers``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from aiohttp import web

from bot import metrics
from bot.actions.handlers import Actions, Click

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
ANSWER_WITHIN = 0.8  # seconds a click waits for its CalDAV write before "sending…"
CLICK_KINDS = ("answer", "snooze", "connect", "password")
DIALOG_KINDS = ("connect", "password")

Health = Callable[[], tuple[bool, dict[str, Any]]]


class BadRequest(Exception):
    pass


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, ensure_ascii=False), status=status,
                        content_type="application/json")


async def _read_object(request: web.Request) -> dict[str, Any]:
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise BadRequest("body too large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("not JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("not a JSON object")
    return data


def _text(data: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = data.get(name, "")
    if not isinstance(value, str) or (required and not value):
        raise BadRequest(f"{name} missing or not a string")
    return value


def parse_click(data: dict[str, Any]) -> Click:
    context = data.get("context")
    if not isinstance(context, dict):
        raise BadRequest("context missing or not an object")
    return Click(user_id=_text(data, "user_id"), post_id=_text(data, "post_id", required=False),
                 channel_id=_text(data, "channel_id", required=False),
                 trigger_id=_text(data, "trigger_id", required=False),
                 token=context.get("token"))


class HttpEndpoint:
    def __init__(self, *, port: int, health: Health, actions: Actions | None,
                 workers: int = 4) -> None:
        self.port = port
        self.health = health
        self.actions = actions
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="yc-http")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Bind the port and serve in a thread; raises if the port cannot be bound."""
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True,
                                        name="yc-http")
        self._thread.start()
        ready.result(timeout)
        log.info("http.listening port=%d actions=%s", self.port, self.actions is not None)

    def _serve(self, ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._runner = web.AppRunner(self._app(), access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, host="0.0.0.0", port=self.port)  # noqa: S104
            loop.run_until_complete(site.start())
        except BaseException as exc:  # handed to start()
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        if self.actions is not None:
            app.router.add_post("/actions/{kind}", self._click)
            app.router.add_post("/dialogs/{kind}", self._dialog)
        return app

    async def _run(self, job: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, job, *args)

    # -- routes -------------------------------------------------------------------------------
    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            ok, details = await asyncio.wait_for(self._run(self.health), 5)
        except Exception as exc:  # the database check hung or failed
            ok, details = False, {"error": type(exc).__name__}
        return _json(details, 200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _click(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind not in CLICK_KINDS:
            return _json({"error": "unknown action"}, 404)
        try:
            click = parse_click(await _read_object(request))
        except BadRequest as exc:
            log.warning("action.bad_request kind=%s reason=%s", kind, exc)
            return _json({"error": str(exc)}, 400)
        assert self.actions is not None  # noqa: S101 - the route exists only with actions
        actions = self.actions
        token = await self._run(actions.verify, click, kind)
        if isinstance(token, dict):  # refused: the ephemeral line to show
            return _json(token)
        if kind in ("connect", "password"):
            return _json(await self._run(actions.open_connect_dialog, click, token))
        if kind == "snooze":
            return _json(await self._run(actions.snooze, click, token))
        write = asyncio.ensure_future(self._run(actions.answer, click, token))
        try:
            return _json(await asyncio.wait_for(asyncio.shield(write), ANSWER_WITHIN))
        except TimeoutError:
            write.add_done_callback(lambda done: self._late(actions, click, done))
            return _json(await self._run(actions.ephemeral, click.user_id, "answer.pending"))

    def _late(self, actions: Actions, click: Click, done: asyncio.Future[Any]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        self._pool.submit(actions.finish_late, click, done.result())

    async def _dialog(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind not in DIALOG_KINDS:
            return _json({"error": "unknown dialog"}, 404)
        try:
            data = await _read_object(request)
            _text(data, "user_id")
        except BadRequest as exc:
            log.warning("dialog.bad_request kind=%s reason=%s", kind, exc)
            return _json({"error": str(exc)}, 400)
        if data.get("cancelled"):
            return _json({})
        assert self.actions is not None  # noqa: S101 - the route exists only with actions
        return _json(await self._run(self.actions.submit, kind, data))
