"""Smoke test of the scale benchmark: a tiny run end to end (Radicale, the embedded PostgreSQL,
one then two engine processes, the naive re-read, the profile); the summary line's format only
(no timing assertions: machines are noisy)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER = r"(?:\d+\.\d+|inf)"
SUMMARY = re.compile(
    r"scale-bench: accounts=\d+ processes=2 accounts_per_core=\d+ naive_per_core=\d+ "
    rf"speedup2={NUMBER} p99={NUMBER}"
)


def test_quick_scale_bench_prints_summary_last() -> None:
    """`bench/scale.py --quick` runs every step and its last line is the summary."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines and SUMMARY.fullmatch(lines[-1]), done.stdout[-2000:]
    assert "accounts=16 " in lines[-1]
