"""The JSON log's compress/prune passes never overlap (found while taking node output out of the JSON log, #18).

``run()`` compresses rotated files in a worker thread; when the service is cancelled during that pass the thread
goes on, and the final flush's own pass used to compress the same file at the same time (ENOENT, a lost record)."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from pathlib import Path

from gswarm import events as ev
from gswarm.clock import SystemClock
from gswarm.logs.jsonlog import JsonLog, JsonLogService


async def test_a_pass_running_when_the_service_is_cancelled_is_waited_for_not_doubled(tmp_path: Path) -> None:
    bus = ev.EventBus()
    writer = JsonLog(tmp_path / "logs", max_bytes=600, backups=50)
    svc = JsonLogService(bus, SystemClock(), writer, flush_interval=0.01)
    real, entered, release = writer.compress, threading.Event(), threading.Event()
    active, peak, guard = [0], [0], threading.Lock()

    def compress() -> int:
        with guard:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            if not entered.is_set():
                entered.set()
                release.wait(5)  # the first pass is slow (a big file on a busy machine)
            return real()
        finally:
            with guard:
                active[0] -= 1

    writer.compress = compress  # type: ignore[method-assign]
    task = asyncio.create_task(svc.run())
    titles = [f"notice number {i:03d} " + "x" * 60 for i in range(40)]
    for t in titles:
        bus.publish(ev.Notice("n1", time.time(), "k", ev.Severity.INFO, t))  # now: retention keeps it
    for _ in range(500):
        if entered.is_set():
            break
        await asyncio.sleep(0.01)
    assert entered.is_set()
    threading.Timer(0.1, release.set).start()  # the worker's pass ends while the final pass waits for it
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert peak[0] == 1  # was 2: the final pass ran beside the cancelled one
    files = sorted((tmp_path / "logs").glob("gswarm.jsonl*"))
    assert not [p for p in files if p.name != "gswarm.jsonl" and not p.name.endswith(".gz")]  # every rotated file gzipped
    text = "".join((gzip.open(p, "rt") if p.name.endswith(".gz") else open(p)).read() for p in files)
    assert [t for t in titles if f'"message":"{t}"' in text] == titles  # no record lost
