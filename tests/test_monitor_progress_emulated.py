"""The progress service on every emulated generation, supervised for real (stdout + the node's log files)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gswarm import events as ev
from gswarm.clock import FakeClock

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("gen", ["E0", "E1", "E2", "E3", "E4", "E5", "E6"])
async def test_rounds_identity_and_no_duplicates(tmp_path: Path, gen: str) -> None:
    try:
        from gswarm.config import load_settings
        from gswarm.emulator.checkout import init_checkout
        from gswarm.emulator.node import animal_of
        from gswarm.runtime import Runtime
    except ImportError as exc:  # pragma: no cover - other helpers' modules
        pytest.skip(f"runtime or emulator not available: {exc}")
    checkout = init_checkout(tmp_path / "rl", gen, logged_in=True)
    clock = FakeClock(start=time.time())
    settings = load_settings({"rl_swarm_dir": checkout, "state_dir": tmp_path / "st", "stop_timeout": 5, "node_name": "emu",
                              "extra_env": {"GSWARM_EMU_PACE": "0.02", "GSWARM_EMU_START_ROUND": "1000"}}, env={})
    rt = Runtime(settings, clock=clock, services=("gswarm.monitor.progress:create_service",), install_signals=False)
    seen: list[ev.ProgressUpdate] = []
    rt.bus.subscribe(lambda e: seen.append(e) if isinstance(e, ev.ProgressUpdate) else None)
    task = asyncio.ensure_future(rt.run())
    end = time.monotonic() + 30
    try:
        while len({e.round for e in seen if e.advanced}) < 3 and time.monotonic() < end and not task.done():
            clock.advance(0.5)  # the progress service polls the log files on the fake clock
            await asyncio.sleep(0.02)
    finally:
        rt.request("stop", "test", shutdown=True)
        await asyncio.wait_for(task, 30)
    joins = [(e.round, e.stage) for e in seen if e.kind == "join"]
    assert joins[:3] == ([(1000, 0), (1001, 0), (1002, 0)] if gen in ("E0", "E1", "E2") else [(1000, None), (1001, None), (1002, None)])
    assert [e.advanced for e in seen if e.kind == "join"][:3] == [True, True, True]
    keys = [(e.kind, e.round, e.stage, e.detail) for e in seen if e.kind in ("join", "round", "stage", "stage_done", "waiting")]
    assert len(keys) == len(set(keys))  # stdout and the log file give each fact once
    last = seen[-1]
    assert last.peer_id and last.peer_id.startswith("Qm") and last.animal == animal_of(last.peer_id)
    if gen in ("E3", "E4", "E5", "E6"):
        assert {e.round_total for e in seen if e.kind == "round"} == {1_000_000}
    if gen == "E5":
        assert any(e.kind == "bet" and "tokens on choice - B" in e.detail for e in seen)
