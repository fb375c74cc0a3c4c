"""What ``gswarm status`` shows, built from the store and the lock files only.

Works while ``gswarm run`` runs (the store is read through its own read-only
connection) and after it stopped. Whether a supervisor is alive is read from the
checkout locks in ``<state_dir>/run/*.lock`` (``fcntl.flock`` held by a live
``gswarm run``; format owned by ``gswarm.supervisor.lock``): a shared, non-blocking
probe that fails means a supervisor holds the lock. The probe holds a shared lock
for microseconds only.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gswarm import maintenance as _maintenance

if TYPE_CHECKING:  # domain packages do not import each other at run time
    from gswarm.logs.store import StoreReader

DAY = 86400.0
_LIVE = ("STARTING", "RUNNING", "STALLED", "DEGRADED", "STOPPING", "WAITING_LOGIN")


def supervisors(state_dir: Path) -> list[dict[str, Any]]:
    """``[{"lock": str, "pid": int|None, "alive": bool}]`` for every checkout lock in ``state_dir/run``."""
    out = []
    for lock in sorted((Path(state_dir) / "run").glob("*.lock")):
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                alive = False
                fcntl.flock(fd, fcntl.LOCK_UN)
            except BlockingIOError:
                alive = True
            raw = os.read(fd, 32).decode(errors="replace").strip()
        finally:
            os.close(fd)
        out.append({"lock": lock.name, "pid": int(raw) if raw.isdigit() else None, "alive": alive})
    return out


def maintenance(state_dir: Path, now: float) -> dict[str, Any] | None:
    """The active maintenance window at ``now`` (Unix s): ``{"until": Unix s, "reason": str}``, or None.

    ``until`` from :func:`gswarm.maintenance.active_until`; ``reason`` from the same
    ``<state_dir>/maintenance.json`` (``""`` when missing). While active GSwarm neither
    restarts the node nor alerts.
    """
    until = _maintenance.active_until(Path(state_dir), now)
    if until is None:
        return None
    try:
        reason = json.loads((Path(state_dir) / _maintenance.FILE).read_text(encoding="utf-8")).get("reason") or ""
    except (OSError, ValueError, AttributeError):
        reason = ""
    return {"until": until, "reason": str(reason)}


def status(reader: StoreReader, state_dir: Path, node: str, now: float) -> dict[str, Any]:
    """The status document of ``node`` at ``now`` (Unix s) from ``reader`` (a StoreReader). Keys:

    ``node``; ``supervisor`` {``alive``: bool, ``pid``: int|None}; ``state`` (last recorded
    NodeState or None) and ``state_since`` (s); ``generation``, ``mode``, ``pid`` of the latest
    run; ``started_at`` and ``uptime`` (s; only while the run is open and a supervisor is alive);
    ``restarts_24h`` {``total``, ``by_cause``: {cause: n}}; ``progress`` {``round``, ``stage``,
    ``round_total``, ``animal``, ``peer_id``, ``kind``, ``ts``, ``last_advance``,
    ``since_advance`` (s)} or None; ``resources`` {``ts``, ``cpu_percent``, ``rss_bytes``,
    ``threads``, ``host_cpu_percent``, ``host_mem_percent``, ``swap_percent``, ``load1``,
    ``disk_free_bytes``, ``gpu``: list, ``current``: bool — False when the node's run has ended or no
    supervisor is alive, so the figures are the last sample taken at ``ts``, not the present} or None; ``last_incident`` {``ts``, ``category``,
    ``severity``, ``recovery``, ``rule_id``, ``advice``, ``evidence``} or None; ``maintenance``
    {``until`` (Unix s), ``reason``} while a maintenance window is active, else None; ``state_reason``
    (why the last recorded state change happened, e.g. "stop requested by signal", or None);
    ``gave_up`` {``ts``, ``state`` (STOPPED|FATAL), ``cause``, ``reason``, ``advice``} when GSwarm
    gave up on the node and nothing started it since (``StoreReader.gave_up``), else None; ``recorded``
    (bool: the store has any row for ``node``); ``known_nodes`` (every node in the store); ``store`` (path).
    Raises StoreError when the database file is foreign or corrupted.
    """
    sups = [s for s in supervisors(state_dir) if s["alive"]]
    alive = bool(sups)
    states = reader.events(node, kind="state", limit=1, desc=True)
    runs = reader.runs(node, limit=1, desc=True)
    run = runs[0] if runs else None
    open_run = run is not None and run["stopped_at"] is None and alive
    restarts = reader.restarts_by_cause(node, since=now - DAY)
    known = reader.nodes()
    return {
        "node": node,
        "supervisor": {"alive": alive, "pid": sups[0]["pid"] if sups else None},
        "state": states[0]["state"] if states else None,
        "state_since": states[0]["ts"] if states else None,
        "state_reason": (states[0]["message"] or None) if states else None,
        "gave_up": reader.gave_up(node),
        "generation": run["generation"] if run else None,
        "mode": run["mode"] if run else None,
        "pid": run["pid"] if open_run else None,
        "started_at": run["started_at"] if open_run else None,
        "uptime": (round(max(0.0, now - run["started_at"]), 3)  # a wall step back: never < 0
                   if open_run and not (states and states[0]["state"] == "WAITING_LOGIN") else None),  # no login wait
        "restarts_24h": {"total": sum(restarts.values()), "by_cause": restarts},
        "progress": _progress(reader, node, now),
        "resources": _resources(reader, node, current=open_run),
        "last_incident": _incident(reader, node),
        "maintenance": maintenance(state_dir, now),
        "recorded": node in known,
        "known_nodes": known,
        "store": str(reader.path),
    }


def _progress(reader: StoreReader, node: str, now: float) -> dict[str, Any] | None:
    p = reader.latest_progress(node)
    if p is None:
        return None
    adv = reader.last_advance(node)
    keys = ("round", "stage", "round_total", "animal", "peer_id", "kind", "ts")
    return {k: p[k] for k in keys} | {"last_advance": adv, "since_advance": round(now - adv, 3) if adv else None}


def _resources(reader: StoreReader, node: str, current: bool) -> dict[str, Any] | None:
    s = reader.latest_sample(node)
    if s is None:
        return None
    keys = ("ts", "cpu_percent", "rss_bytes", "threads", "host_cpu_percent", "host_mem_percent", "swap_percent",
            "load1", "disk_free_bytes", "gpu")
    return {k: s.get(k) for k in keys} | {"current": current}


def _incident(reader: StoreReader, node: str) -> dict[str, Any] | None:
    i = reader.last_incident(node, with_advice=False)
    if i is None:
        return None
    return {k: i[k] for k in ("ts", "category", "severity", "recovery", "rule_id", "advice", "evidence")}
