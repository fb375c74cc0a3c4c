"""End to end at the setup layer: emulated checkout → venv + pip → modal-login sidecar → login →
running node; then a crash and a restart without a new login (files restored, sidecar kept)."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from gswarm.config import load_settings
from gswarm.emulator.checkout import init_checkout
from gswarm.emulator.modal_server import write_fake_yarn
from gswarm.rlswarm import identity
from gswarm.rlswarm.identity import IdentityError
from gswarm.rlswarm.launch import build_launch_spec
from gswarm.rlswarm.login import prepare_node
from tests.test_setup_support import fake_bin, free_port, offline, session_checkout, shared_venv, wheelhouse  # noqa: F401
from tests.test_setup_sidecars import OLLAMA

TESTNET = ["E1", "E2", "E3", "E4", "E5", "E6"]


@pytest.fixture
def tools(tmp_path):
    bin_dir = tmp_path / "bin"
    write_fake_yarn(bin_dir)
    fake_bin(bin_dir, "ollama", OLLAMA)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "MODAL_ARGS": "--auto-login"}


def _settings(co, venv, req, gen, **extra):
    flags = {"rl_swarm_dir": co, "python": venv / "bin/python", "requirements": req, "node_name": f"n-{gen}",
             "model_name": "Gensyn/Qwen2.5-0.5B-Instruct", **extra}
    return load_settings(flags, env={})


def _run(spec, modal_port) -> subprocess.CompletedProcess:
    env = {**os.environ, **spec.env, "GSWARM_EMU_PACE": "0.01", "GSWARM_EMU_ROUNDS": "1"}
    if modal_port:  # the node registers its peer through the modal-login sidecar (needs the activated login)
        env["GSWARM_EMU_MODAL_URL"] = f"http://127.0.0.1:{modal_port}"
    return subprocess.run(list(spec.argv), cwd=spec.cwd, env=env, capture_output=True, text=True, timeout=60)


async def _prepare(settings, tmp_path, tools, **kw):
    return await prepare_node(settings, state_dir=tmp_path / "state", env=tools, lock_dir=tmp_path / "locks",
                              poll=0.05, open_browser=lambda url: None, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("gen", TESTNET)
async def test_bare_checkout_to_running_node_and_restart_without_new_login(tmp_path, gen, shared_venv, offline, tools):
    co = init_checkout(tmp_path / "co", gen)
    req = tmp_path / "req.txt"
    req.write_text("gsw-base\n")
    port, oport = free_port(), free_port()
    node = await _prepare(_settings(co, shared_venv, req, gen), tmp_path, tools, modal_port=port, ollama_port=oport)
    try:
        assert node.mode == "direct" and node.python == shared_venv / "bin/python" and node.org_id
        assert node.modal is not None and node.modal.sidecar.running()
        sidecar_pid = node.modal.sidecar.pid
        spec = build_launch_spec(_settings(co, shared_venv, req, gen).model_copy(update=node.settings_update()), co)
        first = _run(spec, port)
        assert first.returncode == 0, first.stderr[-2000:]
        assert "Joining" in first.stdout + first.stderr
        assert "POST /api/register-peer 200" in (co / "logs/yarn.log").read_text()  # through our sidecar, logged in
        if gen == "E6":
            assert node.ollama is not None and node.ollama.running()
        assert (co / "swarm.pem").is_file()  # the node generated its identity at the first start …
        assert node.after_start() is not None  # … and GSwarm backed it up once
        assert node.after_start() is None
        # the official cleanup deletes the login files; the trainer "crashed"
        for name in identity.LOGIN_FILES:
            (co / "modal-login/temp-data" / name).unlink()
        notes = await node.before_start()
        assert "restored userData.json from backup" in notes and "restored userApiKey.json from backup" in notes
        assert node.modal.sidecar.pid == sidecar_pid and node.modal.sidecar.running()
        spec2 = build_launch_spec(_settings(co, shared_venv, req, gen).model_copy(update=node.settings_update()), co)
        assert spec2.env.get("ORG_ID", node.org_id) == node.org_id
        assert _run(spec2, port).returncode == 0
    finally:
        await node.close(timeout=5)
    assert not node.modal.sidecar.running()
    assert (co / "modal-login/.env").read_text() == init_checkout.__globals__["_layout"].env_file(
        gen, init_checkout.__globals__["_eras"].swarm_contract(gen) or "")


@pytest.mark.parametrize("gen", ["E5", "E6"])
async def test_genrl_environment_from_launch_spec(tmp_path, gen, shared_venv, offline, tools):
    co = init_checkout(tmp_path / "co", gen, logged_in=True)
    req = tmp_path / "req.txt"
    req.write_text("")
    node = await _prepare(_settings(co, shared_venv, req, gen, prg_game=False), tmp_path, tools,
                          modal_port=free_port(), ollama_port=free_port(), install=False)
    try:
        env = build_launch_spec(_settings(co, shared_venv, req, gen, prg_game=False).model_copy(
            update=node.settings_update()), co).env
    finally:
        await node.close(timeout=5)
    assert env["HUGGINGFACE_ACCESS_TOKEN"] == "None" and env["HF_HUB_DOWNLOAD_TIMEOUT"] == "120"
    assert env["MODEL_NAME"] == "Gensyn/Qwen2.5-0.5B-Instruct" and env["ORG_ID"] == node.org_id
    assert env["SWARM_CONTRACT"] == {"E5": "0xFaD7C5e93f28257429569B854151A1B8DCD404c2",
                                     "E6": "0x7745a8FE4b8D2D2c3BB103F8dCae822746F35Da0"}[gen]
    if gen == "E5":
        assert env["PRG_GAME"] == "false"
    else:
        assert "PRG_GAME" not in env


async def test_identity_kept_and_second_node_refused(tmp_path, shared_venv, offline, tools):
    co = init_checkout(tmp_path / "co", "E4", logged_in=True)
    (co / "swarm.pem").write_bytes(b"PEM-1")
    req = tmp_path / "req.txt"
    req.write_text("")
    node = await _prepare(_settings(co, shared_venv, req, "E4"), tmp_path, tools, modal_port=free_port(), install=False)
    try:
        with pytest.raises(IdentityError, match="already used by another node"):
            await _prepare(_settings(co, shared_venv, req, "E4", node_name="twin"), tmp_path, tools, modal_port=free_port(),
                           install=False)
        (co / "swarm.pem").unlink()
        notes = await node.before_start()
        assert any("swarm.pem restored" in n for n in notes) and (co / "swarm.pem").read_bytes() == b"PEM-1"
        (co / "swarm.pem").write_bytes(b"PEM-2")
        with pytest.raises(IdentityError, match="different identity"):
            await node.before_start()
        assert (co / "swarm.pem").read_bytes() == b"PEM-2"
    finally:
        await node.close(timeout=5)


async def test_script_mode_only_restores_and_guards(tmp_path, tools):
    co = init_checkout(tmp_path / "co", "E5", logged_in=True)
    st = tmp_path / "state"
    identity.backup_login_files(co, st)
    for name in identity.LOGIN_FILES:
        (co / "modal-login/temp-data" / name).unlink()
    node = await prepare_node(load_settings({"rl_swarm_dir": co, "via_script": True}, env={}), state_dir=st,
                              env=tools, lock_dir=tmp_path / "locks")
    try:
        assert node.mode == "script" and node.modal is None and node.python is None
        assert (co / "modal-login/temp-data/userData.json").is_file()
    finally:
        await node.close()
    assert asyncio.iscoroutinefunction(node.close)


async def test_e0_needs_no_login_and_runs(tmp_path, shared_venv, offline, tools):
    co = init_checkout(tmp_path / "co", "E0")
    req = tmp_path / "req.txt"
    req.write_text("gsw-base\n")
    node = await _prepare(_settings(co, shared_venv, req, "E0"), tmp_path, tools)
    try:
        assert node.modal is None and node.org_id is None and node.python == shared_venv / "bin/python"
        spec = build_launch_spec(_settings(co, shared_venv, req, "E0").model_copy(update=node.settings_update()), co)
        done = _run(spec, 0)
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        await node.close()


async def test_e2_without_testnet_needs_no_modal_login(tmp_path, tools):
    co = init_checkout(tmp_path / "co", "E2")
    settings = load_settings({"rl_swarm_dir": co, "testnet": False}, env={})
    node = await prepare_node(settings, state_dir=tmp_path / "state", env=tools, lock_dir=tmp_path / "locks", install=False)
    try:
        assert node.modal is None and node.org_id is None and node.mode == "direct"
    finally:
        await node.close()
