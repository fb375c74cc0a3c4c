"""History figures over a time range, computed from the store (used by the API, ``gswarm report``).

Definitions (all times Unix seconds, ranges closed):
* running time = union of run intervals ``[started_at, stopped_at or until]`` clipped to the range;
  ``uptime_percent`` = running time / range length × 100.
* supervised time = running time + the gaps between a run that ended by itself (``runs.cause`` set: a
  crash, a stall, an unexpected exit) and the next run of the same node (GSwarm was backing off to
  restart it), clipped to the range; ``availability_percent`` = running / supervised × 100, so the time
  after a requested stop (or before GSwarm first ran) is not counted as downtime (None without runs).
  A gap that holds a give-up (see below) is not counted either: GSwarm no longer supervised the node.
* failures = restart events (``events.kind = 'restart'``: the supervisor restarted after an exit or
  a stall) + give-ups after an exit (``recovery`` events with ``data.gave_up`` and a ``cause``: the
  last failure before FATAL or a stop-and-alert, which schedules no restart);
  ``mtbf_seconds`` = running time / failures (None without failures).
* ``restarts_by_cause_per_day``: ``{"YYYY-MM-DD" (UTC): {cause: n}}``.
* ``rounds`` = distinct rounds among progress rows with ``advanced`` in the range;
  ``rounds_per_hour`` = rounds / range hours.
* ``peaks``: max node-tree CPU % (100 = one core), max RSS bytes, max host RAM %, max GPU °C.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gswarm.logs.store import StoreReader


@dataclass
class Analytics:
    """Result of :func:`compute`; ``to_dict()`` gives JSON-ready data with the same keys."""

    node: str | None
    since: float
    until: float
    running_seconds: float
    uptime_percent: float
    runs: int
    failures: int
    mtbf_seconds: float | None
    restarts_by_cause: dict[str, int] = field(default_factory=dict)
    restarts_by_cause_per_day: dict[str, dict[str, int]] = field(default_factory=dict)
    rounds: int = 0
    rounds_per_hour: float = 0.0
    incidents_by_category: dict[str, int] = field(default_factory=dict)
    peaks: dict[str, float | int | None] = field(default_factory=dict)
    supervised_seconds: float = 0.0
    availability_percent: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def _where(node: str | None, col: str) -> tuple[str, tuple]:
    return ("node = ? AND", (node,)) if node is not None else ("", ())


def _running_seconds(runs: list[dict[str, Any]], since: float, until: float) -> float:
    spans = sorted((max(since, r["started_at"]), min(until, r["stopped_at"] if r["stopped_at"] is not None else until)) for r in runs)
    total, cur_start, cur_end = 0.0, None, None
    for a, b in spans:
        if b <= a:
            continue
        if cur_end is None or a > cur_end:
            total += (cur_end - cur_start) if cur_end is not None else 0.0
            cur_start, cur_end = a, b
        else:
            cur_end = max(cur_end, b)
    return total + ((cur_end - cur_start) if cur_end is not None else 0.0)


def _restart_gaps(runs: list[dict[str, Any]], since: float, until: float,
                  gave_up: dict[Any, list[float]] | None = None) -> float:
    """Seconds between a run that ended by itself (``cause`` set) and the next run of its node, clipped;
    a gap holding one of the node's give-up times (``gave_up``: node → Unix s) does not count."""
    gave_up = gave_up or {}
    total = 0.0
    by_node: dict[Any, list[dict[str, Any]]] = {}
    for r in runs:
        by_node.setdefault(r.get("node"), []).append(r)
    for rs in by_node.values():
        rs.sort(key=lambda r: r["started_at"])
        for prev, nxt in zip(rs, rs[1:]):
            if prev.get("cause") and prev["stopped_at"] is not None and not any(
                    prev["stopped_at"] <= t <= nxt["started_at"] for t in gave_up.get(prev.get("node"), ())):
                a, b = max(since, prev["stopped_at"]), min(until, nxt["started_at"])
                total += max(0.0, b - a)
    return total


def compute(reader: StoreReader, node: str | None = None, since: float | None = None, until: float | None = None) -> Analytics:
    """Figures for ``node`` (None = all nodes) between ``since`` (default: the first run or sample)
    and ``until`` (default now), Unix s. Raises StoreError when the database is foreign/corrupted;
    an empty store gives zeros.
    """
    until = time.time() if until is None else until
    w, p = _where(node, "ts")
    if since is None:
        first = reader.query(f"SELECT MIN(t) AS t FROM (SELECT MIN(started_at) AS t FROM runs WHERE {w} 1=1"
                             f" UNION ALL SELECT MIN(ts) FROM samples WHERE {w} 1=1)", (*p, *p))
        since = first[0]["t"] if first and first[0]["t"] is not None else until
    length = max(until - since, 1e-9)
    runs = reader.query(f"SELECT node, started_at, stopped_at, cause FROM runs WHERE {w} started_at <= ? AND "
                        "(stopped_at IS NULL OR stopped_at >= ?)", (*p, until, since))
    running = _running_seconds(runs, since, until)
    before = reader.query(f"SELECT node, started_at, stopped_at, cause FROM runs WHERE id IN (SELECT MAX(id) FROM runs"
                          f" WHERE {w} stopped_at < ? GROUP BY node)", (*p, since))  # a gap may begin before the range
    ups = reader.query(f"SELECT node, ts FROM events WHERE {w} kind = 'recovery' AND json_extract(data, '$.gave_up') = 1"
                       " AND json_extract(data, '$.cause') IS NOT NULL AND ts <= ?", (*p, until))
    gave_up: dict[Any, list[float]] = {}
    for u in ups:
        gave_up.setdefault(u["node"], []).append(u["ts"])
    supervised = running + _restart_gaps(before + runs, since, until, gave_up)
    per_day: dict[str, dict[str, int]] = {}
    by_cause: dict[str, int] = {}
    for e in reader.events(node, since=since, until=until, kind="restart", limit=10_000_000):
        cause = (e.get("data") or {}).get("cause") or "unknown"
        day = time.strftime("%Y-%m-%d", time.gmtime(e["ts"]))
        per_day.setdefault(day, {})[cause] = per_day.get(day, {}).get(cause, 0) + 1
        by_cause[cause] = by_cause.get(cause, 0) + 1
    failures = sum(by_cause.values()) + sum(since <= t <= until for ts in gave_up.values() for t in ts)
    rounds = reader.query(f"SELECT COUNT(DISTINCT round) AS n FROM progress WHERE {w} advanced = 1 AND round IS NOT NULL"
                          " AND ts BETWEEN ? AND ?", (*p, since, until))[0]["n"]
    incidents = reader.query(f"SELECT category, COUNT(*) AS n FROM incidents WHERE {w} ts BETWEEN ? AND ? GROUP BY category"
                             " ORDER BY category", (*p, since, until))
    return Analytics(
        node=node, since=since, until=until, running_seconds=round(running, 3),
        uptime_percent=round(100.0 * running / length, 3), runs=len(runs), failures=failures,
        mtbf_seconds=round(running / failures, 3) if failures else None,
        restarts_by_cause=dict(sorted(by_cause.items())),
        restarts_by_cause_per_day={d: dict(sorted(c.items())) for d, c in sorted(per_day.items())},
        rounds=rounds, rounds_per_hour=round(rounds / (length / 3600.0), 3),
        incidents_by_category={r["category"]: r["n"] for r in incidents},
        peaks=_peaks(reader, node, since, until),
        supervised_seconds=round(supervised, 3),
        availability_percent=round(100.0 * running / supervised, 3) if supervised > 0 else None,
    )


def _peaks(reader: StoreReader, node: str | None, since: float, until: float) -> dict[str, Any]:
    w, p = _where(node, "ts")
    row = reader.query(f"SELECT MAX(cpu_percent) AS cpu_percent, MAX(rss_bytes) AS rss_bytes, MAX(host_mem_percent) AS host_mem_percent"
                       f" FROM samples WHERE {w} ts BETWEEN ? AND ?", (*p, since, until))[0]
    gpu = reader.query(f"SELECT MAX(json_extract(g.value, '$.temperature_celsius')) AS t FROM samples, json_each(samples.gpu) g"
                       f" WHERE {w.replace('node', 'samples.node')} samples.ts BETWEEN ? AND ?", (*p, since, until))
    return {**row, "gpu_temperature_celsius": gpu[0]["t"] if gpu else None}
