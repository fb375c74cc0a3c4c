"""``gswarm plan`` on emulated checkouts of every generation (in-process CLI plus one real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gswarm.cli import main
from gswarm.emulator.checkout import init_checkout, write_login

ORG = "00000000-0000-0000-0000-000000000002"
ENTRY = {
    "E0": ["-m", "hivemind_exp.gsm8k.train_single_gpu"],
    "E1": ["-m", "hivemind_exp.gsm8k.train_single_gpu"],
    "E2": ["-m", "hivemind_exp.gsm8k.train_single_gpu"],
    "E3": None,
    "E4": ["-m", "rgym_exp.runner.swarm_launcher"],
    "E5": ["-m", "rgym_exp.runner.swarm_launcher"],
    "E6": ["-m", "code_gen_exp.runner.swarm_launcher"],
}


def plan(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    main(["plan", "--json", *args])
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("gen", sorted(ENTRY))
def test_plan_json_each_generation(tmp_path: Path, capsys, gen: str) -> None:
    co = init_checkout(tmp_path / gen, gen)
    if gen != "E0":
        write_login(co, ORG)
    data = plan(capsys, "--rl-swarm-dir", str(co), "--hf-token", "hf_PlanSecret")
    assert data["generation"] == gen and data["mode"] == "direct" and data["cwd"] == str(co)
    expected = ENTRY[gen] or [str(co / "genrl-swarm/src/genrl_swarm/runner/swarm_launcher.py")]
    assert data["argv"][1:1 + len(expected)] == expected
    assert "hf_PlanSecret" not in json.dumps(data)
    if gen in ("E3", "E4", "E5", "E6"):
        assert data["env"]["ORG_ID"] == ORG and data["env"]["HUGGINGFACE_ACCESS_TOKEN"] == "***"
    if gen in ("E1", "E2"):
        assert data["argv"][data["argv"].index("--modal_org_id") + 1] == ORG
    assert "run_rl_swarm.sh" in data["evidence"] and data["prompts"] == []


def test_plan_via_script_masks_token_answer(tmp_path: Path, capsys) -> None:
    co = init_checkout(tmp_path / "e6", "E6")
    data = plan(capsys, "--rl-swarm-dir", str(co), "--via-script", "--hf-token", "hf_S", "--model-name", "a/b")
    assert data["mode"] == "script" and data["argv"] == ["bash", "run_rl_swarm.sh"]
    assert data["prompts"] == [
        {"name": "hf_push", "pattern": data["prompts"][0]["pattern"], "answer": "y"},
        {"name": "hf_token", "pattern": "Enter your Hugging Face access token:", "answer": "***"},
        {"name": "model_name", "pattern": data["prompts"][2]["pattern"], "answer": "a/b"},
    ]


def test_plan_warns_inapplicable_option(tmp_path: Path, capsys) -> None:
    co = init_checkout(tmp_path / "e6", "E6", logged_in=True)
    data = plan(capsys, "--rl-swarm-dir", str(co), "--model-size", "7")
    assert data["notes"][0].startswith("--model-size means nothing for E6 and is ignored")
    assert data["warnings"] == [data["notes"][0]]


def test_plan_human_output(tmp_path: Path, capsys) -> None:
    co = init_checkout(tmp_path / "e4", "E4", logged_in=True)
    main(["plan", "--rl-swarm-dir", str(co), "--hf-token", "hf_Human"])
    out = capsys.readouterr().out
    assert "generation E4" in out and "rgym_exp.runner.swarm_launcher" in out
    assert "env HUGGINGFACE_ACCESS_TOKEN=***" in out and "hf_Human" not in out


def test_plan_not_a_checkout_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "gswarm", "plan", "--json", "--rl-swarm-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert f"{tmp_path} is not an RL Swarm checkout" in " ".join(proc.stderr.split())
    assert proc.stdout == ""
