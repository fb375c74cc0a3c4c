"""Watcher + Runtime with real children and a FakeClock: backoff, crash loop, commands, maintenance."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

import pytest

from gswarm import maintenance
from gswarm.clock import FakeClock
from gswarm.config import load_settings
from gswarm.errors import LockError, NodeFatal
from gswarm.events import Event, NodeState, Notice, ProcessExited, ProcessStarted, RestartScheduled, StateChanged
from gswarm.runtime import Command, Runtime
from gswarm.supervisor.spec import LaunchSpec
from tests.helpers import until


class FixedRng(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:  # noqa: D401 - the injected jitter draw
        return self.value


def make_rt(tmp: Path, code: str, clock: FakeClock, **flags) -> tuple[Runtime, list[Event]]:
    settings = load_settings({"state_dir": tmp / "state", "rl_swarm_dir": tmp, **flags}, env={})
    spec = LaunchSpec(argv=(sys.executable, "-c", code), cwd=tmp, env={}, mode="direct", generation="E6")
    rt = Runtime(settings, clock=clock, services=(), install_signals=False, spec_factory=lambda: spec, rng=FixedRng(0.5))
    events: list[Event] = []
    rt.bus.subscribe(events.append)
    return rt, events


async def test_backoff_delays_and_crash_loop_fatal(tmp_path: Path, fake_clock: FakeClock) -> None:
    rt, events = make_rt(tmp_path, "import sys; sys.exit(1)", fake_clock, backoff_initial=5, backoff_max=300,
                         backoff_factor=2, crash_loop_max=4, crash_loop_window=600)
    task = asyncio.ensure_future(rt.run())
    for n in range(1, 4):
        await until(lambda: sum(isinstance(e, RestartScheduled) for e in events) == n)
        delay = [e for e in events if isinstance(e, RestartScheduled)][-1].delay
        assert rt.snapshot()["state"] == "BACKOFF" and rt.snapshot()["next_restart_at"] == fake_clock.time() + delay
        fake_clock.advance(delay - 0.01)
        await asyncio.sleep(0.05)
        assert sum(isinstance(e, ProcessStarted) for e in events) == n  # not restarted before the deadline
        fake_clock.advance(0.01)
    code = await asyncio.wait_for(task, 10)
    assert code == NodeFatal.exit_code
    assert [e.delay for e in events if isinstance(e, RestartScheduled)] == [2.5, 5.0, 10.0]  # 5*2^n * rand 0.5
    assert rt.snapshot()["state"] == "FATAL" and "failures" in rt.snapshot()["fatal_reason"]
    exits = [e for e in events if isinstance(e, ProcessExited)]
    assert len(exits) == 4 and all(e.exit_code == 1 for e in exits)


async def test_stop_command_and_snapshot(tmp_path: Path, fake_clock: FakeClock) -> None:
    rt, events = make_rt(tmp_path, "import time; print('up', flush=True); time.sleep(60)", fake_clock)
    task = asyncio.ensure_future(rt.run())
    await until(lambda: rt.snapshot()["state"] == "RUNNING")
    snap = rt.snapshot()
    assert snap["pid"] and snap["pgid"] == snap["pid"] and snap["generation"] == "E6" and snap["mode"] == "direct"
    rt.commands.put_nowait(Command("stop", "test", shutdown=True))
    assert await asyncio.wait_for(task, 10) == 0
    states = [(e.old, e.new) for e in events if isinstance(e, StateChanged)]
    assert states[-2:] == [(NodeState.RUNNING, NodeState.STOPPING), (NodeState.STOPPING, NodeState.STOPPED)]


async def test_restart_command_then_clean_exit_stops(tmp_path: Path, fake_clock: FakeClock) -> None:
    marker = tmp_path / "runs"
    code = f"import pathlib,time; p=pathlib.Path({str(marker)!r}); n=len(p.read_text()) if p.exists() else 0; p.write_text('x'*(n+1)); time.sleep(60 if n == 0 else 0)"
    rt, events = make_rt(tmp_path, code, fake_clock, restart_on_clean_exit=False)
    task = asyncio.ensure_future(rt.run())
    await until(lambda: marker.exists())
    rt.request("restart", "test")
    assert await asyncio.wait_for(task, 10) == 0  # 2nd run exits 0 → STOPPED, gswarm run ends
    assert marker.read_text() == "xx" and rt.snapshot()["state"] == "STOPPED"
    assert not any(isinstance(e, RestartScheduled) for e in events)


async def test_maintenance_window_delays_restart(tmp_path: Path, fake_clock: FakeClock) -> None:
    rt, events = make_rt(tmp_path, "import sys; sys.exit(2)", fake_clock, backoff_jitter=False, backoff_initial=1)
    maintenance.set_window(rt.state_dir, fake_clock.time() + 100)
    task = asyncio.ensure_future(rt.run())
    await until(lambda: any(isinstance(e, RestartScheduled) for e in events))
    fake_clock.advance(50)
    await asyncio.sleep(0.1)
    assert sum(isinstance(e, ProcessStarted) for e in events) == 1 and rt.snapshot()["state"] == "BACKOFF"
    held = [e for e in events if isinstance(e, Notice) and e.kind == "maintenance"]
    assert len(held) == 1 and held[0].title.startswith("restart held: maintenance window until ")
    fake_clock.advance(51)
    await until(lambda: sum(isinstance(e, ProcessStarted) for e in events) == 2)
    rt.request("stop", "test", shutdown=True)  # RUNNING or already BACKOFF again: either way it ends
    assert await asyncio.wait_for(task, 10) == 0


async def test_second_runtime_on_same_checkout_is_refused(tmp_path: Path, fake_clock: FakeClock) -> None:
    rt, _ = make_rt(tmp_path, "import time; time.sleep(60)", fake_clock)
    rt2, _ = make_rt(tmp_path, "import time; time.sleep(60)", fake_clock)
    task = asyncio.ensure_future(rt.run())
    await until(lambda: rt.snapshot()["state"] == "RUNNING")
    with pytest.raises(LockError, match=r"another gswarm run \(pid \d+\) already supervises"):
        await rt2.run()
    rt.request("kill", "test", shutdown=True)
    assert await asyncio.wait_for(task, 10) == 0


async def test_second_sigint_during_graceful_stop_kills_now(tmp_path: Path, fake_clock: FakeClock) -> None:
    import os
    import signal as sig

    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    rt, events = make_rt(tmp_path, code, fake_clock, stop_timeout=60)
    rt.install_signals = True
    task = asyncio.ensure_future(rt.run())
    await until(lambda: rt.snapshot()["state"] == "RUNNING")
    await asyncio.sleep(0.3)  # let the child install its SIGTERM handler
    os.kill(os.getpid(), sig.SIGINT)  # handler only enqueues: graceful stop (the child ignores TERM)
    await until(lambda: rt.snapshot()["state"] == "STOPPING")
    await asyncio.sleep(0.2)
    assert not task.done()
    os.kill(os.getpid(), sig.SIGINT)  # second Ctrl-C: kill now
    assert await asyncio.wait_for(task, 10) == 0
    (exited,) = [e for e in events if isinstance(e, ProcessExited)]
    assert exited.signal == sig.SIGKILL


async def test_stalled_command_stops_and_policy_restarts(tmp_path: Path, fake_clock: FakeClock) -> None:
    from gswarm.events import Category, Incident

    rt, events = make_rt(tmp_path, "import time; print('up', flush=True); time.sleep(60)", fake_clock)
    task = asyncio.ensure_future(rt.run())
    await until(lambda: rt.snapshot()["state"] == "RUNNING")
    rt.request("stalled", "health: no progress for 1200s")
    await until(lambda: any(isinstance(e, RestartScheduled) for e in events))
    states = [e.new for e in events if isinstance(e, StateChanged)]
    assert states[-3:] == [NodeState.STALLED, NodeState.STOPPING, NodeState.BACKOFF]
    assert [e.category for e in events if isinstance(e, Incident)] == [Category.STALLED]
    rt.request("stop", "test", shutdown=True)
    assert await asyncio.wait_for(task, 10) == 0


async def test_stall_restarts_are_numbered_from_one(tmp_path: Path, fake_clock: FakeClock) -> None:
    """Regression: a stall restart was announced as ``restart #0`` (the crash counter, untouched by stalls)."""
    rt, events = make_rt(tmp_path, "import time; print('up', flush=True); time.sleep(60)", fake_clock,
                         backoff_initial=5, backoff_factor=2, backoff_jitter=False)
    task = asyncio.ensure_future(rt.run())
    for n in (1, 2):
        await until(lambda: sum(isinstance(e, ProcessStarted) for e in events) == n and rt.snapshot()["state"] == "RUNNING")
        rt.request("stalled", "health: no progress for 1200s")
        await until(lambda: sum(isinstance(e, RestartScheduled) for e in events) == n)
        fake_clock.advance([e for e in events if isinstance(e, RestartScheduled)][-1].delay)
    await until(lambda: sum(isinstance(e, ProcessStarted) for e in events) == 3)
    rt.request("stop", "test", shutdown=True)
    assert await asyncio.wait_for(task, 10) == 0
    assert [(e.attempt, e.delay) for e in events if isinstance(e, RestartScheduled)] == [(1, 5.0), (2, 10.0)]


OOM_CODE = ("import sys; print('Traceback (most recent call last):'); print('  File \"train.py\", line 1, in <module>'); "
            "print('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.32 GiB.'); sys.exit(1)")
GIVEUP_ADVICE = ("GSwarm gave up and will not restart the node. The GPU ran out of memory. "
                 "Check that no other process uses the GPU (`nvidia-smi`). Fix the cause, then start `gswarm run` again.")


async def test_oom_give_up_records_cause_reason_and_advice(tmp_path: Path, fake_clock: FakeClock) -> None:
    """Regression: the stop-and-alert give-up (OOM at the smallest model) lost its reason after the run
    (status, store) and left the last run's cause NULL; its advice promised a restart."""
    from gswarm.events import RecoveryAction
    from gswarm.logs.store import StoreReader
    from gswarm.monitor.analytics import compute
    from gswarm.monitor.status import status

    settings = load_settings({"state_dir": tmp_path / "state", "rl_swarm_dir": tmp_path, "backoff_jitter": False,
                              "backoff_initial": 1, "model_name": "Gensyn/Qwen2.5-0.5B-Instruct"}, env={})
    spec = LaunchSpec(argv=(sys.executable, "-c", OOM_CODE), cwd=tmp_path, env={}, mode="direct", generation="E4")
    rt = Runtime(settings, clock=fake_clock, services=("gswarm.logs.store:create_service",), install_signals=False,
                 spec_factory=lambda: spec, rng=FixedRng(0.5))
    events: list[Event] = []
    rt.bus.subscribe(events.append)
    task = asyncio.ensure_future(rt.run())
    await until(lambda: any(isinstance(e, RestartScheduled) for e in events))  # rung 1: allocator setting
    fake_clock.advance(1.0)
    assert await asyncio.wait_for(task, 20) == NodeFatal.exit_code
    reason = [e.reason for e in events if isinstance(e, StateChanged)][-1]  # the policy's words (failures area)
    assert reason.startswith("cuda_oom: out of memory") and "smallest" in reason
    advice = GIVEUP_ADVICE
    snap = rt.snapshot()
    assert (snap["state"], snap["fatal_reason"]) == ("STOPPED", reason)
    (stopped,) = [e for e in events if isinstance(e, Notice) and e.kind == "stopped"]
    assert stopped.body == advice
    (gave,) = [e for e in events if isinstance(e, RecoveryAction) and e.data.get("gave_up")]
    assert gave.data == {"gave_up": True, "state": "STOPPED", "cause": "cuda_oom", "reason": reason,
                         "advice": advice, "run_id": 2}
    reader = StoreReader(rt.state_dir / "gswarm.db")
    try:
        assert [r["cause"] for r in reader.runs("default")] == ["cuda_oom", "cuda_oom"]
        doc = status(reader, rt.state_dir, "default", fake_clock.time())
        assert (doc["state"], doc["state_reason"]) == ("STOPPED", reason)
        assert {k: v for k, v in doc["gave_up"].items() if k != "ts"} == {
            "state": "STOPPED", "cause": "cuda_oom", "reason": reason, "advice": advice}
        assert compute(reader, "default", until=fake_clock.time() + 1).failures == 2  # 1 restart + the give-up
    finally:
        reader.close()


async def test_health_stop_is_a_stop_and_alert_exit_recording_the_give_up(tmp_path: Path, fake_clock: FakeClock) -> None:
    from gswarm.events import RecoveryAction

    rt, events = make_rt(tmp_path, "import time; print('up', flush=True); time.sleep(60)", fake_clock)
    task = asyncio.ensure_future(rt.run())
    await until(lambda: rt.snapshot()["state"] == "RUNNING")
    rt.request("stop", "health:identity_taken")
    assert await asyncio.wait_for(task, 10) == NodeFatal.exit_code
    assert rt.snapshot()["state"] == "STOPPED" and "health:identity_taken" in rt.snapshot()["fatal_reason"]
    (gave,) = [e for e in events if isinstance(e, RecoveryAction) and e.data.get("gave_up")]
    assert gave.data == {"gave_up": True, "state": "STOPPED", "cause": "identity_taken",
                         "reason": "stopped by health:identity_taken (see the incident above)",
                         "advice": "GSwarm gave up and will not restart the node. Fix the cause, then start `gswarm run` again.",
                         "run_id": 1}
