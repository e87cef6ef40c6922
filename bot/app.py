"""Wiring: configuration → database → adapters → services → mmpy-bot. No logic here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmpy_bot import Bot, Settings

from bot.adapters.caldav_client import YandexCalDAV
from bot.adapters.mattermost import Messenger
from bot.clock import utc_now
from bot.config import Config
from bot.engine import Engine
from bot.services import Services
from plugins.calendar import CalendarPlugin
from storage.crypto import Vault, load_or_create_key
from storage.db import open_database, sqlite_path
from storage.engine_store import EngineStore
from storage.repository import Repository


def secret_key(config: Config) -> str:
    if config.secret_key:
        return config.secret_key
    path = sqlite_path(config.database_url)
    return load_or_create_key((path or Path("data/bot.db")).parent)


def build_services(config: Config) -> Services:
    open_database(config.database_url)
    repo = Repository(Vault(secret_key(config)))
    source = YandexCalDAV(config.caldav_url, timeout=config.caldav_timeout)
    return Services(repo, source, clock=utc_now, default_timezone=config.default_timezone)


def build_engine(config: Config, services: Services, messenger: Callable[[], Messenger]) -> Engine:
    return Engine(
        repo=services.repo,
        store=EngineStore(),
        source=services.source,
        messenger=messenger,
        clock=services.clock,
        poll_seconds=config.poll_seconds,
        workers=config.workers,
    )


def mmpy_settings(config: Config) -> Settings:
    return Settings(
        MATTERMOST_URL=config.mattermost_url,
        MATTERMOST_PORT=config.mattermost_port,
        MATTERMOST_API_PATH=config.mattermost_api_path,
        BOT_TOKEN=config.bot_token,
        BOT_TEAM=config.bot_team,
        SSL_VERIFY=config.ssl_verify,
        SCHEDULER_PERIOD=min(1.0, config.tick_seconds),
    )


def create_bot(config: Config) -> Bot:
    """The real bot: mmpy-bot with our plugin only (never its demo plugins). The engine's tick
    is registered on mmpy-bot's own scheduler when the plugin starts."""
    services = build_services(config)
    plugin = CalendarPlugin(services, clock=utc_now)
    engine = build_engine(config, services, lambda: plugin.messenger)
    plugin.attach_engine(engine, config.tick_seconds)
    return Bot(settings=mmpy_settings(config), plugins=[plugin], enable_logging=False)
