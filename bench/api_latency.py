"""Latency of ``GET /api/v1/status`` under concurrent load from a local load generator.

Starts ``gswarm serve`` (a separate process, read-only) on 127.0.0.1 over a temporary
state directory holding one day of history (8,640 samples, 2,880 progress rows, 24 runs),
unless ``--url`` points at a running GSwarm. Then ``--total`` requests (default 2,000) are
sent by ``--concurrency`` workers (default 50) with httpx.AsyncClient and the p50/p90/p99/max
latencies (milliseconds) and the throughput are printed. Only 127.0.0.1 is ever contacted.

    .venv/bin/python bench/api_latency.py [--total 2000] [--concurrency 50] [--url http://127.0.0.1:8787]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from gswarm import events as ev
from gswarm.logs.store import Store


def fill(state_dir: Path, now: float, node: str = "bench") -> None:
    """One day of history for ``node`` ending at ``now``."""
    day = 86400.0
    batch: list[ev.Event] = []
    for h in range(24):
        t = now - day + h * 3600
        batch += [ev.ProcessStarted(node, t, 1000 + h, 1000 + h, ("python",), "E6", "direct", h + 1),
                  ev.StateChanged(node, t + 1, ev.NodeState.STARTING, ev.NodeState.RUNNING, "started")]
        if h < 23:
            batch += [ev.ProcessExited(node, t + 3500, 1000 + h, 1, None, 3500.0, h + 1),
                      ev.RestartScheduled(node, t + 3501, 5.0, ev.Category.CUDA_OOM, ev.Recovery.RESTART, 1)]
    for i in range(8640):
        batch.append(ev.ResourceSample(node, now - day + i * 10, {"cpu_percent": 50.0, "rss_bytes": 2 << 30,
                                                                    "host_mem_percent": 40.0, "gpu": []}))
    for i in range(2880):
        batch.append(ev.ProgressUpdate(node, now - day + i * 30, "round", round=i, advanced=True))
    store = Store(state_dir / "gswarm.db", now=now)
    store.write(sorted(batch, key=lambda e: e.ts))
    store.close()


def start_server(state_dir: Path) -> tuple[subprocess.Popen, str]:
    """``gswarm serve --port 0`` on 127.0.0.1; returns the process and its URL."""
    env = {**os.environ, "GSWARM_NODE_NAME": "bench"}
    proc = subprocess.Popen([sys.executable, "-m", "gswarm", "serve", "--host", "127.0.0.1", "--port", "0",
                             "--state-dir", str(state_dir)], stdout=subprocess.DEVNULL, env=env)
    api = state_dir / "run" / "serve.json"  # gswarm serve (read-only) never writes the live api.json
    deadline = time.monotonic() + 30
    while not api.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()  # never leave the server behind
            proc.wait(10)
            raise SystemExit("gswarm serve did not start")
        time.sleep(0.05)
    return proc, json.loads(api.read_text())["url"]


async def load(url: str, total: int, concurrency: int) -> tuple[list[float], float, int]:
    """Send ``total`` GETs of /api/v1/status from ``concurrency`` workers; (latencies s, wall s, errors)."""
    latencies: list[float] = []
    errors = 0
    remaining = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await client.get("/api/v1/status")  # warm up

        async def worker() -> None:
            nonlocal errors
            for _ in remaining:
                t0 = time.perf_counter()
                r = await client.get("/api/v1/status")
                latencies.append(time.perf_counter() - t0)
                errors += r.status_code != 200

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return latencies, wall, errors


def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile ``p`` (0-100) of already sorted values."""
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--total", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--url", help="measure a running GSwarm (127.0.0.1 only) instead of starting gswarm serve")
    args = ap.parse_args(argv)
    if args.total > 20000 or args.concurrency > 200:
        raise SystemExit("bounded load: --total <= 20000, --concurrency <= 200")
    proc = None
    with tempfile.TemporaryDirectory(prefix="gswarm-bench-") as tmp:
        url = args.url
        if url is None:
            fill(Path(tmp), time.time())
            proc, url = start_server(Path(tmp))
        elif not url.startswith(("http://127.0.0.1", "http://localhost")):
            raise SystemExit("only 127.0.0.1 is measured")
        server = psutil.Process(proc.pid) if proc is not None else None
        cpu0 = sum(server.cpu_times()[:2]) if server else 0.0
        try:
            lat, wall, errors = asyncio.run(load(url, args.total, args.concurrency))
            cpu = (sum(server.cpu_times()[:2]) - cpu0) / (args.total + 1) if server else None
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                proc.wait(20)
    lat.sort()
    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    print(f"GET /api/v1/status: {len(lat)} requests, {args.concurrency} concurrent, {errors} errors, "
          f"{len(lat) / wall:.0f} req/s")
    print(f"p50 {ms(pct(lat, 50))}  p90 {ms(pct(lat, 90))}  p99 {ms(pct(lat, 99))}  max {ms(lat[-1])}  "
          f"mean {ms(statistics.fmean(lat))}")
    if cpu is not None:
        print(f"server CPU per request {ms(cpu)} (the rest of the latency is queueing behind 50 workers and the "
              f"load generator's own CPU on the same machine; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
