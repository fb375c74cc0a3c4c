"""Progress is state, not a stream (issue #18): a flood of progress lines costs a few rows, and the latest round
is still exact in the store, ``gswarm status`` and the API's node view."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from pathlib import Path

from gswarm import events as ev
from gswarm.clock import FakeClock, SystemClock
from gswarm.logs._coalesce import ProgressCoalescer
from gswarm.logs._jsonread import LogFilter, iter_records
from gswarm.logs.jsonlog import JsonLog, JsonLogService
from gswarm.logs.store import StoreReader, StoreService
from gswarm.monitor.progress import ProgressService, ProgressTracker
from gswarm.monitor.status import status
from gswarm.supervisor.process import NodeProcess
from gswarm.supervisor.spec import LaunchSpec

T0 = 1_700_000_000.0
FLOOD = "import sys\nw = sys.stdout.write\nfor i in range({n}):\n    w(f'[t][genrl][INFO] - Starting round: {{i}}/1000000.\\n')\n"


def upd(rnd: int, ts: float, stage: int | None = None, advanced: bool = True, kind: str = "round") -> ev.ProgressUpdate:
    return ev.ProgressUpdate("n1", ts, kind, rnd, stage, 1_000_000, None, None, advanced)


def test_tracker_keeps_only_the_last_round_of_a_flood_chunk() -> None:
    """Regression: every line of a chunk became an update (and an event, a JSON record and a row)."""
    t = ProgressTracker("n1", "E4")
    joined = "\n".join(f"[t][genrl][INFO] - Starting round: {i}/1000000." for i in range(10_000))
    got = t.feed_chunk(joined, T0)
    assert [(u.kind, u.round, u.round_total, u.advanced) for u in got] == [("round", 9999, 1_000_000, True)]
    assert t.round == 9999 and t.best == (9999, 0, 0)


def test_coalescer_one_row_per_second_plus_held_latest_and_stage_changes() -> None:
    c = ProgressCoalescer(window=1.0, stage_gap=0.2)
    stored = c.offer(upd(1, T0), 0.0)
    for i in range(2, 1000):  # 999 advances within 0.999 s: held
        stored += c.offer(upd(i, T0 + i / 1000, advanced=i == 2), i / 1000)
    assert [u.round for u in stored] == [1] and c.held == 1
    assert [(u.round, u.advanced) for u in c.due(0.999)] == []
    assert [(u.round, u.advanced) for u in c.due(1.0)] == [(999, True)]  # advanced kept from a held update
    # a stage change is written at once, but at most one per stage_gap
    assert [u.stage for u in c.offer(upd(5, T0 + 1.05, stage=1), 1.05)] == [1]
    assert c.offer(upd(5, T0 + 1.1, stage=2), 1.1) == []
    assert [u.stage for u in c.offer(upd(5, T0 + 1.3, stage=0), 1.3)] == [0]
    assert c.offer(upd(5, T0 + 1.4, stage=0), 1.4) == []  # same stage: held
    assert [(u.node, u.stage) for u in c.take(1.5, ["other"])] == []
    assert [(u.node, u.stage) for u in c.take(1.5, ["n1"])] == [("n1", 0)] and c.held == 0


async def test_store_service_coalesces_and_writes_the_last_value_before_the_exit(tmp_path: Path) -> None:
    bus, clock = ev.EventBus(), FakeClock(start=T0)
    svc = StoreService(bus, clock, tmp_path / "gswarm.db", node="n1")
    task = asyncio.create_task(svc.run())
    await asyncio.sleep(0)
    for i in range(5000):  # 5,000 round advances in 2.5 s of the clock
        bus.publish(upd(i, clock.time()))
        if i % 100 == 99:
            await clock.run_for(0.05, step=0.05)
    bus.publish(ev.ProcessExited("n1", clock.time(), 42, 0, None, 3.0))
    await clock.run_for(0.01, step=0.01)
    reader = StoreReader(tmp_path / "gswarm.db")
    rows = reader.progress("n1", limit=10_000)
    assert 3 <= len(rows) <= 4 and rows[-1]["round"] == 4999  # one per second + the last value before the exit
    assert reader.latest_progress("n1")["round"] == 4999 and reader.last_advance("n1") == rows[-1]["ts"]
    exit_row = reader.events("n1", kind="exit")[0]
    assert exit_row["ts"] >= rows[-1]["ts"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(reader.progress("n1", limit=10_000)) == len(rows)


async def test_store_shutdown_writes_the_held_latest_round(tmp_path: Path) -> None:
    bus, clock = ev.EventBus(), FakeClock(start=T0)
    svc = StoreService(bus, clock, tmp_path / "gswarm.db", node="n1")
    task = asyncio.create_task(svc.run())
    await asyncio.sleep(0)
    for i in range(50):
        bus.publish(upd(i, clock.time() + i / 100))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [r["round"] for r in StoreReader(tmp_path / "gswarm.db").progress("n1")] == [0, 49]


async def test_real_flood_keeps_a_few_rows_and_status_shows_the_exact_round(tmp_path: Path) -> None:
    """A real child prints 30,000 ``Starting round: N/…`` lines through NodeProcess, progress, store and JSON log."""
    n = 30_000
    bus, clock = ev.EventBus(), SystemClock()
    store = StoreService(bus, clock, tmp_path / "gswarm.db", node="n1")
    jsonlog = JsonLogService(bus, clock, JsonLog(tmp_path / "logs"))
    ProgressService(bus, clock, "n1", None, "E4")
    tasks = [asyncio.create_task(store.run()), asyncio.create_task(jsonlog.run())]
    spec = LaunchSpec(argv=(sys.executable, "-c", FLOOD.format(n=n)), cwd=tmp_path, env={}, mode="direct", generation="E4")
    from gswarm.supervisor.capture import CaptureFile, capture_path

    capture = CaptureFile(capture_path(tmp_path, "n1"))  # the node's output is kept there (issue #18)
    proc = NodeProcess(spec, "n1", bus, time.time, capture=capture)
    t0 = time.monotonic()
    await proc.start()
    bus.publish(ev.ProcessStarted("n1", time.time(), proc.pid, proc.pid, spec.argv, "E4", "direct"))
    await proc.wait()
    capture.close()
    bus.publish(ev.ProcessExited("n1", time.time(), proc.pid, 0, None, time.monotonic() - t0))
    seconds = time.monotonic() - t0
    await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    reader = StoreReader(tmp_path / "gswarm.db")
    rows = reader.progress("n1", limit=100_000)
    assert 1 <= len(rows) <= int(seconds) + 3, (len(rows), seconds)  # was one row per line
    doc = status(reader, tmp_path, "n1", time.time())
    assert (doc["progress"]["round"], doc["progress"]["round_total"]) == (n - 1, 1_000_000)
    from gswarm.api.nodeview import summary

    assert summary(reader, "n1", None, time.time())["progress"]["round"] == n - 1
    recs = list(iter_records(tmp_path / "logs"))
    progress = [r for r in recs if r["category"] == "progress"]
    assert 1 <= len(progress) < 500 and progress[-1]["data"]["round"] == n - 1  # one per chunk at most, not per line
    # the node's lines are kept once, in the capture; the JSON log holds GSwarm's records only (issue #18)
    assert sum(r["kind"] == "output" for r in recs) == 0
    assert capture_path(tmp_path, "n1").read_bytes().count(b" > [") == n
    from gswarm.logs._merged import merged_records  # and `gswarm logs` shows each of them, once

    shown = [r for r in merged_records(tmp_path / "logs", LogFilter()) if r["kind"] == "output"]
    assert len(shown) == n and shown[-1]["message"] == f"[t][genrl][INFO] - Starting round: {n - 1}/1000000."
    assert not [r for r in recs if LogFilter().match(r) and r["category"] == "progress"]  # gswarm logs hides them


def test_json_log_keeps_only_advances_and_identity_progress(tmp_path: Path) -> None:
    bus = ev.EventBus()
    svc = JsonLogService(bus, FakeClock(start=T0), JsonLog(tmp_path))
    bus.publish(upd(7, T0))
    bus.publish(dataclasses.replace(upd(7, T0 + 1), advanced=False, kind="waiting"))
    bus.publish(dataclasses.replace(upd(7, T0 + 2), advanced=False, kind="reward"))
    bus.publish(ev.ProgressUpdate("n1", T0 + 3, "hello", None, None, None, "fierce silent owl", "QmPeer", False))
    assert svc.flush() == 2
    assert [(r["data"]["round"], r["message"]) for r in iter_records(tmp_path)] == [
        (7, "round round=7"), (None, "hello")]  # a missing round or stage is left out, never "None"
