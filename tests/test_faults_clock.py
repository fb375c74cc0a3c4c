"""Issue #13 case 5: a wall-clock step changes no decision (injected FakeClock whose wall time jumps ±2 h
while its monotonic time advances normally; real node processes).

Before the fix a +2 h step made the health check restart a node that advanced every 40 s as "stalled: no
advance for 120 min", the crash-loop window saw failures 2 h apart (no FATAL, restarts forever) and after a
−2 h step the uptime was negative."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

from gswarm.api.nodeview import readiness
from gswarm.clock import FakeClock, SteadyWall
from gswarm.config import load_settings
from gswarm.events import Notice, NodeState, ProcessStarted, ProgressUpdate, StateChanged
from gswarm.runtime import Runtime
from gswarm.supervisor.spec import LaunchSpec
from tests.helpers import until

ROUNDS = """
import sys, time
path, last = sys.argv[1], None
while True:
    try:
        n = open(path).read()
    except FileNotFoundError:
        n = ""
    if n and n != last:
        last = n
        print(f"[2025-07-27 16:18:15,125][genrl.logging_utils.global_defs][INFO] - Starting round: {n}/1000000.", flush=True)
    time.sleep(0.01)
"""


class _Rng(random.Random):
    def random(self) -> float:  # noqa: D401 - no jitter
        return 1.0


def _runtime(tmp: Path, clock: FakeClock, argv: tuple[str, ...], services: tuple[str, ...], **flags) -> tuple[Runtime, list]:
    settings = load_settings({"state_dir": tmp / "st", "rl_swarm_dir": tmp, **flags}, env={})
    spec = LaunchSpec(argv=argv, cwd=tmp, env={}, mode="direct", generation="E6")
    rt = Runtime(settings, clock=clock, services=services, install_signals=False, spec_factory=lambda: spec, rng=_Rng())
    events: list = []
    rt.bus.subscribe(events.append)
    return rt, events


def test_steady_wall_ignores_steps() -> None:
    clock = FakeClock(1_700_000_000.0)
    steady = SteadyWall(clock)
    clock.advance(10)
    clock.step_wall(7200)
    assert (clock.time(), clock.monotonic(), steady()) == (1_700_007_210.0, 10.0, 1_700_000_010.0)
    assert steady.of(clock.time() - 3) == 1_700_000_007.0  # an event read 3 s ago
    clock.step_wall(-14400)
    assert steady() == 1_700_000_010.0 and clock.time() == 1_699_992_810.0


async def test_healthy_node_survives_plus_and_minus_two_hour_steps(tmp_path: Path) -> None:
    clock = FakeClock()
    counter = tmp_path / "round"
    rt, events = _runtime(tmp_path, clock, (sys.executable, "-c", ROUNDS, str(counter)),
                          ("gswarm.monitor.progress:create_service", "gswarm.monitor.health:create_service"))
    task = asyncio.ensure_future(rt.run())
    await until(lambda: any(isinstance(e, ProcessStarted) for e in events))
    started_mono = clock.monotonic()
    uptimes, idles, ready = [], [], []
    stalled = lambda: [e.body for e in events if isinstance(e, Notice) and e.kind == "stalled"]  # noqa: E731
    for n in range(1, 7):  # one round every 40 s; the wall clock jumps +2 h after round 2, -4 h after round 4
        counter.write_text(str(n))
        await until(lambda: any(isinstance(e, ProgressUpdate) and e.round == n for e in events) or stalled())
        assert stalled() == []  # before the fix: ['no round/stage advance for 120 min (limit 60 min)']
        if n == 2:
            clock.step_wall(+7200)
        if n == 4:
            clock.step_wall(-14400)
        await clock.run_for(40, step=10)  # the health check runs every 30 s
        snap = rt.snapshot()
        uptimes.append(snap["uptime"])
        idles.append(snap["idle"])
        last = max(e.ts for e in events if isinstance(e, ProgressUpdate))  # wall, as the store keeps it
        ready.append(readiness({**snap, "last_advance": last}, clock.time(), 3600.0))
    for _ in range(20):
        await asyncio.sleep(0.01)  # let a (wrong) stall command reach the watcher
    stalls = [e for e in events if isinstance(e, Notice) and e.kind == "stalled"]
    states = [e.new for e in events if isinstance(e, StateChanged)]
    assert stalls == [] and NodeState.STALLED not in states and NodeState.STOPPING not in states
    assert sum(isinstance(e, ProcessStarted) for e in events) == 1
    assert uptimes == [40.0 * k for k in range(1, 7)]  # monotonic seconds, never -7154.8
    assert idles == [40.0] * 6  # seconds without an advance: the steps do not show
    assert ready == [(True, "running; no progress for 40 s (stall timeout 3600 s)")] * 6  # /readyz
    assert rt.snapshot()["uptime"] == clock.monotonic() - started_mono == 240.0
    rt.request("stop", "test", shutdown=True)
    assert await asyncio.wait_for(task, 10) == 0
    print(f"stall alerts under ±2 h steps: {len(stalls)}; uptimes: {uptimes}")


async def test_crash_loop_window_is_not_stretched_by_a_step(tmp_path: Path) -> None:
    """3 failures within 600 s → FATAL, although the wall clock jumps +2 h before each restart."""
    clock = FakeClock()
    rt, events = _runtime(tmp_path, clock, (sys.executable, "-c", "import sys; sys.exit(1)"), (),
                          backoff_initial=5, backoff_max=5, crash_loop_max=3, crash_loop_window=600)
    task = asyncio.ensure_future(rt.run())
    starts = lambda: sum(isinstance(e, ProcessStarted) for e in events)  # noqa: E731
    for _ in range(6):
        await until(lambda: task.done() or rt.snapshot()["state"] == "BACKOFF")
        if task.done():
            break
        clock.step_wall(+7200)
        n = starts()
        clock.advance(5)
        await until(lambda: starts() > n or task.done())
    if not task.done():
        rt.request("stop", "test", shutdown=True)
        await asyncio.wait_for(task, 10)
        raise AssertionError(f"no FATAL after {starts()} starts: the crash-loop window was stretched by the steps")
    code = task.result()
    assert code == 6 and rt.snapshot()["state"] == "FATAL"
    assert starts() == 3 and "3 failures within 600s" in rt.snapshot()["fatal_reason"]
    print(f"starts before FATAL under +2 h steps: {starts()}")


def test_status_of_an_open_run_never_shows_negative_uptime(tmp_path: Path) -> None:
    """``gswarm status`` reads the store from another process (no monotonic reference): after a −2 h step
    the open run's uptime is 0, not −7154.8 s."""
    from gswarm.logs.store import Store, StoreReader
    from gswarm.monitor.status import status

    t0 = 1_700_000_000.0
    store = Store(tmp_path / "gswarm.db", now=t0, node="n1")
    store.write([ProcessStarted("n1", t0, 10, 10, ("python",), "E6", "direct", 1)])
    store.close()
    from gswarm.supervisor.lock import CheckoutLock

    lock = CheckoutLock(tmp_path, tmp_path / "checkout")  # a live supervisor: the run is open
    lock.acquire()
    reader = StoreReader(tmp_path / "gswarm.db")
    try:
        assert status(reader, tmp_path, "n1", t0 + 45.25)["uptime"] == 45.25
        assert status(reader, tmp_path, "n1", t0 - 7154.8)["uptime"] == 0.0
    finally:
        reader.close()
        lock.release()
