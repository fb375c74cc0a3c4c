"""``gswarm options``: the complete list of options, from the Settings model itself."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from gswarm.cli import options
from gswarm.config import Settings, load_settings
from gswarm.errors import ConfigError


@pytest.fixture
def app() -> typer.Typer:
    a = typer.Typer()
    options.register(a)
    a.command("noop")(lambda: None)  # a second command keeps Typer in multi-command mode
    return a


def test_every_setting_is_listed_with_env_flag_and_default(app: typer.Typer) -> None:
    res = CliRunner().invoke(app, ["options", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert set(rows) == set(Settings.model_fields)
    assert rows["stall_timeout"]["env"] == "GSWARM_STALL_TIMEOUT" and rows["stall_timeout"]["flag"] is None
    assert rows["backoff_initial"]["flag"] == "--backoff-initial" and rows["backoff_initial"]["default"] == Settings().backoff_initial
    assert "seconds" in rows["stall_timeout"]["description"]
    assert rows["hf_token"]["default"] is None


def test_filter_and_table(app: typer.Typer) -> None:
    res = CliRunner().invoke(app, ["options", "backoff"])
    assert res.exit_code == 0 and "backoff_max" in res.output and "stall_timeout" not in res.output


def test_unknown_toml_key_points_to_gswarm_options(tmp_path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text("stall_timout = 20\n")
    with pytest.raises(ConfigError, match=r"option stall_timout .*unknown option; `gswarm options` lists every option name"):
        load_settings({"config_file": cfg})


def test_run_help_keeps_the_nodes_table_name() -> None:
    """Newcomer trial: Rich took ``[[nodes]]`` in ``gswarm run --help`` for markup and printed "[] tables"."""
    from gswarm.cli import build_app

    res = CliRunner().invoke(build_app(), ["run", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "real nodes: [[nodes]] tables in --config-file" in " ".join(res.stdout.split())


def test_the_demo_names_the_gswarm_another_shell_can_run(tmp_path, monkeypatch) -> None:
    """Newcomer trial: after README's install (venv not activated) the demo said `gswarm status …`, and another
    shell answered "command not found". It names the program by its absolute path unless PATH finds it."""
    import os
    import sys

    from gswarm.cli.run import _me

    exe = tmp_path / "venv" / "bin" / "gswarm"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(exe), "run"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert _me() == str(exe)
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}/usr/bin")
    assert _me() == "gswarm"
    monkeypatch.setattr(sys, "argv", ["/x/python", "-m", "gswarm"])
    assert _me() == "gswarm"
