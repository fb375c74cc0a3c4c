"""The composition root with environment preparation (issue #3 wired into issue #2's runtime).

A bare emulated E4 checkout goes through the real venv + offline pip install, the modal-login
stand-in started as `yarn start` (sidecar), the login (auto-login stand-in) and the activation; the
node crashes once, the script-style cleanup deletes the login files, and the restart happens without
a new login: the files are restored from the 0600 backup and the sidecar keeps its pid.
"""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from gswarm.config import load_settings
from gswarm.emulator.checkout import init_checkout
from gswarm.emulator.modal_server import write_fake_yarn
from gswarm.events import ProcessExited, ProcessStarted, RecoveryAction
from gswarm.rlswarm import identity
from gswarm.runtime import Runtime
from tests.helpers import until
from tests.test_setup_support import free_port, offline, session_checkout, shared_venv, wheelhouse  # noqa: F401

pytestmark = pytest.mark.slow


async def test_crash_restart_keeps_login_and_sidecar(tmp_path, monkeypatch, shared_venv, offline):
    bin_dir = tmp_path / "bin"
    write_fake_yarn(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MODAL_ARGS", "--auto-login")
    co = init_checkout(tmp_path / "co", "E4")
    req = tmp_path / "req.txt"
    req.write_text("gsw-base\n")
    port = free_port()
    settings = load_settings({
        "rl_swarm_dir": co, "state_dir": tmp_path / "state", "python": shared_venv / "bin/python", "requirements": req,
        "modal_port": port, "model_name": "Gensyn/Qwen2.5-0.5B-Instruct", "backoff_initial": 0.2, "backoff_jitter": False,
        "extra_env": {"GSWARM_EMU_PACE": "0.02", "GSWARM_EMU_FAULTS": "crash:trainer_bug_swarm_state@0.5#1"},
    }, env={})
    rt = Runtime(settings, prepare=True, install_signals=False,
                 services=("gswarm.rlswarm.sidecars:create_service",))
    seen: list = []

    def on_event(e) -> None:
        seen.append(e)
        if isinstance(e, ProcessExited) and len([x for x in seen if isinstance(x, ProcessExited)]) == 1:
            for name in identity.LOGIN_FILES:  # what run_rl_swarm.sh's EXIT trap does (generations.md §2.2)
                (co / "modal-login/temp-data" / name).unlink(missing_ok=True)

    rt.bus.subscribe(on_event)
    task = asyncio.create_task(rt.run())
    await until(lambda: rt.prepared is not None and rt.prepared.modal is not None, 120)
    sidecar_pid = rt.prepared.modal.sidecar.pid
    await until(lambda: len([e for e in seen if isinstance(e, ProcessStarted)]) >= 2)
    started = [e for e in seen if isinstance(e, ProcessStarted)]
    assert rt.prepared.modal.sidecar.pid == sidecar_pid and rt.prepared.modal.sidecar.running()
    notes = [e.detail for e in seen if isinstance(e, RecoveryAction)]
    assert "restored userData.json from backup" in notes and "restored userApiKey.json from backup" in notes
    assert rt.spec.env["ORG_ID"] == rt.prepared.org_id and started[1].argv[0] == str(shared_venv / "bin/python")
    backup = tmp_path / "state" / "backups"
    pems = [p for p in backup.rglob("userData.json")]
    assert pems and stat.S_IMODE(pems[0].stat().st_mode) == 0o600
    rt.request("stop", "test", shutdown=True)
    assert await asyncio.wait_for(task, 60) == 0
    modal = rt.prepared.modal
    assert not modal.sidecar.running()
