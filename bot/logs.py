"""Logging set-up with a filter that keeps app passwords out of every log line, whatever
library (mmpy-bot, the Mattermost driver at DEBUG) logs the raw chat message."""

from __future__ import annotations

import logging
import re

_SECRET = re.compile(
    r"(?i)((?:connect|подключить|подключиться)\s+\S+\s+|(?:password|пароль)\s+)([^\s\"'\\]+)"
)


def redact(text: str) -> str:
    return _SECRET.sub(r"\1***", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    # the Mattermost driver logs every request body at DEBUG; httpx logs every request at INFO
    logging.getLogger("mattermostautodriver").setLevel(max(logging.INFO, logging.root.level))
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.root.level))
