"""Smoke test of the scale benchmark: a tiny run end to end (Radicale, the embedded PostgreSQL,
one then two engine processes, the naive re-read, the profile); the summary line's format only
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
    r"scale-bench: accounts=\d+ processes=2 accounts_per_core=\d+ naive_per_core=\d+ "
    rf"speedup2={NUMBER} p99={NUMBER}"
)


def test_quick_scale_bench_prints_summary_last() -> None:
    """`bench/scale.py --quick` runs every step and its last line is the summary."""
    done = subprocess.run(  # noqa: S603 - this interpreter, the project's own script
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    if done.returncode != 0:
        pytest.fail(done.stderr[-2000:])
    lines = done.stdout.strip().splitlines()
    if not lines or not SUMMARY.fullmatch(lines[-1]):
        pytest.fail(done.stdout[-2000:])
    if "accounts=16 " not in lines[-1]:
        pytest.fail(lines[-1])
