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
    "accept": "accept принять принимаю",
    "maybe": "maybe tentative возможно",
    "decline": "decline отклонить отказаться",
    "meet": "meet встреча",
    "stats": "stats статистика",
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


# -- meet -------------------------------------------------------------------------------------

MAX_MEETING = timedelta(hours=24)
DEFAULT_MEETING = timedelta(minutes=30)
_DURATION = re.compile(r"^(?:(\d{1,2})\s*(?:h|ч))?\s*(?:(\d{1,4})\s*(?:m|min|м|мин))?$",
                       re.IGNORECASE)
_MENTION = re.compile(r"^@([a-z0-9._-]+)$", re.IGNORECASE)
_WITH_WORDS = {"with", "с", "со"}
_DAY_WORDS = {"today": 0, "сегодня": 0, "tomorrow": 1, "завтра": 1}


@dataclass(frozen=True)
class MeetRequest:
    """What `meet` asks for: the wall-clock start in the user's zone, the length, the title
    and the guests' Mattermost usernames (lower case, without @)."""

    day: date
    at: str  # "HH:MM"
    duration: timedelta
    title: str
    guests: tuple[str, ...]


def parse_duration(token: str) -> timedelta | None:
    """"45m", "1h", "1h30m", "90min", "1ч30м" → the length; None when it is not a duration."""
    match = _DURATION.match(token.strip())
    if not match or not (match.group(1) or match.group(2)):
        return None
    return timedelta(hours=int(match.group(1) or 0), minutes=int(match.group(2) or 0))


def parse_meet(args: tuple[str, ...], today: date) -> MeetRequest:
    """`meet <date|today|tomorrow> <HH:MM> [<duration>] <title> [with @user …]`.

    The title is every other word, in order; a `with`/`с` right before a mention is dropped.
    Raises BadInput with the reason and the right form."""
    words = list(args)
    if len(words) < 2:
        raise BadInput("error.meet_usage")
    first = words.pop(0)
    if first.lower() in _DAY_WORDS:
        day = today + timedelta(days=_DAY_WORDS[first.lower()])
    elif _DATE_TOKEN.fullmatch(first):
        day = parse_date(first, today)
    else:
        raise BadInput("error.meet_usage")
    try:
        at = parse_hhmm(words.pop(0))
    except BadInput:
        raise BadInput("error.meet_time", value=args[1][:10]) from None
    duration = DEFAULT_MEETING
    if words and (length := parse_duration(words[0])) is not None:
        words.pop(0)
        if not timedelta(0) < length <= MAX_MEETING:
            raise BadInput("error.meet_duration", value=args[2][:10])
        duration = length
    guests: list[str] = []
    title: list[str] = []
    for index, word in enumerate(words):
        mention = _MENTION.match(word.rstrip(",.;"))
        if mention:
            guests.append(mention.group(1).lower())
        elif word.lower() in _WITH_WORDS and index + 1 < len(words) \
                and _MENTION.match(words[index + 1].rstrip(",.;")):
            continue  # "Review with @bob": the with-word belongs to the guests
        else:
            title.append(word)
    text = " ".join(title).strip()
    if not text:
        raise BadInput("error.meet_title")
    return MeetRequest(day, at, duration, text[:250], tuple(dict.fromkeys(guests)))
