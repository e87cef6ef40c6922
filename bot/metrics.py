"""Prometheus metrics of the bot (``prometheus-client``), served as ``GET /metrics`` on the
action endpoint's port. Every name starts with ``yc_bot_``.

The metrics live in one registry of their own (``REGISTRY``), not the library's global one:
``/metrics`` then shows exactly these (plus the process collector), and a test can read them
without the noise of other libraries. Counters are process-wide: several bot processes are
scraped one by one and summed by Prometheus, as with any replicated service.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY, namespace="yc_bot")

ACCOUNTS = Gauge(
    "yc_bot_accounts", "Connected accounts, by state (ok, needs_password).", ["state"],
    registry=REGISTRY)
LEASED_ACCOUNTS = Gauge(
    "yc_bot_leased_accounts", "Accounts this process holds the lease of (polls and plans).",
    registry=REGISTRY)
POLLS = Counter(
    "yc_bot_polls_total", "Account polls by result (changed, idle, error, auth_refused).",
    ["result"], registry=REGISTRY)
POLL_SECONDS = Histogram(
    "yc_bot_poll_duration_seconds", "Wall time of one account poll.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=REGISTRY)
CALDAV_REQUESTS = Counter(
    "yc_bot_caldav_requests_total",
    "CalDAV requests by method and result (ok, unchanged, 401, 4xx, 5xx, timeout, error).",
    ["method", "result"], registry=REGISTRY)
NOTICES = Counter(
    "yc_bot_notices_total",
    "Notices by kind and outcome (recorded, sent, failed, dropped, expired).",
    ["kind", "outcome"], registry=REGISTRY)
REMINDER_LATENESS = Histogram(
    "yc_bot_reminder_lateness_seconds", "Seconds between a reminder's due time and its post.",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600), registry=REGISTRY)
TICK_SECONDS = Histogram(
    "yc_bot_tick_duration_seconds", "Wall time of one engine tick (decisions, not the network).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=REGISTRY)
WEBSOCKET_RECONNECTS = Counter(
    "yc_bot_websocket_reconnects_total",
    "Websocket log-ins after the first one (Mattermost restarts, network trouble).",
    registry=REGISTRY)
WEBSOCKET_UP = Gauge(
    "yc_bot_websocket_connected", "1 while the websocket is logged in.", registry=REGISTRY)
COMMANDS = Counter(
    "yc_bot_commands_total", "Chat commands answered, by command.", ["command"],
    registry=REGISTRY)
ACTIONS = Counter(
    "yc_bot_actions_total", "Button clicks and dialog submissions, by action and outcome.",
    ["action", "outcome"], registry=REGISTRY)
STARTED = Gauge(
    "yc_bot_start_time_seconds", "Unix time this process started.", registry=REGISTRY)
STARTED.set(time.time())


def exposition() -> tuple[bytes, str]:
    """The body and Content-Type of ``GET /metrics`` (Prometheus text format 0.0.4)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
