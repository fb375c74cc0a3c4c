"""Issue #13 cases 1, 3, 7 end to end: `gswarm run` as a real subprocess on emulated checkouts.

Each run gets its own ``XDG_RUNTIME_DIR`` so the host-wide lock dir is private to the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from gswarm.emulator.checkout import init_checkout
from gswarm.errors import LockError
from gswarm.supervisor._procgroup import MARKER_VAR, find_owned, start_stamp
from gswarm.supervisor.lock import PidRecord, _key

pytestmark = pytest.mark.slow


def gswarm_run(checkout: Path, state: Path, xdg: Path, *extra: str) -> subprocess.Popen:
    xdg.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "GSWARM_EMU_PACE": "0.05", "PYTHONUNBUFFERED": "1", "COLUMNS": "400", "XDG_RUNTIME_DIR": str(xdg)}
    argv = [sys.executable, "-m", "gswarm", "run", "--rl-swarm-dir", str(checkout), "--state-dir", str(state),
            "--no-api", "--stop-timeout", "3", *extra]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def wait_record(state: Path, members: int = 2, timeout: float = 30.0) -> PidRecord:
    """The pid record once at least ``members`` processes carry its marker (node + p2pd-like grandchild)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for f in (state / "run").glob("*.json") if (state / "run").exists() else ():
            try:
                rec = PidRecord(**json.loads(f.read_text()))
            except (OSError, ValueError, TypeError):
                continue
            own = rec.ownership()
            if own is not None and len(find_owned(own)) >= members:
                return rec
        time.sleep(0.1)
    raise AssertionError("node did not come up")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return init_checkout(tmp_path / "rl-swarm", "E6", logged_in=True)


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True,
                            env={k: v for k, v in os.environ.items() if k != MARKER_VAR})
    yield proc
    proc.kill()
    proc.wait()


def test_case1_stale_record_whose_pid_a_stranger_reused_leaves_the_stranger_alive(
        checkout: Path, tmp_path: Path, stranger: subprocess.Popen) -> None:
    """The issue's scenario: a record in <state>/run/ whose node died; the stranger, started after it,
    now has that pid and pgid. Before the fix gswarm run printed "stopped node group …" and killed it."""
    started = psutil.Process(stranger.pid).create_time()
    run = tmp_path / "st" / "run"
    run.mkdir(parents=True)
    stale = {"checkout": str(checkout.resolve()), "gswarm_pid": 999_999, "node_pid": stranger.pid, "pgid": stranger.pid,
             "node_started": started - 30, "ts": started - 30}  # the format older GSwarm wrote: no marker
    (run / f"{_key(checkout)}.json").write_text(json.dumps(stale))
    proc = gswarm_run(checkout, tmp_path / "st", tmp_path / "xdg", "--duration", "1")
    out, _ = proc.communicate(timeout=60)
    text = out.decode()
    assert proc.returncode == 0, text[-2000:]
    assert "left behind" not in text
    assert alive(stranger.pid), "stranger was killed"


def test_case3_orphan_of_a_sigkilled_run_is_stopped_by_a_run_with_another_state_dir(
        checkout: Path, tmp_path: Path, stranger: subprocess.Popen) -> None:
    xdg = tmp_path / "xdg"
    first = gswarm_run(checkout, tmp_path / "st1", xdg)
    rec = wait_record(tmp_path / "st1")
    own = rec.ownership()
    assert own is not None and len(list((xdg / "gswarm").glob(f"live-{_key(checkout)}-*.json"))) == 1  # host-wide copy
    first.kill()
    first.wait(10)
    second = None
    try:
        time.sleep(0.3)
        orphans = find_owned(own)
        assert orphans  # the node group outlived its supervisor
        second = gswarm_run(checkout, tmp_path / "st2", xdg, "--duration", "1")
        out, _ = second.communicate(timeout=60)
    finally:
        if second is not None:
            second.kill()
        for pid in find_owned(own):  # never leave this test's processes behind
            os.kill(pid, signal.SIGKILL)
    text = out.decode()
    assert second.returncode == 0, text[-2000:]
    assert f"stopped node group {rec.pgid} (pid {rec.node_pid}) left behind by gswarm pid {first.pid}" in text
    assert find_owned(own) == [] and not any(alive(p) for p in orphans)
    assert alive(stranger.pid)
    assert list((xdg / "gswarm").glob("live-*.json")) == []  # the second run's own record went with its clean exit


def test_case7_same_state_dir_and_node_name_on_another_checkout_is_refused(checkout: Path, tmp_path: Path) -> None:
    other = init_checkout(tmp_path / "rl-swarm-2", "E6", logged_in=True)
    xdg = tmp_path / "xdg"
    first = gswarm_run(checkout, tmp_path / "st", xdg)
    try:
        wait_record(tmp_path / "st", members=1)
        second = gswarm_run(other, tmp_path / "st", xdg)
        out, _ = second.communicate(timeout=60)
        text = " ".join(out.decode().split())
        assert second.returncode == LockError.exit_code, text[-2000:]
        assert f"another gswarm run (pid {first.pid}) already keeps the history of node" in text
        assert f"(checkout {checkout.resolve()}); two runs would mix one history" in text
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    assert first.returncode == 0
