"""Idle cost of the whole ``gswarm run`` (not only its output path) next to a quiet node.

Usage::

    python bench/idle.py [--seconds 60] [--warmup 10] [--pace 5] [--no-api] [--json]

Starts the real command, ``gswarm run --emulated --emu-faults "" --emu-pace P --duration …``, with
its state in a temporary folder: every service of a normal run is there (resource samplers, health
and stall checks, the SQLite store, the JSON log, notifications, the API server unless ``--no-api``),
and the emulated E6 node prints one step every ``P`` seconds. After ``--warmup`` seconds (imports,
start-up) it reads the supervisor process's own CPU time (``psutil``; the node, a child, is not
counted), waits ``--seconds``, reads it again and reports the difference as % of one core, with the
supervisor's RSS. Target (issue #2): < 1 % of one core; RSS < 80 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import psutil


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="measured window (s)")
    ap.add_argument("--warmup", type=float, default=10.0, help="start-up time not measured (s)")
    ap.add_argument("--pace", type=float, default=5.0, help="seconds per emulated step")
    ap.add_argument("--no-api", action="store_true", help="run without the API server")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    total = args.warmup + args.seconds + 30
    with tempfile.TemporaryDirectory(prefix="gswarm-idle-") as state:
        argv = [sys.executable, "-m", "gswarm", "run", "--emulated", "--emu-faults", "", "--emu-pace", str(args.pace),
                "--duration", f"{total:.0f}s"] + (["--no-api"] if args.no_api else [])
        env = {**os.environ, "GSWARM_STATE_DIR": state}
        with open(os.devnull, "wb") as null:
            proc = subprocess.Popen(argv, stdout=null, stderr=null, env=env)
            try:
                me = psutil.Process(proc.pid)
                time.sleep(args.warmup)
                c0, t0 = sum(me.cpu_times()[:2]), time.monotonic()
                time.sleep(args.seconds)
                c1, t1 = sum(me.cpu_times()[:2]), time.monotonic()
                rss = me.memory_info().rss
                alive = proc.poll() is None
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)  # only the process this script started
                    proc.wait(timeout=60)
    pct = 100 * (c1 - c0) / (t1 - t0)
    result = {"seconds": round(t1 - t0, 1), "pace_s": args.pace, "api": not args.no_api,
              "cpu_percent_of_core": round(pct, 3), "rss_mb": round(rss / 2**20, 1), "ran_whole_window": alive,
              "targets_met": {"idle_cpu": pct < 1.0, "rss": rss < 80 * 2**20}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"gswarm run (emulated E6, one step every {args.pace:g} s, API {'off' if args.no_api else 'on'}), "
          f"{result['seconds']:g} s measured after {args.warmup:g} s of start-up:")
    print(f"  supervisor CPU {pct:.3f} % of one core (target < 1: {'met' if pct < 1 else 'NOT met'})")
    print(f"  supervisor RSS {result['rss_mb']:.1f} MB (target < 80: {'met' if rss < 80 * 2**20 else 'NOT met'})")
    if not alive:
        print("  warning: gswarm run ended inside the window; the figure covers less than the window")


if __name__ == "__main__":
    main()
