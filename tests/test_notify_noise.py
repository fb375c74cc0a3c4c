"""Noise control with injected time: dedup, flap suppression, quiet hours, maintenance."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from gswarm import maintenance
from gswarm.errors import ConfigError
from gswarm.events import Category, Incident, ProcessExited, Recovery, RestartScheduled, Severity
from gswarm.notify.noise import NoiseFilter, parse_quiet_hours
from gswarm.notify.rules import Message, Rules

UTC = timezone.utc
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()  # noon UTC


def crash(ts: float, cat: Category = Category.CUDA_OOM) -> list:
    return [ProcessExited("n1", ts, 7, 1, None, 60.0),
            Incident("n1", ts, cat, Recovery.RESTART, Severity.ERROR, f"{cat.value}-1", ("boom",), "lower the model size")]


def restart(ts: float, attempt: int, cat: Category = Category.CUDA_OOM) -> RestartScheduled:
    return RestartScheduled("n1", ts, 5.0, cat, Recovery.RESTART, attempt)


def run(f: NoiseFilter, rules: Rules, events: list) -> list[Message]:
    out: list[Message] = []
    for e in events:
        for m in rules.translate(e):
            out += f.admit(m, e.ts)
    return out


def test_dedup_same_kind_and_key_within_window() -> None:
    f = NoiseFilter(dedup_window=1800)
    msg = Message("disk_low", Severity.WARNING, "[n1] disk low", node="n1")
    assert f.admit(msg, T0) == [msg]
    assert f.admit(msg, T0 + 1799) == []
    assert f.admit(Message("disk_low", Severity.WARNING, "x", node="n2"), T0 + 10) != []  # other node
    assert f.admit(Message("gpu_hot", Severity.WARNING, "x", node="n1"), T0 + 10) != []  # other kind
    assert f.admit(msg, T0 + 1800) == [msg]
    assert f.stats["duplicate"] == 1


def test_five_restarts_in_ten_minutes_become_one_flapping_message() -> None:
    rules, f = Rules(), NoiseFilter(dedup_window=1800, flap_count=5, flap_window=600)
    events = []
    cats = [Category.CUDA_OOM, Category.CUDA_OOM, Category.DHT_BOOTSTRAP_FAILED, Category.CUDA_OOM, Category.CUDA_OOM]
    for i, cat in enumerate(cats):  # one crash every 2 minutes: 5 restarts within 8 minutes
        events += [*crash(T0 + 120 * i, cat), restart(T0 + 120 * i + 1, i + 1, cat)]
    sent = [m for m in run(f, rules, events) if m.severity.rank >= Severity.WARNING.rank]
    flaps = [m for m in sent if m.kind == "flapping"]
    assert len(flaps) == 1
    assert flaps[0].title == "[n1] flapping: 5 restarts in 10 min"
    assert flaps[0].body.startswith("Causes: cuda oom ×4, dht bootstrap failed ×1.")
    # the only other alerts: the first crash of each cause (later identical ones are duplicates)
    assert [(m.kind, m.key) for m in sent] == [("crashed", "cuda_oom"), ("crashed", "dht_bootstrap_failed"),
                                               ("flapping", "flapping")]
    # more restarts while flapping: nothing more, not even a crash with a new cause
    more = [*crash(T0 + 700, Category.UNKNOWN_CRASH), restart(T0 + 701, 6)]
    assert run(f, rules, more) == []
    # calm for a whole window: crash messages come back
    assert [m.kind for m in run(f, rules, crash(T0 + 701 + 601, Category.HF_DOWNLOAD_ERROR))] == ["crashed"]


def test_four_restarts_do_not_flap() -> None:
    rules, f = Rules(), NoiseFilter(flap_count=5, flap_window=600)
    events = [restart(T0 + 140 * i, i + 1, c) for i, c in enumerate(
        [Category.CUDA_OOM, Category.MPS_OOM, Category.UNKNOWN_CRASH, Category.HF_DOWNLOAD_ERROR])]
    assert [m.kind for m in run(f, rules, events)] == ["restarting"] * 4


def test_quiet_hours_defer_non_critical_then_release_at_end() -> None:
    night = datetime(2026, 11, 29, 23, 30, tzinfo=UTC).timestamp()
    f = NoiseFilter(quiet_hours="22:00-07:00", tz=UTC)
    warn = Message("disk_low", Severity.WARNING, "[n1] disk low", node="n1")
    crit = Message("needs_you", Severity.CRITICAL, "[n1] needs you", node="n1")
    assert f.admit(warn, night) == []
    assert f.admit(crit, night) == [crit]  # critical goes through
    assert f.deferred == [warn]
    assert f.release(night + 3600) == []  # 00:30, still quiet
    end = datetime(2026, 11, 30, 7, 0, tzinfo=UTC).timestamp()
    assert f.release(end - 1) == []
    assert f.release(end) == [warn]
    assert f.release(end + 5) == [] and f.deferred == []


@pytest.mark.parametrize("spec,hhmm,quiet", [
    ("22:00-07:00", "21:59", False), ("22:00-07:00", "22:00", True), ("22:00-07:00", "06:59", True),
    ("22:00-07:00", "07:00", False), ("13:00-14:30", "14:29", True), ("13:00-14:30", "12:59", False),
])
def test_quiet_hours_boundaries(spec: str, hhmm: str, quiet: bool) -> None:
    h, m = map(int, hhmm.split(":"))
    ts = datetime(2026, 11, 29, h, m, tzinfo=UTC).timestamp()
    assert NoiseFilter(quiet_hours=spec, tz=UTC).in_quiet_hours(ts) is quiet


@pytest.mark.parametrize("bad", ["22-07", "25:00-07:00", "22:00-07:61", "tonight"])
def test_bad_quiet_hours_is_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="quiet_hours"):
        parse_quiet_hours(bad)


def test_maintenance_window_sends_nothing(state_dir: Path) -> None:
    f = NoiseFilter(maintenance_until=lambda now: maintenance.active_until(state_dir, now))
    rules = Rules()
    maintenance.set_window(state_dir, T0 + 1800)
    events = [e for i in range(3) for e in crash(T0 + 60 * i)] + [restart(T0 + 200 + i, i + 1) for i in range(6)]
    assert run(f, rules, events) == []
    assert f.admit(Message("needs_you", Severity.CRITICAL, "x", node="n1"), T0 + 300) == []
    assert f.stats["maintenance"] == 3 + 6 + 1
    digest = Message("digest", Severity.INFO, "digest", node="n1", force=True)
    assert f.admit(digest, T0 + 400) == [digest]  # reports are not alerts
    assert [m.key for m in run(f, rules, crash(T0 + 1800, Category.MISSING_BINARY))] == ["missing_binary"]


def test_deferred_messages_dropped_if_maintenance_at_release(state_dir: Path) -> None:
    night = datetime(2026, 11, 29, 23, 0, tzinfo=UTC).timestamp()
    f = NoiseFilter(quiet_hours="22:00-07:00", tz=UTC,
                    maintenance_until=lambda now: maintenance.active_until(state_dir, now))
    assert f.admit(Message("stalled", Severity.WARNING, "x", node="n1"), night) == []
    end = datetime(2026, 11, 30, 7, 0, tzinfo=UTC).timestamp()
    maintenance.set_window(state_dir, end + 600)
    assert f.release(end) == [] and f.deferred == []
