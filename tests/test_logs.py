"""App passwords never reach a log line, whatever library logs the chat message."""

import logging

from bot.logs import RedactingFilter, redact


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
