"""Escaping of calendar text and splitting of long answers."""

from hypothesis import given
from hypothesis import strategies as st

from bot.core.markdown import POST_LIMIT, ZWSP, escape, link, split_message


def test_escape_mentions_and_markdown() -> None:
    """`@channel **x**` shows literally and pings nobody."""
    text = escape("@channel **urgent** _x_ [a](http://b) `code` ~town-square")
    assert "@channel" not in text
    assert f"@{ZWSP}channel" in text
    assert "\\*\\*urgent\\*\\*" in text
    assert "\\[a\\]\\(http://b\\)" in text
    assert "\\`code\\`" in text
    assert "\\~town" in text


def test_escape_collapses_newlines() -> None:
    """A multi-line title cannot start a heading or a list."""
    assert escape("a\n# b\n- c") == "a \\# b - c"


def test_link_only_http() -> None:
    """Only http(s) URLs become links; parentheses cannot end the link early."""
    assert link("Join", "https://telemost.yandex.ru/j/123") == "[Join](https://telemost.yandex.ru/j/123)"
    assert link("Join", "https://x.test/a)b") == "[Join](https://x.test/a%29b)"
    assert "[" not in link("Join", "javascript:alert(1)")


@given(st.lists(st.text(alphabet="ab \n", max_size=300), max_size=40), st.integers(50, 500))
def test_split_keeps_everything_under_limit(lines: list[str], limit: int) -> None:
    """Every chunk fits the limit and no non-blank text is lost."""
    text = "\n".join(lines)
    chunks = split_message(text, limit)
    assert all(len(c) <= limit for c in chunks)
    assert "".join(chunks).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")


def test_short_message_is_one_chunk() -> None:
    """Below the limit nothing is split."""
    assert split_message("hello") == ["hello"]
    assert len(split_message("x\n" * POST_LIMIT)) > 1
