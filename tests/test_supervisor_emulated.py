"""Every generation's emulated checkout supervised end to end, in direct and in script mode.

First start crashes with a classifiable CUDA OOM (emulator fault ``#1``), the
watcher classifies it, schedules the backoff (FakeClock, no real wait), restarts,
the second run trains; then a graceful stop leaves nothing of the node's group.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gswarm.clock import FakeClock
from gswarm.config import load_settings
from gswarm.emulator.checkout import init_checkout
from gswarm.events import Event, Incident, OutputBatch, ProcessStarted, RestartScheduled
from gswarm.runtime import Runtime
from gswarm.supervisor._procgroup import live_members
from tests.helpers import until

pytestmark = pytest.mark.slow
ROUND_MARKERS = ("Training round:", "Joining round:", "Starting round", "Starting new round")


@pytest.mark.parametrize("mode", ["direct", "script"])
@pytest.mark.parametrize("gen", ["E0", "E1", "E2", "E3", "E4", "E5", "E6"])
async def test_emulated_generation_end_to_end(tmp_path: Path, gen: str, mode: str) -> None:
    checkout = init_checkout(tmp_path / "rl", gen, logged_in=True)
    clock = FakeClock()
    settings = load_settings({
        "rl_swarm_dir": checkout, "state_dir": tmp_path / "st", "via_script": mode == "script", "stop_timeout": 5,
        "extra_env": {"GSWARM_EMU_PACE": "0.02", "GSWARM_EMU_FAULTS": "crash:cuda_oom@0.2#1"},
    }, env={})
    rt = Runtime(settings, clock=clock, services=(), install_signals=False)
    events: list[Event] = []
    rt.bus.subscribe(events.append)
    task = asyncio.ensure_future(rt.run())
    try:
        await until(lambda: any(isinstance(e, RestartScheduled) for e in events) or task.done())
        assert not task.done(), task.result()
        assert rt.snapshot()["generation"] == gen and rt.snapshot()["mode"] == mode
        clock.advance(max(e.delay for e in events if isinstance(e, RestartScheduled)) + 1)
        await until(lambda: sum(isinstance(e, ProcessStarted) for e in events) == 2)
        n = len(events)
        await until(lambda: any(isinstance(e, OutputBatch) and any(m in t for t in e.texts for m in ROUND_MARKERS)
                                for e in events[n:]))
        pgid = rt.snapshot()["pgid"]
        rt.request("stop", "test", shutdown=True)
        assert await asyncio.wait_for(task, 30) == 0
    finally:
        if not task.done():
            rt.request("kill", "test", shutdown=True)
            await asyncio.wait_for(task, 30)
    incidents = [e for e in events if isinstance(e, Incident)]
    assert incidents and incidents[0].category.value in ("cuda_oom", "unknown_crash")
    assert live_members(pgid) == []
    log = (rt.state_dir / "logs" / "default" / "output.log").read_text()
    assert "CUDA out of memory" in log and "gswarm: started" in log
