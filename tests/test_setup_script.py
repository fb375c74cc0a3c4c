"""Script mode completed at the setup layer: the emulated run_rl_swarm.sh of each generation runs
under a pty with every prompt answered and the login files restored before each start — no new
login, even though the script's EXIT trap deletes the files every time (generations.md §2.2)."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from gswarm.config import load_settings
from gswarm.emulator.checkout import init_checkout, write_login
from gswarm.emulator.modal_server import ModalServer
from gswarm.events import EventBus, OutputBatch
from gswarm.rlswarm import identity
from gswarm.rlswarm.launch import build_launch_spec
from gswarm.rlswarm.login import prepare_node
from gswarm.supervisor.scriptmode import ScriptRun


async def _run_script(spec, modal_url: str) -> tuple[int | None, list[str], list[str]]:
    bus = EventBus()
    lines: list[str] = []
    bus.subscribe(lambda ev: lines.extend(ev.texts) if isinstance(ev, OutputBatch) else None)
    run = ScriptRun(spec, "n", bus, time.time, stop_timeout=5, poll=0.05, infer_grace=1.0,
                    extra_env={"GSWARM_EMU_PACE": "0.01", "GSWARM_EMU_ROUNDS": "1", "GSWARM_EMU_POLL": "0.05",
                               "GSWARM_EMU_MODAL_URL": modal_url, "GSWARM_EMU_PYTHON": sys.executable})
    await run.start()
    try:
        status = await asyncio.wait_for(run.wait(), 60)
    finally:
        await run.stop(5)
    assert run.py_pid is not None, "\n".join(lines[-30:])
    return status.exit_code, run.answered, lines


@pytest.mark.slow
@pytest.mark.parametrize("gen", ["E1", "E2", "E3", "E4", "E5", "E6"])
async def test_script_mode_restarts_without_a_new_login(tmp_path, gen):
    co = init_checkout(tmp_path / "co", gen)
    state = tmp_path / "state"
    org = write_login(co)  # one finished login, backed up …
    identity.backup_login_files(co, state)
    for name in identity.LOGIN_FILES:  # … then deleted by the script's cleanup
        (co / "modal-login/temp-data" / name).unlink()
    settings = load_settings({"rl_swarm_dir": co, "via_script": True, "model_name": "Gensyn/Qwen2.5-0.5B-Instruct"}, env={})
    server = ModalServer(co).start()
    node = await prepare_node(settings, state_dir=state, lock_dir=tmp_path / "locks")
    try:
        assert node.mode == "script" and (co / "modal-login/temp-data/userData.json").is_file()
        spec = build_launch_spec(settings, co)
        assert spec.mode == "script" and spec.prompts
        for attempt in (1, 2):
            code, answered, lines = await _run_script(spec, server.url)
            text = "\n".join(lines)
            assert code == 0, text[-3000:]
            assert f"{org}" in text  # "Your ORG_ID is set to: <org>" from the restored file
            assert "Waiting for API key to be activated" not in text
            assert "Joining" in text
            assert answered == [p.name for p in spec.prompts]  # every prompt of the generation, in order
            # the EXIT trap deleted the login files again; the next start restores them
            assert not (co / "modal-login/temp-data/userData.json").exists(), text[-1500:]  # the trap's rm ran
            notes = await node.before_start()
            assert "restored userData.json from backup" in notes and "restored userApiKey.json from backup" in notes
    finally:
        await node.close()
        server.stop()
