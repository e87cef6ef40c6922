"""The domain core imports no I/O framework and reads no clock (style.md, habit 1)."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "bot" / "core"
FORBIDDEN_MODULES = {"caldav", "peewee", "playhouse", "mmpy_bot", "schedule", "mattermostautodriver",
                     "requests", "niquests", "httpx", "aiohttp", "os", "time", "storage"}
FORBIDDEN_CALLS = {"now", "utcnow", "today"}


def test_core_imports_and_clock() -> None:
    """No forbidden import and no datetime.now()/date.today() in bot/core."""
    problems = []
    for path in sorted(CORE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                names = []
            problems += [f"{path.name}: imports {n}" for n in names if n in FORBIDDEN_MODULES]
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in FORBIDDEN_CALLS
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in {"datetime", "date"}):
                problems.append(f"{path.name}:{node.lineno}: reads the clock")
    assert problems == []
