"""Process-group membership from ``/proc`` (Linux), ignoring zombies.

``os.killpg(pgid, 0)`` also succeeds while only zombies are left, and an init
that reaps orphans slowly (containers, microVMs) keeps them around for seconds;
so "is anything of our group still running" reads ``/proc/<pid>/stat``.
"""

from __future__ import annotations

import os


def live_members(pgid: int) -> list[int]:
    """Pids of non-zombie processes whose process group is ``pgid`` (empty when none)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return []
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            out.append(int(name))
    return out


def proc_info(pid: int) -> tuple[str, int, int] | None:
    """``(state letter, ppid, pgid)`` of ``pid`` from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1]), int(fields[2])


def zombie_exit_status(pid: int) -> int | None:
    """Raw wait status of a zombie ``pid`` (field 52 of /proc/pid/stat, Linux ≥ 3.5), else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    if not fields or fields[0] != b"Z" or len(fields) < 50:
        return None
    return int(fields[49])
