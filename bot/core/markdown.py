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


def code(text: str) -> str:
    """Short user text (a login) as a code span: shown literally, mentions inert."""
    return "`" + _WS.sub(" ", text).replace("`", "'").strip() + "`"


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
    boundary in agendas) is preferred as the cut, so a day's meetings stay under their heading,
    unless that would leave the chunk less than half full. A single longer line is cut hard."""
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current: list[str] = []
    size = 0  # len("\n".join(current))
    for line in _hard_wrapped(text.split("\n"), limit):
        if current and size + 1 + len(line) > limit:
            cut = _last_blank(current)
            if cut > 0 and len("\n".join(current[:cut])) >= limit // 2:
                chunks.append("\n".join(current[:cut]))
                current = current[cut + 1 :]
            else:
                chunks.append("\n".join(current))
                current = []
            size = len("\n".join(current))
            if current and size + 1 + len(line) > limit:  # the carried lines and this one
                chunks.append("\n".join(current))
                current, size = [], 0
        size += len(line) + (1 if current else 0)
        current.append(line)
    if current:
        chunks.append("\n".join(current))
    return [c.strip("\n") for c in chunks if c.strip()]


def _hard_wrapped(lines: list[str], limit: int) -> list[str]:
    """Lines no longer than ``limit``: a longer one becomes several pieces."""
    wrapped: list[str] = []
    for line in lines:
        while len(line) > limit:
            wrapped.append(line[:limit])
            line = line[limit:]
        wrapped.append(line)
    return wrapped


def _last_blank(lines: list[str]) -> int:
    """Index of the last blank line, or -1."""
    for index in range(len(lines) - 1, -1, -1):
        if not lines[index].strip():
            return index
    return -1
