"""End to end: the emulated E4 node prints a category's failure text (emulator/failure_texts.json via
``crash:<category>``) and the real runtime (watcher + classifier + policy) takes that recovery kind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gswarm.clock import FakeClock
from gswarm.config import load_settings
from gswarm.emulator.checkout import init_checkout
from gswarm.events import (Category, Event, Incident, Notice, ProcessStarted, Recovery, RecoveryAction, RestartScheduled,
                           StateChanged)
from gswarm.runtime import Runtime
from tests.helpers import until


CASES = [  # fault, incident category, recovery of the scheduled restart (None = the node is stopped)
    ("crash:trainer_bug_current_batch", Category.TRAINER_BUG_CURRENT_BATCH, Recovery.RESTART),
    ("crash:dht_bootstrap_failed", Category.DHT_BOOTSTRAP_FAILED, Recovery.BACKOFF),
    ("crash:dht_daemon_timeout", Category.DHT_DAEMON_TIMEOUT, Recovery.CLEANUP_THEN_RESTART),
    ("crash:dependency_conflict", Category.DEPENDENCY_CONFLICT, Recovery.REINSTALL_DEPS),
    ("crash:cuda_oom", Category.CUDA_OOM, Recovery.REDUCE_MODEL),
    ("sigkill", Category.SYSTEM_OOM_KILLED, Recovery.REDUCE_MODEL),
    ("crash:gpu_arch_unsupported", Category.GPU_ARCH_UNSUPPORTED, None),
]


@pytest.mark.parametrize("fault, category, recovery", CASES, ids=[c[0] for c in CASES])
async def test_recovery_kind_end_to_end(tmp_path: Path, fault: str, category: Category, recovery: Recovery | None) -> None:
    checkout = init_checkout(tmp_path / "rl", "E4", logged_in=True)
    clock = FakeClock()
    settings = load_settings({
        "rl_swarm_dir": checkout, "state_dir": tmp_path / "st", "stop_timeout": 5,
        "extra_env": {"GSWARM_EMU_PACE": "0.02", "GSWARM_EMU_FAULTS": f"{fault}@0.2#1"},
    }, env={})
    reinstalls: list[int] = []
    rt = Runtime(settings, clock=clock, services=("gswarm.monitor.health:create_service",), install_signals=False,
                 reinstall=lambda: reinstalls.append(1))
    events: list[Event] = []
    rt.bus.subscribe(events.append)
    task = asyncio.ensure_future(rt.run())
    try:
        await until(lambda: any(isinstance(e, (RestartScheduled, Notice)) for e in events) or task.done())
        incidents = [e for e in events if isinstance(e, Incident)]
        assert incidents and incidents[0].category == category, incidents
        if recovery is None:
            assert await asyncio.wait_for(task, 30) != 0  # stop_and_alert: gswarm run ends, operator alerted
            notes = [e for e in events if isinstance(e, Notice)]
            # the stop notice: the incident's advice without the sentences promising what GSwarm would do next
            from gswarm.supervisor._giveup import giveup_advice

            assert notes and notes[0].body == giveup_advice(incidents[0].advice)
            return
        sched = [e for e in events if isinstance(e, RestartScheduled)]
        assert (sched[0].cause, sched[0].recovery) == (category, recovery)
        if recovery == Recovery.BACKOFF:
            assert sched[0].delay >= 180.0
        if recovery == Recovery.REINSTALL_DEPS:
            assert reinstalls == [1]
        if recovery == Recovery.CLEANUP_THEN_RESTART:
            assert any(isinstance(e, RecoveryAction) and e.recovery == Recovery.CLEANUP_THEN_RESTART for e in events)
        if category == Category.CUDA_OOM:  # first rung of the ladder
            assert rt.watcher.info.extra_env == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
        if category == Category.SYSTEM_OOM_KILLED:  # RAM: straight to the smallest model of E4's pool
            assert rt.watcher.info.extra_env == {"MODEL_NAME": "Gensyn/Qwen2.5-0.5B-Instruct"}
        rt.request("stop", "test", shutdown=True)
        assert await asyncio.wait_for(task, 30) == 0
    finally:
        if not task.done():
            rt.request("kill", "test", shutdown=True)
            await asyncio.wait_for(task, 30)


LIVE = [  # emulator round mode, generation, live incident category
    ("reject", "E4", Category.CHAIN_SUBMIT_REJECTED),
    ("swallowed", "E6", Category.TRAINER_ERROR_SWALLOWED),
]


@pytest.mark.parametrize("mode, gen, category", LIVE, ids=[c[0] for c in LIVE])
async def test_live_incident_restarts_running_node(tmp_path: Path, mode: str, gen: str, category: Category) -> None:
    """The node keeps running while the same error repeats every round: the health service's live classifier
    restarts it after the threshold (3 rejected submissions / 5 swallowed training errors)."""
    checkout = init_checkout(tmp_path / "rl", gen, logged_in=True)
    clock = FakeClock()
    settings = load_settings({
        "rl_swarm_dir": checkout, "state_dir": tmp_path / "st", "stop_timeout": 5,
        "extra_env": {"GSWARM_EMU_PACE": "0.01", "GSWARM_EMU_FAULTS": f"{mode}@0#1"},
    }, env={})
    rt = Runtime(settings, clock=clock, services=("gswarm.monitor.health:create_service",), install_signals=False)
    events: list[Event] = []
    rt.bus.subscribe(events.append)
    task = asyncio.ensure_future(rt.run())
    try:
        await until(lambda: sum(isinstance(e, ProcessStarted) for e in events) >= 2 or task.done())
        incidents = [e for e in events if isinstance(e, Incident)]
        assert [i.category for i in incidents] == [category]
        reasons = [e.reason for e in events if isinstance(e, StateChanged)]
        assert f"restart requested by health:{category.value}" in reasons
        rt.request("stop", "test", shutdown=True)
        assert await asyncio.wait_for(task, 30) == 0
    finally:
        if not task.done():
            rt.request("kill", "test", shutdown=True)
            await asyncio.wait_for(task, 30)
