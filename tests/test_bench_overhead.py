"""bench/overhead.py still runs and checks what it promises (every line arrives, no JSON record dropped).

A functional check of the benchmark with a tiny child, not a timing assertion: the figures are for the
operator to read (see the bench's docstring)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "overhead.py"


def test_overhead_bench_runs_every_kind_and_reports_its_figures() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--lines", "3000", "--repeat", "2", "--quiet-seconds", "0.2",
                          "--aa", "--burn", "0.5", "--json"], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout)
    assert result["lines"] == 3000 and result["rounds"] == 2
    assert set(result["all_wall_s"]) == {"devnull", "tee", "floor", "core", "supervised", "burn", "aa"}
    assert all(len(v) == 2 for v in result["all_wall_s"].values())
    assert set(result["targets_met"]) == {"ratio", "quiet_cpu", "peak_rss"}
    lo, hi = result["ratio_per_round_range"]
    assert 0 < lo <= result["ratio"] <= hi
    assert result["supervisor_cpu_s_per_million_lines"] > 0 and result["peak_rss_mb"] > 0


def test_idle_bench_measures_a_real_gswarm_run() -> None:
    """bench/idle.py starts the real `gswarm run --emulated` (no faults) and reads its own CPU and RSS."""
    idle = BENCH.with_name("idle.py")
    out = subprocess.run([sys.executable, str(idle), "--seconds", "2", "--warmup", "4", "--no-api", "--json"],
                         capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout)
    assert result["ran_whole_window"] is True and result["api"] is False
    assert 1.5 < result["seconds"] < 10 and result["rss_mb"] > 10
    assert set(result["targets_met"]) == {"idle_cpu", "rss"}
