"""Follow-up of issues #15/#19: what a newcomer saw in multi-node runs and status output.

1. per-node settings keep only the options the operator set (no "--testnet means nothing for E6" for
   every inherited default); 2. no literal "None" in status, overview or the progress log message;
3. ``[[nodes]] name`` follows the one node-name rule of ``--node-name``; 4. a stopped node's CPU/RSS
   are shown as its last sample, with when.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from datetime import datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gswarm import events as ev
from gswarm.cli import status as status_cli
from gswarm.config.nodes import emulated_nodes, node_settings, parse_host, read_host_config
from gswarm.config.settings import NODE_NAME_RULE, Settings
from gswarm.emulator.checkout import init_checkout
from gswarm.errors import ConfigError
from gswarm.logs.jsonlog import record_of
from gswarm.logs.store import Store
from gswarm.placement import plan_nodes
from gswarm.rlswarm.options import inapplicable


# ----------------------------------------------------------------- 1. notes only for options set
def test_inherited_defaults_are_not_marked_set_per_node() -> None:
    base = Settings()
    for node in emulated_nodes(3).nodes:  # gswarm run --emulated --nodes 3
        s = node_settings(base, node)
        assert s.model_fields_set == {"node_name"}
        assert inapplicable(s, "E6") == []


def test_notes_name_exactly_the_options_set_at_top_level_or_per_node() -> None:
    base = Settings(model_size="7")  # as from a flag, env var, file or profile
    host = parse_host([{"name": "a"}, {"name": "b", "cpu_only": True}], None, "test")
    a, b = (node_settings(base, n) for n in host.nodes)
    assert (a.model_size, a.testnet) == ("7", base.testnet)  # values still inherited
    assert [m.split(" ")[0] for m in inapplicable(a, "E6")] == ["--model-size"]
    assert [m.split(" ")[0] for m in inapplicable(b, "E6")] == ["--model-size", "--cpu-only"]


def test_plan_of_a_two_node_file_has_no_warnings(tmp_path: Path) -> None:
    co = init_checkout(tmp_path / "rl-swarm", "E6", logged_in=True, force=True)
    cfg = tmp_path / "multi.toml"
    cfg.write_text(f'rl_swarm_dir = "{co}"\n[[nodes]]\nname = "gpu0"\ngpus = [0]\n'
                   '[[nodes]]\nname = "gpu1"\ngpus = [1]\n', encoding="utf-8")
    plan = plan_nodes(Settings(rl_swarm_dir=co), read_host_config(cfg), tmp_path / "state")
    assert {n["node"]: n["warnings"] for n in plan["nodes"]} == {"gpu0": [], "gpu1": []}


# ----------------------------------------------------------------- 3. one node-name rule
def test_node_table_name_follows_the_node_name_rule() -> None:
    forty = "n" * 40
    assert parse_host([{"name": forty}], None, "f.toml").nodes[0].name == forty
    assert parse_host([{"name": "x" * 64}], None, "f.toml").nodes[0].name == "x" * 64
    with pytest.raises(ConfigError) as err:
        parse_host([{"name": "y" * 65}], None, "f.toml")
    assert str(err.value) == (f"f.toml: node {'y' * 65!r}: field name {'y' * 40 + '…'!r} is not allowed; "
                              f"use {NODE_NAME_RULE} (e.g. name = \"gpu0\")")


# ----------------------------------------------------------------- 2. no literal None
def test_progress_log_message_leaves_out_missing_round_and_stage() -> None:
    rec = record_of(ev.ProgressUpdate("n1", 1.0, "hello", round=1002, stage=None, advanced=True))
    assert rec is not None and rec["message"] == "hello round=1002"
    rec = record_of(ev.ProgressUpdate("n1", 1.0, "stage", round=7, stage=2, advanced=True))
    assert rec is not None and rec["message"] == "stage round=7 stage=2"


def _app() -> typer.Typer:
    a = typer.Typer()
    status_cli.register(a)
    return a


def _status(*args: str) -> str:
    res = CliRunner().invoke(_app(), ["status", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.stdout
    return res.stdout


@pytest.fixture
def three(tmp_path: Path) -> tuple[Path, float]:
    """A stopped three-node run: emu0 sampled without a CPU figure, round 1002 with no stage."""
    sd = tmp_path / "state"
    sd.mkdir()
    now = time.time()
    hist: list[ev.Event] = []
    for i, node in enumerate(("emu0", "emu1", "emu2")):
        hist += [ev.ProcessStarted(node, now - 600, 100 + i, 100 + i, ("python",), "E6", "direct"),
                 ev.StateChanged(node, now - 600, ev.NodeState.STARTING, ev.NodeState.RUNNING),
                 ev.ProgressUpdate(node, now - 500, "hello", round=1002, advanced=True),
                 ev.ResourceSample(node, now - 100, {"cpu_percent": None if i == 0 else 12.5, "rss_bytes": None if i == 0
                                                     else 2**30, "host_cpu_percent": 40.0, "host_mem_percent": None}),
                 ev.ProcessExited(node, now - 60, 100 + i, 0, None, 540.0, requested="duration"),
                 ev.StateChanged(node, now - 60, ev.NodeState.STOPPING, ev.NodeState.STOPPED, "stop requested")]
    Store(sd / "gswarm.db").write(hist)
    return sd, now


def test_status_of_three_nodes_shows_no_none(three: tuple[Path, float]) -> None:
    sd, _ = three
    out = _status("--state-dir", str(sd))
    assert "None" not in out
    rows = [line.split("│") for line in out.splitlines() if line.startswith("│ emu")]
    assert [(r[1].strip(), r[5].strip()) for r in rows] == [("emu0", "1002/-"), ("emu1", "1002/-"), ("emu2", "1002/-")]
    assert "CPU -% RSS -" not in out and "CPU - RSS - | host CPU 40.0% RAM -" in out


# ----------------------------------------------------------------- 4. a stopped node's last sample
def test_stopped_node_resources_are_the_last_sample_with_when(three: tuple[Path, float]) -> None:
    sd, now = three
    out = _status("--state-dir", str(sd), "--node", "emu1")
    assert not any(line.startswith("resources") for line in out.splitlines())  # nothing shown as current
    when = datetime.fromtimestamp(now - 100).strftime("%Y-%m-%d %H:%M:%S")
    assert (f"last sample CPU 12.5% RSS 1.0 GiB | host CPU 40.0% RAM - at {when} (100 s ago); node not running"
            in " ".join(out.split()))  # the table may wrap the row: compare with whitespace collapsed
    d = json.loads(_status("--state-dir", str(sd), "--node", "emu1", "--json"))
    assert (d["resources"]["current"], d["resources"]["ts"]) == (False, now - 100)


def test_overview_row_without_a_round_is_a_dash() -> None:
    d = {"node": "emu1", "state": "RUNNING", "uptime": 5.0, "restarts_24h": {"total": 0}, "resources": None,
         "last_incident": None, "progress": {"round": None, "stage": None, "kind": "hello"}}
    assert status_cli._overview_row(d, 0.0) == ("emu1", "RUNNING", "5 s", 0, "-", "-", "-")
    d["progress"] = {"round": 1002, "stage": None}
    assert status_cli._overview_row(d, 0.0)[4] == "1002/-"


def test_running_node_resources_stay_current(tmp_path: Path) -> None:
    sd = tmp_path / "state"
    (sd / "run").mkdir(parents=True)
    now = time.time()
    Store(sd / "gswarm.db").write([ev.ProcessStarted("n1", now - 60, 77, 77, ("python",), "E6", "direct"),
                                   ev.StateChanged("n1", now - 60, ev.NodeState.STARTING, ev.NodeState.RUNNING),
                                   ev.ResourceSample("n1", now - 5, {"cpu_percent": 3.0, "rss_bytes": 2048})])
    fd = os.open(sd / "run" / "x.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a live supervisor holds its checkout lock
        out = " ".join(_status("--state-dir", str(sd)).split())
        assert "resources CPU 3.0% RSS 2.0 KiB | host CPU - RAM -" in out and "last sample" not in out
        assert json.loads(_status("--state-dir", str(sd), "--json"))["resources"]["current"] is True
    finally:
        os.close(fd)
