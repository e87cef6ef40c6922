"""Start the Yandex Calendar bot: `python bot.py` (settings.toml + environment)."""

from __future__ import annotations

import sys


def main() -> int:
    from bot.config import ConfigError, load_config
    from bot.logs import setup_logging

    try:
        config = load_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print("See README.md, section Configuration.", file=sys.stderr)
        return 2
    setup_logging(config.log_level)

    from bot.app import create_bot

    try:
        bot = create_bot(config)
    except Exception as exc:  # e.g. Mattermost unreachable or the token refused at log-in
        print(f"Cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    try:
        bot.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
