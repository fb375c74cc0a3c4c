"""build_launch_spec: direct-mode argv/env per generation, script mode, login errors, options, prompts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gswarm.config import load_settings
from gswarm.emulator.checkout import init_checkout, write_login
from gswarm.errors import ConfigError, LoginError
from gswarm.rlswarm.launch import build_launch_spec
from gswarm.rlswarm.options import inapplicable
from gswarm.rlswarm.prompts import prompts_for

ORG = "00000000-0000-0000-0000-000000000001"


def settings(**flags):
    return load_settings(flags, env={})


def checkout(tmp_path: Path, gen: str, login: bool = True) -> Path:
    co = init_checkout(tmp_path / gen, gen)
    if login and gen != "E0":
        write_login(co, ORG)
    return co


def test_e0_local_argv(tmp_path: Path) -> None:
    co = checkout(tmp_path, "E0")
    spec = build_launch_spec(settings(), co, has_gpu=False)
    assert spec.argv[1:] == (
        "-m", "hivemind_exp.gsm8k.train_single_gpu", "--identity_path", "",
        "--public_maddr", "", "--initial_peer",
        "/ip4/38.101.215.13/tcp/30002/p2p/QmQ2gEXoPJg6iMBSUFWGzAabS2VhnzuS782Y637hGjfsRJ",
        "--host_maddr", "/ip4/0.0.0.0/tcp/38331",
        "--config", "hivemind_exp/configs/mac/grpo-qwen-2.5-0.5b-deepseek-r1.yaml")
    assert spec.argv[0] == sys.executable and spec.cwd == co and spec.mode == "direct"
    assert any("GSwarm's own interpreter" in n for n in spec.notes)


def test_e1_testnet_reads_org_id_from_userdata(tmp_path: Path) -> None:
    co = checkout(tmp_path, "E1")
    spec = build_launch_spec(settings(), co, has_gpu=True)
    assert spec.argv[1:] == (
        "-m", "hivemind_exp.gsm8k.train_single_gpu", "--hf_token", "None",
        "--identity_path", str(co / "swarm.pem"), "--modal_org_id", ORG,
        "--config", "hivemind_exp/configs/gpu/grpo-qwen-2.5-0.5b-deepseek-r1.yaml")
    assert spec.env["HF_HUB_DOWNLOAD_TIMEOUT"] == "120"


@pytest.mark.parametrize(("size", "swarm", "gpu", "cfg", "game", "contract"), [
    ("7", "A", True, "gpu/grpo-qwen-2.5-7b-deepseek-r1.yaml", "gsm8k", "0x69C6e1D608ec64885E7b185d39b04B491a71768C"),
    ("32", "B", True, "gpu/grpo-qwen-2.5-32b-bnb-4bit-deepseek-r1.yaml", "dapo", "0x6947c6E196a48B77eFa9331EC1E3e45f3Ee5Fd58"),
    ("72", "A", True, "gpu/grpo-qwen-2.5-72b-bnb-4bit-deepseek-r1.yaml", "gsm8k", "0x69C6e1D608ec64885E7b185d39b04B491a71768C"),
    ("72", "B", False, "mac/grpo-qwen-2.5-0.5b-deepseek-r1.yaml", "gsm8k", "0x6947c6E196a48B77eFa9331EC1E3e45f3Ee5Fd58"),
])
def test_e2_config_by_size_and_hardware(tmp_path: Path, size, swarm, gpu, cfg, game, contract) -> None:
    spec = build_launch_spec(settings(model_size=size, swarm=swarm), checkout(tmp_path, "E2"), has_gpu=gpu)
    argv = list(spec.argv)
    assert argv[argv.index("--config") + 1] == "hivemind_exp/configs/" + cfg
    assert argv[argv.index("--game") + 1] == game
    assert argv[argv.index("--contract_address") + 1] == contract


def test_e2_no_testnet_is_local(tmp_path: Path) -> None:
    spec = build_launch_spec(settings(testnet=False), checkout(tmp_path, "E2", login=False), has_gpu=True)
    assert "--modal_org_id" not in spec.argv and "--initial_peers" in spec.argv and "--contract_address" not in spec.argv


@pytest.mark.parametrize(("gen", "entry", "cfg_dir", "cfg_name", "contract"), [
    ("E3", None, "configs", "rg-swarm.yaml", "0xFaD7C5e93f28257429569B854151A1B8DCD404c2"),
    ("E4", "rgym_exp.runner.swarm_launcher", "rgym_exp/config", "rg-swarm.yaml", "0xFaD7C5e93f28257429569B854151A1B8DCD404c2"),
    ("E5", "rgym_exp.runner.swarm_launcher", "rgym_exp/config", "rg-swarm.yaml", "0xFaD7C5e93f28257429569B854151A1B8DCD404c2"),
    ("E6", "code_gen_exp.runner.swarm_launcher", "code_gen_exp/config", "code-gen-swarm.yaml", "0x7745a8FE4b8D2D2c3BB103F8dCae822746F35Da0"),
])
def test_genrl_generations(tmp_path: Path, gen, entry, cfg_dir, cfg_name, contract) -> None:
    co = checkout(tmp_path, gen)
    spec = build_launch_spec(settings(model_name="Gensyn/Qwen2.5-0.5B-Instruct", prg_game=False), co)
    head = [str(co / "genrl-swarm/src/genrl_swarm/runner/swarm_launcher.py")] if entry is None else ["-m", entry]
    assert list(spec.argv[1:]) == head + ["--config-path", str(co / cfg_dir), "--config-name", cfg_name]
    expected = {"IDENTITY_PATH": str(co / "swarm.pem"), "ORG_ID": ORG, "SWARM_CONTRACT": contract,
                "HUGGINGFACE_ACCESS_TOKEN": "None", "HF_HUB_DOWNLOAD_TIMEOUT": "120",
                "MODEL_NAME": "Gensyn/Qwen2.5-0.5B-Instruct"}
    assert {k: spec.env[k] for k in expected} == expected
    assert spec.env.get("PRG_GAME") == ("false" if gen == "E5" else None)


def test_token_only_in_env_and_masked(tmp_path: Path) -> None:
    secret = "hf_TopSecret123"
    for gen in ("E2", "E6"):
        spec = build_launch_spec(settings(hf_token=secret), checkout(tmp_path, gen), has_gpu=True)
        assert secret not in " ".join(spec.argv)
        assert spec.env["HUGGINGFACE_ACCESS_TOKEN"] == secret and spec.env["HF_TOKEN"] == secret
        assert spec.masked_env()["HF_TOKEN"] == "***" and secret not in str(spec.to_json())


def test_org_id_flag_wins(tmp_path: Path) -> None:
    spec = build_launch_spec(settings(org_id="flag-org"), checkout(tmp_path, "E6"))
    assert spec.env["ORG_ID"] == "flag-org"


@pytest.mark.parametrize("content", ["{not json", "{}", "[]", ""])
def test_malformed_userdata_names_file(tmp_path: Path, content: str) -> None:
    co = checkout(tmp_path, "E5", login=False)
    path = co / "modal-login/temp-data/userData.json"
    path.write_text(content)
    with pytest.raises(LoginError, match=str(path).replace(".", r"\.")) as exc:
        build_launch_spec(settings(), co)
    assert exc.value.exit_code == 4


def test_missing_login_testnet(tmp_path: Path) -> None:
    co = checkout(tmp_path, "E4", login=False)
    with pytest.raises(LoginError, match=r"this emulated E4 checkout has no login files .* --logged-in --force` or pass any --org-id"):
        build_launch_spec(settings(), co)  # an emulated checkout: the hint is the emulator's own login
    import shutil

    shutil.rmtree(co / ".gswarm-emulator")  # the same layout without the emulator marker: a real checkout
    with pytest.raises(LoginError, match=r"log in first \(gswarm login, or run_rl_swarm.sh once\) or pass --org-id"):
        build_launch_spec(settings(), co)
    planned = build_launch_spec(settings(), co, require_login=False)
    assert planned.env["ORG_ID"].startswith("<missing") and any("no ORG_ID yet" in n for n in planned.notes)


def test_python_option(tmp_path: Path) -> None:
    co = checkout(tmp_path, "E6")
    with pytest.raises(ConfigError, match="option python"):
        build_launch_spec(settings(python=str(tmp_path / "nope/python")), co)
    venv_py = co / ".venv/bin/python"
    venv_py.parent.mkdir(parents=True)
    venv_py.symlink_to(sys.executable)
    assert build_launch_spec(settings(), co).argv[0] == str(venv_py)


def test_script_mode(tmp_path: Path) -> None:
    co = checkout(tmp_path, "E5")
    spec = build_launch_spec(settings(via_script=True, hf_token="hf_abc", model_name="m/x"), co)
    assert spec.argv == ("bash", "run_rl_swarm.sh") and spec.use_pty and spec.mode == "script"
    assert [p.name for p in spec.prompts] == ["hf_push", "hf_token", "model_name", "prg_game"]
    assert [p.answer for p in spec.prompts] == ["y", "hf_abc", "m/x", "y"]
    assert spec.watch_pattern == r"rgym_exp\.runner\.swarm_launcher"
    assert [p["answer"] for p in spec.to_json()["prompts"]][1] == "***"


def test_unknown_falls_back_to_script_mode(tmp_path: Path) -> None:
    (tmp_path / "run_rl_swarm.sh").write_text("#!/bin/bash\n")
    spec = build_launch_spec(settings(), tmp_path)
    assert spec.mode == "script" and spec.generation == "unknown"
    assert [p.name for p in spec.prompts] == ["testnet", "swarm", "model_size", "hf_push", "model_name", "prg_game"]
    assert "hivemind_exp" in spec.watch_pattern and "code_gen_exp" in spec.watch_pattern


def test_prompt_order_per_generation() -> None:
    s = settings(testnet=False, swarm="B", model_size="7")
    assert [(p.name, p.answer) for p in prompts_for("E2", s)] == [
        ("testnet", "n"), ("swarm", "B"), ("model_size", "7"), ("hf_push", "N")]
    assert prompts_for("E0", s) == ()
    assert [p.name for p in prompts_for("E6", s)] == ["hf_push", "model_name"]


def test_prompt_patterns_ignore_leading_marker() -> None:
    import re

    s = settings()
    (testnet,) = [p for p in prompts_for("E1", s) if p.name == "testnet"]
    assert re.search(testnet.pattern, "Would you like to connect to the Testnet? [Y/n] ")  # v0.2.0, no ">> "
    assert re.search(testnet.pattern, ">> Would you like to connect to the Testnet? [Y/n] ")
    (prg,) = [p for p in prompts_for("E5", s) if p.name == "prg_game"]
    assert re.search(prg.pattern, "Would you like your model to participate in the AI Prediction Market? [y/N] ")


def test_inapplicable_options() -> None:
    s = settings(model_size="7", cpu_only=True, model_name="a/b")
    assert inapplicable(s, "E6") == [
        "--model-size means nothing for E6 and is ignored (used by E2: parameter count → config file)",
        "--cpu-only means nothing for E6 and is ignored (used by E0, E1, E2: CPU/mac config and requirements)",
    ]
    assert [m.split()[0] for m in inapplicable(s, "E2")] == ["--model-name"]
    assert inapplicable(s, "unknown") == []
    assert inapplicable(settings(), "E0") == []


def test_script_mode_notes(tmp_path: Path) -> None:
    spec = build_launch_spec(settings(via_script=True, hf_token="hf_q", org_id="o", game="dapo"), checkout(tmp_path, "E2"))
    assert spec.env["HF_TOKEN"] == "hf_q" and "HF_TOKEN" in spec.secret_env
    assert [n.split(";")[0] for n in spec.notes if n.startswith("script mode:")] == [
        "script mode: the E1/E2 script passes the Hugging Face token on the trainer's argv (--hf_token, visible in `ps`)",
        "script mode: --org-id is not used",
        "script mode: --game is not used",
    ]


def test_extra_env_applied_last_and_masked(tmp_path: Path) -> None:
    extra = {"GSWARM_EMU_PACE": "0.5", "MY_API_KEY": "k-123", "MODEL_NAME": "over/ride"}
    for flags in ({}, {"via_script": True}):
        spec = build_launch_spec(settings(model_name="a/b", extra_env=extra, **flags), checkout(tmp_path / str(len(flags)), "E6"))
        assert {k: spec.env[k] for k in extra} == extra
        assert spec.masked_env()["MY_API_KEY"] == "***" and spec.masked_env()["GSWARM_EMU_PACE"] == "0.5"


def test_model_and_ollama_notes_fit_the_generation(tmp_path: Path) -> None:
    """E3 uses its config's default model (no random pick); E4-E6 pick at random; the ollama note is for a
    real E6 checkout only (the emulated node needs no ollama)."""
    e3 = build_launch_spec(settings(), checkout(tmp_path, "E3"))
    assert "no --model-name: the node uses its config's default model (E3 script: \">> Using default model from config\")" in e3.notes
    co = checkout(tmp_path, "E6")
    e6 = build_launch_spec(settings(), co)
    assert any(n.startswith("no --model-name: E6 picks a model at random at every start") for n in e6.notes)
    assert not any("ollama server" in n for n in e6.notes)
    import shutil

    shutil.rmtree(co / ".gswarm-emulator")
    assert "E6 needs an ollama server (OLLAMA_HOST, default http://localhost:11434)" in build_launch_spec(settings(), co).notes
