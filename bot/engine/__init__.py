"""The notification engine, one module per responsibility:

- ``leases``: which accounts this process holds (only the holder polls and plans them);
- ``sync``: one account's poll (the change set is decided by ``bot.core.sync``);
- ``planner``: each tick's reminders, agenda and wanted status for the held accounts
  (decided by ``bot.core.plan``);
- ``status``: puts the "In a meeting" status up and down in Mattermost;
- ``outbox``: claims recorded notices, posts them, marks them sent;
- ``engine``: the tick on mmpy-bot's scheduler that drives them, and the worker pools.
"""

from bot.engine.engine import Engine

__all__ = ["Engine"]
