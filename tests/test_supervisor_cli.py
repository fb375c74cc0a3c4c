"""`gswarm run` as a real subprocess on an emulated checkout: signals, leftovers, lock, crash loop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gswarm.emulator.checkout import init_checkout
from gswarm.errors import LockError, NodeFatal
from gswarm.supervisor._procgroup import live_members

pytestmark = pytest.mark.slow


def gswarm_run(checkout: Path, state: Path, *extra: str, faults: str = "", pace: str = "0.05") -> subprocess.Popen:
    env = {**os.environ, "GSWARM_EMU_PACE": pace, "GSWARM_EMU_FAULTS": faults, "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}
    argv = [sys.executable, "-m", "gswarm", "run", "--rl-swarm-dir", str(checkout), "--state-dir", str(state),
            "--no-api", "--stop-timeout", "3", *extra]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def wait_record(state: Path, timeout: float = 30.0, members: int = 2) -> dict:
    """The pid record once the node's group has at least ``members`` live processes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for f in (state / "run").glob("*.json") if (state / "run").exists() else ():
            try:
                rec = json.loads(f.read_text())
            except ValueError:
                continue
            if len(live_members(rec["pgid"])) >= members:
                return rec
        time.sleep(0.1)
    raise AssertionError("node group did not come up")


def wait_gone(pgid: int, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not live_members(pgid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return init_checkout(tmp_path / "rl-swarm", "E6", logged_in=True)


def test_sigterm_leaves_no_process_of_the_group(checkout: Path, tmp_path: Path) -> None:
    proc = gswarm_run(checkout, tmp_path / "st")
    try:
        rec = wait_record(tmp_path / "st")  # node + its p2pd-like grandchild
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out.decode()[-2000:]
    assert live_members(rec["pgid"]) == []
    with pytest.raises(ProcessLookupError):  # zombies too, once init reaped them
        end = time.monotonic() + 10
        while time.monotonic() < end:
            os.killpg(rec["pgid"], 0)
            time.sleep(0.1)


def test_sigkill_then_next_run_stops_leftover_group(checkout: Path, tmp_path: Path) -> None:
    first = gswarm_run(checkout, tmp_path / "st")
    rec = wait_record(tmp_path / "st")
    first.kill()
    first.wait(10)
    second = None
    try:
        time.sleep(0.3)
        assert live_members(rec["pgid"])  # orphaned node group (at least the p2pd-like grandchild) still alive
        second = gswarm_run(checkout, tmp_path / "st", "--duration", "1")
        out, _ = second.communicate(timeout=60)
    finally:
        if second is not None:
            second.kill()
        if live_members(rec["pgid"]):  # the group this test started; never leave it behind
            os.killpg(rec["pgid"], signal.SIGKILL)
    text = out.decode()
    assert second.returncode == 0, text[-2000:]
    assert f"stopped node group {rec['pgid']}" in text and "left behind" in text
    assert wait_gone(rec["pgid"], 1)


def test_second_run_refuses_with_lock_error(checkout: Path, tmp_path: Path) -> None:
    first = gswarm_run(checkout, tmp_path / "st")
    try:
        wait_record(tmp_path / "st", members=1)
        second = gswarm_run(checkout, tmp_path / "st")
        out, _ = second.communicate(timeout=60)
        assert second.returncode == LockError.exit_code
        assert f"another gswarm run (pid {first.pid}) already supervises {checkout}" in out.decode()
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    assert first.returncode == 0


def test_crash_loop_ends_fatal_with_nonzero_exit(checkout: Path, tmp_path: Path) -> None:
    proc = gswarm_run(checkout, tmp_path / "st", "--backoff-initial", "0.05", "--backoff-max", "0.1",
                      "--crash-loop-max", "3", faults="crash:dht_daemon_timeout@0")
    out, _ = proc.communicate(timeout=90)
    text = out.decode()
    assert proc.returncode == NodeFatal.exit_code, text[-3000:]
    assert text.count("started node pid") == 3 and "gave up" in text and "dht_daemon_timeout" in text


def _last_state(state: Path) -> dict:
    from gswarm.logs.store import StoreReader

    reader = StoreReader(state / "gswarm.db")
    try:
        return reader.events(kind="state", limit=1, desc=True)[0]
    finally:
        reader.close()


def test_sighup_stops_like_sigterm(checkout: Path, tmp_path: Path) -> None:
    """Regression: SIGHUP (terminal/SSH hang-up) killed gswarm run without stopping the node's group."""
    proc = gswarm_run(checkout, tmp_path / "st")
    try:
        rec = wait_record(tmp_path / "st")
        proc.send_signal(signal.SIGHUP)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        if live_members(rec["pgid"]):  # the group this test started; never leave it behind
            os.killpg(rec["pgid"], signal.SIGKILL)
    text = out.decode()
    assert proc.returncode == 0, text[-2000:]
    assert "state STOPPING → STOPPED (stop requested by signal)" in text
    assert wait_gone(rec["pgid"], 1)
    last = _last_state(tmp_path / "st")
    assert (last["state"], last["message"]) == ("STOPPED", "stop requested by signal")
    assert list((tmp_path / "st" / "run").glob("*.json")) == []  # pid record cleared (api.json: --no-api here)


def test_oom_give_up_is_visible_in_status(tmp_path: Path) -> None:
    """Regression: after the OOM ladder gave up (STOPPED, exit 6) `gswarm status` showed neither why nor that
    no restart follows (its advice still promised one), and the last run's cause was NULL."""
    from gswarm.logs.store import StoreReader

    e4 = init_checkout(tmp_path / "rl-e4", "E4", logged_in=True)
    proc = gswarm_run(e4, tmp_path / "st", "--backoff-initial", "0.05", "--backoff-max", "0.1", "--org-id", "x",
                      faults="crash:cuda_oom@3")
    out, _ = proc.communicate(timeout=120)
    text = out.decode()
    assert proc.returncode == NodeFatal.exit_code, text[-3000:]
    reason = _last_state(tmp_path / "st")["message"]
    assert reason.startswith("cuda_oom: out of memory") and "smallest" in reason
    reader = StoreReader(tmp_path / "st" / "gswarm.db")
    try:
        causes = [r["cause"] for r in reader.runs()]
    finally:
        reader.close()
    assert causes == ["cuda_oom"] * text.count("started node pid") and len(causes) >= 2
    cmd = [sys.executable, "-m", "gswarm", "status", "--state-dir", str(tmp_path / "st")]
    env = {**os.environ, "COLUMNS": "1000"}
    doc = json.loads(subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, check=True).stdout)
    assert (doc["state"], doc["gave_up"]["state"], doc["gave_up"]["cause"], doc["gave_up"]["reason"]) == (
        "STOPPED", "STOPPED", "cuda_oom", reason)
    shown = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    assert f"gave up        {reason} (cause cuda_oom); GSwarm will not restart the node" in shown
    assert "GSwarm restarts" not in shown and "GSwarm gave up and will not restart the node" in shown
