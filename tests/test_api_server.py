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
from tests.test_api_support import NODE, T0, LiveRuntime, fill_store, live_source, settings

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
    assert svc.api_file.stat().st_mode & 0o777 == 0o600  # like every file in the state dir
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


async def _started(svc: ApiService) -> asyncio.Task:
    task = asyncio.create_task(svc.run())
    for _ in range(200):
        if svc.api_file.exists() and svc.server.started:
            break
        await asyncio.sleep(0.02)
    return task


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_read_only_server_never_touches_the_live_api_file(state_dir) -> None:
    live = ApiService(live_source(LiveRuntime(state_dir, settings(), FakeClock(NOW))), "127.0.0.1", 0)
    live_task = await _started(live)
    api = state_dir / "run" / "api.json"
    live_info = api.read_text()
    assert live.api_file == api and json.loads(live_info)["port"] == live.port
    ro = ApiService(DataSource(state_dir, settings(), clock=FakeClock(NOW)), "127.0.0.1", 0)
    ro_task = await _started(ro)
    assert ro.api_file == state_dir / "run" / "serve.json"
    assert json.loads(ro.api_file.read_text()) == {"host": "127.0.0.1", "port": ro.port, "pid": os.getpid(), "url": ro.url}
    assert api.read_text() == live_info  # not overwritten
    await _cancel(ro_task)
    assert api.read_text() == live_info and not ro.api_file.exists()  # not removed either
    await _cancel(live_task)
    assert not api.exists()


async def test_api_file_is_removed_only_by_its_writer(state_dir) -> None:
    live = ApiService(live_source(LiveRuntime(state_dir, settings(), FakeClock(NOW))), "127.0.0.1", 0)
    task = await _started(live)
    other = {"host": "127.0.0.1", "port": 9, "pid": os.getppid(), "url": "http://127.0.0.1:9"}
    live.api_file.write_text(json.dumps(other))  # another supervisor took over the file
    await _cancel(task)
    assert json.loads(live.api_file.read_text()) == other
    same_pid = {**other, "pid": os.getpid()}  # same process, another server's port
    live.api_file.write_text(json.dumps(same_pid))
    live._remove_api_file()
    assert json.loads(live.api_file.read_text()) == same_pid


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
        with pytest.raises(ConfigError) as exc:
            ApiService(DataSource(state_dir, settings()), "127.0.0.1", first.port)
        assert str(exc.value) == (f"port {first.port} on 127.0.0.1 is not available (Address already in use); "
                                  "choose another with --api-port (0 = any free port)")
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
    api = state_dir / "run" / "api.json"  # a running supervisor's file (the test process stands in for it)
    api.parent.mkdir()
    live_info = json.dumps({"host": "127.0.0.1", "port": 8787, "pid": os.getpid(), "url": "http://127.0.0.1:8787"})
    api.write_text(live_info)
    proc = subprocess.Popen([sys.executable, "-m", "gswarm", "serve", "--port", "0", "--state-dir", str(state_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "GSWARM_NODE_NAME": NODE})
    try:
        serve = state_dir / "run" / "serve.json"
        deadline = time.monotonic() + 30
        while not serve.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        url = json.loads(serve.read_text())["url"]
        assert api.read_text() == live_info
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
    assert "read-only" in out and f"{url}/openapi.json" in out and not serve.exists()
    assert api.read_text() == live_info  # the supervisor's address survives the serve


async def test_server_wakes_once_a_second_and_at_once_on_stop(state_dir, monkeypatch) -> None:
    """uvicorn's 10 Hz idle loop is replaced by a 1 s one (bench/idle.py: most of an idle gswarm run's CPU);
    a stop must still be immediate: with a 30 s tick the stop would wait for it without the wake-up."""
    from gswarm.api.server import EmbeddedServer

    assert EmbeddedServer.TICK == 1.0
    monkeypatch.setattr(EmbeddedServer, "TICK", 30.0)
    svc = ApiService(DataSource(state_dir, settings(), clock=FakeClock(NOW)), "127.0.0.1", 0)
    task = await _started(svc)
    async with httpx.AsyncClient() as c:
        r = await c.get(f"{svc.url}/healthz")
        assert r.status_code == 200 and r.headers["date"].endswith(" GMT")  # the header on_tick refreshes
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)  # a tick of 30 s: only the wake-up ends it in time
    assert not svc.api_file.exists()
