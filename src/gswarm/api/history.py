"""Store queries behind the history routes: bucketed resource series and analytics.

``series(reader, node, since, until, points)`` averages (and maxes) samples per
bucket of ``(until - since) / points`` seconds in SQL, so 30 days of 10-second
samples cost one indexed GROUP BY. GPU: per sample the mean over its GPUs of
``utilization_percent`` and of ``memory_used_bytes / memory_total_bytes`` (keys of
``gswarm.monitor.gpu`` samples), NULL when the sample has no GPU.
"""

from __future__ import annotations

from typing import Any

_NUMERIC = ("cpu_percent", "rss_bytes", "host_cpu_percent", "host_mem_percent", "swap_percent", "load1")
_GPU_UTIL = ("(SELECT AVG(json_extract(value, '$.utilization_percent'))"
             " FROM json_each(CASE WHEN json_valid(gpu) THEN gpu ELSE '[]' END))")
_GPU_MEM = ("(SELECT AVG(100.0 * json_extract(value, '$.memory_used_bytes') / NULLIF(json_extract(value, '$.memory_total_bytes'), 0))"
            " FROM json_each(CASE WHEN json_valid(gpu) THEN gpu ELSE '[]' END))")


def series(reader: Any, node: str, since: float, until: float, points: int) -> dict[str, Any]:
    """``MetricsOut`` dict: ``ts`` bucket starts and per metric ``<name>`` (avg) and ``<name>_max`` lists."""
    step = (until - since) / points
    cols = [(c, c) for c in _NUMERIC] + [("gpu_util_percent", _GPU_UTIL), ("gpu_mem_percent", _GPU_MEM)]
    inner = ", ".join(f"{expr} AS {name}" for name, expr in cols)
    aggs = ", ".join(f"AVG({n}) AS {n}, MAX({n}) AS {n}_max" for n, _ in cols)
    sql = (f"SELECT MIN(CAST((ts - ?) / ? AS INTEGER), ?) AS b, COUNT(*) AS n, {aggs} FROM "
           f"(SELECT ts, {inner} FROM samples WHERE node = ? AND ts >= ? AND ts <= ?) GROUP BY b ORDER BY b")
    rows = reader.query(sql, (since, step, points - 1, node, since, until))
    by_bucket = {int(r["b"]): r for r in rows}
    names = [n for n, _ in cols] + [f"{n}_max" for n, _ in cols]
    out: dict[str, list[float | None]] = {n: [] for n in names}
    for b in range(points):
        row = by_bucket.get(b)
        for n in names:
            out[n].append(None if row is None or row[n] is None else float(row[n]))
    return {"node": node, "since": since, "until": until, "step": step,
            "samples": int(sum(r["n"] for r in rows)), "series": out,
            "ts": [since + i * step for i in range(points)]}


def analytics(reader: Any, node: str, since: float | None, until: float | None) -> dict[str, Any]:
    """``gswarm.monitor.analytics.compute`` when installed, else restarts by cause and counts."""
    try:
        from gswarm.monitor.analytics import compute
    except ImportError:
        compute = None
    if compute is not None:
        result = compute(reader, node, since, until)
        if hasattr(result, "to_dict"):
            return result.to_dict()
        return result if isinstance(result, dict) else _as_dict(result)
    runs = reader.query("SELECT COUNT(*) AS n FROM runs WHERE node = ? AND started_at >= ? AND started_at <= ?",
                        (node, since or 0.0, until or 1e12))
    incidents = reader.query("SELECT COUNT(*) AS n FROM incidents WHERE node = ? AND ts >= ? AND ts <= ?",
                             (node, since or 0.0, until or 1e12))
    return {"node": node, "since": since, "until": until, "runs": runs[0]["n"], "incidents": incidents[0]["n"],
            "restarts_by_cause": reader.restarts_by_cause(node, since)}


def _as_dict(obj: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    return dict(obj)
