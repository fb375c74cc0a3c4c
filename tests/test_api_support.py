"""Shared helpers of the API tests (imported by tests/test_api_*.py; no tests here).

``fill_store`` writes a known history through the real store writer; ``LiveRuntime``
is a stand-in with the Runtime contract (settings, clock, bus, state_dir, node,
commands, snapshot()) used until the real runtime is exercised end to end in the
browser test; ``running_api`` serves the app with a real uvicorn on 127.0.0.1:0.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import dataclasses
import json
from pathlib import Path
from typing import Any, AsyncIterator

import httpx

from gswarm import events as ev
from gswarm.api.server import ApiService
from gswarm.api.source import DataSource
from gswarm.clock import FakeClock
from gswarm.config import Settings
from gswarm.logs.store import Store

T0 = 1_700_000_000.0  # FakeClock start
NODE = "alpha"
HF = "hf_TOPSECRETtoken123456789"
API_TOKEN = "api-TOKEN-abcdefghijklmnop-0123456789"
NOTIFY = "tgram://123456789:AAHsecretBOTtokenXYZ987654/555000111"
SECRETS = (HF, API_TOKEN, "AAHsecretBOTtokenXYZ987654", "123456789:AAHsecret")


def settings(**kw: Any) -> Settings:
    """Settings for node ``alpha`` with every kind of secret set."""
    base = dict(node_name=NODE, hf_token=HF, notify_urls=[NOTIFY], extra_env={"MY_API_KEY": "k-secret-value-42"})
    base.update(kw)
    return Settings.model_validate(base)


def fill_store(state_dir: Path, now: float = T0 + 1000) -> None:
    """A history of node ``alpha`` (times relative to ``now``) and one event of node ``beta``."""
    t = now - 1000
    batch: list[ev.Event] = [
        ev.ProcessStarted(NODE, t + 0, 100, 100, ("python", "-m", "rgym"), "E4", "direct", 1),
        ev.StateChanged(NODE, t + 1, ev.NodeState.STARTING, ev.NodeState.RUNNING, "started"),
        ev.Incident(NODE, t + 100, ev.Category.CUDA_OOM, ev.Recovery.REDUCE_MODEL, ev.Severity.ERROR, "cuda-oom",
                    ("torch.OutOfMemoryError: CUDA out of memory",), "Use a smaller model (--model-size 0.5)."),
        ev.ProcessExited(NODE, t + 101, 100, 1, None, 101.0, 1),
        ev.RestartScheduled(NODE, t + 102, 5.0, ev.Category.CUDA_OOM, ev.Recovery.REDUCE_MODEL, 1, "restart in 5 s"),
        ev.StateChanged(NODE, t + 102, ev.NodeState.RUNNING, ev.NodeState.BACKOFF, "cuda_oom"),
        ev.ProcessStarted(NODE, t + 110, 200, 200, ("python", "-m", "rgym"), "E4", "direct", 2),
        ev.StateChanged(NODE, t + 111, ev.NodeState.BACKOFF, ev.NodeState.RUNNING, "started"),
        ev.ProgressUpdate(NODE, t + 500, "round", round=7, stage=0, round_total=None, animal="quick shy owl", advanced=True),
        ev.ProgressUpdate(NODE, t + 900, "stage", round=7, stage=2, advanced=True),
        ev.ProgressUpdate(NODE, t + 950, "waiting", detail="Already finished round 7"),
        ev.StateChanged("beta", t + 5, ev.NodeState.STOPPED, ev.NodeState.STARTING, ""),
    ]
    # samples: every 100 s from t+100 to t+1000 (10 samples): cpu = 10*i, rss = 1000*i, one GPU util 5*i
    for i in range(1, 11):
        data = {"cpu_percent": 10.0 * i, "rss_bytes": 1000 * i, "host_mem_percent": 50.0,
                "gpu": [{"index": 0, "utilization_percent": 5.0 * i, "memory_used_bytes": i, "memory_total_bytes": 10}]}
        batch.append(ev.ResourceSample(NODE, t + 100 * i, data))
    store = Store(state_dir / "gswarm.db", now=now)
    store.write(sorted(batch, key=lambda e: e.ts))
    store.close()


def write_log(state_dir: Path, records: list[dict[str, Any]], name: str = "gswarm.jsonl") -> Path:
    """Append JSON-lines records to ``logs/<name>``."""
    path = state_dir / "logs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
    return path


def log_record(i: int, message: str, node: str = NODE, level: str = "info") -> dict[str, Any]:
    return {"ts": f"2023-11-14T22:{i:02d}:00Z", "ts_unix": T0 + i, "node": node, "level": level,
            "category": "output", "message": message, "pid": 100, "kind": "output"}


try:
    from gswarm.runtime import Command
except ImportError:  # the runtime lands in parallel; same shape as its Command
    @dataclasses.dataclass(frozen=True)
    class Command:  # type: ignore[no-redef]
        kind: str
        source: str


def live_source(rt: "LiveRuntime") -> DataSource:
    """A live DataSource over ``rt``."""
    return DataSource(rt.state_dir, rt.settings, runtime=rt, command_type=Command)


class LiveRuntime:
    """The Runtime contract with a settable snapshot (the supervisor itself is tested elsewhere)."""

    def __init__(self, state_dir: Path, settings_: Settings, clock: FakeClock) -> None:
        self.settings, self.clock, self.state_dir = settings_, clock, state_dir
        self.bus = ev.EventBus()
        self.node = settings_.node_name
        self.commands: asyncio.Queue[Any] = asyncio.Queue()
        self.spec = None
        self.snap: dict[str, Any] = {
            "node": self.node, "state": ev.NodeState.RUNNING, "pid": 200, "pgid": 200, "generation": "E4",
            "mode": "direct", "started_at": T0 + 110, "uptime": 890.0, "restarts": 1,
            "last_exit": {"exit_code": 1, "signal": None, "ts": T0 + 101}, "next_restart_at": None,
            "fatal_reason": None, "degraded": False}

    def snapshot(self) -> dict[str, Any]:
        return dict(self.snap)


@contextlib.asynccontextmanager
async def running_api(source: DataSource, **app_options: Any) -> AsyncIterator[tuple[ApiService, httpx.AsyncClient]]:
    """Serve ``source`` on 127.0.0.1:<free port>; yields the service and a client for it."""
    svc = ApiService(source, "127.0.0.1", 0, graceful=0.5, app_options=app_options or None)
    task = asyncio.create_task(svc.run())
    async with httpx.AsyncClient(base_url=svc.url, timeout=10.0) as client:
        for _ in range(100):
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/healthz")).status_code == 200:
                    break
            await asyncio.sleep(0.02)
        try:
            yield svc, client
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class ThreadServer:
    """The API served from its own event loop in a thread (schemathesis calls are synchronous)."""

    def __init__(self, state_dir: Path, live: bool = False, clock: Any = None, **app_options: Any) -> None:
        self.state_dir, self.live, self.clock, self.app_options = state_dir, live, clock, app_options
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        if self.live:
            self.runtime = LiveRuntime(self.state_dir, settings(), self.clock or FakeClock())
            source = live_source(self.runtime)
        else:
            source = DataSource(self.state_dir, settings(), clock=self.clock)
        self.svc = ApiService(source, "127.0.0.1", 0, graceful=0.5, app_options=self.app_options or None)
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.ensure_future(self.svc.run())
        self.ready.set()
        try:
            await self.task
        except asyncio.CancelledError:
            pass

    def __enter__(self) -> "ThreadServer":
        self.thread.start()
        assert self.ready.wait(10)
        for _ in range(200):
            try:
                httpx.get(self.svc.url + "/healthz", timeout=2)
                break
            except httpx.TransportError:
                threading.Event().wait(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(15)
