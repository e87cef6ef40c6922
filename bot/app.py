"""Wiring: configuration → database → adapters → services → mmpy-bot → engine. No logic here.

The order matters once: ``Bot()`` logs in to Mattermost in its constructor, and the
messenger, the engine and the inbox need its driver, so they are built after it and handed to
the plugin (``attach``); the plugin itself must exist before ``Bot()``, which takes it.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

from mmpy_bot import Bot, Settings

from bot.actions.buttons import Buttons
from bot.actions.handlers import Actions
from bot.actions.health import HealthCheck
from bot.actions.server import HttpEndpoint
from bot.actions.tokens import Signer
from bot.adapters.caldav_client import YandexCalDAV
from bot.adapters.mattermost import MattermostMessenger, bound_requests
from bot.adapters.websocket import Connection, ObservingEventHandler
from bot.clock import utc_now
from bot.config import Config
from bot.engine import Engine
from bot.inbox import Inbox
from bot.ports import Messenger
from bot.services import Services
from plugins.calendar import CalendarPlugin
from storage.coordination import CoordinationStore
from storage.crypto import Vault, load_or_create_key, rotate_stored_passwords
from storage.db import claim_sqlite_file, open_database, sqlite_path
from storage.engine_store import EngineStore
from storage.outbox import OutboxStore
from storage.repository import Repository


def secret_key(config: Config) -> str:
    if config.secret_key:
        return config.secret_key
    path = sqlite_path(config.database_url)
    return load_or_create_key((path or Path("data/bot.db")).parent)


def process_name() -> str:
    """This process's id in the lease and claim rows: readable, and unique per start."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def build_services(config: Config) -> Services:
    path = sqlite_path(config.database_url)
    if path is not None:
        claim_sqlite_file(path)  # one process per SQLite file: refuse before touching it
    open_database(config.database_url)
    vault = Vault(secret_key(config), old=config.old_secret_keys)
    rotate_stored_passwords(vault)  # SecretKeyMismatch (no key fits) stops the start here
    repo = Repository(vault, clock=utc_now)
    source = YandexCalDAV(config.caldav_url, timeout=config.caldav_timeout)
    return Services(repo, source, clock=utc_now, default_timezone=config.default_timezone,
                    store=EngineStore(), outbox=OutboxStore(), horizon_days=config.horizon_days)


def mmpy_settings(config: Config) -> Settings:
    return Settings(
        MATTERMOST_URL=config.mattermost_url,
        MATTERMOST_PORT=config.mattermost_port,
        MATTERMOST_API_PATH=config.mattermost_api_path,
        BOT_TOKEN=config.bot_token,
        BOT_TEAM=config.bot_team,
        SSL_VERIFY=config.ssl_verify,
        # how often mmpy-bot's scheduler thread looks for due jobs: the tick runs within this
        # of its time (a 1 s period would let a 1 s tick drift to 2 s)
        SCHEDULER_PERIOD=min(0.2, config.tick_seconds / 4),
    )


def create_bot(config: Config) -> Bot:
    """The real bot: mmpy-bot with our plugin only (never its demo plugins), our event handler
    (it reports websocket log-ins), the engine and the inbox."""
    services = build_services(config)
    plugin = CalendarPlugin(services, clock=utc_now)
    settings = mmpy_settings(config)
    bot = Bot(settings=settings, plugins=[plugin], enable_logging=False)
    connection = Connection()
    bot.event_handler = ObservingEventHandler(
        bot.driver, settings=settings, plugin_manager=bot.plugin_manager, connection=connection)
    bound_requests(bot.driver)
    messenger = MattermostMessenger(bot.driver)
    process_id = process_name()
    coordination = CoordinationStore()
    actions = build_actions(config, services, messenger)
    engine = Engine(
        repo=services.repo, store=services.store, outbox=services.outbox,
        coordination=coordination, source=services.source, messenger=messenger, clock=utc_now,
        process_id=process_id, poll_seconds=config.poll_seconds,
        horizon_days=config.horizon_days, workers=config.workers,
        decorate=actions.buttons.for_notice if actions else None)
    inbox = Inbox(store=coordination, messenger=messenger, bot_username=bot.driver.username,
                  clock=utc_now, process_id=process_id)
    endpoint = HttpEndpoint(
        port=config.actions_port, actions=actions,
        health=HealthCheck(connection=connection, engine=engine, clock=utc_now))
    endpoint.start()  # binds YC_ACTIONS_PORT now: a taken port stops the start
    plugin.attach(messenger=messenger, inbox=inbox, engine=engine,
                  tick_seconds=config.tick_seconds, actions=actions, endpoint=endpoint)
    connection.on_login(plugin.websocket_logged_in)
    return bot


def build_actions(config: Config, services: Services, messenger: Messenger) -> Actions | None:
    """Buttons and dialogs, when Mattermost can reach us (YC_ACTIONS_URL); else None and
    everything works by text."""
    if not config.actions_url:
        return None
    signer = Signer(secret_key(config))

    def language(user: str) -> str:
        return services.language(user, lambda: messenger.profile(user).locale)

    buttons = Buttons(signer=signer, actions_url=config.actions_url, language=language,
                      zone=services.zone)
    return Actions(services=services, signer=signer, buttons=buttons, messenger=messenger,
                   clock=utc_now, actions_url=config.actions_url)
