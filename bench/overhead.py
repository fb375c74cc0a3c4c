"""Supervisor overhead: a child printing 1,000,000 lines, bare vs. under GSwarm's real code path.

Usage::

    python bench/overhead.py [--lines 1000000] [--repeat 3] [--quiet-seconds 60] [--json]

* **bare (/dev/null)**: the child writes straight to /dev/null: its own cost,
  the strict baseline the ratio is computed against.
* **bare (pipe)**: the child's stdout is a plain pipe (enlarged to 1 MiB like the
  supervisor's) that this process drains with a blocking ``os.read(fd, 1 MiB)``
  loop and discards (the cheapest possible reader; not /dev/null, so the child
  pays the same pipe costs in both runs).
* **bare (pipe, idle reader)**: the pipe floor — the same pipe read exactly the
  way the supervisor reads it (1 MiB reads, a 5 ms pause after a read of ≥ 4 KiB)
  but with nothing done with the data. What the child pays for writing into a
  pipe at all (kernel page allocation and copy, on the child's side); no reader
  can go below it, so ``supervised / floor`` is the supervisor's own share.
* **supervised**: :class:`gswarm.supervisor.process.NodeProcess` — the path
  ``gswarm run`` uses — with the line splitter, the capture file (a real file in
  a temp folder, rotation at the default 50 MB), one ``OutputBatch`` event per
  chunk read (all its complete lines) on an :class:`~gswarm.events.EventBus`
  with a trivial subscriber (counts the lines of each batch), no console.
* Both in this one process run, alternating, ``--repeat`` times; the best wall
  time of each is compared. The supervisor's CPU is ``getrusage(RUSAGE_SELF)``
  (user + system) during the supervised runs, so the child's CPU is excluded.
* **supervised, no events**: the same without the ``OutputBatch`` events
  (split + capture only), to show what the bus path costs.
* **quiet**: a child printing one line every 5 s for ``--quiet-seconds``; the
  supervisor's CPU time divided by the wall time = % of one core.

The child writes realistic log lines (~80 bytes, like genrl's logger) with
``sys.stdout.write`` in a loop (Python's 8 KiB block buffering to a pipe).
Targets (issue #2): ratio ≤ 1.05, quiet CPU < 1 % of a core, peak RSS < 80 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gswarm.events import EventBus, OutputBatch
from gswarm.supervisor.capture import CaptureFile
from gswarm.supervisor.process import COALESCE_DELAY, COALESCE_MIN, F_SETPIPE_SZ, READ_SIZE, NodeProcess
from gswarm.supervisor.spec import LaunchSpec

CHILD = """import sys
w = sys.stdout.write
for i in range({n}):
    w(f"[2025-11-07 12:00:00,123][genrl.logging_utils.global_defs][INFO] - Training round: {{i}} stage: 0\\n")
"""
QUIET = "import sys, time\nfor i in range(int({s} // 5) + 1):\n    print('quiet', i, flush=True); time.sleep(min(5, {s}))\n"


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def bare_devnull(code: str) -> float:
    """Wall seconds for the child writing straight to /dev/null (no reader at all)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def bare(code: str) -> float:
    """Wall seconds for the child with a plain pipe drained and discarded."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    fd = p.stdout.fileno()  # type: ignore[union-attr]
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, READ_SIZE)  # same pipe size as the supervisor uses
    except OSError:
        pass
    while os.read(fd, 1 << 20):
        pass
    p.wait()
    return time.perf_counter() - t0


def bare_idle_reader(code: str) -> float:
    """Wall seconds for the child with the pipe read in the supervisor's pattern, data discarded."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    fd = p.stdout.fileno()  # type: ignore[union-attr]
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, READ_SIZE)
    except OSError:
        pass
    while True:
        data = os.read(fd, READ_SIZE)
        if not data:
            break
        if len(data) >= COALESCE_MIN:
            time.sleep(COALESCE_DELAY)
    p.wait()
    return time.perf_counter() - t0


async def supervised(code: str, folder: Path, events: bool = True) -> tuple[float, float, int]:
    """(wall s, supervisor CPU s, lines seen) for the child under NodeProcess (``events``: one
    OutputBatch per read on the bus, lines counted by the subscriber; without, counted per batch)."""
    bus = EventBus()
    count = [0]

    def sub(ev: object) -> None:
        if type(ev) is OutputBatch:
            count[0] += len(ev.texts)

    bus.subscribe(sub)
    cap = CaptureFile(folder / "output.log")
    spec = LaunchSpec(argv=(sys.executable, "-c", code), cwd=folder, env={}, mode="direct", generation="E6")
    c0, t0 = _cpu(), time.perf_counter()
    def per_batch(batch: object, ts: float) -> None:
        count[0] += len(batch)  # type: ignore[arg-type]

    proc = NodeProcess(spec, "bench", bus, time.time, capture=cap, publish_lines=events,
                       on_batch=None if events else per_batch)
    await proc.start()
    await proc.wait()
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    cap.close()
    return wall, cpu, count[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quiet-seconds", type=float, default=60.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    code = CHILD.format(n=args.lines)
    bares, pipes, floors, sups, noev = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="gswarm-bench-") as tmp:
        for i in range(args.repeat):
            bares.append(bare_devnull(code))
            pipes.append(bare(code))
            floors.append(bare_idle_reader(code))
            folder = Path(tmp) / f"run{i}"
            folder.mkdir()
            sups.append(asyncio.run(supervised(code, folder)))
            assert sups[-1][2] == args.lines, f"lost lines: {sups[-1][2]} != {args.lines}"
            (folder / "ne").mkdir()
            noev.append(asyncio.run(supervised(code, folder / "ne", events=False)))
            assert noev[-1][2] == args.lines
        qc0, qt0 = _cpu(), time.perf_counter()
        asyncio.run(supervised(QUIET.format(s=args.quiet_seconds), Path(tmp)))
        quiet_pct = 100 * (_cpu() - qc0) / (time.perf_counter() - qt0)
    best_bare, best_pipe, best_sup, best_floor = min(bares), min(pipes), min(s[0] for s in sups), min(floors)
    cpu_per_m = min(s[1] for s in sups) * 1_000_000 / args.lines
    result = {
        "lines": args.lines, "bare_wall_s": round(best_bare, 3), "supervised_wall_s": round(best_sup, 3),
        "ratio": round(best_sup / best_bare, 3), "bare_pipe_wall_s": round(best_pipe, 3),
        "no_events_wall_s": round(min(s[0] for s in noev), 3),
        "no_events_ratio": round(min(s[0] for s in noev) / best_bare, 3),
        "no_events_cpu_s_per_million_lines": round(min(s[1] for s in noev) * 1_000_000 / args.lines, 3),
        "ratio_vs_pipe": round(best_sup / best_pipe, 3), "pipe_floor_wall_s": round(best_floor, 3),
        "pipe_floor_ratio": round(best_floor / best_bare, 3), "ratio_vs_pipe_floor": round(best_sup / best_floor, 3), "supervisor_cpu_s_per_million_lines": round(cpu_per_m, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "quiet_seconds": args.quiet_seconds, "quiet_cpu_percent_of_core": round(quiet_pct, 3),
        "all_bare_s": [round(b, 3) for b in bares], "all_pipe_s": [round(b, 3) for b in pipes],
        "all_pipe_floor_s": [round(b, 3) for b in floors], "all_supervised_s": [round(s[0], 3) for s in sups],
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"child: {args.lines:,} lines of ~95 bytes, {os.cpu_count()} CPUs, best of {args.repeat}")
    print(f"bare (/dev/null)          {best_bare:8.3f} s")
    print(f"bare (plain pipe drain)   {best_pipe:8.3f} s")
    print(f"bare (pipe, idle reader)  {best_floor:8.3f} s   ratio {best_floor / best_bare:.3f} vs /dev/null: the pipe floor")
    print(f"supervised (NodeProcess)  {best_sup:8.3f} s   ratio {best_sup / best_bare:.3f} vs /dev/null (target ≤ 1.05), "
          f"{best_sup / best_pipe:.3f} vs pipe, {best_sup / best_floor:.3f} vs the pipe floor")
    print(f"supervisor CPU            {cpu_per_m:8.3f} s per million lines")
    print(f"  same without bus events: {result['no_events_wall_s']:.3f} s, ratio {result['no_events_ratio']:.3f}, "
          f"CPU {result['no_events_cpu_s_per_million_lines']:.3f} s per million lines")
    print(f"peak RSS                  {result['peak_rss_mb']:8.1f} MB  (target < 80)")
    print(f"quiet child {args.quiet_seconds:g} s         {quiet_pct:8.3f} % of one core  (target < 1)")


if __name__ == "__main__":
    main()
