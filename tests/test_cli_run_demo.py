"""``gswarm run --emulated``: the demo keeps its state out of the operator's state directory; fault
schedules are checked before anything starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gswarm.cli.run import check_faults
from gswarm.errors import ConfigError


@pytest.mark.parametrize("text,needle", [
    ("boom@3", r"option --emu-faults: bad item 'boom@3'; expected kind\[:arg\]"),
    ("crash:bogus@2", r"option --emu-faults: crash:bogus is not a failure category the emulator can show; use one of .*cuda_oom"),
    ("flood@2", r"option --emu-faults: 'flood@2' needs a line count"),
])
def test_bad_fault_schedules_are_refused_up_front(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        check_faults(text, "option --emu-faults")
    check_faults("crash:cuda_oom@10,sigkill@60#2 flood:100@1", "option --emu-faults")  # a good one passes


def test_bad_env_schedule_exits_2_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "GSWARM_EMU_FAULTS": "crash:nope", "GSWARM_STATE_DIR": str(tmp_path / "s")}
    p = subprocess.run([sys.executable, "-m", "gswarm", "run", "--emulated", "--duration", "5", "--no-api"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "environment variable GSWARM_EMU_FAULTS: crash:nope is not a failure category" in " ".join(p.stderr.split())


def test_demo_state_is_kept_out_of_the_default_state_dir(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GSWARM_", "XDG_"))}
    env["HOME"] = str(home)
    p = subprocess.run([sys.executable, "-m", "gswarm", "run", "--emulated", "--duration", "3", "--no-api",
                        "--emu-pace", "0.1"], env=env, capture_output=True, text=True, timeout=90, cwd=tmp_path)
    out = " ".join((p.stdout + p.stderr).split())
    assert p.returncode == 0, out[-2000:]
    m = re.search(r"gswarm demo state kept in (\S+) \(your own state directory was not used\)", out)
    assert m, out[-2000:]
    demo = Path(m.group(1))
    try:
        assert (demo / "gswarm.db").is_file() and (demo / "logs" / "gswarm.jsonl").is_file()
        assert not (home / ".local" / "state" / "gswarm").exists()  # platformdirs' default: untouched
    finally:
        import shutil

        shutil.rmtree(demo, ignore_errors=True)
