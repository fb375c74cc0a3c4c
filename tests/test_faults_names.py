"""Issue #13 case 8: node names are limited to a safe charset and length, with an error naming the option.

Before the fix ``--node-name '../../x/💥'`` wrote ``output.log`` outside the state dir, a 300-character name
ended in ``File name too long`` tracebacks and an empty name was accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gswarm.config.settings import check_node_name, load_settings, node_name_problem
from gswarm.errors import ConfigError
from gswarm.supervisor.capture import capture_path


def _gswarm(args: list[str], tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")}
    return subprocess.run([sys.executable, "-m", "gswarm", *args], env={**base, **env}, capture_output=True,
                          text=True, timeout=60, cwd=tmp)


@pytest.mark.parametrize("name", ["default", "n", "node-1", "Node_2.gpu-a", "9" * 64])
def test_safe_names_pass(name: str) -> None:
    assert node_name_problem(name) is None
    assert check_node_name(name, "--node") == name


@pytest.mark.parametrize("name,why", [
    ("", "empty"), ("../../x/💥", "not allowed"), ("a/b", "not allowed"), ("..", "not allowed"),
    (".hidden", "not allowed"), ("x" * 65, "not allowed"), ("a b", "not allowed"), ("-x", "not allowed"),
])
def test_unsafe_names_are_refused_naming_the_option(name: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_node_name(name, "--node")
    text = str(info.value)
    assert text.startswith("option --node: node name ") and why in text
    assert "letters, digits, '.', '_' or '-'" in text and "1-64 characters" in text


def test_env_and_toml_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"option node_name \(from GSWARM_NODE_NAME\): node name '\.\./x' is not allowed"):
        load_settings({}, {"GSWARM_NODE_NAME": "../x", "GSWARM_STATE_DIR": str(tmp_path)})
    cfg = tmp_path / "g.toml"
    cfg.write_text('node_name = "' + "y" * 300 + '"\n')
    with pytest.raises(ConfigError, match=r"option node_name \(from file .*g\.toml\): node name 'y{40}…' is not allowed"):
        load_settings({"config_file": str(cfg), "state_dir": str(tmp_path)}, {})


def test_capture_path_never_leaves_the_state_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="option node_name: node name"):
        capture_path(tmp_path / "st", "../../x")
    assert not (tmp_path / "x").exists()
    assert capture_path(tmp_path / "st", "ok") == tmp_path / "st" / "logs" / "ok" / "output.log"


@pytest.mark.parametrize("name,needle", [
    ("../../x/💥", "node name '../../x/💥' is not allowed"),
    ("z" * 300, "node name '" + "z" * 40 + "…' is not allowed"),
    ("", "node name empty"),
])
def test_gswarm_run_refuses_bad_names_before_writing_anything(tmp_path: Path, name: str, needle: str) -> None:
    st = tmp_path / "a" / "b" / "st"
    p = _gswarm(["run", "--emulated", "--no-api", "--duration", "2", "--state-dir", str(st), "--node-name", name],
                tmp_path)
    err = " ".join(p.stderr.split())
    assert p.returncode == 2, (p.stdout + p.stderr)[-1500:]
    assert f"option node_name (from --node-name): {needle}" in err, err
    assert "Traceback" not in p.stderr
    assert not list(tmp_path.rglob("output.log"))  # nothing written, inside or outside the state dir


def test_status_and_report_check_their_node_option(tmp_path: Path) -> None:
    for cmd in (["status"], ["report"], ["logs"]):
        p = _gswarm([*cmd, "--node", "../etc", "--state-dir", str(tmp_path / "st")], tmp_path)
        assert p.returncode == 2, (cmd, p.stdout, p.stderr)
        assert "option --node: node name '../etc' is not allowed" in " ".join(p.stderr.split()), p.stderr
