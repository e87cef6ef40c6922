"""Smoke test of the reminder benchmark: a tiny run end to end, the summary line's format only
(no timing assertions: machines are noisy)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NUMBER = r"(?:\d+\.\d+|inf)"
SUMMARY = re.compile(
    rf"reminder-bench: accounts=\d+ p50={NUMBER} p99={NUMBER} max={NUMBER} "
    r"cpu_per_tick_ms=\d+\.\d"
)


def test_quick_run_ends_with_the_summary_line() -> None:
    """`bench/reminders.py --quick` runs to the end and its last line is the summary."""
    done = subprocess.run(  # noqa: S603 - this interpreter, the project's own script
        [sys.executable, str(ROOT / "bench" / "reminders.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    if done.returncode != 0:
        pytest.fail(done.stderr[-2000:])
    lines = done.stdout.strip().splitlines()
    if not lines or not SUMMARY.fullmatch(lines[-1]):
        pytest.fail(done.stdout[-2000:])
    if "accounts=8 " not in lines[-1]:
        pytest.fail(lines[-1])
