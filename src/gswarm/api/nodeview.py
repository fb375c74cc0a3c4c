"""Node summaries for status, nodes and readiness, from a snapshot and/or the store.

Live: the supervisor's ``snapshot()`` is the truth for state, pid and uptime.
Read-only (``gswarm serve``): state is the newest ``state`` event, pid/generation
come from the newest run, uptime is ``now - started_at`` while that run is open.
All functions take a StoreReader and run in a worker thread.
"""

from __future__ import annotations

from typing import Any

SNAPSHOT_KEYS = ("state", "pid", "pgid", "generation", "mode", "started_at", "uptime", "idle", "restarts",
                 "last_exit", "next_restart_at", "fatal_reason", "degraded")


class StoreCache:
    """Store-derived summaries reused while the store has no new row.

    The key is the newest row id of every table (five O(1) lookups); any insert
    (every exit, restart and state change inserts an event) invalidates it. Safe
    to share between worker threads (entries are replaced whole).
    """

    _FP = ("SELECT (SELECT MAX(id) FROM runs) AS r, (SELECT MAX(id) FROM events) AS e, (SELECT MAX(id) FROM incidents)"
           " AS i, (SELECT MAX(id) FROM samples) AS s, (SELECT MAX(id) FROM progress) AS p")

    def __init__(self) -> None:
        self._entry: tuple[Any, dict[str, Any]] = (None, {})

    def get(self, reader: Any, name: str, compute: Any) -> Any:
        """``compute()`` once per store change for ``name``."""
        rows = reader.query(self._FP)
        key = tuple(rows[0].values()) if rows else None
        current_key, values = self._entry
        if key != current_key:
            values = {}
            self._entry = (key, values)
        if name not in values:
            values[name] = compute()
        return values[name]


def summary(reader: Any, node: str, snap: dict[str, Any] | None, now: float,
            cache: StoreCache | None = None) -> dict[str, Any]:
    """``NodeOut`` as a dict for ``node``; ``snap`` is the live snapshot (None = derive from the store)."""
    cache = cache or StoreCache()
    out: dict[str, Any] = {"node": node, "supervised": snap is not None}
    if snap:
        out.update({k: _plain(snap.get(k)) for k in SNAPSHOT_KEYS})
    else:
        out.update(cache.get(reader, "derived:" + node, lambda: _from_store(reader, node)))
        if out["started_at"] is not None and out.pop("_open", False):
            out["uptime"] = max(0.0, now - out["started_at"])
    out.update(cache.get(reader, "facts:" + node, lambda: _facts(reader, node)))
    out.pop("_open", None)
    return out


def _facts(reader: Any, node: str) -> dict[str, Any]:
    return {"progress": _strip(reader.latest_progress(node)), "last_advance": reader.last_advance(node),
            "sample": _strip(reader.latest_sample(node)),
            "last_incident": _strip(reader.last_incident(node, with_advice=False))}


def _from_store(reader: Any, node: str) -> dict[str, Any]:
    out: dict[str, Any] = {k: None for k in SNAPSHOT_KEYS}
    states = reader.events(node, kind="state", limit=1, desc=True)
    out["state"] = states[0]["state"] if states else None
    runs = reader.runs(node, limit=1, desc=True)
    if runs:
        run = runs[0]
        out.update(pid=run["pid"], generation=run["generation"], mode=run["mode"], started_at=run["started_at"],
                   _open=run["stopped_at"] is None)
    ended = reader.query("SELECT exit_code, signal, stopped_at, requested FROM runs WHERE node = ? AND stopped_at IS NOT NULL"
                         " ORDER BY stopped_at DESC LIMIT 1", (node,))
    if ended:
        out["last_exit"] = {"exit_code": ended[0]["exit_code"], "signal": ended[0]["signal"], "ts": ended[0]["stopped_at"],
                            "requested": ended[0]["requested"]}
    count = reader.query("SELECT COUNT(*) AS n FROM events WHERE node = ? AND kind = 'restart'", (node,))
    out["restarts"] = int(count[0]["n"]) if count else 0
    return out


def _plain(value: Any) -> Any:
    """Enums (NodeState…) as their values so JSON and comparisons see plain strings."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return getattr(value, "value", value)


def _strip(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: v for k, v in row.items() if k != "id"}


def node_names(reader: Any, live_node: str | None, cache: StoreCache | None = None) -> list[str]:
    """Nodes known to this state dir: the live node first, then every node in the store."""
    names = list(cache.get(reader, "nodes", reader.nodes) if cache else reader.nodes())
    if live_node is not None:
        names = [live_node] + [n for n in names if n != live_node]
    return names


def readiness(node: dict[str, Any], now: float, stall_timeout: float) -> tuple[bool, str]:
    """(ready, reason): RUNNING and an advance within ``stall_timeout`` seconds (or a young run)."""
    state = node.get("state")
    if state is None:
        return False, "no supervisor state recorded for this node"
    if state != "RUNNING":
        return False, f"node state is {state}"
    last = node.get("last_advance")
    idle = node.get("idle")  # live: monotonic seconds without an advance (a wall-clock step cannot fake a stall)
    if idle is not None:
        if idle > stall_timeout:
            return False, f"no progress for {idle:.0f} s (stall timeout {stall_timeout:.0f} s)"
        return True, f"running; no progress for {idle:.0f} s (stall timeout {stall_timeout:.0f} s)"
    if last is not None and now - last <= stall_timeout:
        return True, f"running; last progress {now - last:.0f} s ago"
    uptime = node.get("uptime")
    if uptime is not None and uptime <= stall_timeout:
        return True, f"running for {uptime:.0f} s; no round advance yet"
    if last is None:
        return False, f"no progress for {uptime or 0:.0f} s (stall timeout {stall_timeout:.0f} s)"
    return False, f"no progress for {now - last:.0f} s (stall timeout {stall_timeout:.0f} s)"
