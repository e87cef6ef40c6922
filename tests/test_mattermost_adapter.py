"""The Mattermost adapter's own guarantees, on a real socket: a server that takes the
connection and never answers costs one bounded wait and a transient ``MessengerError``, never a
sender (and the notice it holds) stuck for good."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from mattermostautodriver import Driver

from bot.adapters.mattermost import MattermostMessenger, bound_requests
from bot.ports import MessengerError


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections, reads what comes, never writes a byte back."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_a_server_that_never_answers_fails_the_post_instead_of_hanging(silent_server: int) -> None:
    driver = Driver({"url": "127.0.0.1", "port": silent_server, "scheme": "http",
                     "token": "t", "verify": False})
    assert driver.options["request_timeout"] is None  # the library's default: wait forever
    bound_requests(driver, 0.5)
    messenger = MattermostMessenger(driver)
    outcome: list[BaseException | str] = []

    def post() -> None:
        try:
            outcome.append(messenger.post("channel", "hello"))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=post, daemon=True)
    worker.start()
    worker.join(60)  # far beyond the bound: only a hang gets here with the thread alive
    assert not worker.is_alive(), "the post still waits for an answer"
    (result,) = outcome
    assert isinstance(result, MessengerError)
    assert not result.permanent
