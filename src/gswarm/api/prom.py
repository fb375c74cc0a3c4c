"""Prometheus text for ``/metrics``.

Uses ``gswarm.monitor.metrics`` (live: ``registry_for(runtime)``; read-only:
``registry_from_store(reader)``; ``render(registry)``). Only when that module is
missing or fails, a small registry built here from the node summary answers
(``gswarm_api_node_*``: running, restarts, uptime, last advance, CPU, RSS).
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from gswarm.api import nodeview

log = logging.getLogger(__name__)


def _own(reader: Any, source: Any, now: float) -> str:
    reg = CollectorRegistry()
    g = {
        "up": Gauge("gswarm_api_node_running", "1 when the node state is RUNNING.", ["node"], registry=reg),
        "restarts": Gauge("gswarm_api_node_restarts", "Restarts counted by the supervisor.", ["node"], registry=reg),
        "uptime": Gauge("gswarm_api_node_uptime_seconds", "Uptime of the current run, seconds.", ["node"], registry=reg),
        "adv": Gauge("gswarm_api_node_last_advance_timestamp_seconds", "Unix time of the last round advance.",
                     ["node"], registry=reg),
        "cpu": Gauge("gswarm_api_node_cpu_percent", "CPU of the node process tree, percent.", ["node"], registry=reg),
        "rss": Gauge("gswarm_api_node_rss_bytes", "RSS of the node process tree, bytes.", ["node"], registry=reg),
    }
    live = source.live_snapshots()
    for name in list(live) + [n for n in nodeview.node_names(reader, source.node, source.cache) if n not in live]:
        n = nodeview.summary(reader, name, live.get(name), now, source.cache)
        g["up"].labels(name).set(1 if n.get("state") == "RUNNING" else 0)
        g["restarts"].labels(name).set(n.get("restarts") or 0)
        g["uptime"].labels(name).set(n.get("uptime") or 0)
        if n.get("last_advance") is not None:
            g["adv"].labels(name).set(n["last_advance"])
        sample = n.get("sample") or {}
        for key, gauge in (("cpu_percent", "cpu"), ("rss_bytes", "rss")):
            if sample.get(key) is not None:
                g[gauge].labels(name).set(sample[key])
    return generate_latest(reg).decode("utf-8")


def render_text(reader: Any, source: Any, now: float) -> str:
    """Prometheus exposition text for every node of the store (and the live node)."""
    try:
        from gswarm.monitor import metrics
    except ImportError:
        return _own(reader, source, now)
    try:
        registry = metrics.registry_for(source.runtime) if source.live else metrics.registry_from_store(reader)
        text = metrics.render(registry)
        return text.decode("utf-8") if isinstance(text, bytes) else text
    except Exception:  # their metrics must never break the endpoint
        log.exception("gswarm.monitor.metrics failed; serving the API's own metrics")
        return _own(reader, source, now)
