"""Issue #12: restarts that really restart through the emulated run_rl_swarm.sh of every generation.

The emulated scripts behave like the real ones where it matters (their EXIT trap deletes
``modal-login/temp-data/*.json``, ``read -p`` overwrites pre-exported variables, the login wait line is
printed before the file check); the emulated trainer records what every start received in
``.gswarm-emulator/starts.jsonl``. Runs under the real Runtime with auto-setup preparation (the default
of ``gswarm run``) and a FakeClock (backoff and login wait without real waiting).
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from gswarm.clock import FakeClock
from gswarm.config import load_settings
from gswarm.emulator.checkout import init_checkout, write_login
from gswarm.events import (Event, NodeState, Notice, ProcessExited, ProcessStarted, RecoveryAction, RestartScheduled,
                           StateChanged)
from gswarm.rlswarm import identity
from gswarm.runtime import Runtime
from gswarm.supervisor._procgroup import MARKER_VAR
from tests.helpers import until

pytestmark = pytest.mark.slow
KNOBS = {"GSWARM_EMU_PACE": "0.02", "GSWARM_EMU_POLL": "0.05", "GSWARM_EMU_PYTHON": sys.executable}


def starts(co: Path) -> list[dict]:
    path = co / ".gswarm-emulator" / "starts.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def runtime(tmp: Path, co: Path, faults: str, **options: object) -> tuple[Runtime, FakeClock, list[Event]]:
    settings = load_settings({"rl_swarm_dir": co, "state_dir": tmp / "st", "via_script": True, "stop_timeout": 5,
                              "prompt_idle": 0.05, "extra_env": {**KNOBS, "GSWARM_EMU_FAULTS": faults}, **options}, env={})
    clock = FakeClock()
    rt = Runtime(settings, clock=clock, services=(), install_signals=False, prepare=True)
    events: list[Event] = []
    rt.bus.subscribe(events.append)
    return rt, clock, events


async def restart_once(rt: Runtime, clock: FakeClock, events: list[Event]) -> None:
    try:
        await until(lambda: any(isinstance(e, RestartScheduled) for e in events))
    except AssertionError:
        raise AssertionError("\n".join(repr(e) for e in events)) from None
    clock.advance(max(e.delay for e in events if isinstance(e, RestartScheduled)) + 1)
    await until(lambda: sum(isinstance(e, ProcessStarted) for e in events) == 2)


async def finish(rt: Runtime, task: asyncio.Future) -> None:
    if not task.done():
        rt.request("stop", "test", shutdown=True)
        await asyncio.wait_for(task, 30)


@pytest.mark.parametrize("gen", ["E1", "E2", "E3", "E4", "E5", "E6"])
async def test_browser_login_in_the_script_survives_a_crash(tmp_path: Path, gen: str) -> None:
    """Defaults (auto-setup on): the operator logs in while the script waits; the first trainer crashes with a
    CUDA OOM; the trap deletes the login files; the second start finds them restored — no second wait."""
    co = init_checkout(tmp_path / "rl", gen)  # not logged in, no backup
    rt, clock, events = runtime(tmp_path, co, "crash:cuda_oom@0.6#1")
    task = asyncio.ensure_future(rt.run())
    try:
        await until(lambda: rt.snapshot()["state"] == "WAITING_LOGIN" or task.done())
        snap = rt.snapshot()
        assert (snap["state"], snap["uptime"], snap["pid"] is not None) == ("WAITING_LOGIN", None, True)
        clock.advance(600)  # ten minutes in front of the browser
        assert rt.snapshot()["waiting_login_for"] == 600
        org = write_login(co)  # the browser login writes the files
        await until(lambda: any(isinstance(e, StateChanged) and e.old == NodeState.WAITING_LOGIN for e in events))
        await restart_once(rt, clock, events)
        await until(lambda: len(starts(co)) == 2)
    finally:
        await finish(rt, task)
    first, second = starts(co)
    assert (first["login"], second["login"]) == (True, True)
    assert (first["env"]["ORG_ID"], second["env"]["ORG_ID"]) == (org, org)
    alloc = [start["env"].get("PYTORCH_CUDA_ALLOC_CONF") for start in (first, second)]
    assert alloc == [None, "expandable_segments:True"]  # the ladder's first CUDA rung reaches the trainer too
    waits = [e for e in events if isinstance(e, StateChanged) and e.new == NodeState.WAITING_LOGIN]
    assert len(waits) == 1  # the restart found the login restored
    needs = [e for e in events if isinstance(e, Notice) and e.kind == "needs_you"]
    assert [n.title for n in needs] == ["the script waits for the modal-login browser login"]
    exited = next(e for e in events if isinstance(e, ProcessExited))
    assert exited.uptime < 60  # the 600 s login wait is not uptime
    notes = [e.detail for e in events if isinstance(e, RecoveryAction)]
    assert any(n.startswith("restored userData.json") for n in notes) and any("backed up" in n for n in notes)
    backup = identity.backup_dir(rt.state_dir, co)
    for name in identity.LOGIN_FILES:
        assert stat.S_IMODE(os.stat(backup / name).st_mode) == 0o600
    # the backup outlives the run: the next `gswarm run --via-script` needs no browser
    assert identity.backed_up_org_id(co, rt.state_dir) == org


@pytest.mark.parametrize("gen, configured, smaller", [
    ("E3", "Gensyn/Qwen2.5-1.5B-Instruct", "Qwen/Qwen3-0.6B"),
    ("E4", "Gensyn/Qwen2.5-1.5B-Instruct", "Qwen/Qwen3-0.6B"),
    ("E5", "nvidia/AceInstruct-1.5B", "Gensyn/Qwen2.5-1.5B-Instruct"),
    ("E6", "Qwen/Qwen2.5-Coder-1.5B-Instruct", "deepseek-ai/deepseek-coder-1.3b-instruct"),
])
async def test_oom_ladder_model_reaches_the_trainer_in_script_mode(tmp_path: Path, gen: str, configured: str,
                                                                    smaller: str) -> None:
    """The ladder's smaller model is the answer to the script's model prompt (read -p would overwrite an
    exported MODEL_NAME), so the second trainer gets it; no GSWARM_* variable reaches the trainer."""
    co = init_checkout(tmp_path / "rl", gen, logged_in=True)
    rt, clock, events = runtime(tmp_path, co, "sigkill@0.3#1", model_name=configured)
    task = asyncio.ensure_future(rt.run())
    try:
        await restart_once(rt, clock, events)
        await until(lambda: len(starts(co)) == 2)
    finally:
        await finish(rt, task)
    first, second = starts(co)
    assert (first["env"]["MODEL_NAME"], second["env"]["MODEL_NAME"]) == (configured, smaller)
    assert second["login"] is True
    leaked = sorted(k for k in second["env"] if k.startswith("GSWARM_") and k not in KNOBS
                    and k not in ("GSWARM_EMU_FAULTS", MARKER_VAR))  # the marker proves ownership (issue #13)
    assert leaked == []  # GSWARM_STATE_DIR (set by conftest) and every other GSwarm setting stay out


async def test_no_model_name_is_never_exported_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --model-name the prompt is answered empty; an inherited MODEL_NAME is not passed on, so the
    trainer sees no MODEL_NAME at all (the real script never exports an empty one)."""
    monkeypatch.setenv("MODEL_NAME", "from-the-shell")
    monkeypatch.setenv("GSWARM_HF_TOKEN", "hf_gswarm_own_name")
    co = init_checkout(tmp_path / "rl", "E4", logged_in=True)
    rt, clock, events = runtime(tmp_path, co, "")
    task = asyncio.ensure_future(rt.run())
    try:
        await until(lambda: len(starts(co)) == 1)
    finally:
        await finish(rt, task)
    env = starts(co)[0]["env"]
    assert "MODEL_NAME" not in env and "GSWARM_HF_TOKEN" not in env
