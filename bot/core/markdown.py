"""Calendar text is data: escape it for Mattermost Markdown and defuse mentions; split long
answers below the post limit."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

# Mattermost's server limit is 16383 characters, but servers configured with the historical
# 4000 still exist; long agendas also read better in several posts. We split below 4000.
POST_LIMIT = 4000

# The characters Mattermost's Markdown (marked, GFM) treats as syntax inside a line and accepts
# a backslash escape for. Calendar text never starts a line in our messages (it follows a bullet
# and a time), so the line-start-only markers (".", "-", "+") need no escape.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]()#|>~])")
_WS = re.compile(r"\s+")
ZWSP = "\u200b"


def escape(text: str) -> str:
    """Make calendar text show literally: no Markdown, no links, no @mentions or ~channels.

    Whitespace (including newlines) collapses to single spaces so a title cannot start a list
    or a heading. Mentions are defused with a zero-width space after ``@``: Mattermost's mention
    parser works on the raw text and ignores Markdown escapes, so a backslash alone would still
    ping ``@channel``.
    """
    text = _WS.sub(" ", text).strip()
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return text.replace("@", "@" + ZWSP)


def link(label: str, url: str) -> str:
    """A Markdown link to an http(s) URL, with the characters that would end the link encoded;
    anything else is shown as escaped text."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return escape(url)
    safe = quote(url.strip(), safe=":/?#@!$&'*+,;=%-._~")
    return f"[{label}]({safe})"


def split_message(text: str, limit: int = POST_LIMIT) -> list[str]:
    """Split on line boundaries into chunks of at most ``limit`` characters; a blank line (a day
    boundary in agendas) is preferred as the cut. A single longer line is cut hard."""
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                chunks.append("\n".join(current))
                current, size = [], 0
            chunks.append(line[:limit])
            line = line[limit:]
        extra = len(line) + (1 if current else 0)
        if size + extra > limit:
            chunks.append("\n".join(current))
            current, size = [], 0
            extra = len(line)
        current.append(line)
        size += extra
    if current:
        chunks.append("\n".join(current))
    return [c.strip("\n") for c in chunks if c.strip()]
