"""Sampling overhead: CPU time GSwarm spends on resource sampling, as % of one core.

Usage: ``python bench/sampling.py [--samples 200] [--children 8]``

Starts a node-like process tree (one parent with ``--children`` sleeping children),
then measures this process's CPU time (``time.process_time``) for

* ``off``: an asyncio loop that only wakes every period (what the supervisor does anyway);
* ``on``: the same loop taking one :class:`gswarm.monitor.sampler.Sampler` sample per wake-up,

and reports CPU seconds per sample and the implied CPU % of one core at the default
10 s period (``settings.sample_interval``). GPU sampling is included when NVML is present.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gswarm.monitor.sampler import Sampler

CHILD = ("import subprocess,sys,time\n"
         "kids=[subprocess.Popen([sys.executable,'-c','import time; time.sleep(600)']) for _ in range(int(sys.argv[1]))]\n"
         "print('ready', flush=True); time.sleep(600)")


async def _loop(n: int, sample) -> float:
    t0 = time.process_time()
    for _ in range(n):
        if sample is not None:
            sample()
        await asyncio.sleep(0)
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--children", type=int, default=8)
    ap.add_argument("--period", type=float, default=10.0, help="sampling period to express the cost at, seconds")
    args = ap.parse_args()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(args.children)], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        proc.stdout.readline()
        with tempfile.TemporaryDirectory() as tmp:
            s = Sampler(Path.cwd(), Path(tmp))
            s.sample(proc.pid)  # warm-up: psutil objects cached, NVML initialised
            off = asyncio.run(_loop(args.samples, None))
            on = asyncio.run(_loop(args.samples, lambda: s.sample(proc.pid)))
        per = (on - off) / args.samples
        print(f"process tree: {args.children + 1} processes; GPU sampling: {'yes' if s.gpu.sample([]) else 'no (' + (s.gpu.reason or 'none') + ')'}")
        print(f"CPU per sample: {per * 1000:.2f} ms (on {on:.3f} s, off {off:.3f} s for {args.samples} samples)")
        print(f"overhead at a {args.period:g} s period: {100 * per / args.period:.3f} % of one core")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


if __name__ == "__main__":
    main()
