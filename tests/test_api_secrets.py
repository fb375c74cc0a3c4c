"""No secret in any answer: HF token, API token (configured or generated), notify URL credentials, secret env."""

from __future__ import annotations

import pytest

from gswarm import events as ev
from gswarm.api.auth import token_path
from gswarm.logs.store import Store
from gswarm.clock import FakeClock
from tests.test_api_support import API_TOKEN, HF, NODE, SECRETS, T0, LiveRuntime, bearer, fill_store, live_source, log_record, running_api, settings, write_log

NOW = T0 + 1000
EXTRA = ("k-secret-value-42",)


@pytest.mark.parametrize("configured", [True, False])
async def test_no_endpoint_answer_contains_a_secret(state_dir, configured) -> None:
    fill_store(state_dir, NOW)
    store = Store(state_dir / "gswarm.db")  # an E2-style argv carrying the HF token reaches the store
    store.write([ev.ProcessStarted(NODE, NOW - 1, 300, 300, ("python", "-m", "x", "--hf_token", HF), "E2", "direct", 3)])
    store.close()
    write_log(state_dir, [log_record(i, f"line {i}") for i in range(5)])
    s = settings(api_token=API_TOKEN) if configured else settings()
    rt = LiveRuntime(state_dir, s, FakeClock(NOW))
    async with running_api(live_source(rt)) as (_, c):
        token = API_TOKEN if configured else token_path(state_dir).read_text().strip()
        secrets = (*SECRETS, *EXTRA, token)
        spec = (await c.get("/openapi.json")).json()
        bodies = {}
        for path, ops in spec["paths"].items():
            if "get" in ops and "stream" not in path:
                url = path.replace("{node}", NODE)
                bodies[url] = (await c.get(url)).text
                bodies[url + "?auth"] = (await c.get(url, headers=bearer(token))).text
        for url in ("/", "/docs", "/static/app.js", "/static/style.css", "/healthz", "/nope",
                    "/api/v1/events?limit=0", "/api/v1/logs?grep=(", "/api/v1/nodes/zz"):
            bodies[url] = (await c.get(url)).text
        bodies["put-config"] = (await c.put("/api/v1/config", json={"notify_urls": [f"tgram://{API_TOKEN}/1"],
                                                                    "extra_env": {"X_TOKEN": "tok-tok-tok-tok"}},
                                            headers=bearer(token))).text
        bodies["get-config-after"] = (await c.get("/api/v1/config")).text
        bodies["bad-secret"] = (await c.patch("/api/v1/config", json={"hf_token": "hf_NEWsecret_0987654321"},
                                              headers=bearer(token))).text
        bodies["401"] = (await c.post(f"/api/v1/nodes/{NODE}/restart")).text
        bodies["403"] = (await c.post(f"/api/v1/nodes/{NODE}/restart", headers=bearer(token + "x"))).text
        bodies["202"] = (await c.post(f"/api/v1/nodes/{NODE}/restart", headers=bearer(token))).text
    assert '"--hf_token","***"' in bodies["/api/v1/events"]
    assert len(bodies) > 25
    leaks = [(url, sec) for url, body in bodies.items() for sec in (*secrets, "tok-tok-tok-tok", "hf_NEWsecret")
             if sec in body]
    assert leaks == []
    assert '"hf_token":"***"' in bodies["/api/v1/config"] and "tgram://***" in bodies["/api/v1/config"]
    assert '"MY_API_KEY":"***"' in bodies["/api/v1/config"]
