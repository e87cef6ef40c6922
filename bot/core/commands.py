"""Turn a chat message into a command: case-insensitive, Russian aliases, extra words tolerated.

Pure: the caller passes ``today`` (in the user's zone) for relative dates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from bot.errors import BadInput

# keyword (lower case) → command. The first keyword found in the message wins, so
# "show me today" is `today` and "please connect a@b pw" is `connect`.
ALIASES: dict[str, str] = {}
for _name, _words in {
    "help": "help info помощь справка помоги хелп",
    "connect": "connect подключить подключиться",
    "disconnect": "disconnect отключить отключиться",
    "login": "login логин",
    "password": "password пароль",
    "timezone": "timezone tz пояс часовой_пояс зона",
    "check": "check account проверка проверить аккаунт",
    "calendars": "calendars calendar календари календарь",
    "today": "today сегодня",
    "tomorrow": "tomorrow завтра",
    "week": "week неделя неделю",
    "month": "month месяц",
    "date": "date дата",
    "next": "next следующая следующую ближайшая ближайшую",
    "daily": "daily ежедневно",
    "remind": "remind reminders reminder напоминать напоминания напомни напомнить",
    "status": "status статус",
    "changes": "changes изменения",
    "responses": "responses ответы",
    "notifications": "notifications notification уведомления",
    "language": "language lang язык",
}.items():
    for _word in _words.split():
        ALIASES[_word] = _name

ON_WORDS = {"on", "вкл", "включить", "да", "yes"}
OFF_WORDS = {"off", "выкл", "выключить", "нет", "no"}

_DATE_TOKEN = re.compile(r"\b(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}\.\d{1,2}(?:\.\d{2,4})?)\b")
_WORD = re.compile(r"[^\s?!,;]+")


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...] = ()  # words after the keyword, case preserved

    @property
    def first(self) -> str:
        return self.args[0].lower() if self.args else ""


def parse_command(text: str) -> Command:
    """Find the command in a message; raise BadInput("error.unknown_command") when there is
    none. A message with dates and no keyword is a date (one) or range (two) query."""
    words = _WORD.findall(text)
    for index, word in enumerate(words):
        name = ALIASES.get(word.lower().strip(".:'\""))
        if name is None:
            continue
        args = tuple(words[index + 1 :])
        if name == "status" and not (args and args[0].lower() in ON_WORDS | OFF_WORDS):
            # bare "status" is the old `check`; "status on/off" is the meeting status switch
            return Command("check")
        if name in ("date", "today", "tomorrow", "week", "month") and _DATE_TOKEN.search(text):
            return Command("range" if len(_DATE_TOKEN.findall(text)) > 1 else "date",
                           tuple(_DATE_TOKEN.findall(text)))
        return Command(name, args)
    dates = _DATE_TOKEN.findall(text)
    if len(dates) == 1:
        return Command("date", (dates[0],))
    if len(dates) == 2:
        return Command("range", tuple(dates))
    raise BadInput("error.unknown_command", text=text.strip()[:40])


def parse_date(token: str, today: date) -> date:
    """dd.mm.yyyy, dd.mm.yy, dd.mm (this year) or yyyy-mm-dd; BadInput for an impossible date
    like 31.02.2026."""
    try:
        if "-" in token:
            year, month, day = (int(p) for p in token.split("-"))
        else:
            parts = [int(p) for p in token.split(".")]
            day, month = parts[0], parts[1]
            year = parts[2] if len(parts) == 3 else today.year
            if year < 100:
                year += 2000
        return date(year, month, day)
    except ValueError:
        raise BadInput("error.bad_date", value=token) from None


MAX_RANGE_DAYS = 366


def parse_range(tokens: tuple[str, ...], today: date) -> tuple[date, date]:
    """Two date tokens → an inclusive (first, last) day range of at most 366 days."""
    first, last = parse_date(tokens[0], today), parse_date(tokens[1], today)
    if last < first:
        raise BadInput("error.range_reversed", first=tokens[0], last=tokens[1])
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise BadInput("error.range_too_long", days=(last - first).days + 1)
    return first, last


def period_for(name: str, today: date) -> tuple[date, date]:
    """The inclusive day range of a view command."""
    if name == "today":
        return today, today
    if name == "tomorrow":
        return today + timedelta(days=1), today + timedelta(days=1)
    if name == "week":
        return today, today + timedelta(days=6)
    if name == "month":
        return today, _same_day_next_month(today)
    raise ValueError(name)


def _same_day_next_month(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    for candidate in (day.day, 30, 29, 28):  # 31 January → 28/29 February
        try:
            return date(year, month, candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable")


_TIME = re.compile(r"^([01]?\d|2[0-3])[:.]([0-5]\d)$")


def parse_hhmm(token: str) -> str:
    """"9:00", "09.30" → "09:00"/"09:30"; BadInput otherwise."""
    match = _TIME.match(token.strip())
    if not match:
        raise BadInput("error.bad_time", value=token)
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def parse_leads(args: tuple[str, ...]) -> tuple[int, ...]:
    """`remind 10 1` → (10, 1): distinct minutes, 0…1440, largest first."""
    leads: set[int] = set()
    for arg in args:
        for part in arg.split(","):
            if not part:
                continue
            if not part.isdigit() or not 0 <= int(part) <= 1440:
                raise BadInput("error.bad_leads", value=part)
            leads.add(int(part))
    if not leads:
        raise BadInput("error.bad_leads", value="")
    if len(leads) > 5:
        raise BadInput("error.too_many_leads")
    return tuple(sorted(leads, reverse=True))
