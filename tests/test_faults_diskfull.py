"""Issue #13 case 2: every write GSwarm makes survives ENOSPC/EIO; supervision goes on, one alert.

Injected failure that runs everywhere: the capture file (and the JSON log) are symlinks to ``/dev/full``,
whose every write fails with a real ``ENOSPC`` from the kernel. Before the fix ``capture.note()`` raised
``OSError: [Errno 28]`` out of ``Watcher._after_exit`` at the first node exit and ``gswarm run`` exited 1
without restarting the node. A real small filesystem (tmpfs, root only; skipped otherwise) checks that
the SQLite history, the JSON log and the capture stay whole and that the alarm clears when space returns.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

DEV_FULL = Path("/dev/full")
pytestmark = pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full (Linux)")


def _notices(db: Path, kind: str) -> list[dict]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT data FROM events WHERE kind = 'notice'").fetchall()
    finally:
        conn.close()
    return [d for d in (json.loads(r[0]) for r in rows) if d.get("kind") == kind]


def test_gswarm_run_survives_enospc_on_capture_and_json_log(tmp_path: Path) -> None:
    st = tmp_path / "st"
    (st / "logs" / "default").mkdir(parents=True)
    (st / "logs" / "default" / "output.log").symlink_to(DEV_FULL)
    (st / "logs" / "gswarm.jsonl").symlink_to(DEV_FULL)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")}
    p = subprocess.run([sys.executable, "-m", "gswarm", "run", "--emulated", "--no-api", "--state-dir", str(st),
                        "--emu-pace", "0.05", "--emu-faults", "crash:trainer_bug_current_batch@0.3",
                        "--backoff-initial", "0.1", "--backoff-max", "0.2", "--crash-loop-max", "50",
                        "--duration", "3"], env=env, capture_output=True, text=True, timeout=90, cwd=tmp_path)
    out = p.stdout + p.stderr
    assert "OSError" not in out and "_after_exit" not in out, out[-3000:]  # (the emulated node prints tracebacks)
    assert p.returncode == 0, out[-3000:]
    conn = sqlite3.connect(st / "gswarm.db")
    try:
        starts = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        conn.close()
    assert starts >= 2  # the node crashed and was restarted as usual
    alerts = _notices(st / "gswarm.db", "disk_full")
    assert len(alerts) == 1, alerts  # one alert however many writes failed
    assert alerts[0]["title"] == "disk full: GSwarm cannot write its files"
    assert "No space left on device (ENOSPC)" in alerts[0]["body"]
    print(f"runs recorded: {starts}; disk_full alerts: {len(alerts)}")


# ------------------------------------------------------------------ the alarm itself (injected clock)
def test_alarm_raises_once_and_clears_after_a_quiet_period() -> None:
    import errno

    from gswarm.clock import FakeClock
    from gswarm.diskfull import DiskAlarm
    from gswarm.events import EventBus, Notice

    bus, clock, seen = EventBus(), FakeClock(), []
    bus.subscribe(seen.append)
    alarm = DiskAlarm(bus, clock, "n1", quiet=30.0)
    full = OSError(errno.ENOSPC, "No space left on device")
    for what in ("capture file", "JSON log", "capture file"):
        alarm.failed(what, full)
    alarm.failed("history database", sqlite3.OperationalError("database or disk is full"))
    clock.advance(10)
    alarm.ok()  # a small write got through, but the last failure is only 10 s old: still raised
    clock.advance(25)
    alarm.ok()
    alarm.ok()
    kinds = [(e.kind, e.severity.value) for e in seen if isinstance(e, Notice)]
    assert kinds == [("disk_full", "error"), ("disk_ok", "warning")]
    assert "while the disk was unavailable: JSON log: 1, capture file: 2, history database: 1." in seen[1].body
    assert (alarm.raised, alarm.cleared, alarm.active) == (1, 1, False)
    alarm.failed("pid record", OSError(errno.EIO, "Input/output error"))  # a new episode: one more alert
    assert [e.title for e in seen][-1] == "GSwarm cannot write its files" and alarm.raised == 2


# ------------------------------------------------------------------ a real full filesystem (tmpfs, root only)
def _mount(mnt: Path, options: str) -> None:
    """Mount a tmpfs with ``options`` at ``mnt`` (skips the test when mounting is not permitted)."""
    mnt.mkdir(exist_ok=True)
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs: {exc}")
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")


def _umount(mnt: Path) -> None:
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10)


@pytest.fixture
def small_fs(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 1 MiB tmpfs at ``tmp_path/mnt`` (skips when mounting is not permitted)."""
    mnt = tmp_path / "mnt"
    _mount(mnt, "size=1m,mode=0700")
    try:
        yield mnt
    finally:
        _umount(mnt)


def _fill(folder: Path, keep: int = 0) -> Path:
    """Fill the filesystem of ``folder`` up to the last ``keep`` bytes; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError:
                pass
    if keep:
        os.truncate(filler, filler.stat().st_size - keep)
    return filler


def test_capture_cuts_a_torn_record_back(small_fs: Path) -> None:
    from gswarm.diskfull import DiskAlarm
    from gswarm.clock import FakeClock
    from gswarm.events import EventBus
    from gswarm.supervisor.capture import CaptureFile
    from gswarm.supervisor.stream import LineSplitter

    alarm = DiskAlarm(EventBus(), FakeClock(), "n", quiet=0.0)
    cap = CaptureFile(small_fs / "output.log", alarm=alarm)
    cap.note("before", 1_700_000_000.0, 1)
    before = (small_fs / "output.log").read_bytes()
    filler = _fill(small_fs, keep=300)  # room for a few short lines, not for the big batch
    batch = LineSplitter().feed(b"".join(b"line %05d of a long batch\n" % i for i in range(2000)))
    cap.write_batch(batch, 1_700_000_001.0, 42)  # a short write, then ENOSPC
    cap.note("after the failure", 1_700_000_002.0, 42)  # fits: appended after the last whole record
    text = (small_fs / "output.log").read_bytes()
    assert text.startswith(before) and text.endswith(b" 42 # after the failure\n")
    assert text.count(b"\n") == 2 and cap.lost == 2000  # the torn batch was cut away entirely
    assert alarm.raised == 1 and alarm.failures == {} and alarm.cleared == 1
    filler.unlink()
    print(f"capture bytes kept: {len(text)}; lines lost: {cap.lost}")


CHILD = """
import os, sys, time
runs = {runs!r}
n = len(open(runs).read()) if os.path.exists(runs) else 0
open(runs, "a").write("x")
print("run", n, "up", flush=True)
if n == 0:
    while not os.path.exists({go!r}):
        time.sleep(0.01)
    print("first run ends with an error " + "x" * 4000, flush=True)
    sys.exit(1)
i = 0
while True:
    i += 1
    print("healthy line", i, flush=True)
    time.sleep(0.02)
"""


async def test_runtime_on_a_full_tmpfs_restarts_alerts_once_and_keeps_history_whole(small_fs: Path, tmp_path: Path) -> None:
    """The reported crash exactly: space runs out while the node runs; its exit note hits ENOSPC."""
    import asyncio
    import re

    from gswarm.config import load_settings
    from gswarm.diskfull import alarm_for
    from gswarm.events import Notice, ProcessStarted
    from gswarm.runtime import Runtime
    from gswarm.supervisor.spec import LaunchSpec
    from tests.helpers import until

    st = small_fs / "st"
    go = tmp_path / "go"
    code = CHILD.format(runs=str(tmp_path / "runs"), go=str(go))
    settings = load_settings({"state_dir": st, "rl_swarm_dir": tmp_path, "backoff_initial": 0.05,
                              "backoff_jitter": False}, env={})
    spec = LaunchSpec(argv=(sys.executable, "-c", code), cwd=tmp_path, env={}, mode="direct", generation="E6")
    rt = Runtime(settings, services=("gswarm.logs.store:create_service", "gswarm.logs.jsonlog:create_service"),
                 install_signals=False, spec_factory=lambda: spec)
    alarm = alarm_for(rt.bus, rt.clock, rt.node)
    alarm.quiet = 3600.0  # while full, a small write that still fits must not clear the alarm (default 30 s)
    events: list = []
    rt.bus.subscribe(events.append)
    task = asyncio.ensure_future(rt.run())
    starts = lambda: sum(isinstance(e, ProcessStarted) for e in events)  # noqa: E731
    notices = lambda kind: [e for e in events if isinstance(e, Notice) and e.kind == kind]  # noqa: E731
    jsonl = st / "logs" / "gswarm.jsonl"
    output = st / "logs" / "default" / "output.log"  # node output is kept in the capture file (issue #18)
    await until(lambda: output.exists() and b"> run 0 up\n" in output.read_bytes(), timeout=20)
    filler = _fill(small_fs)
    go.touch()  # the node writes a long line into the full disk and exits 1
    await until(lambda: starts() == 2 or task.done(), timeout=20)
    assert not task.done()  # before the fix: OSError [Errno 28] out of Watcher._after_exit, no restart
    assert starts() == 2  # restarted as usual
    assert len(notices("disk_full")) == 1
    await asyncio.sleep(0.3)  # more failed writes (store, JSON log, capture): still one alert
    assert len(notices("disk_full")) == 1 and not notices("disk_ok")
    filler.unlink()  # space returns
    alarm.quiet = 0.0  # (instead of waiting 30 s) the next successful write clears it
    await until(lambda: len(notices("disk_ok")) == 1, timeout=20)
    await until(lambda: b"> healthy line" in output.read_bytes(), timeout=20)
    rt.request("stop", "test", shutdown=True)
    assert await asyncio.wait_for(task, 20) == 0
    conn = sqlite3.connect(st / "gswarm.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        conn.close()
    assert runs >= 1  # the run recorded before the disk filled is still there
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]  # every line whole JSON
    capture = (st / "logs" / "default" / "output.log").read_text().splitlines()
    bad = [line for line in capture if not re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \d+ [>~?+#] ", line)]
    assert bad == []
    print(f"starts: {starts()}; disk_full: {len(notices('disk_full'))}; disk_ok: {len(notices('disk_ok'))}; "
          f"runs in store: {runs}; JSON records: {len(records)}; capture lines: {len(capture)}")


def test_gswarm_run_starts_and_restarts_on_an_already_full_state_dir(small_fs: Path, tmp_path: Path) -> None:
    """The reported setup: the state dir's filesystem is full before ``gswarm run`` starts (lock pid, store,
    login backup, capture all fail); before the fix the lock's pid write raised ENOSPC out of ``run``."""
    st = small_fs / "st"
    st.mkdir()
    _fill(small_fs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")}
    p = subprocess.run([sys.executable, "-m", "gswarm", "run", "--emulated", "--no-api", "--state-dir", str(st),
                        "--emu-pace", "0.05", "--emu-faults", "crash:trainer_bug_current_batch@0.3",
                        "--backoff-initial", "0.1", "--backoff-max", "0.2", "--crash-loop-max", "50", "--duration", "3"],
                       env=env, capture_output=True, text=True, timeout=90, cwd=tmp_path)
    out = p.stdout + p.stderr
    gswarm_frames = [line for line in out.splitlines() if "/gswarm/" in line and line.strip().startswith("File ")]
    assert p.returncode == 0 and gswarm_frames == [], out[-3000:]
    starts = out.count("gswarm started node pid")
    alerts = out.count("gswarm disk full: GSwarm cannot write its files")
    assert starts >= 2 and alerts == 1, out[-3000:]
    print(f"starts on a full disk: {starts}; disk full alerts: {alerts}")


def test_a_failed_state_dir_pid_record_still_writes_the_host_wide_copy(tmp_path: Path) -> None:
    """The host-wide record (case 3's orphan finder) is on another filesystem: a full state dir must not cost it."""
    from gswarm.supervisor.lock import CheckoutLock

    (tmp_path / "host").mkdir(mode=0o700)
    lock = CheckoutLock(tmp_path / "st", tmp_path / "checkout", host_dir=tmp_path / "host", node="n1")
    lock.acquire()
    try:
        lock.record_path.mkdir(parents=True)  # a folder where the record goes: the state-dir write fails (OSError)
        with pytest.raises(OSError):
            lock.write_record(os.getpid(), os.getpgid(0))
        assert json.loads(lock.host_record_path.read_text())["node_pid"] == os.getpid()
    finally:
        lock.release()


def test_json_log_cuts_a_torn_batch_back_and_counts_it(small_fs: Path) -> None:
    from gswarm.clock import FakeClock
    from gswarm.diskfull import DiskAlarm
    from gswarm.events import EventBus, Notice, Severity
    from gswarm.logs.jsonlog import JsonLog, JsonLogService

    bus = EventBus()
    alarm = DiskAlarm(bus, FakeClock(), "n", quiet=0.0)
    svc = JsonLogService(bus, FakeClock(), JsonLog(small_fs / "logs"), alarm=alarm)
    note = lambda ts, title: Notice("n", ts, "test", Severity.INFO, title)  # noqa: E731  (output is not in this log)
    bus.publish(note(1_700_000_000.0, "first line"))
    assert svc.flush() == 1
    path = small_fs / "logs" / "gswarm.jsonl"
    before = path.read_bytes()
    filler = _fill(small_fs, keep=500)
    for i in range(3000):
        bus.publish(note(1_700_000_001.0, f"line {i:05d} of a long batch"))
    assert svc.flush() == 0 and svc.dropped == 3000  # a short write, then ENOSPC: the whole batch is dropped
    assert path.read_bytes() == before and alarm.raised == 1  # nothing half written after the last whole record
    filler.unlink()
    bus.publish(note(1_700_000_002.0, "back"))
    assert svc.flush() == 2 and alarm.cleared == 1  # the alert itself (published while full) and "back"
    assert svc.flush() == 1  # the all-clear
    assert [json.loads(line)["message"] for line in path.read_text().splitlines()] == [
        "first line", "disk full: GSwarm cannot write its files", "back", "GSwarm can write its files again"]


def test_a_full_disk_never_sets_the_history_aside(small_fs: Path) -> None:
    """Opening the store on a full disk fails (retried later); the file is not renamed ``.corrupt-…``."""
    from gswarm.errors import StoreError
    from gswarm.events import ProcessStarted
    from gswarm.logs.store import Store

    db = small_fs / "gswarm.db"
    store = Store(db, now=1_700_000_000.0, node="n")
    store.write([ProcessStarted("n", 1_700_000_000.0, 10, 10, ("python",), "E6", "direct", 1)])
    store.close()
    for side in ("-wal", "-shm"):
        (small_fs / f"gswarm.db{side}").unlink(missing_ok=True)
    filler = _fill(small_fs)
    try:
        opened = Store(db, now=1_700_000_100.0, node="n")
    except StoreError:
        opened = None
    filler.unlink()
    if opened is not None:
        opened.close()
    assert sorted(p.name for p in small_fs.iterdir() if "corrupt" in p.name) == []
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    finally:
        conn.close()


def test_a_start_lost_to_a_full_disk_never_rewrites_the_previous_run(small_fs: Path) -> None:
    """Run 2's start is rolled back (disk full); its exit, written once space returns, must not become run 1's."""
    from gswarm.events import ProcessExited, ProcessStarted
    from gswarm.logs.store import Store

    t0 = 1_700_000_000.0
    store = Store(small_fs / "gswarm.db", now=t0, node="n")
    store.write([ProcessStarted("n", t0, 10, 10, ("python",), "E6", "direct", 1),
                 ProcessExited("n", t0 + 50, 10, 1, None, 50.0, 1)])
    filler = _fill(small_fs)
    batch = [ProcessStarted("n", t0 + 60, 11, 11, ("python",), "E6", "direct", 2)]
    batch += [ProcessStarted("n", t0 + 60 + i, 11, 11, ("python", "x" * 4000), "E6", "direct", 2) for i in range(50)]
    with pytest.raises(sqlite3.Error):
        store.write(batch)
    assert store._open_run == {}  # the rolled-back insert's row id is not kept (it would be reused by the next run)
    filler.unlink()
    store.write([ProcessExited("n", t0 + 90, 11, 137, 9, 30.0, 2)])
    rows = store.conn.execute("SELECT pid, stopped_at, exit_code, signal FROM runs ORDER BY id").fetchall()
    store.close()
    assert rows == [(10, t0 + 50, 1, None)]  # before the fix: (10, t0 + 90, 137, 9), run 1 rewritten


def test_compressing_on_a_full_disk_keeps_the_plain_file_and_no_temp(small_fs: Path) -> None:
    from gswarm.clock import FakeClock
    from gswarm.diskfull import DiskAlarm
    from gswarm.events import EventBus
    from gswarm.logs.jsonlog import JsonLog, JsonLogService

    logs = small_fs / "logs"
    writer = JsonLog(logs)
    rotated = logs / "gswarm.jsonl.20231114T221320Z"
    rotated.write_bytes(os.urandom(200_000))  # incompressible: the .gz needs about as much room again
    _fill(small_fs)
    alarm = DiskAlarm(EventBus(), FakeClock(), "n")
    svc = JsonLogService(EventBus(), FakeClock(1_700_000_000.0), writer, alarm=alarm)
    svc._tidied(svc.tidy())
    assert sorted(p.name for p in logs.iterdir()) == ["gswarm.jsonl.20231114T221320Z"]  # no .gz.tmp left behind
    assert rotated.stat().st_size == 200_000 and alarm.failures == {"JSON log (compressing)": 1}


@pytest.mark.parametrize("inodes,code", [(5, 0), (4, 2)])
def test_no_inode_left_for_folders_or_locks(tmp_path: Path, inodes: int, code: int) -> None:
    """A state dir whose filesystem has no inode left: 5 = room for the two lock files only (logs/, the JSON
    log, the store and the capture cannot be created: the run goes on, one alert; before, the JSON log
    service died with a traceback at its mkdir); 4 = not even the locks: a clear error naming the option
    (before: OSError traceback, exit 1)."""
    mnt = tmp_path / "mnt"
    _mount(mnt, f"size=1m,nr_inodes={inodes},mode=0700")
    try:
        (mnt / "st" / "run").mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")}
        p = subprocess.run([sys.executable, "-m", "gswarm", "run", "--emulated", "--no-api", "--state-dir",
                            str(mnt / "st"), "--emu-pace", "0.05", "--emu-faults", "crash:trainer_bug_current_batch@0.3",
                            "--backoff-initial", "0.1", "--crash-loop-max", "50", "--duration", "2"],
                           env=env, capture_output=True, text=True, timeout=90, cwd=tmp_path)
    finally:
        _umount(mnt)
    out = p.stdout + p.stderr
    frames = [line for line in out.splitlines() if "/gswarm/" in line and line.strip().startswith("File ")]
    assert (p.returncode, frames) == (code, []), out[-3000:]
    if code:
        assert ("error: option state_dir: cannot create GSwarm's lock files in " in " ".join(out.split())
                and "(No space left on device); free space on that disk or pick another --state-dir" in out)
    else:
        assert out.count("gswarm started node pid") >= 2 and out.count("gswarm disk full:") == 1, out[-3000:]
