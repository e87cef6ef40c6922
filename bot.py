"""Start the Yandex Calendar bot: `python bot.py` (settings.toml + environment)."""

from __future__ import annotations

import contextlib
import signal
import sys
from types import FrameType


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (docker stop, systemd): leave through mmpy-bot's own stop, so the engine gives
    its account leases back at once instead of letting them expire."""
    raise SystemExit(0)


def main() -> int:
    from bot.config import ConfigError, load_config
    from bot.logs import setup_logging

    try:
        config = load_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print("See README.md, section Configuration.", file=sys.stderr)
        return 2
    setup_logging(config.log_level, config.log_format)

    from bot.app import create_bot
    from storage.crypto import SecretKeyMismatch
    from storage.db import DatabaseBusy

    try:
        bot = create_bot(config)
    except (DatabaseBusy, SecretKeyMismatch) as exc:
        print(exc, file=sys.stderr)
        return 2
    except Exception as exc:  # e.g. Mattermost unreachable or the token refused at log-in
        print(f"Cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        bot.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
