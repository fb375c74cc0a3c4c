"""Prometheus exposition of the node (prometheus-client), one registry per runtime — no global registry.

Families (every one labelled ``node``; units in the names): ``gswarm_node_up``,
``gswarm_node_state{state}`` (1 for the current NodeState), ``gswarm_node_restarts_total{cause}``,
``gswarm_node_incidents_total{category}``, ``gswarm_node_round``, ``gswarm_node_stage``,
``gswarm_node_last_progress_timestamp_seconds``, ``gswarm_node_cpu_percent`` (100 = one core),
``gswarm_node_rss_bytes``, ``gswarm_node_threads``, ``gswarm_node_open_files``,
``gswarm_host_cpu_percent``, ``gswarm_host_memory_percent``, ``gswarm_host_swap_percent``,
``gswarm_host_load1``, ``gswarm_host_disk_free_bytes``, ``gswarm_gpu_utilization_percent{gpu}``,
``gswarm_gpu_memory_used_bytes{gpu}``, ``gswarm_gpu_memory_total_bytes{gpu}``,
``gswarm_gpu_temperature_celsius{gpu}``, ``gswarm_gpu_power_watts{gpu}``.

Live: ``registry_for(rt)`` (seeded from the store, then updated from bus events via
:meth:`NodeMetrics.attach`). Standalone (``gswarm serve``): ``registry_from_store(reader)``.
``render(registry) -> bytes`` is the text exposition format.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any, Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from gswarm import events as ev

_UP = {"RUNNING", "STALLED", "DEGRADED"}
_TREE = (("cpu_percent", "gswarm_node_cpu_percent", "CPU of the node process tree, percent of one core."),
         ("rss_bytes", "gswarm_node_rss_bytes", "Resident memory of the node process tree, bytes."),
         ("threads", "gswarm_node_threads", "Threads in the node process tree."),
         ("open_files", "gswarm_node_open_files", "Open file descriptors of the node process tree."),
         ("host_cpu_percent", "gswarm_host_cpu_percent", "Host CPU busy, percent of all cores."),
         ("host_mem_percent", "gswarm_host_memory_percent", "Host RAM used, percent."),
         ("swap_percent", "gswarm_host_swap_percent", "Host swap used, percent."),
         ("load1", "gswarm_host_load1", "Host 1-minute load average."),
         ("disk_free_bytes", "gswarm_host_disk_free_bytes", "Free bytes on the checkout's file system."))
_GPU = (("utilization_percent", "gswarm_gpu_utilization_percent", "GPU utilisation, percent."),
        ("memory_used_bytes", "gswarm_gpu_memory_used_bytes", "GPU memory used, bytes."),
        ("memory_total_bytes", "gswarm_gpu_memory_total_bytes", "GPU memory total, bytes."),
        ("temperature_celsius", "gswarm_gpu_temperature_celsius", "GPU temperature, degrees Celsius."),
        ("power_watts", "gswarm_gpu_power_watts", "GPU power draw, watts."))


def _blank() -> dict[str, Any]:
    return {"state": None, "round": None, "stage": None, "last_progress": None, "restarts": {}, "incidents": {}, "sample": {}}


class NodeMetrics:
    """A collector over per-node state; ``NodeMetrics(registry=None)`` registers itself in a new registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(self)

    def node(self, name: str) -> dict[str, Any]:
        """The mutable state of node ``name`` (created blank)."""
        return self.nodes.setdefault(name, _blank())

    def observe(self, e: ev.Event) -> None:
        """Update from one bus event (cheap; safe as an inline subscriber)."""
        n = self.node(e.node)
        if isinstance(e, ev.StateChanged):
            n["state"] = getattr(e.new, "value", e.new)
        elif isinstance(e, ev.RestartScheduled):
            cause = getattr(e.cause, "value", e.cause)
            n["restarts"][cause] = n["restarts"].get(cause, 0) + 1
        elif isinstance(e, ev.Incident):
            cat = getattr(e.category, "value", e.category)
            n["incidents"][cat] = n["incidents"].get(cat, 0) + 1
        elif isinstance(e, ev.ProgressUpdate):
            if e.round is not None and e.kind not in ("waiting", "winners", "reward", "bet", "claim"):
                n["round"], n["stage"] = e.round, e.stage
            if e.advanced:
                n["last_progress"] = e.ts
        elif isinstance(e, ev.ResourceSample):
            n["sample"] = dict(e.data)

    def attach(self, bus: ev.EventBus) -> Callable[[], None]:
        """Subscribe to ``bus``; returns the unsubscribe function."""
        return bus.subscribe(self.observe)

    def collect(self) -> Any:
        """prometheus-client collector protocol."""
        fam: dict[str, Any] = {
            "up": GaugeMetricFamily("gswarm_node_up", "1 while the node process runs (RUNNING/STALLED/DEGRADED).", labels=["node"]),
            "state": GaugeMetricFamily("gswarm_node_state", "1 for the node's current supervisor state.", labels=["node", "state"]),
            "restarts": CounterMetricFamily("gswarm_node_restarts", "Restarts by cause.", labels=["node", "cause"]),
            "incidents": CounterMetricFamily("gswarm_node_incidents", "Classified incidents by category.", labels=["node", "category"]),
            "round": GaugeMetricFamily("gswarm_node_round", "Current training round.", labels=["node"]),
            "stage": GaugeMetricFamily("gswarm_node_stage", "Current stage within the round (E0-E2).", labels=["node"]),
            "adv": GaugeMetricFamily("gswarm_node_last_progress_timestamp_seconds", "Unix time of the last round/stage advance.", labels=["node"]),
        }
        tree = {k: GaugeMetricFamily(name, doc, labels=["node"]) for k, name, doc in _TREE}
        gpu = {k: GaugeMetricFamily(name, doc, labels=["node", "gpu"]) for k, name, doc in _GPU}
        for name, n in sorted(self.nodes.items()):
            fam["up"].add_metric([name], 1.0 if n["state"] in _UP else 0.0)
            for st in ev.NodeState:
                fam["state"].add_metric([name, st.value], 1.0 if n["state"] == st.value else 0.0)
            for cause, c in sorted(n["restarts"].items()):
                fam["restarts"].add_metric([name, cause], c)
            for cat, c in sorted(n["incidents"].items()):
                fam["incidents"].add_metric([name, cat], c)
            for key, f in (("round", "round"), ("stage", "stage"), ("last_progress", "adv")):
                if n[key] is not None:
                    fam[f].add_metric([name], n[key])
            for key, f in tree.items():
                if n["sample"].get(key) is not None:
                    f.add_metric([name], n["sample"][key])
            for g in n["sample"].get("gpu") or []:
                for key, f in gpu.items():
                    if g.get(key) is not None:
                        f.add_metric([name, str(g.get("index", 0))], g[key])
        yield from fam.values()
        yield from tree.values()
        yield from gpu.values()


def seed_from_store(metrics: NodeMetrics, reader: Any) -> NodeMetrics:
    """Fill ``metrics`` with every node's last recorded facts from a StoreReader."""
    for name in reader.nodes():
        n = metrics.node(name)
        states = reader.events(name, kind="state", limit=1, desc=True)
        n["state"] = states[0]["state"] if states else None
        p = reader.latest_progress(name)
        if p is not None:
            n["round"], n["stage"] = p["round"], p["stage"]
        n["last_progress"] = reader.last_advance(name)
        n["restarts"] = dict(reader.restarts_by_cause(name, None))
        rows = reader.query("SELECT category, COUNT(*) AS c FROM incidents WHERE node = ? GROUP BY category", (name,))
        n["incidents"] = {r["category"]: r["c"] for r in rows}
        n["sample"] = reader.latest_sample(name) or {}
    return metrics


def registry_from_store(reader: Any) -> CollectorRegistry:
    """A fresh registry with the last recorded facts of every node (``gswarm serve``)."""
    return seed_from_store(NodeMetrics(), reader).registry


_LIVE: "weakref.WeakKeyDictionary[Any, NodeMetrics]" = weakref.WeakKeyDictionary()


def registry_for(rt: Any) -> CollectorRegistry:
    """The registry of runtime ``rt``: built on first use (seeded from ``rt.state_dir/gswarm.db``,
    then attached to ``rt.bus``), kept for the runtime's lifetime."""
    m = _LIVE.get(rt)
    if m is None:
        from gswarm.logs.store import DB_NAME, StoreReader  # runtime-level composition, not a domain import

        m = NodeMetrics()
        reader = StoreReader(Path(rt.state_dir) / DB_NAME)
        try:
            seed_from_store(m, reader)
        except Exception:
            pass
        finally:
            reader.close()
        m.attach(rt.bus)
        _LIVE[rt] = m
    many = getattr(rt, "snapshots", None)  # a gswarm.host.Host: every node's state
    snaps = many() if callable(many) else {rt.node: rt.snapshot()}
    for name, snap in snaps.items():
        state = snap.get("state")
        m.node(name)["state"] = getattr(state, "value", state)
    return m.registry


def render(registry: CollectorRegistry) -> bytes:
    """Prometheus text exposition (``text/plain; version=0.0.4``) of ``registry``."""
    return generate_latest(registry)
