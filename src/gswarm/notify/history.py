"""What a digest reports, read from the store (``gswarm.logs.store.StoreReader``).

The figures are :func:`gswarm.monitor.analytics.compute`'s (the same numbers as the API and
dashboard) over the *observed* span: from ``max(since, first recorded fact)`` to ``until``, so
a weekly digest of a node installed yesterday does not report 14 % uptime. Added here: the
first/last round seen, the lowest free disk, restarts per UTC day and the chart series.
All times Unix seconds, durations seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

_BIG = 10_000_000


@dataclass
class Summary:
    """Numbers of one node over ``[since, until]``; ``series`` feeds the chart (not in ``to_dict``).

    ``rounds`` = distinct rounds the node advanced in; ``failures`` = restarts plus give-ups after an exit (analytics' definition).
    """

    node: str
    since: float
    until: float
    observed_s: float = 0.0
    running_s: float = 0.0
    uptime_pct: float | None = None
    availability_pct: float | None = None  # running / supervised time (requested stops are not downtime)
    restarts: int = 0
    restarts_by_cause: dict[str, int] = field(default_factory=dict)
    restarts_by_day: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    mtbf_s: float | None = None
    rounds: int = 0
    first_round: int | None = None
    last_round: int | None = None
    rounds_per_hour: float | None = None
    incidents_by_category: dict[str, int] = field(default_factory=dict)
    peaks: dict[str, float | None] = field(default_factory=dict)
    series: dict[str, list[Any]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (without the chart series)."""
        data = asdict(self)
        data.pop("series")
        return data


def _first_fact(reader: Any, node: str, since: float, until: float) -> float | None:
    rows = reader.query(
        "SELECT MIN(t) AS t FROM (SELECT MAX(MIN(started_at), ?) AS t FROM runs WHERE node = ? AND started_at <= ?"
        " AND (stopped_at IS NULL OR stopped_at >= ?) UNION ALL SELECT MIN(ts) FROM samples WHERE node = ? AND ts"
        " BETWEEN ? AND ? UNION ALL SELECT MIN(ts) FROM events WHERE node = ? AND ts BETWEEN ? AND ?)",
        (since, node, until, since, node, since, until, node, since, until))
    return rows[0]["t"] if rows and rows[0]["t"] is not None else None


def summarize(reader: Any, node: str, since: float, until: float) -> Summary:
    """Compute a :class:`Summary` of ``node`` from a StoreReader. Raises StoreError from it."""
    from gswarm.monitor.analytics import compute

    s = Summary(node, since, until)
    first = _first_fact(reader, node, since, until)
    start = max(since, first) if first is not None else until
    s.observed_s = max(0.0, until - start)
    samples = reader.samples(node, since=since, until=until, limit=_BIG)
    progress = [p for p in reader.progress(node, since=since, until=until, limit=_BIG) if p["round"] is not None]
    restarts = reader.events(node, since=since, until=until, kind="restart", limit=_BIG)
    if s.observed_s > 0:
        a = compute(reader, node, start, until)
        s.running_s, s.uptime_pct = a.running_seconds, round(a.uptime_percent, 1)
        s.availability_pct = None if a.availability_percent is None else round(a.availability_percent, 1)
        s.restarts, s.failures, s.mtbf_s = sum(a.restarts_by_cause.values()), a.failures, a.mtbf_seconds
        s.restarts_by_cause = dict(sorted(a.restarts_by_cause.items(), key=lambda kv: (-kv[1], kv[0])))
        s.restarts_by_day = {d: sum(c.values()) for d, c in a.restarts_by_cause_per_day.items()}
        s.rounds, s.rounds_per_hour = a.rounds, round(a.rounds_per_hour, 2)
        s.incidents_by_category = dict(sorted(a.incidents_by_category.items(), key=lambda kv: (-kv[1], kv[0])))
        s.peaks = {"cpu_percent": a.peaks.get("cpu_percent"), "rss_bytes": a.peaks.get("rss_bytes"),
                   "host_mem_percent": a.peaks.get("host_mem_percent"),
                   "gpu_temp_c": a.peaks.get("gpu_temperature_celsius")}
    if progress:
        s.first_round, s.last_round = min(p["round"] for p in progress), max(p["round"] for p in progress)
    free = [x[k] for x in samples for k in ("disk_free_bytes", "state_disk_free_bytes")
            if isinstance(x.get(k), (int, float))]
    s.peaks["disk_free_bytes_min"] = min(free, default=None)
    s.series = {
        "ts": [x["ts"] for x in samples],
        **{k: [x.get(k) for x in samples] for k in ("cpu_percent", "host_cpu_percent", "rss_bytes", "host_mem_percent")},
        "restart_ts": [e["ts"] for e in restarts],
        "round_ts": [p["ts"] for p in progress],
        "round": [p["round"] for p in progress],
    }
    return s
