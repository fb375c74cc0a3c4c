"""``gswarm setup``, ``gswarm login`` and ``gswarm doctor [--json]`` through the real CLI entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gswarm.cli import main
from gswarm.emulator.modal_server import write_fake_yarn
from gswarm.rlswarm import identity
from gswarm.rlswarm.setup import ensure_environment
from tests.test_setup_support import free_port, lay_checkout, offline, session_checkout, shared_venv, wheelhouse  # noqa: F401


def _cli(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ei:
        main(list(args))
        raise SystemExit(0)
    out = capsys.readouterr()
    return ei.value.code or 0, out.out, out.err


@pytest.fixture
def path_with_yarn(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    write_fake_yarn(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin")
    return bin_dir


def _login_files(co, org="org-7", activated=True):
    td = co / "modal-login/temp-data"
    (td / "userData.json").write_text(json.dumps({org: {"orgId": org, "address": "0x1", "userId": "u"}}))
    (td / "userApiKey.json").write_text(json.dumps({org: [{"publicKey": "0x2", "privateKey": "0xPRIVATE",
                                                          "createdAt": "x", "activated": activated}]}))


def _checks(out: str) -> dict[str, dict]:
    data = json.loads(out)
    assert set(data) == {"checks"}
    for c in data["checks"]:
        assert set(c) == {"name", "status", "detail", "fix"} and c["status"] in ("pass", "warn", "fail")
    return {c["name"]: c for c in data["checks"]}


def test_doctor_json_all_good(tmp_path, capsys, shared_venv, offline, path_with_yarn, state_dir):
    co = lay_checkout(tmp_path / "co", "E4")
    py = shared_venv / "bin/python"
    ensure_environment(co, "E4", hardware="cpu", python=py)
    _login_files(co)
    identity.backup_login_files(co, state_dir)
    (co / "swarm.pem").write_bytes(b"PEM")
    os.chmod(co / "swarm.pem", 0o600)
    identity.guard_identity(co, state_dir)
    code, out, _ = _cli(capsys, "doctor", "--json", "--rl-swarm-dir", str(co), "--state-dir", str(state_dir),
                        "--python", str(py), "--modal-port", str(free_port()))
    checks = _checks(out)
    assert code == 0, out
    for name in ("generation", "python", "venv", "node", "yarn", "gpu", "port modal-login", "identity", "login"):
        assert checks[name]["status"] == "pass", checks[name]
    assert checks["generation"]["detail"].startswith("E4")
    assert "ORG_ID org-7, key activated, backed up" in checks["login"]["detail"]
    assert "PRIVATE" not in out
    assert "ollama" not in checks


def test_doctor_json_failures(tmp_path, capsys, path_with_yarn, state_dir):
    co = lay_checkout(tmp_path / "co", "E6")
    (co / "modal-login/temp-data/userData.json").write_text("{broken")
    (co / "swarm.pem").write_bytes(b"PEM")
    os.chmod(co / "swarm.pem", 0o644)
    port = free_port()
    holder = subprocess.Popen([sys.executable, "-c", (
        f"import socket,sys;s=socket.socket();s.bind(('127.0.0.1',{port}));s.listen();print('up',flush=True);sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "up"
        code, out, _ = _cli(capsys, "doctor", "--json", "--rl-swarm-dir", str(co), "--state-dir", str(state_dir),
                            "--modal-port", str(port), "--ollama-port", str(free_port()))
        assert holder.poll() is None  # reported, never stopped
    finally:
        holder.stdin.close()
        holder.wait(5)
    checks = _checks(out)
    assert code == 1
    assert checks["ollama"]["status"] == "fail" and "ollama.com/download" in checks["ollama"]["fix"]
    assert checks["login"]["status"] == "fail" and "userData.json" in checks["login"]["detail"]
    assert checks["port modal-login"]["status"] == "warn" and f"pid {holder.pid}" in checks["port modal-login"]["detail"]
    assert checks["identity"]["status"] == "warn" and "chmod 600" in checks["identity"]["fix"]
    assert checks["venv"]["status"] == "warn" and checks["venv"]["fix"] == "run `gswarm setup`"
    assert (co / "modal-login/temp-data/userData.json").read_text() == "{broken"


def test_doctor_table_and_not_a_checkout(tmp_path, capsys):
    code, out, _ = _cli(capsys, "doctor", "--rl-swarm-dir", str(tmp_path))
    assert code == 1 and "generation" in out and "fail" in out


def test_setup_command_installs_once_and_builds_modal(tmp_path, capsys, shared_venv, offline, path_with_yarn, state_dir):
    co = lay_checkout(tmp_path / "co", "E6")
    args = ("setup", "--rl-swarm-dir", str(co), "--state-dir", str(state_dir), "--python", str(shared_venv / "bin/python"),
            "--hardware", "cpu")
    code, out, err = _cli(capsys, *args)
    assert code == 0, err
    assert "E6: venv" in out and "installed" in out and "modal-login: built" in out
    code, out, _ = _cli(capsys, *args)
    assert "already up to date" in out and "modal-login: already built" in out
    assert (co / "modal-login/.env").read_text().endswith("SMART_CONTRACT_ADDRESS=0xdefault\n")  # restored
    code, _, err = _cli(capsys, "setup", "--rl-swarm-dir", str(co), "--hardware", "tpu")
    assert code == 2 and "--hardware" in err


def test_setup_failure_exit_code_and_log(tmp_path, capsys, shared_venv, offline, state_dir):
    co = lay_checkout(tmp_path / "co", "E6")
    (co / "code_gen_exp/requirements.txt").write_text("gsw-a==1.0\ngsw-c==2.0\n")
    code, _, err = _cli(capsys, "setup", "--no-modal", "--rl-swarm-dir", str(co), "--state-dir", str(state_dir),
                        "--python", str(shared_venv / "bin/python"), "--hardware", "cpu")
    flat = err.replace("\n", "")
    assert code == 5 and "(version conflict)" in flat and str(co / "logs/gswarm-setup.log") in flat
    assert "ERROR: Cannot install" in " ".join(err.split())


def test_login_command_malformed_user_data(tmp_path, capsys, path_with_yarn, state_dir):
    co = lay_checkout(tmp_path / "co", "E5")
    (co / "modal-login/temp-data/userData.json").write_text("")
    code, _, err = _cli(capsys, "login", "--rl-swarm-dir", str(co), "--state-dir", str(state_dir), "--port", str(free_port()))
    assert code == 4 and "userData.json is empty" in " ".join(err.split()) and "log in again" in err
    assert (co / "modal-login/temp-data/userData.json").exists()
    assert (co / "modal-login/.env").read_text().endswith("SMART_CONTRACT_ADDRESS=0xdefault\n")


def test_login_command_activation_timeout(tmp_path, capsys, path_with_yarn, monkeypatch, state_dir):
    co = lay_checkout(tmp_path / "co", "E4")
    monkeypatch.setenv("MODAL_ARGS", "--auto-login --never-activate")
    code, out, err = _cli(capsys, "login", "--rl-swarm-dir", str(co), "--state-dir", str(state_dir), "--port", str(free_port()),
                          "--activation-timeout", "0.3")
    text = " ".join(err.split())
    assert code == 4 and "was not activated within 0.3 s" in text and "log in again" in text
    assert (co / "modal-login/temp-data/userApiKey.json").exists()


def test_login_command_happy_path(tmp_path, capsys, path_with_yarn, monkeypatch, state_dir):
    co = lay_checkout(tmp_path / "co", "E4")
    monkeypatch.setenv("MODAL_ARGS", "--auto-login")
    code, out, err = _cli(capsys, "login", "--rl-swarm-dir", str(co), "--state-dir", str(state_dir), "--port", str(free_port()))
    assert code == 0, err
    org = identity.read_org_id(co / "modal-login/temp-data/userData.json")
    assert f"logged in: ORG_ID {org}" in " ".join(out.split())
    assert identity.backed_up_org_id(co, state_dir) == org


def test_doctor_memory_thresholds_and_model_size():
    from gswarm.config import load_settings
    from gswarm.rlswarm.doctor import GiB, check_memory, model_billions

    s = load_settings({"model_name": "Qwen/Qwen2.5-Coder-1.5B-Instruct", "model_size": "72"}, env={})
    assert model_billions(s, "E6") == 1.5 and model_billions(s, "E2") == 72.0 and model_billions(s, "E1") == 0.5
    t4 = {"kind": "nvidia", "gpus": [{"name": "T4", "total": 16 * GiB, "free": 15 * GiB}]}
    vram = {c.name: c for c in check_memory(72, t4)}["vram"]
    assert vram.status == "fail" and "wants 80 GiB" in vram.detail
    assert {c.name: c for c in check_memory(0.5, t4)}["vram"].status == "pass"
    a100 = {"kind": "nvidia", "gpus": [{"name": "A100", "total": 40 * GiB, "free": 20 * GiB}]}
    assert {c.name: c for c in check_memory(7, a100)}["vram"].status == "warn"
