"""``gswarm emulate init`` / init_checkout / default_demo: layouts, login files, safety of --force."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gswarm.cli import main
from gswarm.emulator.checkout import init_checkout
from gswarm.emulator.demo import default_demo
from gswarm.errors import CheckoutError, ConfigError
from gswarm.rlswarm.generations import detect
from gswarm.rlswarm.launch import build_launch_spec
from gswarm.config import load_settings


def test_cli_init_logged_in(tmp_path: Path, capsys) -> None:
    main(["emulate", "init", str(tmp_path / "co"), "--generation", "E5", "--logged-in"])
    assert capsys.readouterr().out.splitlines()[0] == f"emulated E5 checkout at {tmp_path / 'co'}"
    user = tmp_path / "co/modal-login/temp-data/userData.json"
    data = json.loads(user.read_text())
    (org,) = data
    assert data[org]["orgId"] == org and len(org) == 36
    assert user.stat().st_mode & 0o777 == 0o600
    keys = json.loads((tmp_path / "co/modal-login/temp-data/userApiKey.json").read_text())
    assert keys[org][-1]["activated"] is True
    assert os.access(tmp_path / "co/run_rl_swarm.sh", os.X_OK)


def test_e0_has_no_login(tmp_path: Path) -> None:
    co = init_checkout(tmp_path / "e0", "E0", logged_in=True)
    assert not (co / "modal-login").exists() and detect(co).generation == "E0"


def test_force_rules(tmp_path: Path) -> None:
    co = init_checkout(tmp_path / "co", "E6")
    with pytest.raises(CheckoutError, match="pass --force"):
        init_checkout(co, "E4")
    init_checkout(co, "E4", force=True)
    assert detect(co).generation == "E4" and not (co / "code_gen_exp").exists()
    real = tmp_path / "real"
    real.mkdir()
    (real / "precious.txt").write_text("keep")
    with pytest.raises(CheckoutError, match="not an emulated checkout"):
        init_checkout(real, "E6", force=True)
    assert (real / "precious.txt").read_text() == "keep"


def test_bad_generation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="option generation: 'E9' is not one of E0, E1"):
        init_checkout(tmp_path / "x", "E9")
    proc = subprocess.run([sys.executable, "-m", "gswarm", "emulate", "init", str(tmp_path / "y"), "-g", "E9"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "E9" in proc.stderr and not (tmp_path / "y").exists()


def test_default_demo(tmp_path: Path) -> None:
    co, env = default_demo(tmp_path)
    assert co == tmp_path / "rl-swarm-emulated" and detect(co).generation == "E6"
    assert env == {"GSWARM_EMU_PACE": "1", "GSWARM_EMU_FAULTS": "crash:dht_daemon_timeout@15#1"}
    spec = build_launch_spec(load_settings({}, env={}), co)
    assert spec.env["ORG_ID"] == next(iter(json.loads((co / "modal-login/temp-data/userData.json").read_text())))
    again, _ = default_demo(tmp_path)  # idempotent: replaces its own checkout
    assert again == co


def test_demo_crash_then_recovers(tmp_path: Path) -> None:
    """The demo schedule at a fast pace: first start crashes with the category text, the second runs."""
    co, env = default_demo(tmp_path, pace=0.01, faults="crash:dht_daemon_timeout@0.05#1")
    spec = build_launch_spec(load_settings({}, env={}), co)
    texts = json.loads((co / ".gswarm-emulator/failure_texts.json").read_text())
    run_env = {**os.environ, **spec.env, **env, "GSWARM_EMU_ROUNDS": "2"}
    first = subprocess.run(spec.argv, cwd=co, env=run_env, capture_output=True, text=True, timeout=20)
    assert first.returncode == 1 and texts["dht_daemon_timeout"]["lines"][-1] in first.stderr
    second = subprocess.run(spec.argv, cwd=co, env=run_env, capture_output=True, text=True, timeout=20)
    assert second.returncode == 0 and second.stdout.count("Starting round:") == 2


def test_cli_emulate_node(tmp_path: Path) -> None:
    co = init_checkout(tmp_path / "co", "E4", logged_in=True)
    env = {**os.environ, "ORG_ID": "org-1", "GSWARM_EMU_ROUNDS": "1"}
    args = [sys.executable, "-m", "gswarm", "emulate", "node", "--rl-swarm-dir", str(co), "--pace", "0.01",
            "--faults", "crash:cuda_oom@0", "--config-path", str(co / "rgym_exp/config"), "--config-name", "rg-swarm.yaml"]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "torch.OutOfMemoryError: CUDA out of memory" in proc.stderr
    bad = subprocess.run(args[:7] + ["--faults", "boom"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "option --faults" in bad.stderr
