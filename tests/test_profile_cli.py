"""The CLI around configuration as an operator meets it: the ``gswarm init`` wizard through a real pty and
without a terminal, ``gswarm options`` at 80 columns and piped, shell completion and the exit codes in --help.
Real child processes (``python -m gswarm``); each answer is awaited with short polls, never a fixed sleep."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path


from gswarm.cli.init import detect_hardware
from gswarm.cli.options import option_rows
from gswarm.config import profiles
from gswarm.config.templates import propose
from gswarm.emulator.checkout import init_checkout


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")}
    return {**env, "HOME": str(tmp_path / "home"), "COLUMNS": "80", "TERM": "dumb", **extra}


def _gswarm(tmp_path: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gswarm", *args], env=_env(tmp_path), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, **kw)


class Pty:
    """A child on a real pseudo-terminal; ``expect(text)`` reads until ``text`` appears (deadline in seconds)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, deadline: float = 20.0) -> str:
        end = time.monotonic() + deadline
        while text not in self.seen:
            left = end - time.monotonic()
            assert left > 0, f"waited for {text!r}; got:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode("utf-8", "replace")
                except OSError:  # EIO: the child closed the terminal
                    assert text in self.seen, f"child ended before {text!r}:\n{self.seen}"
        return self.seen

    def send(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def close(self) -> int:
        rc = self.proc.wait(30)
        os.close(self.master)
        return rc


def test_wizard_through_a_real_terminal(tmp_path) -> None:
    checkout = init_checkout(tmp_path / "rl-swarm", "E6")
    sd = tmp_path / "state"
    t = Pty([sys.executable, "-m", "gswarm", "init", "--state-dir", str(sd)], _env(tmp_path))
    try:
        t.expect("RL Swarm checkout [")
        t.send(str(checkout))
        t.expect("proposed template: codezero-ollama")
        t.expect("Template (")
        t.send("")                       # take the proposal
        t.expect("Model ('-' = let the launcher pick) [Qwen/Qwen2.5-Coder-0.5B-Instruct]")
        t.send("-")                      # the launcher's own pick
        t.expect("Push trained models to Hugging Face? [y/N]")
        t.send("y")
        t.expect("Send notifications")
        t.send("")
        t.expect("Run GSwarm as a service after boot? [y/N]")
        t.send("n")
        t.expect("Profile name [main]")
        t.send("bad name!")              # refused, asked again
        t.expect("profile name 'bad name!' is not valid")
        t.send("node1")
        out = t.expect(f"next: gswarm run --state-dir {sd}")
    finally:
        rc = t.close()
    assert rc == 0, out
    assert "checkout: " + str(checkout) + " (generation E6)" in out
    prof = profiles.read(sd, "node1")
    assert (prof.template, prof.generations) == ("codezero-ollama", ("E6",))
    assert prof.options == {"ollama_port": 11434, "rl_swarm_dir": str(checkout), "hf_token": "env:GSWARM_HF_TOKEN"}
    assert profiles.active(sd) == "node1"


def test_wizard_without_a_terminal_never_waits(tmp_path) -> None:
    checkout = init_checkout(tmp_path / "rl-swarm", "E4")
    sd = tmp_path / "state"
    t0 = time.monotonic()
    res = _gswarm(tmp_path, "init", "--state-dir", str(sd), "--rl-swarm-dir", str(checkout), "--no-hf-push")
    assert res.returncode == 2 and time.monotonic() - t0 < 30
    assert res.stderr.strip().endswith(
        "no terminal to ask on and these questions were not answered: --template, --model-name, "
        "--notify/--no-notify, --service/--no-service, --name; pass them as flags or add --yes to take the defaults")
    assert not (sd / "profiles").exists()
    res = _gswarm(tmp_path, "init", "--yes", "--state-dir", str(sd), "--rl-swarm-dir", str(checkout), "--notify")
    assert res.returncode == 0, res.stderr
    hw = detect_hardware()
    expected = propose(hw.vram_gib, hw.apple_silicon, "E4")
    prof = profiles.read(sd, "main")
    assert prof.template == expected.name
    assert prof.options == {**expected.options, "rl_swarm_dir": str(checkout), "notify_urls": "env:GSWARM_NOTIFY_URLS"}
    assert res.stdout.strip().endswith(f"next: gswarm run --state-dir {sd}")
    # the same answers again: the profile exists, so it refuses instead of overwriting
    again = _gswarm(tmp_path, "init", "--yes", "--state-dir", str(sd), "--rl-swarm-dir", str(checkout))
    assert again.returncode == 2 and "profile main exists" in again.stderr


def test_options_at_80_columns_and_piped(tmp_path) -> None:
    res = _gswarm(tmp_path, "options")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert max(len(x) for x in lines) <= 80
    heads = {x.split("  ")[0]: x + " " + lines[i + 1] for i, x in enumerate(lines)
             if not x.startswith((" ", "[")) and "  (GSWARM_" in x}
    rows = option_rows()
    assert set(heads) == {r["name"] for r in rows}
    for r in rows:
        assert r["description"], f"{r['name']} has no description"
        assert r["env"] in heads[r["name"]] and "default " in heads[r["name"]]
    assert "    Cap of the restart delay, seconds." in lines
    assert "backoff_max  (GSWARM_BACKOFF_MAX, --backoff-max)  default 300.0" in lines
    at = lines.index("crash_loop_window  (GSWARM_CRASH_LOOP_WINDOW, --crash-loop-window)")  # too long for one line
    assert lines[at + 1:at + 3] == ["    default 600.0", "    Crash-loop window, seconds."]
    miss = _gswarm(tmp_path, "options", "no-such-word")
    assert (miss.returncode, miss.stdout) == (2, "")
    assert "no option matches 'no-such-word'" in miss.stderr


def test_completion_and_exit_codes_in_help(tmp_path) -> None:
    res = _gswarm(tmp_path, "--help")
    assert "--install-completion" in res.stdout
    text = " ".join(res.stdout.split())
    assert "Exit codes: 0 success" in text and "2 bad input" in text and "6 gave up on the node" in text
    env = {**_env(tmp_path), "_GSWARM_COMPLETE": "complete_bash", "COMP_WORDS": "gswarm prof", "COMP_CWORD": "1"}
    script = Path(sys.executable).parent / "gswarm"  # the console script: completion keys on the program name
    comp = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert comp.stdout.split() == ["profile"]
