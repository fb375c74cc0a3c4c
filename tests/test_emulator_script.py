"""The emulated run_rl_swarm.sh under a real pty and with a pipe (prompts, login wait, traps, wait trap-door)."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gswarm.config import load_settings
from gswarm.emulator.checkout import init_checkout, write_login
from gswarm.rlswarm.launch import build_launch_spec

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
EXPECTED = {
    "E0": [],
    "E1": ["testnet", "hf_push"],
    "E2": ["testnet", "swarm", "model_size", "hf_push"],
    "E3": ["hf_push", "model_name"],
    "E4": ["hf_push", "model_name"],
    "E5": ["hf_push", "model_name", "prg_game"],
    "E6": ["hf_push", "model_name"],
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "MODEL_NAME")}
    env.update(GSWARM_EMU_PACE="0.01", GSWARM_EMU_POLL="0.05", GSWARM_EMU_PYTHON=sys.executable)
    env.update(extra)
    return env


class PtyRun:
    """bash run_rl_swarm.sh on a pty in its own session; answers prompts from a LaunchSpec."""

    def __init__(self, co: Path, env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(["bash", "run_rl_swarm.sh"], cwd=co, env=env, stdin=slave, stdout=slave,
                                     stderr=slave, start_new_session=True)
        os.close(slave)
        self.text = ""
        self.pending = ""

    def pump(self, until: str, prompts=(), timeout: float = 15) -> list[str]:
        """Read until ``until`` shows (ANSI stripped), answering matching prompts; returns answered names."""
        answered: list[str] = []
        deadline = time.monotonic() + timeout
        while until not in self.text:
            assert time.monotonic() < deadline, f"timed out waiting for {until!r}; got:\n{self.text[-2000:]}"
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = ANSI.sub("", os.read(self.master, 65536).decode("utf-8", "replace"))
            except OSError:
                break
            self.text += chunk
            self.pending += chunk
            for p in prompts:
                if re.search(p.pattern, self.pending):
                    os.write(self.master, (p.answer + "\n").encode())
                    answered.append(p.name)
                    self.pending = ""
        return answered

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        os.close(self.master)


@pytest.mark.parametrize("gen", sorted(EXPECTED))
def test_prompts_in_order_under_pty(tmp_path: Path, gen: str) -> None:
    co = init_checkout(tmp_path / gen, gen, logged_in=True)
    spec = build_launch_spec(load_settings({"via_script": True, "model_size": "7", "swarm": "B"}, env={}), co)
    run = PtyRun(co, _env(GSWARM_EMU_ROUNDS="1"))
    try:
        end = "*** Training complete! ***" if gen == "E0" else "Training timed out!"
        assert run.pump(end, spec.prompts) == EXPECTED[gen]
        if gen == "E0":
            assert run.proc.wait(10) == 0  # E0: no background child, no wait: the script just ends
        else:
            time.sleep(0.3)
            assert run.proc.poll() is None  # the wait trap-door: Python exited 0, the script hangs
            assert ">> Shutting down trainer..." not in run.text
    finally:
        run.close()
    if gen == "E2":
        assert "--contract_address" not in run.text  # argv is not echoed
        assert "Joining round: 1000 starting at stage: 0" in run.text


def test_e2_prompt_texts_exact(tmp_path: Path) -> None:
    co = init_checkout(tmp_path / "E2", "E2", logged_in=True)
    spec = build_launch_spec(load_settings({"via_script": True}, env={}), co)
    run = PtyRun(co, _env(GSWARM_EMU_ROUNDS="1"))
    try:
        run.pump("Training timed out!", spec.prompts)
    finally:
        run.close()
    for text in (">> Would you like to connect to the Testnet? [Y/n] ",
                 ">> Which swarm would you like to join (Math (A) or Math Hard (B))? [A/b] ",
                 ">> How many parameters (in billions)? [0.5, 1.5, 7, 32, 72] ",
                 ">> Would you like to push models you train in the RL swarm to the Hugging Face Hub? [y/N] "):
        assert text in run.text
    order = [run.text.index(t) for t in ("connect to the Testnet", "Which swarm", "How many parameters",
                                         "Waiting for modal userData.json", "push models")]
    assert order == sorted(order)


def test_waits_for_login_then_proceeds(tmp_path: Path) -> None:
    co = init_checkout(tmp_path / "E6", "E6")
    spec = build_launch_spec(load_settings({"via_script": True, "model_name": "a/b"}, env={}), co)
    run = PtyRun(co, _env(GSWARM_EMU_ROUNDS="1"))
    try:
        run.pump(">> Waiting for modal userData.json to be created...")
        time.sleep(0.2)
        assert "Found userData.json" not in run.text
        org = write_login(co)
        run.pump("Using Model: a/b", spec.prompts)
        assert f"Your ORG_ID is set to: {org}" in run.text and "API key is activated! Proceeding..." in run.text
        assert ">> Using model: a/b" in run.text
    finally:
        run.close()


def test_crash_runs_err_and_exit_traps(tmp_path: Path) -> None:
    co = init_checkout(tmp_path / "E6", "E6", logged_in=True)
    spec = build_launch_spec(load_settings({"via_script": True}, env={}), co)
    run = PtyRun(co, _env(GSWARM_EMU_FAULTS="crash:no_such_category@0"))
    try:
        run.pump(">> Shutting down trainer...", spec.prompts)
        assert f">> An error was detected while running rl-swarm. See {co}/logs for full logs." in run.text
        assert run.text.index("An error was detected") < run.text.index("Shutting down trainer")
        run.proc.wait(10)
    finally:
        run.close()
    assert not (co / "modal-login/temp-data/userData.json").exists()  # cleanup deletes the login files


def test_no_prompt_text_without_tty(tmp_path: Path) -> None:
    co = init_checkout(tmp_path / "E5", "E5", logged_in=True)
    proc = subprocess.Popen(["bash", "run_rl_swarm.sh"], cwd=co, env=_env(GSWARM_EMU_ROUNDS="1"), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        proc.stdin.write(b"N\n\nn\n")  # blind answers in order: HF push, model, prediction market
        proc.stdin.flush()
        out = b""
        deadline = time.monotonic() + 15
        while b"Training timed out!" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                out += os.read(proc.stdout.fileno(), 65536)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    text = ANSI.sub("", out.decode("utf-8", "replace"))
    assert "Training timed out!" in text and ">> Using default model from config" in text
    for prompt in ("Would you like to push models", "Enter the name of the model", "AI Prediction Market"):
        assert prompt not in text
    assert "placed bet of" not in text  # answered n: PRG_GAME=false reached the node


@pytest.mark.parametrize("gen", ["E3", "E6"])
def test_watch_pattern_finds_trainer_under_script(tmp_path: Path, gen: str) -> None:
    import psutil

    co = init_checkout(tmp_path / gen, gen, logged_in=True)
    spec = build_launch_spec(load_settings({"via_script": True}, env={}), co)
    run = PtyRun(co, _env(GSWARM_EMU_FAULTS="hang@0"))
    try:
        run.pump("Using Model:", spec.prompts)
        family = psutil.Process(run.proc.pid).children(recursive=True)
        matched = [p for p in family if re.search(spec.watch_pattern, " ".join(p.cmdline()))]
        assert len(matched) == 1 and "gswarm-emu-p2pd" not in matched[0].cmdline()
        assert [c.cmdline()[-1] for c in matched[0].children()] == ["gswarm-emu-p2pd"]
    finally:
        run.close()


def test_e2_script_gpu_big_swarm_argv(tmp_path: Path) -> None:
    """With an nvidia-smi on PATH, answers B / 72 give the bnb-4bit config, dapo and the B contract (§5.3/§5.4)."""
    import psutil

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    co = init_checkout(tmp_path / "E2", "E2", logged_in=True)
    spec = build_launch_spec(load_settings({"via_script": True, "swarm": "B", "model_size": "72"}, env={}), co)
    run = PtyRun(co, _env(GSWARM_EMU_FAULTS="hang@0", PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}"))
    try:
        run.pump("Hello", spec.prompts)
        (trainer,) = [p for p in psutil.Process(run.proc.pid).children(recursive=True)
                      if re.search(spec.watch_pattern, " ".join(p.cmdline()))]
        argv = trainer.cmdline()
    finally:
        run.close()
    assert argv[argv.index("--config") + 1] == f"{co}/hivemind_exp/configs/gpu/grpo-qwen-2.5-72b-bnb-4bit-deepseek-r1.yaml"
    assert argv[argv.index("--game") + 1] == "dapo" and argv[argv.index("--hf_token") + 1] == "None"
    assert argv[argv.index("--contract_address") + 1] == "0x6947c6E196a48B77eFa9331EC1E3e45f3Ee5Fd58"
    assert "SMART_CONTRACT_ADDRESS=0x6947c6E196a48B77eFa9331EC1E3e45f3Ee5Fd58" in (co / "modal-login/.env").read_text()
