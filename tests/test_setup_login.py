"""modal-login stand-in routes and the login flow (ORG_ID, activation, timeouts, restore)."""

from __future__ import annotations

import asyncio
import io
import json
import stat

import httpx
import pytest
from rich.console import Console

from gswarm.emulator.modal_server import ModalServer
from gswarm.errors import LoginError
from gswarm.rlswarm import identity, login
from tests.test_setup_support import drive, lay_checkout


@pytest.fixture
def checkout(tmp_path):
    return lay_checkout(tmp_path / "rl-swarm", "E4")


@pytest.fixture
def server(checkout):
    srv = ModalServer(checkout).start()
    yield srv
    srv.stop()


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200, force_terminal=False), buf


def test_routes_write_real_formats_and_answer_like_the_app(server, checkout):
    base = server.url + "/api/"
    with httpx.Client() as c:
        assert c.get(base + "get-api-key-status").status_code == 400
        key = c.post(base + "get-api-key", json={"whoamiStamp": "s"}).json()
        org = key["orgId"]
        data = json.loads((checkout / "modal-login/temp-data/userData.json").read_text())
        assert list(data) == [org] and set(data[org]) >= {"orgId", "address", "userId"}
        keys = json.loads((checkout / "modal-login/temp-data/userApiKey.json").read_text())[org]
        assert keys[-1]["activated"] is False and {"publicKey", "privateKey", "createdAt"} <= set(keys[-1])
        r = c.get(base + "get-api-key-status", params={"orgId": org})
        assert r.text == "pending" and r.headers["content-type"].startswith("text/plain")
        assert c.post(base + "register-peer", json={"orgId": org, "peerId": "Qm1"}).json() == {"error": "api key not found"}
        assert c.post(base + "register-peer", json={"orgId": "nobody", "peerId": "Qm1"}).status_code == 404
        assert c.post(base + "submit-reward", json={"peerId": "Qm1"}).status_code == 400
        assert c.post(base + "set-api-key-activated", json={"orgId": org, "apiKey": key["publicKey"]}).json() == {"activated": True}
        assert c.get(base + "get-api-key-status", params={"orgId": org}).text == "activated"
        for route in ("register-peer", "submit-reward", "submit-winner", "guess-answer", "claim-reward"):
            assert c.post(base + route, json={"orgId": org, "peerId": "Qm1"}).json()["hash"].startswith("0x")
        assert c.post(base + "bet-token-balance", json={"orgId": org, "peerId": "Qm1"}).json() == {"result": "1000"}


@pytest.mark.parametrize("status", [500, 502])
def test_failure_switch(checkout, status):
    srv = ModalServer(checkout, fail_status=status).start()
    try:
        assert httpx.get(srv.url + "/api/get-api-key-status", params={"orgId": "x"}).status_code == status
    finally:
        srv.stop()


async def test_login_flow_reaches_org_id_and_activation_then_backs_up(server, checkout, tmp_path, fake_clock):
    console, buf = _console()
    opened = []
    task = asyncio.create_task(login.ensure_login(
        checkout, tmp_path / "state", port=server.port, clock=fake_clock, console=console,
        env={"DISPLAY": ":0"}, open_browser=opened.append))
    for _ in range(5):
        fake_clock.advance(1)
        await asyncio.sleep(0.01)
    assert not task.done()
    org = server.login()  # what the browser page does
    assert await drive(task, fake_clock) == org
    assert opened == [f"http://localhost:{server.port}"]
    out = buf.getvalue()
    assert f"Your ORG_ID is set to: {org}" in out and "ssh -L" not in out
    bdir = identity.backup_dir(tmp_path / "state", checkout)
    for name in identity.LOGIN_FILES:
        assert (bdir / name).read_bytes() == (checkout / "modal-login/temp-data" / name).read_bytes()
        assert stat.S_IMODE((bdir / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(bdir.stat().st_mode) == 0o700
    priv = json.loads((checkout / "modal-login/temp-data/userApiKey.json").read_text())[org][-1]["privateKey"]
    assert priv[2:] not in out


async def test_headless_prints_ssh_hint_and_opens_no_browser(server, checkout, tmp_path, fake_clock):
    console, buf = _console()
    opened = []
    server.login()
    (checkout / "modal-login/temp-data/userApiKey.json").write_text("{}")  # login not finished: full flow
    task = asyncio.create_task(login.ensure_login(checkout, tmp_path / "s", port=server.port, clock=fake_clock,
                                                  console=console, env={}, open_browser=opened.append,
                                                  activation_timeout=5))
    with pytest.raises(LoginError):
        await drive(task, fake_clock)
    assert opened == []
    assert f"ssh -L {server.port}:localhost:{server.port}" in buf.getvalue()


@pytest.mark.parametrize("content", ["", "{not json", "[]", "{}"])
async def test_malformed_user_data_names_file_and_keeps_it(server, checkout, tmp_path, fake_clock, content):
    path = checkout / "modal-login/temp-data/userData.json"
    path.write_text(content)
    task = asyncio.create_task(login.ensure_login(checkout, tmp_path / "s", port=server.port, clock=fake_clock, env={}))
    with pytest.raises(LoginError) as ei:
        await drive(task, fake_clock)
    assert str(path) in str(ei.value) and "log in again" in str(ei.value) and ei.value.exit_code == 4
    assert path.read_text() == content  # nothing deleted or rewritten


async def test_activation_timeout_says_log_in_again_and_deletes_nothing(checkout, tmp_path, fake_clock):
    srv = ModalServer(checkout, never_activate=True).start()
    try:
        org = srv.login()
        task = asyncio.create_task(login.ensure_login(checkout, tmp_path / "s", port=srv.port, clock=fake_clock,
                                                      env={}, activation_timeout=30))
        with pytest.raises(LoginError) as ei:
            await drive(task, fake_clock)
    finally:
        srv.stop()
    msg = str(ei.value)
    assert f"ORG_ID {org} was not activated within 30 s" in msg and "log in again" in msg and "'pending'" in msg
    assert ei.value.exit_code == 4
    assert (checkout / "modal-login/temp-data/userData.json").exists()
    assert (checkout / "modal-login/temp-data/userApiKey.json").exists()
    assert not (identity.backup_dir(tmp_path / "s", checkout) / "userData.json").exists()


async def test_server_errors_are_reported_in_the_timeout(checkout, tmp_path, fake_clock):
    srv = ModalServer(checkout, fail_status=500).start()
    try:
        srv.state.create_key()
        task = asyncio.create_task(login.ensure_login(checkout, tmp_path / "s", port=srv.port, clock=fake_clock,
                                                      env={}, activation_timeout=3))
        with pytest.raises(LoginError, match="HTTP 500"):
            await drive(task, fake_clock)
    finally:
        srv.stop()


async def test_nobody_logs_in_times_out(server, checkout, tmp_path, fake_clock):
    task = asyncio.create_task(login.ensure_login(checkout, tmp_path / "s", port=server.port, clock=fake_clock,
                                                  env={}, login_timeout=20))
    with pytest.raises(LoginError, match=r"nobody logged in within 20 s.*log in again"):
        await drive(task, fake_clock)


async def test_deleted_login_files_are_restored_without_a_new_login(server, checkout, tmp_path, fake_clock):
    org = server.login()
    first = await drive(asyncio.create_task(login.ensure_login(checkout, tmp_path / "s", port=server.port,
                                                               clock=fake_clock, env={})), fake_clock)
    for name in identity.LOGIN_FILES:  # what run_rl_swarm.sh's cleanup does on every exit
        (checkout / "modal-login/temp-data" / name).unlink()
    console, buf = _console()
    again = await drive(asyncio.create_task(login.ensure_login(checkout, tmp_path / "s", port=server.port,
                                                               clock=fake_clock, env={}, console=console,
                                                               login_timeout=1)), fake_clock)
    assert first == again == org
    assert "restored from backup" in buf.getvalue()
    assert (checkout / "modal-login/temp-data/userApiKey.json").is_file()


def test_display_detection():
    assert login.has_display({}, "linux") is False
    assert login.has_display({"WAYLAND_DISPLAY": "w"}, "linux") is True
    assert login.has_display({}, "darwin") is True
