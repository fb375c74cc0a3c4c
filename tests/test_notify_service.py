"""The notify service on a real bus with local receivers; a hanging channel never delays supervision."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from gswarm import maintenance
from gswarm.clock import FakeClock
from gswarm.config import load_settings
from gswarm.events import (Category, EventBus, Incident, NodeState, ProcessExited, ProcessStarted, Recovery,
                           ResourceSample, RestartScheduled, Severity, StateChanged)
from gswarm.notify.channels import load_channels
from gswarm.notify.dispatch import Dispatcher
from gswarm.notify.noise import NoiseFilter
from gswarm.notify.service import NotifyService, create_service
from tests.test_notify_support import HttpReceiver, http_rx  # noqa: F401 (fixture)

UTC = timezone.utc


def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()


def make(bus: EventBus, clock: FakeClock, state_dir: Path, urls: list[str], *, timeout: float = 5.0,
         quiet: str | None = None, digest: str | None = None, retries: int = 0) -> NotifyService:
    channels = load_channels(urls, min_severity="warning")
    noise = NoiseFilter(quiet_hours=quiet, tz=UTC, maintenance_until=lambda now: maintenance.active_until(state_dir, now))
    disp = Dispatcher(channels, clock, timeout=timeout, retries=retries, backoff=5.0)
    return NotifyService(bus, clock, state_dir, "n1", channels, noise=noise, dispatcher=disp, digest=digest,
                         tz=UTC, tick=5.0)


async def settle(rx: HttpReceiver, n: int, timeout: float = 5.0) -> list:
    deadline = time.monotonic() + timeout
    while len(rx.requests) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return list(rx.requests)


def crash_events(ts: float, cat: Category = Category.CUDA_OOM) -> list:
    return [ProcessExited("n1", ts, 77, 1, None, 300.0),
            Incident("n1", ts, cat, Recovery.RESTART, Severity.ERROR, cat.value, ("boom",), "lower the model size"),
            RestartScheduled("n1", ts, 5.0, cat, Recovery.RESTART, 1)]


async def test_hanging_channel_does_not_delay_restart(http_rx: HttpReceiver, state_dir: Path) -> None:  # noqa: F811
    http_rx.modes["/hang"] = "hang"
    clock, bus = FakeClock(at(2026, 11, 29, 12)), EventBus()
    svc = make(bus, clock, state_dir, [f"json://{http_rx.base}/hang?token=SECRET1", f"json://{http_rx.base}/ok"],
               timeout=0.5, retries=1)
    task = asyncio.create_task(svc.run())
    await asyncio.sleep(0)
    restarted = asyncio.Event()

    async def supervisor() -> float:
        """What the watcher does on a crash: publish the facts, then restart at once."""
        t0 = time.perf_counter()
        for e in crash_events(clock.time()):
            bus.publish(e)
        spent = time.perf_counter() - t0
        restarted.set()
        bus.publish(StateChanged("n1", clock.time(), NodeState.STARTING, NodeState.RUNNING))
        return spent

    spent = await supervisor()
    assert spent < 0.05 and restarted.is_set()
    reqs = await settle(http_rx, 2)  # both channels got the crash; /hang does not answer
    assert sorted(r.path for r in reqs) == ["/hang", "/ok"]
    # the loop stays responsive while the channel hangs
    lag = 0.0
    for _ in range(20):
        t = time.perf_counter()
        await asyncio.sleep(0.01)
        lag = max(lag, time.perf_counter() - t - 0.01)
    assert lag < 0.1
    # the service keeps consuming: a later event reaches the healthy channel
    bus.publish(ResourceSample("n1", clock.time(), {"disk_free_bytes": 1024**3}))
    reqs = await settle(http_rx, 3)
    ok_titles = [r.json()["title"] for r in reqs if r.path == "/ok"]
    assert ok_titles == ["[n1] crashed: cuda oom", "[n1] disk low: 1.0 GiB free (checkout)"]
    await asyncio.sleep(0.6)  # past the 0.5 s deadline of the hanging send
    st = svc.status()["channels"]
    hang = next(v for v in st.values() if "/***" in v["url"] and v["failures"])
    assert hang["url"] == f"json://{http_rx.base}/***?token=***"
    assert (hang["failures"], hang["last_error"]) == (1, "timed out after 0.5 s")
    assert "SECRET1" not in repr(svc.status())
    t = time.perf_counter()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert time.perf_counter() - t < 1.0  # shutdown is not held up by the hanging send or its retry


async def test_quiet_hours_deferred_then_delivered_by_ticker(http_rx: HttpReceiver, state_dir: Path) -> None:  # noqa: F811
    clock, bus = FakeClock(at(2026, 11, 29, 23, 0)), EventBus()
    svc = make(bus, clock, state_dir, [f"json://{http_rx.base}/q"], quiet="22:00-07:00")
    task = asyncio.create_task(svc.run())
    await asyncio.sleep(0)
    bus.publish(StateChanged("n1", clock.time(), NodeState.RUNNING, NodeState.STALLED, "no progress for 1800 s"))
    bus.publish(Incident("n1", clock.time(), Category.PEER_ID_ALREADY_REGISTERED, Recovery.STOP_AND_ALERT,
                         Severity.CRITICAL, "peer", (), "Use another swarm.pem."))
    reqs = await settle(http_rx, 1)
    assert [r.json()["title"] for r in reqs] == ["[n1] needs you: peer id already registered"]
    assert svc.status()["deferred"] == 1
    await clock.run_for(at(2026, 11, 30, 6, 59) - clock.time(), step=600)
    await asyncio.sleep(0.05)
    assert len(http_rx.requests) == 1
    await clock.run_for(65, step=5)  # past 07:00, the first tick after quiet hours end
    reqs = await settle(http_rx, 2)
    assert [r.json()["title"] for r in reqs][1] == "[n1] stalled: no training progress"
    assert svc.status()["deferred"] == 0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_maintenance_pauses_alerts(http_rx: HttpReceiver, state_dir: Path) -> None:  # noqa: F811
    clock, bus = FakeClock(at(2026, 11, 29, 12)), EventBus()
    svc = make(bus, clock, state_dir, [f"json://{http_rx.base}/m"])
    task = asyncio.create_task(svc.run())
    await asyncio.sleep(0)  # "started" (info) goes out before the window
    maintenance.set_window(state_dir, clock.time() + 1800)
    for e in crash_events(clock.time()):
        bus.publish(e)
    bus.publish(StateChanged("n1", clock.time(), NodeState.BACKOFF, NodeState.FATAL, "crash loop"))
    await asyncio.sleep(0.2)
    assert http_rx.requests == []
    maintenance.clear(state_dir)
    for e in crash_events(clock.time() + 1, Category.HF_DOWNLOAD_ERROR):
        bus.publish(e)
    reqs = await settle(http_rx, 1)
    assert [r.json()["title"] for r in reqs] == ["[n1] crashed: hf download error"]
    assert svc.status()["suppressed"]["maintenance"] == 3  # crash, restart, fatal
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_scheduled_digest_with_png_attachment(http_rx: HttpReceiver, state_dir: Path) -> None:  # noqa: F811
    from gswarm.logs.store import Store

    clock, bus = FakeClock(at(2026, 11, 29, 7, 59)), EventBus()
    store = Store(state_dir / "gswarm.db")
    t0 = clock.time() - 3600
    store.write([ProcessStarted("n1", t0, 77, 77, ("python",), "E6", "direct", 1), *crash_events(t0 + 600), ResourceSample("n1", t0, {"cpu_percent": 150.0, "rss_bytes": 2 * 1024**3})])
    store.close()
    svc = make(bus, clock, state_dir, [f"json://{http_rx.base}/digest"], digest="daily 08:00")
    assert svc.next_digest_at == at(2026, 11, 29, 8, 0)
    task = asyncio.create_task(svc.run())
    await clock.run_for(65, step=5)
    reqs = await settle(http_rx, 1, timeout=20)
    body = reqs[0].json()
    assert body["title"] == "[n1] GSwarm daily digest"
    assert "Restarts:  1 — cuda oom ×1 (MTBF 10 min)" in body["message"]
    (att,) = body["attachments"]
    assert att["filename"].startswith("digest-n1-") and att["mimetype"] == "image/png"
    assert base64.b64decode(att["base64"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert svc.next_digest_at == at(2026, 11, 30, 8, 0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_create_service_from_settings(state_dir: Path, fake_clock: FakeClock) -> None:
    rt = SimpleNamespace(settings=load_settings({}, env={}), clock=fake_clock, bus=EventBus(), state_dir=state_dir,
                         node="n1")
    assert create_service(rt) is None
    env = {"GSWARM_NOTIFY_URLS": "ops=json://127.0.0.1:9/a tgram://123456:ABCDEFGH/42", "GSWARM_QUIET_HOURS": "22:00-07:00"}
    rt.settings = load_settings({}, env=env)
    svc = create_service(rt)
    assert svc is not None and svc.name == "notify"
    chans = svc.status()["channels"]
    assert [(c["url"], c["tags"]) for c in chans.values()] == [("json://127.0.0.1:9/***", ["ops"]), ("tgram://***/***", [])]
    assert svc.noise.quiet == (22 * 60, 7 * 60)
    assert "ABCDEFGH" not in repr(svc.status())


@pytest.mark.parametrize("bad", ["nosuch://x", "tgram://short"])
def test_create_service_skips_unknown_url_and_says_so(bad: str, state_dir: Path, fake_clock: FakeClock) -> None:
    from gswarm.errors import ConfigError

    env = {"GSWARM_NOTIFY_URLS": f"{bad} json://127.0.0.1:9/ok"}
    rt = SimpleNamespace(settings=load_settings({}, env=env), clock=fake_clock, bus=EventBus(), state_dir=state_dir,
                         node="n1")
    svc = create_service(rt)
    assert svc is not None and [c["url"] for c in svc.status()["channels"].values()] == ["json://127.0.0.1:9/***"]
    notice = svc.queue.get_nowait()
    assert (notice.kind, notice.severity) == ("notify_config", Severity.WARNING)
    assert "not understood by Apprise" in notice.body and "short" not in notice.body
    rt.settings = load_settings({}, env={"GSWARM_NOTIFY_URLS": bad})
    assert create_service(rt) is None
    with pytest.raises(ConfigError, match="not understood by Apprise"):
        load_channels([bad])


async def test_real_runtime_restarts_while_channel_hangs(tmp_path: Path, http_rx: HttpReceiver,  # noqa: F811
                                                        fake_clock: FakeClock) -> None:
    """Runtime + watcher + notify service from settings: the crash alert hangs, the restart does not wait."""
    import sys

    from gswarm.events import Event
    from gswarm.runtime import Runtime
    from gswarm.supervisor.spec import LaunchSpec

    http_rx.modes["/hang"] = "hang"
    settings = load_settings({"state_dir": tmp_path / "state", "rl_swarm_dir": tmp_path, "backoff_jitter": False,
                              "backoff_initial": 5, "notify_urls": [f"json://{http_rx.base}/hang"]}, env={})
    code = ("import sys; print('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.32 GiB', "
            "file=sys.stderr, flush=True); sys.exit(1)")
    spec = LaunchSpec(argv=(sys.executable, "-c", code), cwd=tmp_path, env={}, mode="direct", generation="E6")
    rt = Runtime(settings, clock=fake_clock, services=("gswarm.notify.service:create_service",),
                 install_signals=False, spec_factory=lambda: spec, drain_timeout=0.5)  # #13: shutdown waits ≤ 0.5 s
    events: list[Event] = []
    rt.bus.subscribe(events.append)
    task = asyncio.ensure_future(rt.run())

    async def until(pred, timeout: float = 10.0) -> float:
        t0 = time.perf_counter()
        while not pred():
            assert time.perf_counter() - t0 < timeout, "condition not reached"
            await asyncio.sleep(0.01)
        return time.perf_counter() - t0

    await until(lambda: any(isinstance(e, RestartScheduled) for e in events))
    await until(lambda: len(http_rx.requests) >= 1)  # the crash alert is in flight and hangs
    assert http_rx.requests[0].json()["title"] == "[default] crashed: cuda oom"
    fake_clock.advance(5.0)
    spent = await until(lambda: sum(isinstance(e, ProcessStarted) for e in events) == 2)
    assert spent < 1.0  # the restart happened at once although the channel still hangs
    notify = next(s for s in rt.services if s.name == "notify")
    chan = next(iter(notify.status()["channels"].values()))
    assert (chan["sent"], chan["last_ok"]) == (0, None)
    rt.request("stop", "test", shutdown=True)
    t0 = time.perf_counter()
    await asyncio.wait_for(task, 10)
    assert time.perf_counter() - t0 < 2.0  # shutdown is held up by the hanging send only for drain_timeout
