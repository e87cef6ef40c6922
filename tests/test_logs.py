"""App passwords never reach a log line, whatever library logs the chat message; JSON logs carry
the event and its context, one object per line."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.core.commands import ALIASES, parse_command
from bot.logs import (
    SECRET_ARGUMENT,
    JsonFormatter,
    RedactingFilter,
    _secret_pattern,
    parse_message,
    redact,
    setup_logging,
)

PW = "abcdefghijklmnop"  # the shape of a Yandex app password


def test_redact_connect_and_password_commands() -> None:
    """The password after `connect <login>` or `password` is replaced, the rest kept."""
    assert redact("connect ivan@ya.ru s3cret Europe/Moscow") == "connect ivan@ya.ru *** Europe/Moscow"
    assert redact('{"message": "password s3cret"}') == '{"message": "password ***"}'
    assert redact("подключить ivan пароль123") == "подключить ivan ***"
    assert redact("today please") == "today please"


def test_filter_rewrites_records() -> None:
    """A record built from arguments is redacted after formatting."""
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "got %s", ("connect a b",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "got connect a ***"


def _messages(word: str) -> list[str]:
    """Ways a user can type the command with this keyword, the password in its place."""
    args = ["ivan@ya.ru", PW, "Europe/Moscow"] if SECRET_ARGUMENT[ALIASES[word]] == 1 else [PW]
    plain = " ".join([word, *args])
    return [
        plain,
        plain.upper().replace(PW.upper(), PW),
        f"@calendar-bot please {plain}",
        f"{word.capitalize()}: " + ", ".join(args),
        f'"{word}" ' + " ".join(args),
        "\n".join([word, *args]),
    ]


@pytest.mark.parametrize("word", sorted(w for w, name in ALIASES.items() if name in SECRET_ARGUMENT))
def test_every_alias_of_a_secret_command_is_redacted(word: str) -> None:
    """Walks ALIASES: every keyword of `connect`/`password`, however typed or logged, hides the password."""
    for text in _messages(word):
        command = parse_command(text)
        assert command.args[SECRET_ARGUMENT[command.name]] == PW, text  # the parser sees it so
        for logged in (text, json.dumps({"message": text}), repr({"message": text}),
                       json.dumps({"post": json.dumps({"message": text})})):
            assert PW not in redact(logged), logged


def test_every_secret_command_has_aliases() -> None:
    """The commands named as secret-bearing exist in the alias table (a rename fails here)."""
    assert set(SECRET_ARGUMENT) <= set(ALIASES.values())
    with pytest.raises(ValueError, match="no alias for the secret-bearing command"):
        _secret_pattern({"help": "help"})


def test_a_new_alias_is_covered_without_touching_the_logs_module() -> None:
    """The pattern is built from the table: an alias added there is redacted too."""
    pattern = _secret_pattern({**ALIASES, "коннект": "connect", "pw": "password"})
    assert PW not in pattern.sub(r"\1***", f"коннект ivan {PW}")
    assert PW not in pattern.sub(r"\1***", f"pw {PW}")


def test_redacted_json_still_parses() -> None:
    """A password inside a JSON-looking message is masked without breaking the JSON."""
    post = {"id": "p1", "message": f'connect ivan "{PW}"\nthanks', "props": {}}
    event = {"event": "posted", "data": {"post": json.dumps(post)}}
    for text in (json.dumps(post), json.dumps(event)):
        cleaned = redact(text)
        assert PW not in cleaned
        decoded = json.loads(cleaned)
        inner = json.loads(decoded["data"]["post"]) if "data" in decoded else decoded
        assert inner["message"].startswith("connect ivan ")


def test_other_words_left_alone() -> None:
    """Messages without a secret-bearing command are not changed."""
    for text in ("poll.done user=u1 changed=2", "account.connected user=u1 calendars=3",
                 "command.received user=u1 command=password", "login ivan@ya.ru"):
        assert redact(text) == text


def test_parse_message() -> None:
    """The dotted key is the event; k=v pairs become fields (quotes dropped, trailing ':' too)."""
    assert parse_message("poll.done user=u1 changed=2") == ("poll.done", {"user": "u1", "changed": "2"})
    assert parse_message('secret.generated path=/data/secret.key: back it up note="a b"') == (
        "secret.generated", {"path": "/data/secret.key", "note": "a b"})
    assert parse_message("Starting bot Bot.") == (None, {})
    assert parse_message("") == (None, {})


@pytest.fixture
def clean_root() -> Iterator[None]:
    """Restores the root logger and the levels that set-up changes after the test."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    names = ("mattermostautodriver", "httpx")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers = saved[0]
    root.setLevel(saved[1])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _setup(level: str, fmt: str | None = None) -> io.StringIO:
    """setup_logging on a root logger without handlers, as at start-up (pytest's capture
    handlers are put back by the clean_root fixture)."""
    logging.getLogger().handlers = []
    stream = io.StringIO()
    if fmt is None:
        setup_logging(level, stream=stream)
    else:
        setup_logging(level, fmt, stream=stream)
    return stream


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("clean_root")
def test_json_lines_carry_event_and_context() -> None:
    """Each record is one JSON object: RFC 3339 UTC time, level, logger, event, k=v fields."""
    stream = _setup("INFO", "json")
    logging.getLogger("bot.engine").info("poll.done user=%s changed=%d", "u1", 2)
    logging.getLogger("bot.engine").info("status.set user=u2 level=high")
    first, second = _lines(stream)
    assert first["event"] == "poll.done"
    assert first["user"] == "u1"
    assert first["changed"] == "2"
    assert first["level"] == "INFO"
    assert first["logger"] == "bot.engine"
    assert first["message"] == "poll.done user=u1 changed=2"
    assert "exc" not in first
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(first["time"]))
    stamp = datetime.fromisoformat(str(first["time"]))
    assert stamp.tzinfo is not None
    assert stamp.utcoffset() == UTC.utcoffset(None)
    assert second["level"] == "INFO"
    assert second["level_"] == "high"  # a clash keeps both


@pytest.mark.usefixtures("clean_root")
def test_json_never_carries_the_password_even_in_a_traceback() -> None:
    """The message and the traceback (exc) are redacted before the JSON is built."""
    stream = _setup("DEBUG", "json")
    log = logging.getLogger("plugins.calendar")
    try:
        raise ValueError(f"cannot parse 'connect ivan@ya.ru {PW}'")
    except ValueError:
        log.exception("command.failed user=%s text=%s", "u1", f"пароль {PW}")
    (line,) = _lines(stream)
    assert PW not in stream.getvalue()
    assert line["event"] == "command.failed"
    assert line["text"] == "пароль"
    assert "ValueError" in str(line["exc"])
    assert "connect ivan@ya.ru ***" in str(line["exc"])


@pytest.mark.usefixtures("clean_root")
def test_json_driver_style_messages_are_redacted() -> None:
    """Driver-style lines logging the raw post (dict, websocket JSON) stay parseable, password gone."""
    stream = _setup("DEBUG", "json")
    post = {"id": "p1", "user_id": "u1", "message": f"подключить ivan {PW} Europe/Moscow"}
    logging.getLogger("mmpy_bot.event_handler").debug(post)  # the driver's log.debug(result)
    logging.getLogger("mmpy_bot.event_handler").debug(
        "websocket %s", json.dumps({"event": "posted", "data": {"post": json.dumps(post)}}))
    lines = _lines(stream)
    assert len(lines) == 2
    assert PW not in stream.getvalue()
    assert all(line["event"] is None for line in lines)  # foreign lines have no event key
    inner = json.loads(str(lines[1]["message"]).removeprefix("websocket "))
    assert json.loads(inner["data"]["post"])["message"] == "подключить ivan *** Europe/Moscow"


@pytest.mark.usefixtures("clean_root")
def test_text_format_is_the_default_and_unchanged() -> None:
    """Without a format: `time LEVEL logger message`, passwords and tracebacks redacted."""
    stream = _setup("INFO")
    log = logging.getLogger("bot.engine")
    log.info("poll.done user=%s changed=%d", "u1", 2)
    try:
        raise RuntimeError(f"password {PW}")
    except RuntimeError:
        log.warning("reply.failed user=u1", exc_info=True)
    text = stream.getvalue()
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO bot\.engine poll\.done user=u1 changed=2\n",
                    text)
    assert "RuntimeError: password ***" in text
    assert PW not in text


@pytest.mark.usefixtures("clean_root")
def test_setup_twice_adds_one_filter() -> None:
    """Calling set-up again neither duplicates the handler nor its filter."""
    _setup("INFO", "json")
    setup_logging("INFO", "json", stream=io.StringIO())
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler.formatter, JsonFormatter)
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1


def test_unknown_format_refused() -> None:
    """Only text and json exist."""
    with pytest.raises(ValueError, match="unknown log format"):
        setup_logging("INFO", "xml")


def test_redaction_is_linear_on_backslash_runs() -> None:
    """A long line of backslashes (escaped JSON, paths) after a keyword costs linear time."""
    started = time.perf_counter()
    for text in ("connect a" + "\\" * 50_000 + "n", "пароль " + "\\" * 50_000, "\\" * 100_000):
        redact(text)
    assert time.perf_counter() - started < 2.0
