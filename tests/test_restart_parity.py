"""Issue #12: direct mode gives the trainer what the (emulated) run_rl_swarm.sh gives it, the emulated scripts
behave like the real ones where supervision depends on it, and repeated SIGKILLs end in FATAL.

The emulated scripts follow the real ones of the tags in ``gswarm.rlswarm._parity.SOURCE``; the emulated
trainer records its environment per start (``.gswarm-emulator/starts.jsonl``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from gswarm.clock import FakeClock
from gswarm.config import load_settings
from gswarm.emulator.checkout import init_checkout
from gswarm.events import Event, EventBus, NodeState, OutputBatch, RestartScheduled, StateChanged
from gswarm.rlswarm import _parity
from gswarm.rlswarm.launch import build_launch_spec
from gswarm.runtime import Runtime
from gswarm.supervisor._procgroup import MARKER_VAR
from gswarm.supervisor.scriptmode import ScriptRun
from gswarm.supervisor.spec import LaunchSpec
from tests.helpers import until

pytestmark = pytest.mark.slow
# the trainer fails at once (exit 1): the script's errexit runs its EXIT trap itself (no SIGTERM race with GSwarm)
KNOBS = {"GSWARM_EMU_PACE": "0.01", "GSWARM_EMU_FAULTS": "crash:cuda_oom@0.05", "GSWARM_EMU_POLL": "0.05",
         "GSWARM_EMU_PYTHON": sys.executable}


async def run_script(spec: LaunchSpec) -> list[str]:
    bus = EventBus()
    lines: list[str] = []
    bus.subscribe(lambda e: lines.extend(e.texts) if isinstance(e, OutputBatch) else None)
    run = ScriptRun(spec, "n", bus, time.time, stop_timeout=5, poll=0.05, infer_grace=10.0, extra_env=KNOBS,
                    prompt_idle=0.05)
    await run.start()
    try:
        await asyncio.wait_for(run.wait(), 60)
    finally:
        await run.stop(5)
    return lines


def trainer_env(co: Path) -> dict[str, str]:
    return json.loads((co / ".gswarm-emulator" / "starts.jsonl").read_text().splitlines()[-1])["env"]


@pytest.mark.parametrize("gen", ["E0", "E1", "E2", "E3", "E4", "E5", "E6"])
async def test_direct_env_matches_what_the_script_exports(tmp_path: Path, gen: str) -> None:
    co = init_checkout(tmp_path / "co", gen, logged_in=True)
    settings = load_settings({"rl_swarm_dir": co}, env={})
    direct = build_launch_spec(settings, co, has_gpu=False).env
    lines = await run_script(build_launch_spec(settings.model_copy(update={"via_script": True}), co))
    got = trainer_env(co)
    names = _parity.LAUNCHER_ENV[gen]
    assert {n: got.get(n) for n in names} == {n: direct.get(n) for n in names}
    leaked = sorted(k for k in got if k.startswith("GSWARM_") and k not in KNOBS and k != MARKER_VAR)
    assert leaked == []  # conftest's GSWARM_STATE_DIR is in GSwarm's environment, not the trainer's
    assert "MODEL_NAME" not in got
    if gen != "E0":  # the wait line comes before the check; the EXIT trap deletes the login files
        text = "\n".join(lines)
        assert text.index("Waiting for modal userData.json to be created") < text.index("Found userData.json")
        assert not (co / "modal-login" / "temp-data" / "userData.json").exists()


async def test_read_p_overwrites_an_exported_model_name(tmp_path: Path) -> None:
    """Why GSwarm must not export MODEL_NAME to the script: an empty answer exports it empty (bash read -p)."""
    co = init_checkout(tmp_path / "co", "E4", logged_in=True)
    spec = build_launch_spec(load_settings({"rl_swarm_dir": co, "via_script": True}, env={}), co)
    spec = LaunchSpec(**{**spec.__dict__, "env": {**spec.env, "MODEL_NAME": "pre-exported"}})
    await run_script(spec)
    assert trainer_env(co)["MODEL_NAME"] == ""


async def test_repeated_sigkills_at_the_smallest_model_end_in_fatal(tmp_path: Path) -> None:
    co = init_checkout(tmp_path / "co", "E4", logged_in=True)
    settings = load_settings({"rl_swarm_dir": co, "state_dir": tmp_path / "st", "stop_timeout": 5,
                              "model_name": "Gensyn/Qwen2.5-0.5B-Instruct", "crash_loop_max": 3,
                              "extra_env": {"GSWARM_EMU_PACE": "0.02", "GSWARM_EMU_FAULTS": "sigkill@0.2"}}, env={})
    clock = FakeClock()
    rt = Runtime(settings, clock=clock, services=(), install_signals=False)
    events: list[Event] = []
    rt.bus.subscribe(events.append)
    task = asyncio.ensure_future(rt.run())
    try:
        for n in (1, 2):
            await until(lambda: sum(isinstance(e, RestartScheduled) for e in events) == n or task.done())
            clock.advance(max(e.delay for e in events if isinstance(e, RestartScheduled)) + 1)
        assert await asyncio.wait_for(task, 30) == 6  # NodeFatal's exit code
    finally:
        if not task.done():
            rt.request("kill", "test", shutdown=True)
            await asyncio.wait_for(task, 30)
    restarts = [e for e in events if isinstance(e, RestartScheduled)]
    assert [(e.cause.value, e.attempt) for e in restarts] == [("system_oom_killed", 1), ("system_oom_killed", 2)]
    fatal = [e for e in events if isinstance(e, StateChanged) and e.new == NodeState.FATAL]
    assert [e.reason for e in fatal] == [f"crash loop: 3 failures within {settings.crash_loop_window:g}s "
                                         "(last: system_oom_killed)"]
