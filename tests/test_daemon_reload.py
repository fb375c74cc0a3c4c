"""``gswarm reload`` inside the supervisor (issue #14), the control protocol's refusals, heartbeat options and the
READY sent before a long setup/login — in-process, on a Runtime that is not supervising anything."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from pathlib import Path

import pytest

from gswarm.clock import SystemClock
from gswarm.config import load_settings, redacted_dict
from gswarm.daemon import create_service
from gswarm.daemon.control import ControlServer, reached, refusal
from gswarm.daemon.heartbeat import fail_url
from gswarm.daemon.reload import group_of, reload
from gswarm.daemon.systemd import SETUP_STATUS, during_setup
from gswarm.errors import ConfigError
from gswarm.runtime import Runtime


def runtime(tmp_path: Path, cfg: Path) -> Runtime:
    flags = {"state_dir": tmp_path / "st", "rl_swarm_dir": tmp_path, "config_file": cfg}
    rt = Runtime(load_settings(flags, env={}), clock=SystemClock(), services=(), install_signals=False)
    rt.cli_flags = flags
    return rt


async def test_reload_groups_changes_and_applies_what_it_can(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("GSWARM_STATE_DIR", raising=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text('backoff_initial = 5\nquiet_hours = "22:00-07:00"\n')
    rt = runtime(tmp_path, cfg)
    create_service(rt)  # remembers the baseline, sets rt.daemon
    assert (await reload(rt))["message"] == "configuration reloaded: nothing changed"
    cfg.write_text("backoff_initial = oops\n")
    bad = await reload(rt)
    assert bad["ok"] is False and bad["message"].startswith(f"configuration not reloaded: config file {cfg} is not valid TOML")
    cfg.write_text('backoff_initial = 9\nheartbeat_url = "http://127.0.0.1:9/hb"\nnode_name = "n2"\n')
    res = await reload(rt)
    assert (res["live"], res["next_start"], res["restart_gswarm"]) == (["heartbeat_url", "quiet_hours"], ["backoff_initial"], ["node_name"])
    assert rt.settings.backoff_initial == 9 and rt.settings.heartbeat_url == "http://127.0.0.1:9/hb"
    assert rt.settings.quiet_hours is None and rt.settings.node_name == "default"  # the name needs a gswarm restart
    assert (await reload(rt))["message"] == "configuration reloaded: nothing changed"  # compared with the last load


def test_option_groups() -> None:
    assert [group_of(n) for n in ("notify_urls", "quiet_hours", "heartbeat_interval", "model_size", "api_port")] == [
        "live", "live", "live", "next_start", "restart_gswarm"]


def test_refusals_and_targets() -> None:
    assert refusal("start", "n", "RUNNING") == "node n is RUNNING; start only applies to a stopped node (use `gswarm restart` to restart it)"
    assert refusal("stop", "n", "FATAL") == "node n is already FATAL; there is nothing to stop"
    assert refusal("restart", "n", "STOPPED") is None and refusal("start", "n", "BACKOFF") is None
    assert reached("restart", ["STOPPING", "RUNNING"]) is False  # the RUNNING before the restart does not count
    assert reached("restart", ["STOPPING", "STOPPED", "STARTING", "RUNNING"]) is True
    assert reached("stop", ["STOPPING"]) is False and reached("stop", ["STOPPING", "STOPPED"]) is True


async def test_control_socket_refuses_unknown_nodes_and_bad_requests(tmp_path: Path) -> None:
    sdir = Path(tempfile.mkdtemp(prefix="gsq-"))
    rt = Runtime(load_settings({"state_dir": sdir, "rl_swarm_dir": tmp_path}, env={}), services=(), install_signals=False)
    server = ControlServer(rt)
    task = asyncio.ensure_future(server.run())
    try:
        for _ in range(200):
            if (sdir / "control.sock").exists():
                break
            await asyncio.sleep(0.01)
        r, w = await asyncio.open_unix_connection(str(sdir / "control.sock"))
        w.write(b"not json\n")
        assert await r.readline() == b'{"ok": false, "message": "bad request: send one line of JSON {\\"verb\\": ..., \\"node\\": ...}"}\n'
        w.close()
        answer = await server.handle({"verb": "stop", "node": "other"})
        assert answer["message"] == "unknown node 'other': this supervisor runs 'default' (omit NODE or pass default)"
        assert (await server.handle({"verb": "explode"}))["message"] == (
            "unknown verb 'explode'; use one of ping, status, start, stop, restart, reload")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not (sdir / "control.sock").exists()


def test_heartbeat_options_are_checked_and_redacted() -> None:
    s = load_settings({"heartbeat_url": "https://hc-ping.com/5f2e-secret-uuid"}, env={})
    assert fail_url(s) == "https://hc-ping.com/5f2e-secret-uuid/fail"
    assert "5f2e-secret-uuid" not in str(redacted_dict(s))
    s2 = load_settings({"heartbeat_url": "https://a/b", "heartbeat_fail_url": "https://a/down"}, env={})
    assert fail_url(s2) == "https://a/down" and fail_url(load_settings({}, env={})) is None
    with pytest.raises(ConfigError, match=r"option heartbeat_url \(from --heartbeat-url\): must be an http:// or https:// URL"):
        load_settings({"heartbeat_url": "hc-ping.com/x"}, env={})


async def test_ready_and_pings_while_setting_up(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = Path(tempfile.mkdtemp(prefix="gsn-")) / "n"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "40000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    rt = Runtime(load_settings({"state_dir": tmp_path / "st", "rl_swarm_dir": tmp_path}, env={}), services=(),
                 install_signals=False)
    task = asyncio.ensure_future(during_setup(rt))
    got: list[bytes] = []
    loop = asyncio.get_running_loop()
    try:
        while len(got) < 4:
            got.append(await asyncio.wait_for(loop.sock_recv(sock, 4096), 5))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sock.close()
    assert got[0].decode() == f"READY=1\nSTATUS={SETUP_STATUS}"
    assert got[1:] == [b"WATCHDOG=1"] * 3 and rt.sd_ready is True
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ  # the node does not inherit them
    assert rt.sd_env == (str(path), 0.02)  # the service created after the setup still finds them


async def test_reload_starts_notifications_that_had_no_channel(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("GSWARM_STATE_DIR", raising=False)
    monkeypatch.delenv("GSWARM_NOTIFY_URLS", raising=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text('notify_digest = "off"\n')
    rt = runtime(tmp_path, cfg)
    daemon = create_service(rt)
    assert not any(getattr(s, "name", "") == "notify" for s in rt.services)
    cfg.write_text('notify_digest = "off"\nnotify_urls = ["json://127.0.0.1:9/x"]\n')
    res = await reload(rt)
    try:
        assert res["ok"] and res["live"] == ["notify_urls"]
        notify = [s for s in rt.services if getattr(s, "name", "") == "notify"]
        assert len(notify) == 1 and daemon.parts[-1] is notify[0]
        await asyncio.sleep(0.05)
        assert not daemon._tasks[-1].done()  # running, owned by the daemon service
        assert [c.redacted for c in notify[0].dispatcher.channels] == ["json://127.0.0.1:9/***"]
    finally:
        for t in daemon._tasks:
            t.cancel()
        await asyncio.gather(*daemon._tasks, return_exceptions=True)


def test_a_supervisor_still_setting_up_is_named(tmp_path: Path) -> None:
    from gswarm.daemon.client import NotRunning, request
    from gswarm.supervisor.lock import CheckoutLock

    sdir = Path(tempfile.mkdtemp(prefix="gsl-"))
    lock = CheckoutLock(sdir, tmp_path, host_dir=False)  # what gswarm run holds from its start, before any service runs
    lock.acquire()
    try:
        with pytest.raises(NotRunning) as info:
            request(sdir, "stop")
        assert str(info.value) == (f"gswarm run (pid {os.getpid()}) holds state dir {sdir} but does not take commands yet: it "
                                   "is still preparing the node or waiting for the login (see its output or journalctl); "
                                   "try again once the node has started")
    finally:
        lock.release()
    with pytest.raises(NotRunning, match="no gswarm supervisor is running for state dir"):
        request(sdir, "stop")
