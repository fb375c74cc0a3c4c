"""Pure parts: backoff numbers, the state table, the checkout lock and pid record."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gswarm.errors import LockError
from gswarm.events import EventBus, NodeState as S, StateChanged
from gswarm.supervisor.backoff import backoff_delay, failures_in_window, is_crash_loop, next_attempt
from gswarm.supervisor.lock import CheckoutLock, PidRecord, leftover_members, record_alive, stop_orphan_group
from gswarm.supervisor.state import TRANSITIONS, IllegalTransition, StateMachine


def test_backoff_exponential_capped_with_full_jitter() -> None:
    assert [backoff_delay(n, 5, 300, 2) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert backoff_delay(3, 5, 300, 2, rand=0.25) == 5.0
    assert backoff_delay(10_000, 5, 300, 2, rand=1.0) == 300
    with pytest.raises(ValueError):
        backoff_delay(0, 5, 300)
    with pytest.raises(ValueError):
        backoff_delay(1, 5, 300, rand=1.5)


def test_reset_after_healthy_uptime_and_crash_loop_window() -> None:
    assert next_attempt(4, uptime=299, healthy_uptime=300) == 5
    assert next_attempt(4, uptime=300, healthy_uptime=300) == 1
    times = [0, 100, 500, 650, 700]
    assert failures_in_window(times, now=700, window=600) == [100, 500, 650, 700]
    assert is_crash_loop(times, 700, 600, 4) and not is_crash_loop(times, 700, 600, 5)


def test_state_table_and_events() -> None:
    bus = EventBus()
    seen: list[StateChanged] = []
    bus.subscribe(seen.append)
    sm = StateMachine("n", bus, lambda: 1.0)
    for new in (S.STARTING, S.RUNNING, S.DEGRADED, S.RUNNING, S.STALLED, S.STOPPING, S.BACKOFF, S.STARTING,
                S.RUNNING, S.BACKOFF, S.FATAL, S.STARTING, S.RUNNING, S.STOPPING, S.STOPPED):
        sm.move(new, "r")
    assert len(seen) == 15 and seen[-1].old == S.STOPPING and seen[-1].new == S.STOPPED
    with pytest.raises(IllegalTransition, match="STOPPED → RUNNING"):
        sm.move(S.RUNNING)
    with pytest.raises(IllegalTransition):
        StateMachine("n", bus, lambda: 1.0, S.BACKOFF).move(S.RUNNING)
    assert set(TRANSITIONS) == set(S)


def test_lock_refuses_second_holder_and_names_pid(tmp_path: Path) -> None:
    with CheckoutLock(tmp_path / "st", tmp_path / "co"):
        with pytest.raises(LockError, match=rf"another gswarm run \(pid {os.getpid()}\) already supervises {tmp_path / 'co'}"):
            CheckoutLock(tmp_path / "st", tmp_path / "co").acquire()
        CheckoutLock(tmp_path / "st", tmp_path / "other").acquire()  # a different checkout is fine
    CheckoutLock(tmp_path / "st", tmp_path / "co").acquire()  # released


def test_pid_record_and_orphan_stop(tmp_path: Path) -> None:
    from dataclasses import replace

    from gswarm.supervisor._procgroup import MARKER_VAR, Ownership, carries_marker

    lock = CheckoutLock(tmp_path / "st", tmp_path / "co")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True,
                             env={**os.environ, MARKER_VAR: "m1"})
    try:
        end = time.monotonic() + 5  # Popen returns mid-exec: the new environ is readable a moment later
        while not carries_marker(child.pid, "m1") and time.monotonic() < end:
            time.sleep(0.01)
        rec = lock.write_record(child.pid, child.pid, Ownership.of(child.pid, "m1"))
        assert lock.read_record() == rec and record_alive(rec) and rec.marker == "m1"
        assert not record_alive(replace(rec, stamp=rec.stamp + 100))  # started before the record: not ours
        assert not stop_orphan_group(replace(rec, stamp=rec.stamp + 100), 1)
        assert not stop_orphan_group(replace(rec, marker="other"), 1)  # another run's marker
        assert not stop_orphan_group(replace(rec, marker=""), 1)  # an old record without marker proves nothing
        assert child.poll() is None  # no proof, no signal
        assert leftover_members(rec) == [child.pid]
        assert stop_orphan_group(rec, timeout=5)
        assert child.wait(5) == -15
    finally:
        child.kill()
        child.wait()
    lock.clear_record()
    assert lock.read_record() is None


def test_parse_duration() -> None:
    from gswarm.cli.run import parse_duration
    from gswarm.errors import ConfigError

    assert [parse_duration(x) for x in ("60", "90s", "2m", "1.5h")] == [60, 90, 120, 5400]
    with pytest.raises(ConfigError, match="--duration"):
        parse_duration("soon")


def test_run_rejects_bad_flag_values_naming_the_option(tmp_path: Path) -> None:
    env = {**os.environ, "GSWARM_STATE_DIR": str(tmp_path), "COLUMNS": "300"}
    out = subprocess.run([sys.executable, "-m", "gswarm", "run", "--swarm", "C", "--rl-swarm-dir", str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "swarm" in out.stderr and "'A'" in out.stderr


def test_lock_is_host_wide_across_state_dirs(tmp_path: Path) -> None:
    """Two state directories, one checkout: the second supervisor is refused (same swarm.pem otherwise)."""
    host = tmp_path / "host"
    host.mkdir()
    first = CheckoutLock(tmp_path / "s1", tmp_path / "co", host_dir=host)
    first.acquire()
    try:
        with pytest.raises(LockError, match=rf"pid {os.getpid()}\) already supervises {tmp_path / 'co'}"):
            CheckoutLock(tmp_path / "s2", tmp_path / "co", host_dir=host).acquire()
        other = CheckoutLock(tmp_path / "s2", tmp_path / "other", host_dir=host)
        other.acquire()
        other.release()
    finally:
        first.release()
    again = CheckoutLock(tmp_path / "s2", tmp_path / "co", host_dir=host)
    again.acquire()
    again.release()


def test_runview_restart_numbers_and_streak_reset() -> None:
    """Regression: after a healthy run every restart read ``restart #1`` with no hint that the count had reset."""
    import io

    from gswarm.cli._runview import RunView
    from gswarm.events import Category, Recovery, RestartScheduled

    out = io.StringIO()
    view = RunView(out)
    for attempt, delay in ((1, 2.5), (2, 4.0), (1, 1.2)):
        view.event(RestartScheduled("n", 0.0, delay, Category.CUDA_OOM, Recovery.RESTART, attempt, "cuda_oom: restart with backoff"))
    assert out.getvalue().splitlines() == [
        "gswarm restart #1 in 2.5s (cause cuda_oom, recovery restart)",
        "gswarm restart #2 in 4.0s (cause cuda_oom, recovery restart)",
        "gswarm restart #1 in 1.2s (cause cuda_oom, recovery restart; streak reset after a healthy run or a new kind "
        "of failure, 3 restarts in total)",
    ]


def test_runview_survives_a_hung_up_terminal() -> None:
    """After SIGHUP the terminal answers writes with EIO: the view must go quiet, not raise into the
    output pump / bus while gswarm run stops gracefully."""
    import errno

    from gswarm.cli._runview import RunView
    from gswarm.events import NodeState, StateChanged
    from gswarm.supervisor.stream import Batch

    class HungUp:
        writes = 0

        def isatty(self) -> bool:
            return False

        def write(self, text: str) -> int:
            HungUp.writes += 1
            raise OSError(errno.EIO, "Input/output error")

        def flush(self) -> None:
            raise OSError(errno.EIO, "Input/output error")

    view = RunView(HungUp())  # type: ignore[arg-type]
    view.lines(Batch(["line"], ["line"]), 0.0)
    view.event(StateChanged("n", 0.0, NodeState.RUNNING, NodeState.STOPPING, "stop (signal)"))
    view.say("more")
    assert view.broken is True and HungUp.writes == 1


def test_runview_passes_colours_but_no_other_escape_to_a_terminal() -> None:
    """A node printing ESC c (full reset), a screen clear or a title must not act on the operator's terminal;
    its colours still show. Not a terminal: the plain text."""
    import io

    from gswarm.cli._runview import RunView
    from gswarm.supervisor.stream import LineSplitter

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    batch = LineSplitter().feed(b"\x1bc\x1b[2J\x1b]0;pwned\x07\x1b[32mok\x1b[0m\n")
    tty, pipe = Tty(), io.StringIO()
    RunView(tty).lines(batch, 0.0)
    RunView(pipe).lines(batch, 0.0)
    assert tty.getvalue() == "\x1b[32mok\x1b[0m\n" and pipe.getvalue() == "ok\n"
