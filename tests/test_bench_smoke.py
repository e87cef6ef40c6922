"""Smoke test of the polling benchmark: a tiny run ends with its summary line (no timings)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"poll-bench: accounts=3 bytes_ratio=(\d+\.\d+|inf) cpu_ratio=(\d+\.\d+|inf)")


def test_quick_poll_bench_prints_summary_last() -> None:
    """`bench/poll.py --quick` on three accounts runs both sides and ends with the summary."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "poll.py"), "--quick", "--accounts", "3",
         "--meetings", "6", "--latency-ms", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines and SUMMARY.fullmatch(lines[-1]), done.stdout[-2000:]
