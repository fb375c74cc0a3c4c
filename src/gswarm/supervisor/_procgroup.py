"""Process facts and proof of ownership: group members, start stamps, the run marker.

``os.killpg(pgid, 0)`` also succeeds while only zombies are left, and an init
that reaps orphans slowly (containers, microVMs) keeps them around for seconds;
so "is anything of our group still running" reads each process's state.

Ownership. Every process GSwarm starts gets ``GSWARM_RUN_MARKER=<random hex>`` in
its environment (:data:`MARKER_VAR`, one fresh value per node start) and inherits
it to its descendants, including those that leave the group with ``setsid``.
:class:`Ownership` ``(marker, since)`` proves a pid is ours: it carries the
marker *and* its start stamp is ≥ ``since`` (the node leader's stamp). A pid or
pgid alone is never proof: both are recycled once the processes are gone.
Limits (then the process is simply not proven ours, never signalled by pid): a
process that clears its environment (``env -i``) or overwrites the area
``/proc/<pid>/environ`` shows (setproctitle), and one caught mid-``exec``
(its environ reads empty for a moment after ``Popen`` returns). While the
node leader is unreaped, its whole group is still reached with ``killpg``.

``/proc`` is read where it exists (Linux); :data:`PROC_ROOT` (module attribute,
or the ``proc_root`` parameter) names it, and None or a missing folder switches
every function to psutil (macOS, or a container without ``/proc``).
Start stamps: on Linux field 22 of ``/proc/<pid>/stat`` (clock ticks since boot,
kind ``"boot"``), which a wall-clock step does not move; otherwise psutil's
``create_time`` (Unix s, kind ``"wall"``). Stamps of different kinds never compare.
"""

from __future__ import annotations

import os
import secrets
import signal
from dataclasses import dataclass

import psutil

MARKER_VAR = "GSWARM_RUN_MARKER"
PROC_ROOT: str | None = "/proc"
_WALL_SLACK = 0.01  # s: psutil create_time is rounded to clock ticks
_DEFAULT = object()


def _root(proc_root: object) -> str | None:
    root = PROC_ROOT if proc_root is _DEFAULT else proc_root
    return root if isinstance(root, str) and os.path.isdir(root) else None


def _stat_fields(root: str, pid: int | str) -> list[bytes] | None:
    """Fields of ``<root>/<pid>/stat`` after the ``(comm)`` (field 3 = index 0), or None when gone."""
    try:
        with open(f"{root}/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :].split()


def new_marker() -> str:
    """A fresh random run marker (32 hex characters)."""
    return secrets.token_hex(16)


def live_members(pgid: int, proc_root: object = _DEFAULT) -> list[int]:
    """Pids of non-zombie processes whose process group is ``pgid`` (empty when none)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return []
    root = _root(proc_root)
    out = []
    if root is None:
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                    out.append(proc.pid)
            except (OSError, psutil.Error):
                continue
        return out
    for name in os.listdir(root):
        if not name.isdigit():
            continue
        fields = _stat_fields(root, name)
        if fields and len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            out.append(int(name))
    return out


def proc_info(pid: int, proc_root: object = _DEFAULT) -> tuple[str, int, int] | None:
    """``(state letter, ppid, pgid)`` of ``pid``, or None when it is gone (state "Z" for a zombie)."""
    root = _root(proc_root)
    if root is None:
        try:
            proc = psutil.Process(pid)
            state = "Z" if proc.status() == psutil.STATUS_ZOMBIE else "R"
            return state, proc.ppid(), os.getpgid(pid)
        except (OSError, psutil.Error):
            return None
    fields = _stat_fields(root, pid)
    if not fields or len(fields) < 3:
        return None
    return fields[0].decode(), int(fields[1]), int(fields[2])


def zombie_exit_status(pid: int, proc_root: object = _DEFAULT) -> int | None:
    """Raw wait status of a zombie ``pid`` (field 52 of /proc/pid/stat, Linux ≥ 3.5), else None
    (always None without /proc: callers then infer the status)."""
    root = _root(proc_root)
    fields = _stat_fields(root, pid) if root else None
    if not fields or fields[0] != b"Z" or len(fields) < 50:
        return None
    return int(fields[49])


def start_stamp(pid: int, proc_root: object = _DEFAULT) -> tuple[str, float] | None:
    """``(kind, stamp)`` of when ``pid`` started, or None when it is gone (see module docstring)."""
    root = _root(proc_root)
    if root is not None:
        fields = _stat_fields(root, pid)
        if not fields or len(fields) < 20:
            return None
        return "boot", int(fields[19]) / os.sysconf("SC_CLK_TCK")
    try:
        return "wall", psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def carries_marker(pid: int, marker: str, proc_root: object = _DEFAULT) -> bool:
    """True when ``pid``'s environment holds ``GSWARM_RUN_MARKER=<marker>`` (False when unreadable)."""
    if not marker:
        return False
    root = _root(proc_root)
    if root is None:
        try:
            return psutil.Process(pid).environ().get(MARKER_VAR) == marker
        except (OSError, psutil.Error):
            return False
    try:
        with open(f"{root}/{pid}/environ", "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    return f"\0{MARKER_VAR}={marker}\0".encode() in b"\0" + data + b"\0"


@dataclass(frozen=True)
class Ownership:
    """Proof that a process is one GSwarm started: ``marker`` (the run's :data:`MARKER_VAR` value)
    and ``since`` (start stamp of the node leader, of kind ``kind``)."""

    marker: str
    since: float
    kind: str

    def owns(self, pid: int, proc_root: object = _DEFAULT) -> bool:
        """True when ``pid`` is alive (not a zombie), carries the marker and started at or after ``since``."""
        if pid == os.getpid() or not self.marker:
            return False
        st = start_stamp(pid, proc_root)
        if st is None or st[0] != self.kind:
            return False
        if st[1] < self.since - (_WALL_SLACK if self.kind == "wall" else 0.0):
            return False
        info = proc_info(pid, proc_root)
        return info is not None and info[0] not in ("Z", "X") and carries_marker(pid, self.marker, proc_root)

    @classmethod
    def of(cls, pid: int, marker: str, proc_root: object = _DEFAULT) -> "Ownership | None":
        """The ownership of a process just started with ``marker`` (None when it is already gone)."""
        st = start_stamp(pid, proc_root)
        return cls(marker, st[1], st[0]) if st else None


def find_owned(own: Ownership, proc_root: object = _DEFAULT) -> list[int]:
    """Every live pid on the host that ``own`` proves ours, whatever its group or session (sorted)."""
    root = _root(proc_root)
    if root is None:
        pids = psutil.pids()
    else:
        pids = [int(n) for n in os.listdir(root) if n.isdigit()]
    return sorted(pid for pid in pids if carries_marker(pid, own.marker, root) and own.owns(pid, root))


def signal_owned(pid: int, sig: int, own: Ownership, proc_root: object = _DEFAULT) -> bool:
    """Send ``sig`` to ``pid`` only if ``own`` proves it ours; True when sent.

    Where pidfds exist (Linux ≥ 5.3) the pid is pinned first, so it cannot be
    recycled between the proof and the signal.
    """
    pidfd = -1
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    try:
        if not own.owns(pid, proc_root):
            return False
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if pidfd >= 0:
            os.close(pidfd)
