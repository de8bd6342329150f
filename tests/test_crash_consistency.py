"""A short pass of bench/crash_consistency.py: one kill -9 of each command it covers.

The long run (240 trials and more) is the script itself; this keeps it working and
shows that each kind of kill leaves a home that opens, verifies, works, holds the
keys it published, and no half-written output.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "crash_consistency.py"


@pytest.mark.slow
def test_crash_trials_smoke(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--trials", "6", "--seed", "1", "--keep", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = re.search(r"trials: (\d+); killed mid-way: (\d+); finished before the kill: (\d+); failures: (\d+)",
                        done.stdout)
    assert summary is not None, done.stdout
    trials, killed, finished, failures = map(int, summary.groups())
    assert (trials, failures) == (6, 0) and killed + finished == 6
    for op in ("issue", "rotate", "policy", "publish", "seal", "open"):
        assert re.search(rf"^  {op}\s+killed\s+\d+\s+finished\s+\d+$", done.stdout, re.M)
