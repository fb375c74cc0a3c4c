"""The read-only event stream (`gswarm serve`) yields one poll's store rows, JSON-log records and node lines in
time order (newcomer trial of #18: traceback lines arrived after the exit, incident and restart they caused)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gswarm import events as ev
from gswarm.api.stream import StorePoller
from gswarm.logs.jsonlog import JsonLog, records_of
from gswarm.supervisor.capture import CaptureFile, capture_path
from gswarm.supervisor.stream import Batch

T = 1_765_000_000.0


class _Source:
    def __init__(self, state_dir: Path, rows: list[dict[str, Any]]) -> None:
        self.state_dir, self.rows = state_dir, rows

    async def db(self, fn: Any, *args: Any) -> Any:
        if fn.__name__ == "_max_ids":
            return {}
        out, self.rows = self.rows, []
        return out


async def test_one_poll_is_yielded_in_time_order(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir(parents=True)
    source = _Source(tmp_path, [{"type": "incident", "ts": T + 3.0}, {"type": "restart", "ts": T + 4.0}])
    poller = StorePoller(source)
    await poller.prime()
    cap = CaptureFile(capture_path(tmp_path, "n1"))
    cap.write_batch(Batch(["Traceback (most recent call last):", "RuntimeError: boom"],
                          ["Traceback (most recent call last):", "RuntimeError: boom"]), T + 1.0, 7)
    cap.close()
    JsonLog(tmp_path / "logs").write(records_of(ev.ProcessExited("n1", T + 2.0, 7, 1, None, 5.0)))
    stopping = asyncio.Event()
    got: list[tuple[str, float]] = []
    async for item in poller.items(0.01, 60.0, stopping):
        if item is not None:
            got.append((item.get("kind") or item["type"], item.get("ts", item.get("ts_unix"))))
        if len(got) >= 5:
            stopping.set()
    poller.close()
    assert got == [("output", T + 1.0), ("output", T + 1.0), ("exit", T + 2.0), ("incident", T + 3.0), ("restart", T + 4.0)]
