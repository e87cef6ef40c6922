"""Smoke test of the polling benchmark: a tiny run ends with its summary line (no timings)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"poll-bench: accounts=3 bytes_ratio=(\d+\.\d+|inf) cpu_ratio=(\d+\.\d+|inf)")


def test_quick_poll_bench_prints_summary_last() -> None:
    """`bench/poll.py --quick` on three accounts runs both sides and ends with the summary."""
    done = subprocess.run(  # noqa: S603 - this interpreter, the project's own script
        [sys.executable, str(ROOT / "bench" / "poll.py"), "--quick", "--accounts", "3",
         "--meetings", "6", "--latency-ms", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    if done.returncode != 0:
        pytest.fail(done.stderr[-2000:])
    lines = done.stdout.strip().splitlines()
    if not lines or not SUMMARY.fullmatch(lines[-1]):
        pytest.fail(done.stdout[-2000:])
