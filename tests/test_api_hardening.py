"""Hardening of the API against bad input: broken override file, log grep and sizes, body limits and
body errors, ``gswarm serve`` option names, unusable token file (real uvicorn on 127.0.0.1)."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time

import pytest

from gswarm.api.auth import TokenFileError, load_or_create_token, token_path
from gswarm.api.overrides import override_path
from gswarm.api.server import bind_socket, create_service
from gswarm.clock import FakeClock
from gswarm.errors import ConfigError
from tests.test_api_support import T0, LiveRuntime, bearer, live_source, log_record, running_api, settings, write_log

NOW = T0 + 1000
SEND = "send a JSON object of option -> value with Content-Type: application/json, e.g. {\"backoff_max\": 600}"


@pytest.fixture
def live(state_dir):
    return live_source(LiveRuntime(state_dir, settings(), FakeClock(NOW)))


def _token(state_dir) -> str:
    return token_path(state_dir).read_text().strip()


# ---------- 1. broken config_override.json is never overwritten ----------

BROKEN = '{"backoff_max": 600, "sample_interval": 5,\n'  # hand-edited, cut short


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_write_with_broken_override_file_answers_409_and_keeps_it(live, state_dir, method) -> None:
    path = override_path(state_dir)
    path.write_text(BROKEN)
    async with running_api(live) as (_, c):
        r = await c.request(method, "/api/v1/config", json={"node_name": "beta"}, headers=bearer(_token(state_dir)))
        got = await c.get("/api/v1/config")
    problem = "is not valid JSON (Expecting property name enclosed in double quotes: line 2 column 1 (char 43))"
    error = f"config_override.json {problem}; fix or delete it before changing options through the API"
    assert r.status_code == 409
    assert r.json() == {"error": error, "detail": {"file": str(path), "problem": problem}}
    assert path.read_text() == BROKEN
    assert got.status_code == 200
    assert got.json()["override"] is None and got.json()["override_error"] == error


async def test_get_config_shows_no_error_for_a_good_override(live, state_dir) -> None:
    async with running_api(live) as (_, c):
        r = await c.patch("/api/v1/config", json={"backoff_max": 600}, headers=bearer(_token(state_dir)))
        r2 = await c.patch("/api/v1/config", json={"sample_interval": 5}, headers=bearer(_token(state_dir)))
    assert r.status_code == 200 and r2.status_code == 200
    assert r2.json()["override"] == {"backoff_max": 600.0, "sample_interval": 5.0} and r2.json()["override_error"] is None


# ---------- 2. log grep is a plain substring; text is capped ----------

async def test_logs_grep_is_a_case_insensitive_plain_substring(live, state_dir) -> None:
    write_log(state_dir, [log_record(1, "x!"), log_record(2, "Has ((.*)*)*\\! IN it"), log_record(3, "aaaa")])
    async with running_api(live) as (_, c):
        evil = await c.get("/api/v1/logs", params={"grep": "((.*)*)*\\!"})
        upper = await c.get("/api/v1/logs", params={"grep": "AAA"})
        spec = (await c.get("/openapi.json")).json()
    assert evil.status_code == 200 and [x["message"] for x in evil.json()["lines"]] == ["Has ((.*)*)*\\! IN it"]
    assert [x["message"] for x in upper.json()["lines"]] == ["aaaa"]
    params = {p["name"]: p for p in spec["paths"]["/api/v1/logs"]["get"]["parameters"]}
    assert params["grep"]["description"].startswith("Case-insensitive plain substring")


async def test_logs_cut_long_messages_and_cap_the_answer(live, state_dir) -> None:
    write_log(state_dir, [log_record(1, "A" * 100_000)])
    async with running_api(live) as (_, c):
        one = await c.get("/api/v1/logs", params={"tail": 1})
    msg = one.json()["lines"][0]["message"]
    assert msg == "A" * 8192 + "… [cut 91808 characters]" and one.json()["limited"] is False
    write_log(state_dir, [log_record(2 + i % 50, f"{i} " + "B" * 20_000) for i in range(600)])
    async with running_api(live) as (_, c):
        many = await c.get("/api/v1/logs", params={"tail": 5000})
    body = many.json()
    assert many.status_code == 200 and body["limited"] is True
    per_record = 8192 + len("… [cut 11812 characters]") + len("2023-11-14T22:00:00Zalphainfooutputoutput")
    assert len(body["lines"]) == 4 * 1024 * 1024 // per_record  # the newest ones that fit in 4 MiB of text
    assert body["lines"][-1]["message"].startswith("599 ") and len(many.content) < 5 * 1024 * 1024


async def test_logs_read_a_multi_megabyte_line_fast(live, state_dir) -> None:
    write_log(state_dir, [log_record(1, "before"), log_record(2, "x" * (30 * 1024 * 1024) + " needle")])
    async with running_api(live) as (_, c):
        t0 = time.monotonic()
        r = await c.get("/api/v1/logs", params={"grep": "NEEDLE", "tail": 10})
        took = time.monotonic() - t0
    assert r.status_code == 200 and [x["message"] for x in r.json()["lines"]] == ["x" * 8192 + "… [cut 31449095 characters]"]
    assert took < 3.0, took


# ---------- 3. request body size ----------

async def test_body_over_1_mib_answers_413_and_saves_nothing(live, state_dir) -> None:
    big = json.dumps({"node_name": "n" * (2 * 1024 * 1024)}).encode()
    async with running_api(live) as (_, c):
        r = await c.patch("/api/v1/config", content=big, headers={**bearer(_token(state_dir)),
                                                                    "Content-Type": "application/json"})

        async def chunks():
            for _ in range(40):
                yield b" " * 65536

        chunked = await c.patch("/api/v1/config", content=chunks(), headers={**bearer(_token(state_dir)),
                                                                               "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"error": f"request body too large ({len(big)} bytes; at most 1048576 bytes): send only the "
                                 "options to change as a JSON object", "detail": None}
    assert chunked.status_code == 413
    assert chunked.json()["error"] == ("request body too large (more; at most 1048576 bytes): send only the options "
                                       "to change as a JSON object")
    assert not override_path(state_dir).exists()


async def test_option_value_over_16_kib_answers_422_naming_it(live, state_dir) -> None:
    async with running_api(live) as (_, c):
        r = await c.patch("/api/v1/config", json={"node_name": "n" * 20_000}, headers=bearer(_token(state_dir)))
    assert r.status_code == 422
    assert r.json()["error"] == "invalid node_name: value too long (20002 characters of JSON, at most 16384)"
    assert r.json()["detail"][0]["field"] == "node_name" and not override_path(state_dir).exists()


# ---------- 4. body errors say what to send ----------

BINARY = b"\x89PNG\r\n\x1a\n" + bytes(range(128, 256)) * 4


@pytest.mark.parametrize("content, ctype, status, error", [
    (b"{bad", "application/json", 422,
     f"request body is not valid JSON (at position 1: Expecting property name enclosed in double quotes); {SEND}"),
    (b'{"backoff_max": 600}', "text/plain", 415,
     "request body must be JSON: send Content-Type: application/json (got 'text/plain')"),
    (b'{"backoff_max": 600}', "application/x-www-form-urlencoded", 415,
     "request body must be JSON: send Content-Type: application/json (got 'application/x-www-form-urlencoded')"),
    (BINARY, "application/json", 422, f"request body is not valid JSON (it is not UTF-8 text); {SEND}"),
    (BINARY, None, 415, "request body must be JSON: send Content-Type: application/json (no Content-Type was sent)"),
    (b'{"backoff_max": 600}', None, 415,
     "request body must be JSON: send Content-Type: application/json (no Content-Type was sent)"),
    (b"[1, 2]", "application/json", 422, f"request body must be a JSON object (option -> value); {SEND}"),
    (b"", "application/json", 422, f"request body is missing; {SEND}"),
])
async def test_body_errors_say_what_to_send(live, state_dir, content, ctype, status, error) -> None:
    async with running_api(live) as (_, c):
        headers = {**bearer(_token(state_dir)), **({"Content-Type": ctype} if ctype else {})}
        r = await c.patch("/api/v1/config", content=content, headers=headers)
    assert (r.status_code, r.json()["error"]) == (status, error)
    assert not override_path(state_dir).exists()


# ---------- 5. gswarm serve names its own options ----------

def _serve(state_dir, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GSWARM_STATE_DIR": str(state_dir), "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "gswarm", "serve", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def _said(proc: subprocess.CompletedProcess[str]) -> str:
    return " ".join((proc.stdout + proc.stderr).split())


def test_serve_port_and_host_errors_name_port_and_host(state_dir) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        busy = _serve(state_dir, "--port", str(port))
    finally:
        taken.close()
    high, low = _serve(state_dir, "--port", "99999"), _serve(state_dir, "--port", "-1")
    host = _serve(state_dir, "--host", "999.1.1.1", "--port", "0")
    assert busy.returncode == 2 and _said(busy) == \
        f"error: port {port} on 127.0.0.1 is not available (Address already in use); choose another with --port (0 = any free port)"
    assert high.returncode == 2 and _said(high) == "error: --port 99999 is not a port: use 1-65535 (0 = any free port)"
    assert low.returncode == 2 and _said(low) == "error: --port -1 is not a port: use 1-65535 (0 = any free port)"
    assert host.returncode == 2 and _said(host) == \
        "error: --host '999.1.1.1' is not a valid IP address; use an address of this machine, e.g. 127.0.0.1"
    # newcomer trial: gswarm run and README say --api-port; serve takes it too (it was "No such option")
    alias = _serve(state_dir, "--api-port", "99999")
    assert alias.returncode == 2 and _said(alias) == "error: --port 99999 is not a port: use 1-65535 (0 = any free port)"


def test_bind_socket_names_the_host_when_the_address_is_not_local() -> None:
    with pytest.raises(ConfigError) as exc:
        bind_socket("192.0.2.1", 0, host_option="--host", port_option="--port")  # TEST-NET-1: never assigned
    assert str(exc.value) == ("--host '192.0.2.1' is not an address of this machine (Cannot assign requested address); "
                              "use one of its addresses, e.g. 127.0.0.1")


# ---------- 6. unusable api_token file ----------

FIX = "delete it (a new token is created on the next start; clients then need the new one) or set GSWARM_API_TOKEN"


def _binary_token(state_dir) -> bytes:
    data = bytes(range(128, 192))
    token_path(state_dir).write_bytes(data)
    return data


def test_binary_or_folder_token_file_is_a_clear_error(state_dir) -> None:
    data = _binary_token(state_dir)
    with pytest.raises(TokenFileError) as binary:
        load_or_create_token(state_dir)
    assert str(binary.value) == f"API token file {token_path(state_dir)} is not text (binary data); {FIX}"
    assert token_path(state_dir).read_bytes() == data
    token_path(state_dir).unlink()
    token_path(state_dir).mkdir()
    with pytest.raises(TokenFileError) as folder:
        load_or_create_token(state_dir)
    assert str(folder.value) == f"API token file {token_path(state_dir)} is a folder, not a file; {FIX}"


def test_serve_exits_with_the_token_file_message(state_dir) -> None:
    _binary_token(state_dir)
    proc = _serve(state_dir, "--port", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert _said(proc) == f"error: API token file {token_path(state_dir)} is not text (binary data); {FIX}"


def test_run_warns_in_one_line_and_runs_without_the_api(state_dir, caplog) -> None:
    _binary_token(state_dir)
    rt = LiveRuntime(state_dir, settings(api_port=0), FakeClock(NOW))
    with caplog.at_level(logging.WARNING, logger="gswarm.api.server"):
        assert create_service(rt) is None
    records = [r for r in caplog.records if r.name == "gswarm.api.server"]
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in records] == [
        ("WARNING", f"API and dashboard off: API token file {token_path(state_dir)} is not text (binary data); {FIX}",
         None)]



def test_stream_cuts_long_lines_and_skips_a_line_over_1_mib(state_dir) -> None:
    from gswarm import events as ev
    from gswarm.api.stream import _new_lines, event_dicts

    batch = ev.OutputBatch("alpha", NOW, 1, ("y" * 10_000, "short"), None, None, "stdout")
    assert [d["text"] for d in event_dicts(batch)] == ["y" * 8192 + "… [cut 1808 characters]", "short"]
    write_log(state_dir, [log_record(1, "z" * (2 * 1024 * 1024)), log_record(2, "after")])
    items, offset = [], 0
    for _ in range(5):  # before the fix the offset stayed at 0 forever
        got, offset = _new_lines(state_dir, offset)
        items += got
    assert [i.get("message") for i in items] == ["[a JSON-log line over 1 MiB was skipped; see /api/v1/logs]", "after"]
