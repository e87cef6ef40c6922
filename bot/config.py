"""Configuration: one frozen, typed object read from ``settings.toml`` plus the environment.

Environment variables override the file; secrets (``BOT_TOKEN``, ``YC_SECRET_KEY``,
``YC_OLD_SECRET_KEYS``) come only from the environment, or from a file the environment names
(``BOT_TOKEN_FILE``, ``YC_SECRET_KEY_FILE``, ``YC_OLD_SECRET_KEYS_FILE``). Every problem is
collected and reported at once.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_T = TypeVar("_T")

SECRET_NAMES = ("BOT_TOKEN", "YC_SECRET_KEY", "YC_OLD_SECRET_KEYS")
LOG_FORMATS = ("text", "json")

# name → (type, default). These are the documented defaults; settings.toml repeats them for the
# operator.
FIELDS: dict[str, tuple[type, object]] = {
    "MATTERMOST_URL": (str, None),
    "MATTERMOST_PORT": (int, 443),
    "MATTERMOST_API_PATH": (str, ""),
    "BOT_TEAM": (str, ""),
    "SSL_VERIFY": (bool, True),
    "YC_CALDAV_URL": (str, "https://caldav.yandex.ru/"),
    "YC_DATABASE_URL": (str, "sqlite:///data/bot.db"),
    "YC_POLL_SECONDS": (int, 60),
    "YC_DEFAULT_TIMEZONE": (str, "Europe/Moscow"),
    "YC_TICK_SECONDS": (float, 1.0),
    "YC_WORKERS": (int, 8),
    "YC_CALDAV_TIMEOUT": (float, 20.0),
    "YC_LOG_LEVEL": (str, "INFO"),
    "YC_LOG_FORMAT": (str, "text"),
    "YC_HORIZON_DAYS": (int, 60),
    "YC_ACTIONS_URL": (str, ""),
    "YC_ACTIONS_PORT": (int, 8579),
}


class ConfigError(Exception):
    """Start-up cannot go on; ``problems`` lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))

    def __str__(self) -> str:
        lines = "\n".join(f"  - {p}" for p in self.problems)
        return f"Configuration problems ({len(self.problems)}):\n{lines}"


@dataclass(frozen=True)
class Config:
    mattermost_url: str  # with scheme, as mmpy-bot wants it
    mattermost_port: int
    mattermost_api_path: str
    bot_team: str
    ssl_verify: bool
    bot_token: str
    caldav_url: str
    database_url: str
    secret_key: str | None  # None: generated into a key file beside the SQLite database
    poll_seconds: int
    default_timezone: str
    tick_seconds: float
    workers: int
    caldav_timeout: float
    log_level: str
    log_format: str  # "text" or "json"
    horizon_days: int  # how far ahead meetings are watched for changes and answers
    actions_url: str  # where Mattermost reaches the action endpoint; "" = no buttons
    actions_port: int  # the bot's HTTP endpoint (actions, /healthz, /metrics), all interfaces
    old_secret_keys: tuple[str, ...]  # previous keys: still decrypt, re-encrypted at start-up

    def __repr__(self) -> str:  # never print secrets
        return (f"Config(mattermost_url={self.mattermost_url!r}, "
                f"database_url={_hide_password(self.database_url)!r}, "
                f"actions_url={self.actions_url!r}, log_format={self.log_format!r})")


def _hide_password(url: str) -> str:
    """``postgresql://user:pw@host/db`` → ``postgresql://user:***@host/db``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a broken IPv6 host: hide everything before the host
        return f"***@{url.rpartition('@')[2]}" if "@" in url else url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "y", "on"):
        return True
    if value in ("0", "false", "no", "n", "off"):
        return False
    raise ValueError("expected true or false")


def _convert(name: str, kind: type, raw: object) -> object:
    if isinstance(raw, kind) and not (kind is int and isinstance(raw, bool)):
        return raw
    if kind is bool:
        return _parse_bool(str(raw))
    if kind is int:
        return int(str(raw).strip())
    if kind is float:
        return float(str(raw).strip())
    return str(raw)


def _of(kind: type[_T], value: object) -> _T:
    """A converted setting as the type FIELDS gives it (``_convert`` made it so, or it is the
    default, already of that type)."""
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {value!r}")
    return value


def _secret(name: str, env: Mapping[str, str], problems: list[str]) -> str | None:
    if env.get(name):
        return env[name]
    file_name = env.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            problems.append(f"{name}_FILE: cannot read {file_name} ({exc.strerror})")
    return None


def _split_keys(raw: str) -> tuple[str, ...]:
    """Comma- (or newline-) separated keys → the non-empty ones, stripped, in order."""
    return tuple(key.strip() for key in raw.replace("\n", ",").split(",") if key.strip())


def _check_actions_url(raw: str, problems: list[str]) -> str:
    """The action endpoint's address without its trailing slash; empty means no buttons. Must be
    an http(s) URL with a host and no query or fragment."""
    url = raw.strip()
    shown = _hide_password(url)
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        problems.append(f"YC_ACTIONS_URL: {shown!r} is not a valid URL")
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"YC_ACTIONS_URL: {shown!r} must be an http(s) URL with a host, "
                        "e.g. http://calendar-bot:8579")
    elif parts.query or parts.fragment or url.endswith(("?", "#")):
        problems.append(f"YC_ACTIONS_URL: {shown!r} must not have a query or fragment")
    return url.rstrip("/")


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Read ``settings.toml`` (``YC_SETTINGS``) and the environment; raise ConfigError listing
    every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []
    settings_path = Path(env.get("YC_SETTINGS", "settings.toml"))
    file_values: dict[str, object] = {}
    if settings_path.exists():
        try:
            file_values = tomllib.loads(settings_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError) as exc:
            problems.append(f"YC_SETTINGS: {settings_path} is not valid TOML ({exc})")
    elif "YC_SETTINGS" in env:
        problems.append(f"YC_SETTINGS: {settings_path} does not exist")
    for secret in SECRET_NAMES:
        if secret in file_values:
            problems.append(f"{secret}: secrets are read only from the environment, "
                            f"remove it from {settings_path}")
    unknown = sorted(set(file_values) - set(FIELDS) - set(SECRET_NAMES))
    for name in unknown:
        problems.append(f"{settings_path}: unknown setting {name}")

    values: dict[str, object] = {}
    for name, (kind, default) in FIELDS.items():
        raw = env.get(name, file_values.get(name, default))
        if raw is None or raw == "":
            values[name] = default
            continue
        try:
            values[name] = _convert(name, kind, raw)
        except ValueError:
            problems.append(f"{name}: {raw!r} is not a valid {kind.__name__}")
            values[name] = default

    token = _secret("BOT_TOKEN", env, problems)
    secret_key = _secret("YC_SECRET_KEY", env, problems)
    old_keys = _split_keys(_secret("YC_OLD_SECRET_KEYS", env, problems) or "")
    if old_keys and not secret_key:
        problems.append("YC_OLD_SECRET_KEYS: needs YC_SECRET_KEY, the key that re-encrypts "
                        "what the old keys decrypt")
    if not token:
        problems.append("BOT_TOKEN: not set (the bot account's access token, from the environment)")

    url = values["MATTERMOST_URL"]
    if not url:
        problems.append("MATTERMOST_URL: not set (e.g. https://chat.example.com)")
    elif urlparse(str(url)).scheme not in ("http", "https") or not urlparse(str(url)).netloc:
        problems.append(f"MATTERMOST_URL: {url!r} needs a scheme, e.g. https://chat.example.com")
    port = values["MATTERMOST_PORT"]
    if isinstance(port, int) and not 0 < port < 65536:
        problems.append(f"MATTERMOST_PORT: {port} is not a port number")
    actions_port = values["YC_ACTIONS_PORT"]
    if isinstance(actions_port, int) and not 0 < actions_port < 65536:
        problems.append(f"YC_ACTIONS_PORT: {actions_port} is not a port number (1-65535)")
    actions_url = _check_actions_url(str(values["YC_ACTIONS_URL"]), problems)
    horizon = values["YC_HORIZON_DAYS"]
    if isinstance(horizon, int) and not 1 <= horizon <= 366:
        problems.append(f"YC_HORIZON_DAYS: {horizon} must be between 1 and 366")
    caldav = str(values["YC_CALDAV_URL"])
    if urlparse(caldav).scheme not in ("http", "https") or not urlparse(caldav).netloc:
        problems.append(f"YC_CALDAV_URL: {caldav!r} must be an http(s) URL")
    db_url = str(values["YC_DATABASE_URL"])
    scheme = urlparse(db_url).scheme
    if scheme not in ("sqlite", "postgres", "postgresql"):
        problems.append(f"YC_DATABASE_URL: {_hide_password(db_url)!r} must start with sqlite:/// "
                        "or postgresql://")
    elif scheme != "sqlite" and not secret_key:
        problems.append("YC_SECRET_KEY: required with a non-SQLite database (no key file there)")
    poll = values["YC_POLL_SECONDS"]
    if isinstance(poll, int) and poll < 1:
        problems.append(f"YC_POLL_SECONDS: {poll} must be at least 1")
    tick = values["YC_TICK_SECONDS"]
    if isinstance(tick, float) and not 0.05 <= tick <= 60:
        problems.append(f"YC_TICK_SECONDS: {tick} must be between 0.05 and 60")
    workers = values["YC_WORKERS"]
    if isinstance(workers, int) and not 1 <= workers <= 64:
        problems.append(f"YC_WORKERS: {workers} must be between 1 and 64")
    zone = str(values["YC_DEFAULT_TIMEZONE"])
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"YC_DEFAULT_TIMEZONE: {zone!r} is not an IANA time zone")
    if str(values["YC_LOG_LEVEL"]).upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append("YC_LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR")
    log_format = str(values["YC_LOG_FORMAT"]).strip().lower()
    if log_format not in LOG_FORMATS:
        problems.append(f"YC_LOG_FORMAT: {values['YC_LOG_FORMAT']!r} must be text or json")

    if problems:
        raise ConfigError(problems)
    return Config(
        mattermost_url=str(url).rstrip("/"),
        mattermost_port=_of(int, port),
        mattermost_api_path=str(values["MATTERMOST_API_PATH"]),
        bot_team=str(values["BOT_TEAM"]),
        ssl_verify=bool(values["SSL_VERIFY"]),
        bot_token=str(token),
        caldav_url=caldav,
        database_url=db_url,
        secret_key=secret_key,
        poll_seconds=_of(int, poll),
        default_timezone=zone,
        tick_seconds=_of(float, tick),
        workers=_of(int, workers),
        caldav_timeout=_of(float, values["YC_CALDAV_TIMEOUT"]),
        log_level=str(values["YC_LOG_LEVEL"]).upper(),
        log_format=log_format,
        horizon_days=_of(int, horizon),
        actions_url=actions_url,
        actions_port=_of(int, actions_port),
        old_secret_keys=old_keys,
    )
