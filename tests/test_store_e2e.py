"""End to end: the supervisor runs an emulated E4 node with faults; the store, ``gswarm status --json``
and ``gswarm logs --json --since … --category …`` must show exactly what happened."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gswarm import events as ev
from gswarm.clock import FakeClock
from gswarm.logs.store import StoreReader

pytestmark = pytest.mark.slow
MINE = ("gswarm.logs.store:create_service", "gswarm.monitor.sampler:create_service", "gswarm.monitor.progress:create_service")


async def until(pred, clock: FakeClock, timeout: float = 40.0) -> None:
    """Poll ``pred`` in real time, moving the fake clock 1 s per 20 ms so samplers and backoffs run."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        clock.advance(1.0)
        await asyncio.sleep(0.02)


def cli(*args: str) -> str:
    from gswarm.cli import status as status_cli

    app = typer.Typer()
    status_cli.register(app)
    res = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.stdout
    return res.stdout


async def test_emulated_node_with_faults_fills_the_store(tmp_path: Path) -> None:
    try:
        from gswarm.config import load_settings
        from gswarm.emulator.checkout import init_checkout
        from gswarm.runtime import Runtime
    except ImportError as exc:  # pragma: no cover - the runtime/emulator are other helpers' work
        pytest.skip(f"runtime or emulator not available: {exc}")
    checkout = init_checkout(tmp_path / "rl", "E4", logged_in=True)
    clock = FakeClock(start=time.time())
    state = tmp_path / "st"
    settings = load_settings({
        "rl_swarm_dir": checkout, "state_dir": state, "stop_timeout": 5, "sample_interval": 2.0, "node_name": "emu",
        "extra_env": {"GSWARM_EMU_PACE": "0.05", "GSWARM_EMU_FAULTS": "crash:cuda_oom@0.2#1,exit0@0.3#2",
                      "GSWARM_EMU_START_ROUND": "500"},
    }, env={})
    rt = Runtime(settings, clock=clock, services=MINE, install_signals=False)
    seen: list[ev.Event] = []
    rt.bus.subscribe(seen.append)
    task = asyncio.ensure_future(rt.run())
    try:
        await until(lambda: sum(isinstance(e, ev.ProcessStarted) for e in seen) >= 3 or task.done(), clock)
        assert not task.done(), task.result()
        await until(lambda: len({e.round for e in seen if isinstance(e, ev.ProgressUpdate) and e.advanced}) >= 2, clock)
        await until(lambda: any(isinstance(e, ev.ResourceSample) and e.data["cpu_percent"] is not None for e in seen), clock)
        rt.request("stop", "test", shutdown=True)
        assert await asyncio.wait_for(task, 30) == 0
    finally:
        if not task.done():
            rt.request("kill", "test", shutdown=True)
            await asyncio.wait_for(task, 30)

    r = StoreReader(state / "gswarm.db")
    runs = r.runs("emu")
    restarts = [e for e in seen if isinstance(e, ev.RestartScheduled)]
    assert len(runs) == sum(isinstance(e, ev.ProcessStarted) for e in seen) >= 3
    assert [x["pid"] for x in runs] == [e.pid for e in seen if isinstance(e, ev.ProcessStarted)]
    assert runs[0]["exit_code"] == 1 and runs[1]["exit_code"] == 0 and all(x["stopped_at"] for x in runs)
    assert [x["cause"] for x in runs[:2]] == ["cuda_oom", "clean_exit"]
    assert [x["cause"] for x in runs[:2]] == [e.cause.value for e in restarts[:2]]
    assert r.restarts_by_cause("emu") == {c: sum(e.cause.value == c for e in restarts) for c in {e.cause.value for e in restarts}}
    samples = r.samples("emu", limit=100_000)
    assert len(samples) == sum(isinstance(e, ev.ResourceSample) for e in seen) and any(s["rss_bytes"] for s in samples)
    prog = r.progress("emu", limit=100_000)
    assert [(p["kind"], p["round"], p["advanced"]) for p in prog] == [
        (e.kind, e.round, e.advanced) for e in seen if isinstance(e, ev.ProgressUpdate)]
    per_round = Counter((p["kind"], p["round"]) for p in prog if p["kind"] in ("join", "round"))
    assert max(per_round.values()) <= len(runs)  # stdout and logs/swarm_launcher.log deduplicated
    assert prog and prog[-1]["animal"] and prog[-1]["peer_id"] and min(p["round"] or 500 for p in prog) >= 500
    incidents = r.incidents("emu")
    assert [i["category"] for i in incidents] == [e.category.value for e in seen if isinstance(e, ev.Incident)]

    st = json.loads(cli("status", "--json", "--state-dir", str(state), "--node", "emu"))
    assert st["supervisor"]["alive"] is False and st["state"] == r.events("emu", kind="state", desc=True, limit=1)[0]["state"]
    assert st["restarts_24h"] == {"total": len(restarts), "by_cause": r.restarts_by_cause("emu")}
    latest = r.latest_progress("emu")
    assert (st["progress"]["round"], st["progress"]["animal"], st["progress"]["last_advance"]) == (
        latest["round"], latest["animal"], r.last_advance("emu"))
    assert st["resources"]["ts"] == samples[-1]["ts"] and st["generation"] == "E4"
    cat = incidents[0]["category"]
    logs = [json.loads(x) for x in cli("logs", "--json", "--since", "1h", "--category", cat, "--state-dir", str(state)).splitlines()]
    assert [(x["kind"], x["ts_unix"], x["node"]) for x in logs] == [
        ("incident", round(i["ts"], 6), "emu") for i in incidents if i["category"] == cat]
    out = [json.loads(x) for x in cli("logs", "--json", "--category", "output", "--grep", "Starting round",
                                      "--state-dir", str(state)).splitlines()]
    assert [x["message"] for x in out] == [t for e in seen if isinstance(e, ev.OutputBatch) for t in e.texts if "Starting round" in t]
