"""Issue #13 cases 1, 4, 7, 9 with real processes: a stranger is never signalled, escaped descendants
are killed at stop, one run per (state dir, node name), and process handling without /proc."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from gswarm.errors import LockError
from gswarm.events import EventBus
from gswarm.supervisor import _procgroup
from gswarm.supervisor._procgroup import MARKER_VAR, Ownership, carries_marker, find_owned, live_members, start_stamp
from gswarm.supervisor.lock import CheckoutLock, PidRecord, leftover_members, stop_orphan_group
from gswarm.supervisor.process import NodeProcess
from gswarm.supervisor.spec import LaunchSpec

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def spec(code: str, tmp: Path) -> LaunchSpec:
    return LaunchSpec(argv=(sys.executable, "-c", code), cwd=tmp, env={"PYTHONUNBUFFERED": "1"}, mode="direct", generation="E6")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_dead(pid: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen]:
    """An unrelated process in its own session (no marker), killed by the test at the end."""
    proc = subprocess.Popen(SLEEPER, start_new_session=True, env={k: v for k, v in os.environ.items() if k != MARKER_VAR})
    yield proc
    proc.kill()
    proc.wait()


# ------------------------------------------------------------------ case 1: a stranger is never killed
def test_stale_record_with_marker_never_reaches_a_stranger_holding_its_pid(tmp_path: Path, stranger: subprocess.Popen) -> None:
    """The recorded node died; its pid and pgid now belong to a stranger started after it. Neither a
    matching pid/pgid nor a later start time is proof: the stranger lacks the run's marker."""
    kind, stamp = start_stamp(stranger.pid)
    rec = PidRecord(str(tmp_path / "co"), 999_999, stranger.pid, stranger.pid, time.time() - 60, time.time() - 60,
                    marker="a" * 32, node="n", stamp=stamp - 30, stamp_kind=kind)
    assert leftover_members(rec) == []
    assert stop_orphan_group(rec, timeout=0.2) is False
    assert alive(stranger.pid)


def test_a_process_with_the_marker_that_started_before_the_record_is_not_ours(tmp_path: Path) -> None:
    """Marker without the start-time proof is not enough (e.g. a leaked marker value)."""
    early = subprocess.Popen(SLEEPER, start_new_session=True, env={**os.environ, MARKER_VAR: "b" * 32})
    try:
        end = time.monotonic() + 5  # Popen returns mid-exec: /proc/<pid>/environ reads empty for a moment
        while not carries_marker(early.pid, "b" * 32) and time.monotonic() < end:
            time.sleep(0.01)
        own = Ownership.of(early.pid, "b" * 32)
        assert own is not None and find_owned(own) == [early.pid]
        later = replace(own, since=own.since + 5)  # the record's node started 5 s after this process
        assert find_owned(later) == [] and not later.owns(early.pid)
        rec = PidRecord("co", 1, early.pid, early.pid, 0.0, 0.0, own.marker, "n", later.since, later.kind)
        assert stop_orphan_group(rec, timeout=0.2) is False and alive(early.pid)
    finally:
        early.kill()
        early.wait()


async def test_signals_after_the_leader_was_reaped_never_reach_a_recycled_group(tmp_path: Path, stranger: subprocess.Popen) -> None:
    """Once the leader is reaped its group id can be recycled: kill/stop/sweep must then prove each pid."""
    p = NodeProcess(spec("pass", tmp_path), "n", EventBus(), time.time)
    await p.start()
    await asyncio.wait_for(p.wait(), 10)
    p.pgid = stranger.pid  # the group id now names the stranger's session (what pid reuse does)
    p.kill()
    assert p.signal_group(signal.SIGTERM) is False
    await p.sweep_group(grace=0.1)
    assert alive(stranger.pid)


# ------------------------------------------------------------------ case 4: escaped descendants
ESCAPER = (
    "import os, signal, subprocess, sys, time\n"
    "code = 'import os, signal, sys, time; os.setsid(); signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print(\"esc\", os.getpid(), flush=True); time.sleep(60)'\n"
    "subprocess.Popen([sys.executable, '-c', code])\n"  # inherits our stdout: holds the pipe open
    "time.sleep(60)\n"
)


async def test_stop_kills_a_descendant_that_left_the_group_and_ignores_sigterm(tmp_path: Path, stranger: subprocess.Popen) -> None:
    pids: list[int] = []
    seen = asyncio.Event()

    def on_batch(batch, ts) -> None:
        for text in batch.texts:
            if text.startswith("esc "):
                pids.append(int(text.split()[1]))
                seen.set()

    p = NodeProcess(spec(ESCAPER, tmp_path), "n", EventBus(), time.time, on_batch=on_batch)
    await p.start()
    await asyncio.wait_for(seen.wait(), 10)
    esc = pids[0]
    assert os.getpgid(esc) == esc != p.pgid  # it really left our group (and session)
    t0 = time.monotonic()
    await asyncio.wait_for(p.stop(timeout=0.3), 15)
    took = time.monotonic() - t0
    assert not alive(esc), "escaped descendant survived stop"
    assert live_members(p.pgid) == [] and alive(stranger.pid)
    assert took < 5  # TERM, then the stop timeout (0.3 s) as the sweep grace, then KILL (~0.3 s when idle)
    print(f"escaped descendant alive after stop: {alive(esc)}; stranger alive: {alive(stranger.pid)}; stop took {took:.2f} s")


async def test_natural_exit_sweeps_escaped_descendant(tmp_path: Path) -> None:
    """The leader exits by itself; its setsid'd child (holding stdout, ignoring TERM) is still ours and ended."""
    code = ESCAPER.replace("time.sleep(60)\n", "time.sleep(0.5)\n")  # only the leader's own last line matches
    pids: list[int] = []
    p = NodeProcess(spec(code, tmp_path), "n", EventBus(), time.time,
                    on_batch=lambda b, ts: pids.extend(int(t.split()[1]) for t in b.texts if t.startswith("esc ")))
    await p.start()
    st = await asyncio.wait_for(p.wait(), 15)
    assert st.exit_code == 0 and pids and not alive(pids[0])


# ------------------------------------------------------------------ case 7: one run per (state dir, node name)
def test_same_state_dir_and_node_name_on_another_checkout_is_refused(tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    first = CheckoutLock(tmp_path / "st", tmp_path / "co1", host_dir=host, node="alpha")
    first.acquire()
    try:
        with pytest.raises(LockError) as err:
            CheckoutLock(tmp_path / "st", tmp_path / "co2", host_dir=host, node="alpha").acquire()
        assert str(err.value) == (f"another gswarm run (pid {os.getpid()}) already keeps the history of node 'alpha' in "
                                  f"{tmp_path / 'st'} (checkout {(tmp_path / 'co1').resolve()}); two runs would mix one "
                                  f"history: stop it, or give this run another --state-dir or --node-name")
        other = CheckoutLock(tmp_path / "st", tmp_path / "co2", host_dir=host, node="beta")  # another node name: fine
        other.acquire()
        other.release()
        again = CheckoutLock(tmp_path / "st2", tmp_path / "co2", host_dir=host, node="alpha")  # another state dir: fine
        again.acquire()
        again.release()
    finally:
        first.release()
    third = CheckoutLock(tmp_path / "st", tmp_path / "co2", host_dir=host, node="alpha")  # released with the first
    third.acquire()
    third.release()


# ------------------------------------------------------------------ case 9: no /proc
async def test_without_proc_wait_returns_and_no_child_is_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_procgroup, "PROC_ROOT", str(tmp_path / "no-proc"))  # missing: every lookup goes through psutil
    code = ("import subprocess, sys\n"
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], stdout=subprocess.DEVNULL)\n"
            "print('child', c.pid, flush=True)\n")
    kids: list[int] = []
    p = NodeProcess(spec(code, tmp_path), "n", EventBus(), time.time,
                    on_batch=lambda b, ts: kids.extend(int(t.split()[1]) for t in b.texts if t.startswith("child ")))
    await p.start()
    assert p.ownership is not None and p.ownership.kind == "wall"  # psutil's create_time, not /proc ticks
    st = await asyncio.wait_for(p.wait(), 15)
    assert st.exit_code == 0 and kids and not alive(kids[0])
    assert live_members(p.pgid) == []


async def test_without_proc_stop_reaches_group_and_escaped_descendant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     stranger: subprocess.Popen) -> None:
    monkeypatch.setattr(_procgroup, "PROC_ROOT", None)
    pids: list[int] = []
    seen = asyncio.Event()
    p = NodeProcess(spec(ESCAPER, tmp_path), "n", EventBus(), time.time,
                    on_batch=lambda b, ts: (pids.extend(int(t.split()[1]) for t in b.texts if t.startswith("esc ")),
                                            pids and seen.set()))
    await p.start()
    await asyncio.wait_for(seen.wait(), 10)
    await asyncio.wait_for(p.stop(timeout=0.3), 15)
    assert not alive(pids[0]) and live_members(p.pgid) == [] and alive(stranger.pid)


# ------------------------------------------------------------------ the marker reaches script mode's Python child
async def test_script_mode_python_child_carries_the_run_marker(tmp_path: Path) -> None:
    """run_rl_swarm.sh-like script under a pty: its Python child inherits GSWARM_RUN_MARKER (the one GSWARM_
    variable a script-mode node must keep), so ownership proves it."""
    from gswarm.supervisor.scriptmode import ScriptRun

    (tmp_path / "run.sh").write_text('set -euo pipefail\n"$PY" -c "$CODE"\n')
    code = "import os; print('marker', os.environ.get('GSWARM_RUN_MARKER'), flush=True)  # trainer"
    spec_ = LaunchSpec(argv=("bash", "run.sh"), cwd=tmp_path, env={"PY": sys.executable, "CODE": code}, mode="script",
                       generation="E6", use_pty=True, watch_pattern=r"-c .*trainer")
    seen: list[str] = []
    r = ScriptRun(spec_, "n", EventBus(), time.time, on_batch=lambda b, ts: seen.extend(b.texts), poll=0.05, stop_timeout=1)
    await r.start()
    await asyncio.wait_for(r.wait(), 20)
    assert r.ownership is not None and r.ownership.marker == r.proc.marker and len(r.proc.marker) == 32
    assert f"marker {r.proc.marker}" in seen


def test_host_record_write_failure_keeps_the_state_dir_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A host-wide copy that cannot be written (here a folder sits at its path) costs that copy only, with a warning."""
    host = tmp_path / "host"
    host.mkdir()
    lock = CheckoutLock(tmp_path / "st", tmp_path / "co", host_dir=host, node="n")
    lock.acquire()
    try:
        assert lock.host_record_path is not None
        lock.host_record_path.mkdir()  # os.replace onto a folder fails (even as root)
        rec = lock.write_record(os.getpid(), os.getpgid(0))
        assert lock.read_record() == rec and "cannot write the host-wide node record" in caplog.text
        lock.host_record_path.rmdir()
    finally:
        lock.release()
