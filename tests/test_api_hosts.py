"""DNS rebinding: on a loopback bind only loopback ``Host`` names are served (real uvicorn on 127.0.0.1)."""

from __future__ import annotations

import asyncio

import pytest

from gswarm.api.hosts import host_name, loopback_host
from gswarm.api.source import DataSource
from gswarm.clock import FakeClock
from tests.test_api_support import API_TOKEN, T0, bearer, fill_store, running_api, settings

NOW = T0 + 1000
REFUSED = {"error": "this GSwarm API listens on a loopback address and only answers requests for localhost, "
                    "127.0.0.1 or [::1]; open it by one of those names",
           "detail": {"field": "Host", "value": "evil.example"}}


@pytest.fixture
def source(state_dir):
    fill_store(state_dir, NOW)
    return DataSource(state_dir, settings(), clock=FakeClock(NOW))


def test_host_names() -> None:
    cases = {"127.0.0.1:8787": True, "127.0.0.1": True, "127.5.6.7:1": True, "localhost": True, "LOCALHOST:80": True,
             "localhost.": True, "[::1]:8787": True, "[::1]": True, "::1": True, "evil.example": False,
             "evil.example:8787": False, "127.0.0.1.nip.io": False, "localhost.evil.example": False, "": False,
             "0.0.0.0:8787": False, "[::]:80": False, "192.168.1.5": False, "[fe80::1]:80": False}
    assert {h: loopback_host(h) for h in cases} == cases
    assert [host_name(h) for h in ("[::1]:80", "a.b:80", "::1", "name")] == ["::1", "a.b", "::1", "name"]


async def test_loopback_bind_refuses_foreign_host_headers(source) -> None:
    paths = ("/api/v1/status", "/api/v1/nodes/alpha", "/api/v1/logs", "/metrics", "/readyz", "/healthz", "/",
             "/static/app.js", "/openapi.json")
    async with running_api(source) as (svc, c):
        evil = [await c.get(p, headers={"Host": "evil.example"}) for p in paths]
        evil_port = await c.get("/api/v1/status", headers={"Host": f"evil.example:{svc.port}"})
        ok = {h: (await c.get("/api/v1/status", headers={"Host": h})).status_code
              for h in (f"127.0.0.1:{svc.port}", "localhost", f"localhost:{svc.port}", "[::1]:8787", "::1", "127.0.0.1")}
    assert [r.status_code for r in evil] == [421] * len(paths)
    assert all(r.json() == REFUSED and r.headers["content-type"] == "application/json" for r in evil)
    assert evil_port.status_code == 421 and evil_port.json()["detail"]["value"] == f"evil.example:{svc.port}"
    assert ok == dict.fromkeys(ok, 200)


async def test_request_without_host_header_is_served(source) -> None:
    """HTTP/1.0 without Host (command-line tools; browsers always send Host) passes."""
    async with running_api(source) as (svc, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", svc.port)
        writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
        await writer.drain()
        head = (await asyncio.wait_for(reader.read(), 10)).split(b"\r\n", 1)[0]
        writer.close()
    assert head == b"HTTP/1.1 200 OK"


async def test_non_loopback_bind_does_not_check_host_the_token_guards(state_dir) -> None:
    src = DataSource(state_dir, settings(api_token=API_TOKEN), clock=FakeClock(NOW))
    async with running_api(src, host="0.0.0.0") as (_, c):  # served on 127.0.0.1, configured as if public
        named = await c.get("/api/v1/status", headers={"Host": "gswarm.example:8787", **bearer(API_TOKEN)})
        anon = await c.get("/api/v1/status", headers={"Host": "gswarm.example:8787"})
    assert (named.status_code, anon.status_code) == (200, 401)
