"""Every text exists in English and Russian with the same parameters."""

import string
from datetime import date

from bot.core.texts import TEXTS, day_title, language_of, t


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_text_has_both_languages_with_same_fields() -> None:
    """A key missing a language or a parameter would crash or mislead one group of users."""
    for key, entry in TEXTS.items():
        assert set(entry) == {"en", "ru"}, key
        assert _fields(entry["en"]) == _fields(entry["ru"]), key


def test_language_from_locale() -> None:
    """ru* locales answer in Russian, everything else in English."""
    assert language_of("ru") == "ru"
    assert language_of("en") == "en"
    assert language_of("pt-br") == "en"
    assert language_of(None) == "en"


def test_day_titles() -> None:
    """Day headings name today/tomorrow and the weekday in both languages."""
    today = date(2026, 11, 27)
    assert day_title(today, "en", today) == "Today, Friday, 27 November"
    assert day_title(date(2026, 11, 28), "ru", today) == "Завтра, суббота, 28 ноября"
    assert day_title(date(2027, 1, 4), "en", today) == "Monday, 4 January 2027"
    assert t("ru", "agenda.empty_day") == "Встреч нет."
