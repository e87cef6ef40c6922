"""Logging set-up: text lines (the default) or one JSON object per line, and a filter that keeps
app passwords out of every log line and traceback, whatever library (mmpy-bot, the Mattermost
driver at DEBUG) logs the raw chat message.

The redaction pattern is built from the command alias table, so every keyword that reaches the
``connect`` or ``password`` command (a new alias included) has its password argument masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

from bot.core.commands import ALIASES

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
MASK = "***"

# command → position of the app password among its arguments: `connect <login> <app-password>`,
# `password <app-password>`.
SECRET_ARGUMENT: dict[str, int] = {"connect": 1, "password": 0}

# The pieces mirror the command parser: words are split at whitespace and ``?!,;``, and a keyword
# may carry ``.:'"`` around it. In a message logged as JSON or a Python repr (possibly nested, so
# with any number of backslashes) a line break shows as ``\n``, a quote as ``\"`` and a Cyrillic
# letter as ``\u0441``: those count as separators, quoting and letters too. The password stops at
# a quote or backslash, so "***" never eats the closing quote of a JSON string and a redacted
# JSON line still parses. Every repetition is possessive (``++``, ``*+``): no backtracking, so a
# line full of backslashes costs linear time.
_ESCAPED_SEP = r"\\++[nrt]"
_SEP = r"(?:[\s?!,;]|" + _ESCAPED_SEP + r")++"
_ARG = r"(?:[^\s?!,;\\]|\\++(?![nrt]))++"
_KEYWORD_END = r"(?:[.:'\"]|\\++(?![nrt]))*+"
_OPEN_QUOTE = r"(?:\\*+[\"'])*+"
_PASSWORD = r"(?:[^\s\"'\\?!,;]|\\++u[0-9a-fA-F]{4})++"  # noqa: S105 - a regex, not a password


def _keyword(word: str) -> str:
    """The keyword as typed, in any case, or with its non-ASCII letters escaped as a JSON dump
    (``ensure_ascii``) shows them, at any depth of nesting (``\\u043f``, ``\\\\u043f``). An
    escape is matched only from the start of its run of backslashes (the look-behind): a match
    tried inside the run would rescan it, quadratic in a line full of backslashes."""
    parts = []
    for char in word:
        if char.isascii():
            parts.append(re.escape(char))
        else:
            codes = sorted({f"{ord(c):04x}" for c in (char, char.lower(), char.upper()) if len(c) == 1})
            parts.append("(?:" + re.escape(char) + "".join(rf"|(?<!\\)\\++u{code}" for code in codes) + ")")
    return "".join(parts)


def _secret_pattern(aliases: dict[str, str]) -> re.Pattern[str]:
    """One alternative per secret-bearing command, listing every alias of it (longest first)."""
    branches = []
    for command, position in SECRET_ARGUMENT.items():
        words = sorted((w for w, name in aliases.items() if name == command), key=len, reverse=True)
        if not words:
            raise ValueError(f"no alias for the secret-bearing command {command!r}")
        keyword = "(?:" + "|".join(_keyword(w) for w in words) + ")" + _KEYWORD_END
        branches.append(keyword + (_SEP + _ARG) * position + _SEP + _OPEN_QUOTE)
    return re.compile("(?i)((?:" + "|".join(branches) + "))(" + _PASSWORD + ")")


_SECRET = _secret_pattern(ALIASES)


def redact(text: str) -> str:
    """Mask the app password of every ``connect``/``password`` command (any alias) in ``text``."""
    return _SECRET.sub(r"\1" + MASK, text)


class RedactingFilter(logging.Filter):
    """Redacts the message and the traceback text before any formatter sees the record."""

    _plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or not isinstance(record.msg, str):
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # formatters reuse exc_text when it is set, so the traceback is never formatted raw
            record.exc_text = self._plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_EVENT = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
_PAIR = re.compile(r"(?:^|(?<=\s))([A-Za-z_][\w.-]*)=(\"(?:[^\"\\]|\\.)*\"|'[^']*'|\S*)")
RESERVED = ("time", "level", "logger", "event", "message", "exc", "stack")


def parse_message(message: str) -> tuple[str | None, dict[str, str]]:
    """``"poll.done user=u1 changed=2"`` → ``("poll.done", {"user": "u1", "changed": "2"})``.

    The event is the dotted key that starts our messages (None for other libraries' lines).
    Quoted values lose their quotes; a trailing ``:`` or ``,`` after an unquoted value is
    punctuation, not part of it.
    """
    first = message.split(maxsplit=1)[0] if message.strip() else ""
    event = first if _EVENT.fullmatch(first) else None
    pairs: dict[str, str] = {}
    for key, raw in _PAIR.findall(message):
        if raw[:1] in ("'", '"') and len(raw) >= 2 and raw[-1] == raw[0]:
            value = raw[1:-1]
        else:
            value = raw.rstrip(":,;")
        pairs[key] = value
    return event, pairs


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC), level, logger, event, every ``k=v`` of the
    message as a field (a key that clashes with these gets a trailing ``_``), the whole message,
    and ``exc`` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, pairs = parse_message(message)
        when = datetime.fromtimestamp(record.created, tz=UTC)
        entry: dict[str, object] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "event": event,
        }
        for key, value in pairs.items():
            entry[f"{key}_" if key in RESERVED else key] = value
        entry["message"] = message
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=True, default=str)


def make_formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"unknown log format {fmt!r} (text or json)")


def setup_logging(level: str, fmt: str = "text", *, stream: TextIO | None = None) -> None:
    """Log to stderr (or ``stream``) as ``text`` lines or ``json`` objects, passwords redacted."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(make_formatter(fmt))
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[handler])
    for each in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in each.filters):
            each.addFilter(RedactingFilter())
    # the Mattermost driver logs every request body at DEBUG; httpx logs every request at INFO
    logging.getLogger("mattermostautodriver").setLevel(max(logging.INFO, logging.root.level))
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.root.level))
