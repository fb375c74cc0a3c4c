"""One supervisor per checkout, and finding the node group a killed GSwarm left behind.

Files in ``<state_dir>/run/`` named from a hash of the resolved checkout path:
``<hash>.lock`` (``fcntl.flock``, released by the kernel when GSwarm dies, even by
SIGKILL) and ``<hash>.json`` (the pid record, written atomically)::

    {"checkout": str, "gswarm_pid": int, "node_pid": int, "pgid": int,
     "node_started": float (psutil create_time, Unix seconds), "ts": float}

A remembered pid is signalled only when psutil still reports the same
``create_time`` for it (never a recycled pid), and only through its group.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import stat
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from gswarm.errors import LockError
from gswarm.paths import atomic_write, subdir
from gswarm.supervisor._procgroup import live_members


def _key(checkout: Path) -> str:
    return hashlib.sha256(str(Path(checkout).resolve()).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PidRecord:
    """What GSwarm remembers about the node it started (see module docstring)."""

    checkout: str
    gswarm_pid: int
    node_pid: int
    pgid: int
    node_started: float
    ts: float


def host_lock_dir() -> Path | None:
    """A per-user folder shared by every state directory on this host (``$XDG_RUNTIME_DIR/gswarm``,
    else ``<tmp>/gswarm-<uid>``), mode 0700; None when it exists but belongs to someone else."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "gswarm" if base and Path(base).is_dir() else Path(tempfile.gettempdir()) / f"gswarm-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.lstat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or not stat.S_ISDIR(st.st_mode):
        return None
    return path


def _flock(path: Path, checkout: Path) -> int:
    """Take an exclusive non-blocking flock on ``path`` (holder pid written in); LockError when held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise LockError(
            f"another gswarm run (pid {holder}) already supervises {checkout}; "
            f"stop it first (or use a different --rl-swarm-dir)"
        ) from None
    os.ftruncate(fd, 0)
    try:
        os.pwrite(fd, str(os.getpid()).encode(), 0)
    except OSError:  # disk full (issue #13 case 2): the flock is what counts; the pid is only shown by status
        pass
    return fd


class CheckoutLock:
    """``with CheckoutLock(state_dir, checkout):`` — exclusive supervision of ``checkout``.

    Two flocks: ``<state_dir>/run/<hash>.lock`` (read by ``gswarm status``) and a host-wide
    ``<host_lock_dir>/checkout-<hash>.lock``, so two gswarm runs with different state
    directories cannot supervise the same checkout (and identity) either.
    Raises LockError("another gswarm run (pid N) already supervises <dir>") when held.
    """

    def __init__(self, state_dir: Path, checkout: Path, host_dir: Path | None | bool = True) -> None:
        self.checkout = Path(checkout).resolve()
        run = subdir(Path(state_dir), "run")
        key = _key(self.checkout)
        self.lock_path = run / f"{key}.lock"
        self.record_path = run / f"{key}.json"
        hd = host_lock_dir() if host_dir is True else (host_dir or None)
        self.host_lock_path = Path(hd) / f"checkout-{key}.lock" if hd else None
        self._fd = -1
        self._host_fd = -1

    def acquire(self) -> None:
        fd = _flock(self.lock_path, self.checkout)
        if self.host_lock_path is not None:
            try:
                self._host_fd = _flock(self.host_lock_path, self.checkout)
            except LockError:
                os.close(fd)
                raise
        self._fd = fd

    def release(self) -> None:
        """Release the locks and drop the pid record (idempotent)."""
        if self._fd >= 0:
            self.clear_record()
            os.close(self._fd)
            self._fd = -1
        if self._host_fd >= 0:
            os.close(self._host_fd)
            self._host_fd = -1

    def __enter__(self) -> "CheckoutLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # --- pid record
    def write_record(self, node_pid: int, pgid: int) -> PidRecord:
        """Remember the node we just started (create_time from psutil; 0.0 if it already died)."""
        try:
            started = psutil.Process(node_pid).create_time()
        except psutil.Error:
            started = 0.0
        rec = PidRecord(str(self.checkout), os.getpid(), node_pid, pgid, started, time.time())
        atomic_write(self.record_path, json.dumps(asdict(rec)))
        return rec

    def read_record(self) -> PidRecord | None:
        """The record left by the previous run, or None (missing or malformed file)."""
        try:
            return PidRecord(**json.loads(self.record_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def clear_record(self) -> None:
        try:
            self.record_path.unlink()
        except FileNotFoundError:
            pass


def record_alive(rec: PidRecord) -> bool:
    """True when the recorded node pid still runs with the recorded start time and group."""
    try:
        proc = psutil.Process(rec.node_pid)
        same = abs(proc.create_time() - rec.node_started) < 0.01 and os.getpgid(rec.node_pid) == rec.pgid
        return same and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, ProcessLookupError, OSError):
        return False


def group_members(pgid: int) -> list[int]:
    """Pids of live (non-zombie) processes whose process group is ``pgid``."""
    return live_members(pgid)


def leftover_members(rec: PidRecord) -> list[int]:
    """Live members of the recorded group that are provably ours.

    With the leader alive, :func:`record_alive` proves it. When the leader is gone
    (the node often dies of EPIPE once GSwarm's end of its pipe closed) but members
    remain, the pgid cannot have been reused (Linux keeps a pid allocated while a
    group of that id exists); members must also have started after the leader.
    """
    if record_alive(rec):
        return live_members(rec.pgid)
    out = []
    for pid in live_members(rec.pgid):
        try:
            if psutil.Process(pid).create_time() >= rec.node_started - 0.01 and rec.node_started > 0:
                out.append(pid)
        except psutil.Error:
            continue
    return out


def stop_orphan_group(rec: PidRecord, timeout: float) -> bool:
    """Stop the group a killed GSwarm left behind: TERM, wait ``timeout`` s, KILL.

    Acts only on :func:`leftover_members` (pid + start time verified); returns
    False when nothing of it is left. Blocking (call it in a thread from async code).
    """
    if not leftover_members(rec):
        return False
    _signal_group(rec.pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and group_members(rec.pgid):
        time.sleep(0.05)
    if group_members(rec.pgid):
        _signal_group(rec.pgid, signal.SIGKILL)
        end = time.monotonic() + 5
        while time.monotonic() < end and group_members(rec.pgid):
            time.sleep(0.05)
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
