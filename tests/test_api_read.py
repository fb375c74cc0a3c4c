"""Read endpoints against a real uvicorn server on 127.0.0.1 and a real SQLite store."""

from __future__ import annotations

import pytest

from gswarm.api.source import DataSource
from gswarm.clock import FakeClock
from tests.test_api_support import NODE, T0, fill_store, log_record, running_api, settings, write_log

NOW = T0 + 1000


@pytest.fixture
def source(state_dir):
    fill_store(state_dir, NOW)
    return DataSource(state_dir, settings(), clock=FakeClock(NOW))


async def test_status_read_only_derives_the_node_from_the_store(source) -> None:
    async with running_api(source) as (_, c):
        body = (await c.get("/api/v1/status")).json()
    assert body["source"] == "store" and body["now"] == NOW
    assert [n["node"] for n in body["nodes"]] == [NODE, "beta"]
    n = body["nodes"][0]
    assert (n["state"], n["pid"], n["generation"], n["restarts"], n["supervised"]) == ("RUNNING", 200, "E4", 1, False)
    assert n["started_at"] == T0 + 110 and n["uptime"] == pytest.approx(890.0)
    assert n["last_exit"] == {"exit_code": 1, "signal": None, "ts": T0 + 101, "requested": None}
    assert (n["progress"]["round"], n["progress"]["stage"], n["progress"]["animal"]) == (7, 2, "quick shy owl")
    assert n["last_advance"] == T0 + 900
    assert n["sample"]["cpu_percent"] == 100.0 and n["last_incident"]["category"] == "cuda_oom"


async def test_nodes_and_one_node_and_unknown_404(source) -> None:
    async with running_api(source) as (_, c):
        assert [n["node"] for n in (await c.get("/api/v1/nodes")).json()] == [NODE, "beta"]
        assert (await c.get("/api/v1/nodes/beta")).json()["state"] == "STARTING"
        r = await c.get("/api/v1/nodes/nobody")
    assert r.status_code == 404 and "nobody" in r.json()["error"]


async def test_events_filters_and_pagination(source) -> None:
    async with running_api(source) as (_, c):
        states = (await c.get("/api/v1/events", params={"node": NODE, "kind": "state"})).json()
        page = (await c.get("/api/v1/events", params={"node": NODE, "kind": "state", "limit": 1, "offset": 1})).json()
        ranged = (await c.get("/api/v1/events", params={"node": NODE, "since": T0 + 100, "until": T0 + 105})).json()
    assert [e["state"] for e in states["items"]] == ["RUNNING", "BACKOFF", "RUNNING"]  # newest first
    assert page["count"] == 1 and page["items"][0]["state"] == "BACKOFF" and page["offset"] == 1
    assert [e["kind"] for e in ranged["items"]] == ["state", "restart", "exit"]
    assert ranged["items"][1]["data"]["cause"] == "cuda_oom"


@pytest.mark.parametrize("params, field", [
    ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"offset": -1}, "offset"), ({"kind": "bogus"}, "kind"),
    ({"since": 10, "until": 5}, "since"), ({"since": "soon"}, "since"), ({"until": "nan"}, "until"),
])
async def test_events_invalid_input_names_the_field(source, params, field) -> None:
    async with running_api(source) as (_, c):
        r = await c.get("/api/v1/events", params=params)
    assert r.status_code == 422
    body = r.json()
    assert body["detail"][0]["field"] == field and field in body["error"]


async def test_a_duration_for_since_is_told_that_moments_are_unix_seconds(source) -> None:
    """Newcomer trial: ``/api/v1/logs?since=10s`` gave only "Input should be a valid number" (the CLI's --since
    takes durations); the answer now says what the API expects."""
    async with running_api(source) as (_, c):
        r = await c.get("/api/v1/logs", params={"since": "10s"})
        inf = await c.get("/api/v1/events", params={"until": "inf"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["message"] == ("Input should be a valid number, unable to parse string as a number; "
                                                "since and until are Unix seconds (e.g. 1765000000.5), not durations "
                                                "or ISO times")
    assert inf.status_code == 422 and "Unix seconds" in inf.json()["detail"][0]["message"]


async def test_incidents_and_runs_and_progress(source) -> None:
    async with running_api(source) as (_, c):
        inc = (await c.get("/api/v1/incidents", params={"category": "cuda_oom"})).json()["items"]
        none = (await c.get("/api/v1/incidents", params={"category": "identity_taken"})).json()
        bad = await c.get("/api/v1/incidents", params={"category": "nope"})
        runs = (await c.get("/api/v1/runs", params={"node": NODE})).json()["items"]
        adv = (await c.get("/api/v1/progress", params={"node": NODE, "advanced": True})).json()["items"]
    assert inc[0]["advice"] == "Use a smaller model (--model-size 0.5)."
    assert inc[0]["evidence"] == ["torch.OutOfMemoryError: CUDA out of memory"]
    assert none["count"] == 0 and bad.status_code == 422 and bad.json()["detail"][0]["field"] == "category"
    assert [(r["pid"], r["exit_code"], r["cause"]) for r in runs] == [(200, None, None), (100, 1, "cuda_oom")]
    assert [p["stage"] for p in adv] == [2, 0]


async def test_metrics_are_bucketed_averages_and_maxima(source) -> None:
    # samples at T0+100*i (i=1..10), cpu 10*i; 4 buckets of 250 s over [T0, T0+1000]
    async with running_api(source) as (_, c):
        r = await c.get(f"/api/v1/nodes/{NODE}/metrics", params={"since": T0, "until": NOW, "points": 4})
        default = (await c.get(f"/api/v1/nodes/{NODE}/metrics", params={"points": 2})).json()
        bad = await c.get(f"/api/v1/nodes/{NODE}/metrics", params={"since": NOW, "until": T0})
        unknown = await c.get("/api/v1/nodes/zz/metrics")
        toomany = await c.get(f"/api/v1/nodes/{NODE}/metrics", params={"points": 5000})
    m = r.json()
    assert m["step"] == 250.0 and m["samples"] == 10 and m["ts"] == [T0, T0 + 250, T0 + 500, T0 + 750]
    # buckets: [100,200] [300,400] [500,600,700] [800,900,1000(clamped into last)]
    assert m["series"]["cpu_percent"] == [15.0, 35.0, 60.0, 90.0]
    assert m["series"]["cpu_percent_max"] == [20.0, 40.0, 70.0, 100.0]
    assert m["series"]["gpu_util_percent"] == [7.5, 17.5, 30.0, 45.0]
    assert m["series"]["gpu_mem_percent"][0] == 15.0 and m["series"]["swap_percent"] == [None] * 4
    assert default["until"] == NOW and default["since"] == NOW - 3600 and default["samples"] == 10
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "since"
    assert unknown.status_code == 404
    assert toomany.status_code == 422 and toomany.json()["detail"][0]["field"] == "points"


async def test_analytics_answers_for_a_known_node(source) -> None:
    async with running_api(source) as (_, c):
        r = await c.get(f"/api/v1/nodes/{NODE}/analytics", params={"since": T0, "until": NOW})
        unknown = await c.get("/api/v1/nodes/zz/analytics")
    a = r.json()
    assert r.status_code == 200 and a["node"] == NODE and (a["since"], a["until"]) == (T0, NOW)
    assert a["restarts_by_cause"] == {"cuda_oom": 1} if "restarts_by_cause" in a else True
    assert unknown.status_code == 404


async def test_log_tail_grep_and_rotated_files(source, state_dir) -> None:
    import gzip

    oldest = state_dir / "logs" / "gswarm.jsonl.20231114T200000Z.gz"
    write_log(state_dir, [log_record(i, f"gz line {i}") for i in range(2)], "plain.tmp")
    oldest.write_bytes(gzip.compress((state_dir / "logs" / "plain.tmp").read_bytes()))
    (state_dir / "logs" / "plain.tmp").unlink()
    write_log(state_dir, [log_record(i, f"old line {i}") for i in range(3)], "gswarm.jsonl.20231114T210000Z")
    write_log(state_dir, [log_record(10 + i, f"line {i}", level="error" if i == 4 else "info") for i in range(5)])
    async with running_api(source) as (_, c):
        tail = (await c.get("/api/v1/logs", params={"tail": 3})).json()
        across = (await c.get("/api/v1/logs", params={"tail": 9})).json()
        grep = (await c.get("/api/v1/logs", params={"grep": "D LINE 1"})).json()  # plain substring, any case
        err = (await c.get("/api/v1/logs", params={"level": "error"})).json()
        literal = await c.get("/api/v1/logs", params={"grep": "(unclosed"})  # not a regex: no match, no error
        toolong = await c.get("/api/v1/logs", params={"tail": 0})
    assert [x["message"] for x in tail["lines"]] == ["line 2", "line 3", "line 4"]
    assert [x["message"] for x in across["lines"]] == \
        ["gz line 1", "old line 0", "old line 1", "old line 2", "line 0", "line 1", "line 2", "line 3", "line 4"]
    assert [x["message"] for x in grep["lines"]] == ["old line 1"]
    assert [x["message"] for x in err["lines"]] == ["line 4"]
    assert tail["files"] == ["gswarm.jsonl", "gswarm.jsonl.20231114T210000Z", "gswarm.jsonl.20231114T200000Z.gz"]
    assert literal.status_code == 200 and literal.json()["lines"] == []
    assert toolong.status_code == 422 and toolong.json()["detail"][0]["field"] == "tail"


async def test_log_tail_names_an_unknown_parameter(source, state_dir) -> None:
    """``?n=2`` was ignored and answered with the default 200 lines; now a 422 names ``n`` and the
    parameter meant (``tail``), and the known ones still work."""
    write_log(state_dir, [log_record(i, f"line {i}") for i in range(5)])
    async with running_api(source) as (_, c):
        bad = await c.get("/api/v1/logs", params={"n": 2})
        odd = await c.get("/api/v1/logs", params={"tail": 2, "colour": "red"})
        good = await c.get("/api/v1/logs", params={"tail": 2, "node": NODE})
    assert bad.status_code == 422
    assert bad.json()["detail"] == [{"field": "n", "in": "query", "message": "unknown parameter (known: tail, grep, "
                                     "node, level, category, since, until); use tail"}]
    assert odd.status_code == 422 and odd.json()["error"] == ("invalid colour: unknown parameter (known: tail, grep, "
                                                              "node, level, category, since, until)")
    assert good.status_code == 200 and len(good.json()["lines"]) <= 2


async def test_probes_and_prometheus_text(source) -> None:
    async with running_api(source) as (_, c):
        health = await c.get("/healthz")
        ready = await c.get("/readyz")
        prom = await c.get("/metrics")
    assert health.json()["ok"] is True
    # read-only: state RUNNING, last advance 100 s ago, stall timeout 1800 s
    assert ready.status_code == 200 and ready.json()["reason"] == "running; last progress 100 s ago"
    assert prom.headers["content-type"].startswith("text/plain")
    assert 'gswarm_node_up{node="alpha"} 1.0' in prom.text
    assert 'gswarm_node_cpu_percent{node="alpha"} 100.0' in prom.text


async def test_unknown_path_is_a_json_404_and_docs_exist(source) -> None:
    async with running_api(source) as (_, c):
        r = await c.get("/api/v1/nothing-here")
        docs = await c.get("/docs")
        spec = (await c.get("/openapi.json")).json()
        page = await c.get("/")
        js = await c.get("/static/app.js")
    assert r.status_code == 404 and set(r.json()) == {"error", "detail"}
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "/api/v1/nodes/{node}/metrics" in spec["paths"] and "/api/v1/events/stream" in spec["paths"]
    assert page.status_code == 200 and "<html" in page.text.lower() and js.status_code == 200


async def test_cors_is_off_by_default(source) -> None:
    async with running_api(source) as (_, c):
        r = await c.get("/api/v1/status", headers={"Origin": "http://evil.example"})
        pre = await c.options("/api/v1/status", headers={"Origin": "http://evil.example",
                                                         "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-origin" not in pre.headers


async def test_empty_state_dir_answers_without_a_database(state_dir) -> None:
    src = DataSource(state_dir, settings(), clock=FakeClock(NOW))
    async with running_api(src) as (_, c):
        status = (await c.get("/api/v1/status")).json()
        events = (await c.get("/api/v1/events")).json()
        ready = await c.get("/readyz")
    assert [n["node"] for n in status["nodes"]] == [NODE] and status["nodes"][0]["state"] is None
    assert events["count"] == 0
    assert ready.status_code == 503 and ready.json()["reason"] == "no supervisor state recorded for this node"


async def test_maintenance_window_in_status_and_nodes(source, state_dir) -> None:
    from gswarm.maintenance import set_window

    async with running_api(source) as (_, c):
        before = (await c.get("/api/v1/status")).json()
        set_window(state_dir, NOW + 600, "swapping the GPU")
        status = (await c.get("/api/v1/status")).json()
        node = (await c.get(f"/api/v1/nodes/{NODE}")).json()
        nodes = (await c.get("/api/v1/nodes")).json()
        set_window(state_dir, NOW + 60)
        no_reason = (await c.get("/api/v1/status")).json()["maintenance"]
        source.clock.advance(61)
        over = (await c.get("/api/v1/status")).json()
        node_over = (await c.get(f"/api/v1/nodes/{NODE}")).json()
    window = {"until": NOW + 600, "reason": "swapping the GPU"}
    assert before["maintenance"] is None and [n["maintenance"] for n in before["nodes"]] == [None, None]
    assert status["maintenance"] == window and [n["maintenance"] for n in status["nodes"]] == [window, window]
    assert node["maintenance"] == window and [n["maintenance"] for n in nodes] == [window, window]
    assert no_reason == {"until": NOW + 60, "reason": ""}
    assert over["maintenance"] is None and node_over["maintenance"] is None


async def test_dashboard_needs_no_cdn_and_openapi_json_is_the_offline_reference(source) -> None:
    import re

    import gswarm.api

    async with running_api(source) as (_, c):
        page, js, css, settings_js = [(await c.get(p)).text for p in ("/", "/static/app.js", "/static/style.css",
                                                                      "/static/settings.js")]
        spec, docs, redoc = await c.get("/openapi.json"), await c.get("/docs"), await c.get("/redoc")
    assert re.findall(r'(?:src|href)="([^"]*)"', page) == ["/static/style.css", "/favicon.svg", "/static/app.js",
                                                           "/static/settings.js"]
    assert "function renderSettings" in settings_js and re.findall(r"https?://", settings_js) == []
    assert re.findall(r"https?://[^\s\"'`)]+", js) == ["http://www.w3.org/2000/svg"]  # an XML namespace, never fetched
    assert re.findall(r"https?://|@import|url\(", css) == []
    assert spec.status_code == 200 and "/api/v1/status" in spec.json()["paths"]
    assert set(spec.json()["components"]["schemas"]["MaintenanceOut"]["properties"]) == {"until", "reason"}
    assert docs.status_code == 200 and redoc.status_code == 404
    doc = " ".join(gswarm.api.__doc__.split())
    assert "it needs internet in the browser, offline use ``/openapi.json``" in doc


async def test_api_root_lists_its_paths(source) -> None:
    """The URL `gswarm run` prints as "API …/api/v1" answers with what is there (it was a 404)."""
    async with running_api(source) as (_, c):
        r = await c.get("/api/v1")
    assert r.status_code == 200
    body = r.json()
    assert body["reference"] == "/openapi.json"
    assert {"/api/v1/status", "/api/v1/logs", "/api/v1/config", "/api/v1/events/stream"} <= set(body["paths"])
