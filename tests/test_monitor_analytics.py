"""Analytics over a recorded history, and Prometheus metrics live and from the store."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gswarm import events as ev
from gswarm.logs.store import Store, StoreReader
from gswarm.monitor import metrics
from gswarm.monitor.analytics import compute

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
C, R, S = ev.Category, ev.Recovery, ev.Severity


def history() -> list[ev.Event]:
    gpu = lambda t: [{"index": 0, "temperature_celsius": t, "utilization_percent": 90}]  # noqa: E731
    return [
        ev.StateChanged("n1", T0, ev.NodeState.STOPPED, ev.NodeState.RUNNING),
        ev.ProcessStarted("n1", T0, 10, 10, (), "E1", "direct"),
        ev.ProgressUpdate("n1", T0 + 100, "join", round=1, stage=0, advanced=True),
        ev.ProgressUpdate("n1", T0 + 200, "stage", round=1, stage=1, advanced=True),
        ev.ResourceSample("n1", T0 + 300, {"cpu_percent": 50.0, "rss_bytes": 2_000, "host_mem_percent": 40.0, "gpu": gpu(61)}),
        ev.Incident("n1", T0 + 999, C.CUDA_OOM, R.REDUCE_MODEL, S.ERROR, "oom", ("CUDA out of memory",), "smaller model"),
        ev.ProcessExited("n1", T0 + 1000, 10, 1, None, 1000.0),
        ev.RestartScheduled("n1", T0 + 1001, 9.0, C.CUDA_OOM, R.REDUCE_MODEL, 1),
        ev.ProcessStarted("n1", T0 + 1010, 11, 11, (), "E1", "direct"),
        ev.ProgressUpdate("n1", T0 + 2000, "join", round=2, stage=0, advanced=True),
        ev.ProgressUpdate("n1", T0 + 2100, "waiting", round=2),
        ev.ResourceSample("n1", T0 + 3000, {"cpu_percent": 150.0, "rss_bytes": 9_000, "host_mem_percent": 30.0, "gpu": gpu(75)}),
        ev.ProcessExited("n1", T0 + 5000, 11, None, 9, 3990.0),
        ev.RestartScheduled("n1", T0 + 5001, 9.0, C.SYSTEM_OOM_KILLED, R.RESTART, 1),
        ev.ProcessStarted("n1", T0 + 5010, 12, 12, (), "E1", "direct"),
        ev.ProgressUpdate("n1", T0 + 6000, "join", round=3, stage=0, advanced=True),
        ev.ProgressUpdate("n1", T0 + 6001, "stage", round=3, stage=1, advanced=True),
        ev.ResourceSample("other", T0 + 3000, {"cpu_percent": 999.0}),
    ]


@pytest.fixture
def reader(tmp_path: Path) -> StoreReader:
    store = Store(tmp_path / "gswarm.db")
    store.write(history())
    store.close()
    return StoreReader(tmp_path / "gswarm.db")


def test_compute_exact_figures(reader: StoreReader) -> None:
    a = compute(reader, "n1", since=T0, until=T0 + 10_000)
    assert a.running_seconds == 1000 + 3990 + 4990
    assert a.uptime_percent == 99.8
    assert (a.runs, a.failures, a.mtbf_seconds) == (3, 2, 4990.0)
    assert a.restarts_by_cause == {"cuda_oom": 1, "system_oom_killed": 1}
    assert a.restarts_by_cause_per_day == {"2023-11-14": {"cuda_oom": 1, "system_oom_killed": 1}}
    assert (a.rounds, a.rounds_per_hour) == (3, 1.08)
    assert a.incidents_by_category == {"cuda_oom": 1}
    assert a.peaks == {"cpu_percent": 150.0, "rss_bytes": 9000, "host_mem_percent": 40.0, "gpu_temperature_celsius": 75}
    d = a.to_dict()
    assert d["node"] == "n1" and d["mtbf_seconds"] == 4990.0


def test_compute_sub_range_and_defaults(reader: StoreReader) -> None:
    a = compute(reader, "n1", since=T0 + 500, until=T0 + 1500)
    assert (a.running_seconds, a.failures, a.rounds, a.incidents_by_category) == (500 + 490, 1, 0, {"cuda_oom": 1})
    b = compute(reader, "n1", until=T0 + 10_000)  # since defaults to the first run
    assert b.since == T0 and b.uptime_percent == 99.8
    empty = compute(reader, "ghost", since=T0, until=T0 + 100)
    assert (empty.running_seconds, empty.failures, empty.mtbf_seconds, empty.rounds) == (0.0, 0, None, 0)
    assert compute(reader, None, since=T0, until=T0 + 10_000).peaks["cpu_percent"] == 999.0


def test_restarts_split_by_utc_day(tmp_path: Path) -> None:
    store = Store(tmp_path / "g.db")
    store.write([ev.RestartScheduled("n", T0 + 3600 * h, 1.0, C.UNKNOWN_CRASH, R.BACKOFF, 1) for h in (0, 1, 2)])
    a = compute(StoreReader(tmp_path / "g.db"), "n", since=T0, until=T0 + 86400)
    assert a.restarts_by_cause_per_day == {"2023-11-14": {"unknown_crash": 2}, "2023-11-15": {"unknown_crash": 1}}


def values(text: bytes) -> dict[tuple, float]:
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_from_bus_events() -> None:
    bus = ev.EventBus()
    m = metrics.NodeMetrics()
    m.attach(bus)
    for e in history():
        bus.publish(e)
    v = values(metrics.render(m.registry))
    n1 = (("node", "n1"),)
    assert v[("gswarm_node_up", n1)] == 1.0
    assert v[("gswarm_node_state", (("node", "n1"), ("state", "RUNNING")))] == 1.0
    assert v[("gswarm_node_state", (("node", "n1"), ("state", "FATAL")))] == 0.0
    assert v[("gswarm_node_restarts_total", (("cause", "cuda_oom"), ("node", "n1")))] == 1.0
    assert v[("gswarm_node_incidents_total", (("category", "cuda_oom"), ("node", "n1")))] == 1.0
    assert (v[("gswarm_node_round", n1)], v[("gswarm_node_stage", n1)]) == (3.0, 1.0)
    assert v[("gswarm_node_last_progress_timestamp_seconds", n1)] == T0 + 6001
    assert v[("gswarm_node_cpu_percent", n1)] == 150.0 and v[("gswarm_node_rss_bytes", n1)] == 9000.0
    assert v[("gswarm_gpu_temperature_celsius", (("gpu", "0"), ("node", "n1")))] == 75.0
    assert v[("gswarm_gpu_utilization_percent", (("gpu", "0"), ("node", "n1")))] == 90.0


def test_metrics_from_store_equal_live_view(reader: StoreReader) -> None:
    v = values(metrics.render(metrics.registry_from_store(reader)))
    assert v[("gswarm_node_round", (("node", "n1"),))] == 3.0
    assert v[("gswarm_node_restarts_total", (("cause", "system_oom_killed"), ("node", "n1")))] == 1.0
    assert v[("gswarm_node_cpu_percent", (("node", "other"),))] == 999.0
    assert v[("gswarm_node_up", (("node", "n1"),))] == 1.0


def test_registry_for_runtime_is_per_runtime_and_follows_snapshot(tmp_path: Path) -> None:
    def rt(state: str):
        return SimpleNamespace(state_dir=tmp_path, bus=ev.EventBus(), node="n1", snapshot=lambda: {"state": state})

    class Rt:
        def __init__(self, state: str) -> None:
            ns = rt(state)
            self.state_dir, self.bus, self.node, self.snapshot = ns.state_dir, ns.bus, ns.node, ns.snapshot

    a, b = Rt("RUNNING"), Rt("BACKOFF")
    ra, rb = metrics.registry_for(a), metrics.registry_for(b)
    assert ra is not rb and metrics.registry_for(a) is ra
    a.bus.publish(ev.RestartScheduled("n1", T0, 1.0, C.UNKNOWN_CRASH, R.BACKOFF, 1))
    va, vb = values(metrics.render(ra)), values(metrics.render(rb))
    assert va[("gswarm_node_up", (("node", "n1"),))] == 1.0 and vb[("gswarm_node_up", (("node", "n1"),))] == 0.0
    assert va[("gswarm_node_restarts_total", (("cause", "unknown_crash"), ("node", "n1")))] == 1.0
    assert ("gswarm_node_restarts_total", (("cause", "unknown_crash"), ("node", "n1"))) not in vb


def test_availability_counts_restart_gaps_not_time_after_a_requested_stop(tmp_path: Path) -> None:
    """Uptime is over the whole range; availability only over the time GSwarm kept the node up: the 10 s
    backoff after the crash is downtime, the 8,000 s after the operator's stop is not."""
    store = Store(tmp_path / "gswarm.db")
    store.write([
        ev.ProcessStarted("n1", T0, 10, 10, (), "E6", "direct"),
        ev.ProcessExited("n1", T0 + 1000, 10, 1, None, 1000.0),
        ev.RestartScheduled("n1", T0 + 1000, 10.0, C.DHT_DAEMON_TIMEOUT, R.CLEANUP_THEN_RESTART, 1),
        ev.ProcessStarted("n1", T0 + 1010, 11, 11, (), "E6", "direct"),
        ev.ProcessExited("n1", T0 + 2000, 11, None, 15, 990.0),  # requested stop: no restart scheduled
    ])
    store.close()
    a = compute(StoreReader(tmp_path / "gswarm.db"), "n1", since=T0, until=T0 + 10_000)
    assert a.running_seconds == 1990.0 and a.uptime_percent == 19.9
    assert a.supervised_seconds == 2000.0 and a.availability_percent == 99.5
    assert compute(StoreReader(tmp_path / "gswarm.db"), "n1", since=T0 + 1005, until=T0 + 10_000).supervised_seconds == 995.0
    assert compute(StoreReader(tmp_path / "gswarm.db"), "ghost", since=T0, until=T0 + 10).availability_percent is None


def test_availability_of_the_recorded_history(reader: StoreReader) -> None:
    a = compute(reader, "n1", since=T0, until=T0 + 10_000)
    assert (a.supervised_seconds, a.availability_percent) == (10_000.0, 99.8)  # two 10 s restart gaps


def test_give_up_counts_as_failure_and_its_gap_is_not_supervised(tmp_path: Path) -> None:
    """Regression: the failure that made GSwarm give up (no RestartScheduled) was not counted (2 failures for
    3 crashes) and its run had no cause; the time after a give-up is not restart downtime."""
    giveup = {"gave_up": True, "state": "STOPPED", "cause": "cuda_oom", "reason": "cuda_oom: smallest", "advice": "a",
              "run_id": 2}
    store = Store(tmp_path / "g.db")
    store.write([
        ev.ProcessStarted("n", T0, 1, 1, (), "E4", "direct"),
        ev.ProcessExited("n", T0 + 100, 1, 1, None, 100.0),
        ev.RestartScheduled("n", T0 + 100, 10.0, C.CUDA_OOM, R.REDUCE_MODEL, 1),
        ev.ProcessStarted("n", T0 + 110, 2, 2, (), "E4", "direct"),
        ev.ProcessExited("n", T0 + 200, 2, 1, None, 90.0),
        ev.RecoveryAction("n", T0 + 200, R.STOP_AND_ALERT, "gave up (STOPPED): cuda_oom: smallest", giveup),
        ev.ProcessStarted("n", T0 + 1200, 3, 3, (), "E4", "direct"),  # the operator started gswarm run again
        ev.ProcessExited("n", T0 + 1300, 3, 0, None, 100.0),
    ])
    store.close()
    reader = StoreReader(tmp_path / "g.db")
    assert [r["cause"] for r in reader.runs("n")] == ["cuda_oom", "cuda_oom", None]
    a = compute(reader, "n", since=T0, until=T0 + 1300)
    assert (a.failures, a.restarts_by_cause, a.running_seconds) == (2, {"cuda_oom": 1}, 290.0)
    assert (a.supervised_seconds, a.availability_percent) == (300.0, round(100 * 290 / 300, 3))  # the 1000 s after the give-up: not counted
    assert reader.gave_up("n") is None  # a start followed it
