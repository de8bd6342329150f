"""A short pass of bench/bench_agent.py: two seals each way on a cheap store; the script
itself fails if a seal fails or a sealed file does not open to the letter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "bench_agent.py"


def test_bench_agent_smoke(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, SCRIPT, "--seals", "2", "--work-factor", "10", "--json",
                        "--dir", tmp_path], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    figures = json.loads(r.stdout)
    assert figures["seals"] == 2
    assert figures["without_agent"]["unlocks"] == 2 and figures["with_agent"]["unlocks"] == 1
    assert figures["with_agent"]["agent_peak_rss_mib"] > 0
