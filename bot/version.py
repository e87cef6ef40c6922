"""The bot's version, as installed (``pip install .``), for ``stats`` and ``/healthz``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("yc-mattermost-bot")
except PackageNotFoundError:  # run from a checkout that was never installed
    VERSION = "0+unknown"
