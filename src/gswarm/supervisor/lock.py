"""One supervisor per checkout and per (state dir, node name), and finding what a killed GSwarm left behind.

Files in ``<state_dir>/run/`` named from a hash of the resolved checkout path:
``<hash>.lock`` (``fcntl.flock``, released by the kernel when GSwarm dies, even by
SIGKILL) and ``<hash>.json`` (the pid record, written atomically). Beside them
``node-<node hash>.owner``, a flock holding ``<pid>\n<checkout>``: one run per
(state dir, node name), so two supervisors never share one history.

Host-wide, in :func:`host_lock_dir`: ``checkout-<hash>.lock`` (one supervisor per
checkout whatever its state dir) and ``live-<checkout hash>-<node hash>.json``, a
copy of the pid record, so a run with *another* state dir finds the node a SIGKILLed
run left on the same checkout. Keyed per (checkout, node name) so that several
nodes may later share a checkout. Pid record (JSON, mode 0600)::

    {"checkout": str, "gswarm_pid": int, "node_pid": int, "pgid": int,
     "node_started": float (psutil create_time, Unix s, for display), "ts": float (Unix s),
     "marker": str (the run's GSWARM_RUN_MARKER), "node": str,
     "stamp": float, "stamp_kind": "boot"|"wall" (leader start stamp, see _procgroup)}

A leftover is signalled only pid by pid, each one proven ours first
(:class:`~gswarm.supervisor._procgroup.Ownership`: it carries the recorded marker
and started at or after the recorded stamp). A pid or group id alone is never
proof, and a record without a marker (written by an older GSwarm) proves nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
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
from gswarm.supervisor._procgroup import Ownership, find_owned, live_members, signal_owned

log = logging.getLogger(__name__)


def _key(checkout: Path) -> str:
    return hashlib.sha256(str(Path(checkout).resolve()).encode()).hexdigest()[:16]


def _node_key(node: str) -> str:
    return hashlib.sha256(node.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PidRecord:
    """What GSwarm remembers about the node it started (see module docstring)."""

    checkout: str
    gswarm_pid: int
    node_pid: int
    pgid: int
    node_started: float
    ts: float
    marker: str = ""
    node: str = ""
    stamp: float = 0.0
    stamp_kind: str = ""

    def ownership(self) -> Ownership | None:
        """The proof this record carries, or None (no marker: an older GSwarm wrote it)."""
        if not self.marker or self.stamp_kind not in ("boot", "wall"):
            return None
        return Ownership(self.marker, self.stamp, self.stamp_kind)


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


def _flock_node(path: Path, state_dir: Path, node: str, checkout: Path) -> int:
    """Take the (state dir, node name) flock (``<pid>\n<checkout>`` written in); LockError when held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid, _, other = os.read(fd, 4096).decode(errors="replace").partition("\n")
        os.close(fd)
        raise LockError(
            f"another gswarm run (pid {pid.strip() or '?'}) already keeps the history of node {node!r} in "
            f"{state_dir} (checkout {other.strip() or '?'}); two runs would mix one history: stop it, "
            f"or give this run another --state-dir or --node-name"
        ) from None
    os.ftruncate(fd, 0)
    try:
        os.pwrite(fd, f"{os.getpid()}\n{checkout}".encode(), 0)
    except OSError:  # disk full (issue #13 case 2): the flock is what counts; the text only names the holder
        pass
    return fd


class CheckoutLock:
    """``with CheckoutLock(state_dir, checkout, node=name):`` — exclusive supervision of ``checkout``.

    Flocks: ``<state_dir>/run/<hash>.lock`` (read by ``gswarm status``), a host-wide
    ``<host_lock_dir>/checkout-<hash>.lock``, so two gswarm runs with different state
    directories cannot supervise the same checkout (and identity) either, and, when
    ``node`` is given, ``<state_dir>/run/node-<node hash>.owner``, so two runs on
    different checkouts cannot share one state dir and node name.
    Raises LockError("another gswarm run (pid N) already supervises <dir>" / "… already
    keeps the history of node 'x' in <state dir> …") when held.
    ``host_dir``: True = :func:`host_lock_dir`, a Path, or None/False for none.
    """

    def __init__(self, state_dir: Path, checkout: Path, host_dir: Path | None | bool = True, node: str = "") -> None:
        self.checkout = Path(checkout).resolve()
        self.state_dir = Path(state_dir)
        self.node = node
        run = subdir(self.state_dir, "run")
        key = _key(self.checkout)
        self._ckey = key
        self.lock_path = run / f"{key}.lock"
        self.record_path = run / f"{key}.json"
        self.node_lock_path = run / f"node-{_node_key(node)}.owner" if node else None
        hd = host_lock_dir() if host_dir is True else (host_dir or None)
        self.host_dir = Path(hd) if hd else None
        self.host_lock_path = self.host_dir / f"checkout-{key}.lock" if self.host_dir else None
        self.host_record_path = self.host_dir / f"live-{key}-{_node_key(node)}.json" if self.host_dir else None
        self._fd = -1
        self._host_fd = -1
        self._node_fd = -1

    def acquire(self) -> None:
        fds: list[int] = []
        try:
            fds.append(_flock(self.lock_path, self.checkout))
            if self.node_lock_path is not None:
                self._node_fd = _flock_node(self.node_lock_path, self.state_dir, self.node, self.checkout)
            if self.host_lock_path is not None:
                self._host_fd = _flock(self.host_lock_path, self.checkout)
        except LockError:
            for fd in fds + [self._node_fd]:
                if fd >= 0:
                    os.close(fd)
            self._node_fd = -1
            raise
        self._fd = fds[0]

    def release(self) -> None:
        """Release the locks and drop the pid records (idempotent)."""
        if self._fd >= 0:
            self.clear_record()
            os.close(self._fd)
            self._fd = -1
        for name in ("_host_fd", "_node_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def __enter__(self) -> "CheckoutLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # --- pid record
    def write_record(self, node_pid: int, pgid: int, ownership: Ownership | None = None) -> PidRecord:
        """Remember the node we just started, in the state dir and host-wide.

        ``ownership`` is the started process's proof (``NodeProcess.ownership``); without it the
        record proves nothing and no later run will signal anything because of it.
        create_time from psutil (0.0 if it already died). A failed write of the state-dir record
        propagates (OSError); a failed host-wide copy is logged (a warning) and skipped.
        """
        try:
            started = psutil.Process(node_pid).create_time()
        except psutil.Error:
            started = 0.0
        own = ownership
        rec = PidRecord(str(self.checkout), os.getpid(), node_pid, pgid, started, time.time(),
                        own.marker if own else "", self.node, own.since if own else 0.0, own.kind if own else "")
        data = json.dumps(asdict(rec))
        failed: OSError | None = None
        try:
            atomic_write(self.record_path, data)
        except OSError as exc:  # e.g. the state dir's disk is full: still write the host-wide copy, then raise
            failed = exc
        if self.host_record_path is not None:
            try:
                atomic_write(self.host_record_path, data)
            except OSError as exc:
                log.warning("cannot write the host-wide node record %s (%s): a run with another --state-dir "
                            "will not find this node if gswarm is killed", self.host_record_path, exc.strerror or exc)
        if failed is not None:
            raise failed
        return rec

    def read_record(self) -> PidRecord | None:
        """The record left in this state dir by the previous run, or None (missing or malformed file)."""
        return _read(self.record_path)

    def leftovers(self) -> list[PidRecord]:
        """Records of this checkout's nodes whose supervisor is gone: this state dir's record and every
        host-wide ``live-<checkout hash>-*.json`` (whatever state dir wrote it). Only valid while the
        host-wide checkout lock is held (then no live supervisor of this checkout can own them)."""
        recs = [r for r in [self.read_record()] if r is not None]
        if self.host_dir is not None and self._host_fd >= 0:
            for path in sorted(self.host_dir.glob(f"live-{self._ckey}-*.json")):
                rec = _read(path)
                if rec is not None and all((r.marker, r.node_pid) != (rec.marker, rec.node_pid) for r in recs):
                    recs.append(rec)
        return recs

    def clear_leftovers(self) -> None:
        """Drop this state dir's record and every host-wide record of this checkout (after adopting them)."""
        self.clear_record()
        if self.host_dir is not None and self._host_fd >= 0:
            for path in self.host_dir.glob(f"live-{self._ckey}-*.json"):
                path.unlink(missing_ok=True)

    def clear_record(self) -> None:
        """Drop this run's records (state dir and host-wide); missing files are fine, other errors logged."""
        for path in (self.record_path, self.host_record_path):
            if path is not None:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("cannot remove the node record %s: %s", path, exc.strerror or exc)


def _read(path: Path) -> PidRecord | None:
    try:
        return PidRecord(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def record_alive(rec: PidRecord) -> bool:
    """True when the recorded node leader still runs and is proven ours (marker + start stamp)."""
    own = rec.ownership()
    return own is not None and own.owns(rec.node_pid)


def group_members(pgid: int) -> list[int]:
    """Pids of live (non-zombie) processes whose process group is ``pgid`` (no proof of ownership)."""
    return live_members(pgid)


def leftover_members(rec: PidRecord) -> list[int]:
    """Live processes that the record proves ours: they carry its marker and started at or after
    the recorded leader; in its group or escaped from it. Empty when the record has no marker."""
    own = rec.ownership()
    return find_owned(own) if own is not None else []


def stop_orphan_group(rec: PidRecord, timeout: float) -> bool:
    """Stop what a killed GSwarm left behind: TERM, wait ``timeout`` s, KILL; each pid proven ours.

    Acts only on :func:`leftover_members`; returns False when nothing of it is left.
    Blocking (call it in a thread from async code).
    """
    own = rec.ownership()
    pids = leftover_members(rec)
    if own is None or not pids:
        return False
    for pid in pids:
        signal_owned(pid, signal.SIGTERM, own)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(own.owns(p) for p in pids):
        time.sleep(0.05)
    if any(own.owns(p) for p in pids) or leftover_members(rec):
        end = time.monotonic() + 5
        while time.monotonic() < end:
            left = leftover_members(rec)
            if not left:
                break
            for pid in left:
                signal_owned(pid, signal.SIGKILL, own)
            time.sleep(0.05)
    return True
