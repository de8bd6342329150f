"""A short pass of bench/bench_server.py: a few clients (plain and conditional fetches) and
the bad-input run against one worker; the script itself fails on a 5xx, a crash or a
traceback in the server's log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "bench_server.py"


def test_bench_server_smoke(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, SCRIPT, "--clients", "20", "--requests", "4", "--workers", "1",
                        "--agencies", "0", "--bad", "--bad-wait", "2", "--keep", tmp_path / "b"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = json.loads(r.stdout)
    assert run["load"]["statuses"] == {"200": 40, "304": 40}
    assert run["bad_input"]["5xx"] == 0 and run["alive_after"] and run["healthy_after"]
    kinds = run["bad_input"]["by_kind"]
    assert kinds["huge-declared-body"] == {"413": 2} and kinds["many-headers"] == {"431": 2}
    assert kinds["huge-header"] == {"431": 2}
