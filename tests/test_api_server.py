"""The embedded server: port 0, api.json, port conflicts, clean cancel; ``gswarm serve`` as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from gswarm.api.server import ApiService, create_service
from gswarm.api.source import DataSource
from gswarm.clock import FakeClock
from gswarm.errors import ConfigError
from tests.test_api_support import NODE, T0, LiveRuntime, fill_store, settings

NOW = T0 + 1000


async def test_port_zero_api_file_and_clean_cancel(state_dir) -> None:
    svc = ApiService(DataSource(state_dir, settings(), clock=FakeClock(NOW)), "127.0.0.1", 0)
    assert svc.port > 0 and svc.url == f"http://127.0.0.1:{svc.port}"
    task = asyncio.create_task(svc.run())
    for _ in range(100):
        if svc.api_file.exists() and svc.server.started:
            break
        await asyncio.sleep(0.02)
    info = json.loads(svc.api_file.read_text())
    assert info == {"host": "127.0.0.1", "port": svc.port, "pid": os.getpid(), "url": svc.url}
    async with httpx.AsyncClient() as c:
        assert (await c.get(f"{svc.url}/healthz")).status_code == 200
        async with c.stream("GET", f"{svc.url}/api/v1/events/stream") as stream:  # an open stream must not block stop
            t0 = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - t0 < 1.5
            del stream
    assert not svc.api_file.exists()
    with pytest.raises(httpx.TransportError):
        async with httpx.AsyncClient() as c:
            await c.get(f"{svc.url}/healthz")


async def test_embedded_server_leaves_signal_handlers_alone(state_dir) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    svc = ApiService(DataSource(state_dir, settings(), clock=FakeClock(NOW)), "127.0.0.1", 0)
    task = asyncio.create_task(svc.run())
    for _ in range(100):
        if svc.server.started:
            break
        await asyncio.sleep(0.02)
    during = {sig: signal.getsignal(sig) for sig in before}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert svc.server.started and during == before


async def test_port_in_use_is_a_config_error_naming_api_port(state_dir) -> None:
    first = ApiService(DataSource(state_dir, settings()), "127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match="api_port"):
            ApiService(DataSource(state_dir, settings()), "127.0.0.1", first.port)
    finally:
        first.sock.close()


def test_create_service_follows_api_enabled(state_dir) -> None:
    off = LiveRuntime(state_dir, settings(api_enabled=False), FakeClock(NOW))
    assert create_service(off) is None
    on = LiveRuntime(state_dir, settings(api_port=0), FakeClock(NOW))
    svc = create_service(on)
    try:
        assert svc.name == "api" and svc.source.live and svc.source.node == NODE and svc.port > 0
    finally:
        svc.sock.close()


@pytest.mark.slow
def test_gswarm_serve_is_read_only_and_stops_on_sigterm(state_dir) -> None:
    fill_store(state_dir, time.time())
    proc = subprocess.Popen([sys.executable, "-m", "gswarm", "serve", "--port", "0", "--state-dir", str(state_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "GSWARM_NODE_NAME": NODE})
    try:
        api = state_dir / "run" / "api.json"
        deadline = time.monotonic() + 30
        while not api.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        url = json.loads(api.read_text())["url"]
        token = (state_dir / "api_token").read_text().strip()
        with httpx.Client(base_url=url, timeout=10) as c:
            status = c.get("/api/v1/status").json()
            control = c.post(f"/api/v1/nodes/{NODE}/restart", headers={"Authorization": f"Bearer {token}"})
        assert status["source"] == "store" and status["nodes"][0]["pid"] == 200
        assert control.status_code == 409
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "read-only" in out and not (state_dir / "run" / "api.json").exists()
