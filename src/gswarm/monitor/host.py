"""Process-tree and host resources with psutil.

:class:`TreeSampler` keeps ``psutil.Process`` objects between samples (keyed by
pid + create time, so a recycled pid is a new process) — that is what makes
``cpu_percent`` a delta since the previous sample and keeps the cost low.
:class:`HostSampler` computes host CPU % from its own ``cpu_times`` deltas (no
shared global state with other psutil users).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil

TREE_KEYS = ("cpu_percent", "rss_bytes", "threads", "open_files", "processes")


class TreeSampler:
    """Sum over a process and all its descendants.

    ``sample(pid)`` → ``{"cpu_percent": float (100 = one core), "rss_bytes": int,
    "threads": int, "open_files": int (file descriptors, POSIX), "processes": int,
    "pids": list[int]}``; every value None when ``pid`` is None or gone. The first
    sample of a process reports 0.0 CPU (no previous reading).
    """

    def __init__(self) -> None:
        self._procs: dict[tuple[int, float], psutil.Process] = {}

    def _tree(self, pid: int) -> list[psutil.Process]:
        root = psutil.Process(pid)
        procs = [root]
        try:
            procs += root.children(recursive=True)
        except psutil.Error:
            pass
        out, keep = [], {}
        for p in procs:
            try:
                key = (p.pid, p.create_time())
            except psutil.Error:
                continue
            cached = self._procs.get(key, p)
            keep[key] = cached
            out.append(cached)
        self._procs = keep  # forget processes that ended
        return out

    def sample(self, pid: int | None) -> dict[str, Any]:
        """One reading of the tree rooted at ``pid`` (see class doc for the keys and units)."""
        empty: dict[str, Any] = {k: None for k in TREE_KEYS} | {"pids": []}
        if not pid:
            self._procs = {}
            return empty
        try:
            procs = self._tree(pid)
        except psutil.Error:
            self._procs = {}
            return empty
        cpu = rss = threads = fds = 0
        pids = []
        for p in procs:
            try:
                with p.oneshot():
                    cpu += p.cpu_percent(None)
                    rss += p.memory_info().rss
                    threads += p.num_threads()
                    fds += p.num_fds() if hasattr(p, "num_fds") else len(p.open_files())
                pids.append(p.pid)
            except psutil.Error:
                continue
        if not pids:
            return empty
        return {"cpu_percent": round(cpu, 2), "rss_bytes": rss, "threads": threads, "open_files": fds,
                "processes": len(pids), "pids": pids}


class HostSampler:
    """Host-wide figures: ``host_cpu_percent`` (0-100, all cores), ``host_mem_percent``, ``swap_percent``,
    ``load1`` (1-minute load average), ``disk_free_bytes`` (file system of ``checkout``),
    ``state_disk_free_bytes`` (of ``state_dir``), ``net_sent_bytes``/``net_recv_bytes`` (counters
    since boot). A figure the platform cannot give is None."""

    def __init__(self, checkout: Path | None = None, state_dir: Path | None = None) -> None:
        self.checkout, self.state_dir = checkout, state_dir
        self._last_cpu = psutil.cpu_times()

    def _cpu_percent(self) -> float:
        now = psutil.cpu_times()
        last, self._last_cpu = self._last_cpu, now
        total = sum(now) - sum(last)
        idle = (now.idle - last.idle) + (getattr(now, "iowait", 0.0) - getattr(last, "iowait", 0.0))
        return round(max(0.0, min(100.0, 100.0 * (total - idle) / total)), 2) if total > 0 else 0.0

    @staticmethod
    def _free(path: Path | None) -> int | None:
        if path is None:
            return None
        try:
            return psutil.disk_usage(str(path)).free
        except OSError:
            return None

    def sample(self) -> dict[str, Any]:
        """One reading (keys in the class doc)."""
        vm = psutil.virtual_memory()
        try:
            swap = psutil.swap_memory().percent
        except (OSError, RuntimeError):
            swap = None
        try:
            load1 = round(os.getloadavg()[0], 2)
        except (OSError, AttributeError):
            load1 = None
        net = psutil.net_io_counters()
        return {
            "host_cpu_percent": self._cpu_percent(), "host_mem_percent": vm.percent, "swap_percent": swap,
            "load1": load1, "disk_free_bytes": self._free(self.checkout), "state_disk_free_bytes": self._free(self.state_dir),
            "net_sent_bytes": net.bytes_sent if net else None, "net_recv_bytes": net.bytes_recv if net else None,
        }
