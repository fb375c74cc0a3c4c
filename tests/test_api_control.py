"""Control, configuration writes and authentication (401/403/409/422) against a real server."""

from __future__ import annotations

import json
import os
import stat

import pytest

from gswarm.api.auth import is_loopback, load_or_create_token, token_path
from gswarm.api.source import DataSource
from gswarm.clock import FakeClock
from gswarm.events import NodeState
from tests.test_api_support import API_TOKEN, NODE, T0, LiveRuntime, bearer, live_source, fill_store, running_api, settings

NOW = T0 + 1000


@pytest.fixture
def runtime(state_dir):
    fill_store(state_dir, NOW)
    return LiveRuntime(state_dir, settings(), FakeClock(NOW))


@pytest.fixture
def live(runtime):
    return live_source(runtime)


def _token(state_dir) -> str:
    return token_path(state_dir).read_text().strip()


async def test_token_file_is_created_0600_and_reused(state_dir) -> None:
    tok = load_or_create_token(state_dir)
    mode = stat.S_IMODE(os.stat(token_path(state_dir)).st_mode)
    assert mode == 0o600 and len(tok) >= 40 and load_or_create_token(state_dir) == tok
    assert load_or_create_token(state_dir, "configured-token") == "configured-token"


def test_loopback_detection() -> None:
    assert [is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost", "0.0.0.0", "192.168.1.5", "::")] == \
        [True, True, True, True, False, False, False]


@pytest.mark.parametrize("command, state", [("start", NodeState.STOPPED), ("stop", NodeState.RUNNING),
                                            ("restart", NodeState.RUNNING)])
async def test_control_posts_a_command_and_answers_202(live, runtime, command, state) -> None:
    runtime.snap["state"] = state
    async with running_api(live) as (_, c):
        r = await c.post(f"/api/v1/nodes/{NODE}/{command}", headers=bearer(_token(runtime.state_dir)))
    assert r.status_code == 202 and r.json() == {"accepted": True, "node": NODE, "command": command}
    cmd = runtime.commands.get_nowait()
    assert (cmd.kind, cmd.source) == (command, "api") and runtime.commands.empty()


START_409 = "node 'alpha' is {}; start only applies to a STOPPED, FATAL or BACKOFF node (use restart to restart it)"
STOP_409 = "node 'alpha' is already {}; there is nothing to stop"


async def test_control_answers_409_when_the_command_does_not_fit_the_state(live, runtime) -> None:
    expected = {  # (command, state) -> 202 or the 409 message
        **{("start", s): 202 for s in ("STOPPED", "FATAL", "BACKOFF")},
        **{("start", s): START_409.format(s) for s in ("STARTING", "RUNNING", "STALLED", "DEGRADED", "STOPPING")},
        **{("stop", s): STOP_409.format(s) for s in ("STOPPED", "FATAL")},
        **{("stop", s): 202 for s in ("STARTING", "RUNNING", "STALLED", "DEGRADED", "BACKOFF", "STOPPING")},
        **{("restart", s.value): 202 for s in NodeState},
    }
    got = {}
    async with running_api(live) as (_, c):
        h = bearer(_token(runtime.state_dir))
        for command, state in expected:
            runtime.snap["state"] = NodeState(state)
            r = await c.post(f"/api/v1/nodes/{NODE}/{command}", headers=h)
            if r.status_code == 202:
                cmd = runtime.commands.get_nowait()
                got[command, state] = 202 if (cmd.kind, r.json()["command"]) == (command, command) else r.json()
            else:
                assert r.status_code == 409 and r.json()["detail"] == {"state": state, "command": command}
                got[command, state] = r.json()["error"]
            assert runtime.commands.empty()
    assert got == expected


@pytest.mark.parametrize("headers, status", [
    ({}, 401), ({"Authorization": "Basic dXNlcjpwYXNz"}, 401), ({"Authorization": "Bearer"}, 401),
    ({"Authorization": "Bearer wrong-token"}, 403),
])
async def test_control_without_the_right_token_is_refused(live, runtime, headers, status) -> None:
    async with running_api(live) as (_, c):
        r = await c.post(f"/api/v1/nodes/{NODE}/restart", headers=headers)
    assert r.status_code == status and runtime.commands.empty()
    assert set(r.json()) == {"error", "detail"}
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")


async def test_control_unknown_node_404_bad_command_422(live, runtime) -> None:
    async with running_api(live) as (_, c):
        h = bearer(_token(runtime.state_dir))
        unknown = await c.post("/api/v1/nodes/beta/restart", headers=h)
        bad = await c.post(f"/api/v1/nodes/{NODE}/explode", headers=h)
    assert unknown.status_code == 404 and bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "command" and runtime.commands.empty()


async def test_read_only_control_answers_409(state_dir) -> None:
    src = DataSource(state_dir, settings(), clock=FakeClock(NOW))
    async with running_api(src) as (_, c):
        r = await c.post(f"/api/v1/nodes/{NODE}/restart", headers=bearer(_token(state_dir)))
        assert r.status_code == 409 and r.json()["error"] == (
            "`gswarm serve` is read-only; control needs `gswarm run` (or `gswarm stop|start|restart` from a shell)")
        # a gswarm run supervising this state dir (its run/api.json): the 409 points at its dashboard (#19 follow-up;
        # before: "no supervisor running" while one was)
        (state_dir / "run").mkdir(exist_ok=True)
        (state_dir / "run" / "api.json").write_text('{"host": "127.0.0.1", "port": 8787, "pid": 1, "url": "http://127.0.0.1:8787"}')
        r = await c.post(f"/api/v1/nodes/{NODE}/restart", headers=bearer(_token(state_dir)))
    assert r.status_code == 409 and r.json()["error"] == ("`gswarm serve` is read-only; a gswarm run supervises this state "
                                                          "directory: control it at http://127.0.0.1:8787/ (or `gswarm "
                                                          "stop|start|restart`)")


async def test_read_only_config_writes_answer_409_and_save_nothing(state_dir) -> None:
    """`gswarm serve` is read-only: PUT/PATCH of the config are refused like the control commands."""
    from gswarm.api.overrides import override_path

    src = DataSource(state_dir, settings(), clock=FakeClock(NOW))
    async with running_api(src) as (_, c):
        put = await c.put("/api/v1/config", json={"backoff_max": 100}, headers=bearer(_token(state_dir)))
        patch = await c.patch("/api/v1/config", json={"backoff_max": 100}, headers=bearer(_token(state_dir)))
        got = await c.get("/api/v1/config")
    assert put.status_code == patch.status_code == 409
    assert put.json()["error"].startswith("`gswarm serve` is read-only: change options through the API of `gswarm run`")
    assert not override_path(state_dir).exists() and got.status_code == 200


async def test_configured_api_token_is_used(state_dir) -> None:
    src = DataSource(state_dir, settings(api_token=API_TOKEN), clock=FakeClock(NOW))
    async with running_api(src) as (_, c):
        ok = await c.post(f"/api/v1/nodes/{NODE}/stop", headers=bearer(API_TOKEN))
    assert ok.status_code == 409  # authenticated; read-only
    assert not token_path(state_dir).exists()


async def test_live_status_uses_the_snapshot_and_readyz_follows_state(live, runtime) -> None:
    async with running_api(live) as (_, c):
        n = (await c.get("/api/v1/status")).json()["nodes"][0]
        ready = await c.get("/readyz")
        runtime.snap["state"] = NodeState.BACKOFF
        backoff = await c.get("/readyz")
        runtime.snap["state"] = NodeState.RUNNING
        runtime.clock.advance(5000)  # last advance at T0+900 is now 5100 s old; uptime from snapshot still 890
        runtime.snap["uptime"] = 5890.0
        stalled = await c.get("/readyz")
    assert (n["supervised"], n["state"], n["pid"], n["restarts"], n["uptime"]) == (True, "RUNNING", 200, 1, 890.0)
    assert ready.status_code == 200
    assert backoff.status_code == 503 and backoff.json()["reason"] == "node state is BACKOFF"
    assert stalled.status_code == 503 and stalled.json()["reason"] == "no progress for 5100 s (stall timeout 1800 s)"


async def test_non_loopback_bind_needs_the_token_for_reads(state_dir) -> None:
    src = DataSource(state_dir, settings(api_token=API_TOKEN), clock=FakeClock(NOW))
    async with running_api(src, host="0.0.0.0") as (_, c):  # served on 127.0.0.1 for the test, guarded as if public
        anon = [(await c.get(p)).status_code for p in ("/api/v1/status", "/api/v1/events", "/metrics", "/readyz")]
        wrong = (await c.get("/api/v1/status", headers=bearer("nope"))).status_code
        good = (await c.get("/api/v1/status", headers=bearer(API_TOKEN))).status_code
        open_ = [(await c.get(p)).status_code for p in ("/healthz", "/", "/static/app.js")]
    assert anon == [401, 401, 401, 401] and wrong == 403 and good == 200 and open_ == [200, 200, 200]


async def test_config_get_put_patch_and_validation(live, runtime) -> None:
    sd = runtime.state_dir
    async with running_api(live) as (_, c):
        h = bearer(_token(sd))
        got = (await c.get("/api/v1/config")).json()
        anon = await c.put("/api/v1/config", json={"backoff_max": 60})
        put = await c.put("/api/v1/config", json={"backoff_max": "60", "api_port": 9000}, headers=h)
        patch = await c.patch("/api/v1/config", json={"sample_interval": 5}, headers=h)
        bad = await c.patch("/api/v1/config", json={"api_port": 70000}, headers=h)
        unknown = await c.patch("/api/v1/config", json={"colour": "red"}, headers=h)
        secret = await c.patch("/api/v1/config", json={"hf_token": "hf_new_secret_value"}, headers=h)
        notjson = await c.put("/api/v1/config", content=b"[1,2]", headers={**h, "Content-Type": "application/json"})
    assert got["effective"]["hf_token"] == "***" and got["effective"]["node_name"] == NODE and got["override"] == {}
    assert anon.status_code == 401
    assert put.status_code == 200 and put.json()["override"] == {"backoff_max": 60.0, "api_port": 9000}
    assert patch.json()["override"] == {"backoff_max": 60.0, "api_port": 9000, "sample_interval": 5.0}
    assert patch.json()["effective"]["sample_interval"] == 10.0  # applies on the next start
    for resp, field in ((bad, "api_port"), (unknown, "colour"), (secret, "hf_token")):
        assert resp.status_code == 422 and resp.json()["detail"][0]["field"] == field and field in resp.json()["error"]
    assert notjson.status_code == 422
    path = sd / "config_override.json"
    assert json.loads(path.read_text()) == {"api_port": 9000, "backoff_max": 60.0, "sample_interval": 5.0}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
