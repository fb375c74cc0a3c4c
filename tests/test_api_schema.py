"""Property-based test of the API from its own OpenAPI schema (schemathesis + hypothesis).

Every operation except the endless event stream gets up to 30 generated requests (valid and
invalid parameters, with the bearer token so control/config writes are exercised too)
against a real uvicorn server on 127.0.0.1; no answer may be a server error, every error
must be the documented JSON shape.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from schemathesis import GenerationMode

from gswarm.api.auth import token_path
from gswarm.api.server import ApiService
from gswarm.clock import FakeClock
from tests.test_api_support import T0, LiveRuntime, fill_store, live_source, log_record, settings, write_log

NOW = T0 + 1000


class ThreadServer:
    """The API served from its own event loop in a thread (schemathesis calls are synchronous)."""

    def __init__(self, state_dir) -> None:
        self.state_dir = state_dir
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        rt = LiveRuntime(self.state_dir, settings(), FakeClock(NOW))
        self.svc = ApiService(live_source(rt), "127.0.0.1", 0, graceful=0.5)
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


@pytest.mark.slow
def test_no_server_errors_for_generated_requests(state_dir) -> None:
    fill_store(state_dir, NOW)
    write_log(state_dir, [log_record(i, f"line {i}") for i in range(20)])
    with ThreadServer(state_dir) as server:
        url = server.svc.url
        token = token_path(state_dir).read_text().strip()
        schema = schemathesis.openapi.from_url(url + "/openapi.json")
        ops = [r.ok() for r in schema.get_all_operations()]
        ops = [op for op in ops if not op.path.endswith("/events/stream")]
        assert len(ops) >= 15
        seen: dict[str, set[int]] = {}

        for op in ops:
            @hsettings(max_examples=30, deadline=None, database=None, derandomize=True,
                       suppress_health_check=list(HealthCheck))
            @given(case=st.one_of(op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)))
            def check(case) -> None:
                resp = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
                seen.setdefault(f"{op.method.upper()} {op.path}", set()).add(resp.status_code)
                assert resp.status_code < 500, (case.as_curl_command(), resp.text[:500])
                if resp.status_code >= 400:
                    body = resp.json()
                    assert set(body) == {"error", "detail"} and body["error"], resp.text[:300]

            check()
    assert len(seen) == len(ops)
    print({k: sorted(v) for k, v in sorted(seen.items())})
    assert sum(422 in codes for codes in seen.values()) >= 10  # negative cases reached validation
