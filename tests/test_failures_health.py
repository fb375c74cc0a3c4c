"""Stall detection by progress, degraded on swallowed errors, live incidents — with FakeClock, no sleeping."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from gswarm import events as ev
from gswarm.clock import FakeClock
from gswarm.config import Settings
from gswarm.monitor.health import HealthService, HealthTracker, create_service, stall_timeout_for

NODE = "n1"
ERR = "[2025-11-20 10:01:02,345][genrl.logging_utils.global_defs][ERROR] - "


def progress(ts: float, kind: str, advanced: bool, rnd: int = 7) -> ev.ProgressUpdate:
    return ev.ProgressUpdate(NODE, ts, kind, round=rnd, advanced=advanced)


def test_default_timeouts_per_generation() -> None:
    assert [stall_timeout_for(g) for g in ("E0", "E2", "E3", "E6", None)] == [1800.0, 1800.0, 3600.0, 3600.0, 3600.0]
    assert stall_timeout_for("E4", 120.0) == 120.0


def test_stall_after_timeout_and_advance_resets(fake_clock: FakeClock) -> None:
    t0 = fake_clock.time()
    h = HealthTracker(fake_clock, "E4")
    assert h.check(t0).state == "stopped"
    h.on_start(t0)
    assert h.check(t0 + 3600).state == "ok"
    v = h.check(t0 + 3601)
    assert (v.state, v.idle, v.limit) == ("stalled", 3601.0, 3600.0)
    h.on_progress(progress(t0 + 3000, "round", True))
    assert h.check(t0 + 3601).state == "ok"
    h.on_progress(progress(t0 + 3500, "round", False))  # a repeated, non-advancing line is not progress
    assert h.check(t0 + 6601).state == "stalled"
    fake_clock.advance(7000)
    assert h.check().state == "stalled"  # now defaults to the clock


def test_waiting_is_not_a_stall_until_far_beyond(fake_clock: FakeClock) -> None:
    t0 = fake_clock.time()
    h = HealthTracker(fake_clock, "E1", stall_timeout=None)
    h.on_start(t0)
    h.on_progress(progress(t0 + 100, "waiting", False))
    assert h.check(t0 + 1801).state == "waiting"
    assert h.check(t0 + 3 * 1800).state == "waiting"
    v = h.check(t0 + 3 * 1800 + 1)
    assert v.state == "stalled" and "waiting for the swarm" in v.reason
    h.on_progress(progress(t0 + 5000, "join", True, 8))
    assert h.check(t0 + 5400).state == "ok"


def test_override_and_restart_resets(fake_clock: FakeClock) -> None:
    t0 = fake_clock.time()
    h = HealthTracker(fake_clock, "E6", stall_timeout=600.0)
    h.on_start(t0)
    assert h.check(t0 + 601).state == "stalled"
    h.on_exit(t0 + 700)
    assert h.check(t0 + 800).state == "stopped"
    h.on_start(t0 + 900)
    assert h.check(t0 + 1400).state == "ok"


def test_swallowed_errors_make_degraded(fake_clock: FakeClock) -> None:
    t0 = fake_clock.time()
    h = HealthTracker(fake_clock, "E6")
    h.on_start(t0)
    assert h.on_output("Starting round: 5/1000000.", t0) is False
    assert h.on_output(ERR + "Error occurred during training, continuing...", t0 + 10) is True
    assert h.check(t0 + 20).degraded is False
    h.on_output(ERR + "Error occurred during training, continuing...", t0 + 600)
    assert h.check(t0 + 700).degraded is True
    assert h.check(t0 + 10 + 1801).degraded is False  # the first error left the 30-minute window


def runtime(clock: FakeClock, **settings: object) -> SimpleNamespace:
    return SimpleNamespace(settings=Settings(**settings), clock=clock, bus=ev.EventBus(), node=NODE,
                           commands=asyncio.Queue(), spec=None)


def drain(q: asyncio.Queue) -> list[tuple[str, str]]:
    out = []
    while not q.empty():
        c = q.get_nowait()
        out.append((c.kind, c.source))
    return out


async def test_service_puts_stalled_command_once(fake_clock: FakeClock) -> None:
    rt = runtime(fake_clock)
    svc = create_service(rt)
    notices: list[ev.Notice] = []
    rt.bus.subscribe(lambda e: notices.append(e) if isinstance(e, ev.Notice) else None)
    rt.bus.publish(ev.ProcessStarted(NODE, fake_clock.time(), 10, 10, ("python",), "E4", "direct"))
    rt.bus.publish(ev.ProcessStarted("other-node", fake_clock.time(), 11, 11, ("python",), "E1", "direct"))
    task = asyncio.ensure_future(svc.run())
    await fake_clock.run_for(3590, step=30)
    assert drain(rt.commands) == []
    await fake_clock.run_for(120, step=30)
    assert drain(rt.commands) == [("stalled", "health")]
    await fake_clock.run_for(600, step=30)
    assert drain(rt.commands) == []
    assert [n.kind for n in notices] == ["stalled"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_service_progress_prevents_stall(fake_clock: FakeClock) -> None:
    rt = runtime(fake_clock, stall_timeout=600.0)
    svc = HealthService(rt)
    t0 = fake_clock.time()
    rt.bus.publish(ev.ProcessStarted(NODE, t0, 10, 10, ("python",), "E4", "direct"))
    rt.bus.publish(progress(t0 + 500, "round", True))
    assert svc.tick(t0 + 1000).state == "ok"
    assert svc.tick(t0 + 1101).state == "stalled"
    assert drain(rt.commands) == [("stalled", "health")]


def test_service_degraded_then_healthy(fake_clock: FakeClock) -> None:
    rt = runtime(fake_clock)
    svc = HealthService(rt)
    t0 = fake_clock.time()
    rt.bus.publish(ev.ProcessStarted(NODE, t0, 10, 10, ("python",), "E6", "direct"))
    for dt in (10.0, 20.0):
        rt.bus.publish(ev.OutputBatch(NODE, t0 + dt, 10, ("filler", ERR + "Error occurred during training, continuing...")))
    svc.tick(t0 + 30)
    svc.tick(t0 + 40)
    assert drain(rt.commands) == [("degraded", "health:trainer_errors")]
    svc.tick(t0 + 1900)
    assert drain(rt.commands) == [("healthy", "health:trainer_errors")]


def test_service_live_incident_restarts_after_repeated_rejections(fake_clock: FakeClock) -> None:
    rt = runtime(fake_clock)
    HealthService(rt)
    incidents: list[ev.Incident] = []
    rt.bus.subscribe(lambda e: incidents.append(e) if isinstance(e, ev.Incident) else None)
    t0 = fake_clock.time()
    rt.bus.publish(ev.ProcessStarted(NODE, t0, 10, 10, ("python",), "E4", "direct"))
    lines = [ERR + "Failed to submit to chain.", "This is most likely transient and will recover.",
             "requests.exceptions.HTTPError: 400 Client Error: Bad Request for url: http://localhost:3000/api/submit-reward",
             "[2025-07-27 16:18:15,125][genrl.logging_utils.global_defs][INFO] - Starting round: 13177/1000000."]
    for rnd in range(2):  # one chunk per round, as read from the pipe
        rt.bus.publish(ev.OutputBatch(NODE, t0 + rnd, 10, tuple(lines + ["filler"] * 20)))
    assert drain(rt.commands) == [] and incidents == []
    rt.bus.publish(ev.OutputBatch(NODE, t0 + 3, 10, tuple(lines[:2])))
    rt.bus.publish(ev.OutputBatch(NODE, t0 + 3, 10, tuple(lines[2:])))
    assert drain(rt.commands) == [("restart", "health:chain_submit_rejected")]
    assert [(i.category, i.rule_id) for i in incidents] == [(ev.Category.CHAIN_SUBMIT_REJECTED, "chain_submit_rejected")]


def test_service_live_incident_stops_on_identity_problem(fake_clock: FakeClock) -> None:
    rt = runtime(fake_clock)
    HealthService(rt)
    t0 = fake_clock.time()
    rt.bus.publish(ev.ProcessStarted(NODE, t0, 10, 10, ("python",), "E5", "script"))
    for i in range(3):
        rt.bus.publish(ev.OutputLine(NODE, t0 + i, 10, "Smart contract account reverted with error: AA24 signature error"))
    assert drain(rt.commands) == [("stop", "health:peer_id_already_registered")]
