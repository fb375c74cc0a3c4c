"""Sidecars: modal-login server via (fake) yarn, .env rewrite/restore, foreign port holders, ollama."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import httpx
import psutil
import pytest

from gswarm.emulator.modal_server import write_fake_yarn
from gswarm.errors import SetupError
from gswarm.rlswarm import sidecars
from gswarm.rlswarm.sidecars import ModalLogin, env_lines
from tests.test_setup_support import fake_bin, free_port, lay_checkout

OLLAMA = """
import http.server, os, sys
if sys.argv[1:] != ["serve"]:
    sys.exit(2)
host, port = os.environ["OLLAMA_HOST"].split(":")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"models": []}' if self.path == "/api/tags" else b"Ollama is running"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer((host, int(port)), H).serve_forever()
"""


@pytest.fixture
def tools(tmp_path):
    """PATH with a fake yarn (runs the modal stand-in) in front of the real one (node is real)."""
    bin_dir = tmp_path / "bin"
    write_fake_yarn(bin_dir)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _listener(port: int) -> subprocess.Popen:
    code = ("import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
            f"s.bind(('127.0.0.1',{port}));s.listen();print('up',flush=True);sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "up"
    return proc


@pytest.mark.parametrize("gen, expect", [
    ("E1", {}),
    ("E2", {3: "SMART_CONTRACT_ADDRESS=0x69C6e1D608ec64885E7b185d39b04B491a71768C"}),
    ("E4", {3: "SMART_CONTRACT_ADDRESS=0xFaD7C5e93f28257429569B854151A1B8DCD404c2"}),
    ("E5", {3: "SWARM_CONTRACT_ADDRESS=0xFaD7C5e93f28257429569B854151A1B8DCD404c2",
            4: "PRG_CONTRACT_ADDRESS=0x51D4db531ae706a6eC732458825465058fA23a35"}),
    ("E6", {3: "SWARM_CONTRACT_ADDRESS=0x7745a8FE4b8D2D2c3BB103F8dCae822746F35Da0"}),
])
def test_env_lines_per_era(gen, expect):
    assert env_lines(gen) == expect
    assert env_lines("E2", swarm="B")[3].endswith("0x6947c6E196a48B77eFa9331EC1E3e45f3Ee5Fd58")
    assert env_lines("E6", contract="0xabc") == {3: "SWARM_CONTRACT_ADDRESS=0xabc"}


async def test_modal_server_sidecar_lifecycle_restores_env(tmp_path, tools, state_dir):
    co = lay_checkout(tmp_path / "co", "E5")
    original = (co / "modal-login/.env").read_text()
    port = free_port()
    modal = ModalLogin(co, state_dir, "E5", port=port, env=tools)
    pid = await modal.start(ready_timeout=30)
    try:
        lines = (co / "modal-login/.env").read_text().splitlines()
        assert lines[:2] == original.splitlines()[:2]
        assert lines[2].startswith("SWARM_CONTRACT_ADDRESS=0xFaD7") and lines[3].startswith("PRG_CONTRACT_ADDRESS=0x51D4")
        assert os.getpgid(pid) == pid  # own session / process group
        assert httpx.get(f"http://127.0.0.1:{port}/api/get-api-key-status").status_code == 400
        assert await modal.start() == pid  # idempotent: kept running
        log = (co / "logs/yarn.log").read_text()
        assert "yarn install" in log and "yarn build" in log
    finally:
        await modal.stop(timeout=5)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert (co / "modal-login/.env").read_text() == original
    # built once per checkout state: a second start does not run yarn install again
    await modal.start(ready_timeout=30)
    await modal.stop(timeout=5)
    assert (co / "logs/yarn.log").read_text().count("yarn install") == 1
    (co / "modal-login/package.json").write_text('{"name": "modal-login", "v": 2}')
    await modal.start(ready_timeout=30)
    await modal.stop(timeout=5)
    assert (co / "logs/yarn.log").read_text().count("yarn install") == 2


async def test_foreign_port_holder_is_named_and_left_alive(tmp_path, tools, state_dir):
    co = lay_checkout(tmp_path / "co", "E4")
    port = free_port()
    holder = _listener(port)
    try:
        modal = ModalLogin(co, state_dir, "E4", port=port, env=tools)
        with pytest.raises(SetupError) as ei:
            await modal.start(ready_timeout=5)
        msg = str(ei.value)
        assert f"port {port}" in msg and f"pid {holder.pid}" in msg and "will not stop it" in msg
        assert ei.value.exit_code == 5
        assert holder.poll() is None and psutil.Process(holder.pid).is_running()
        assert sidecars.port_holders(port)[0].pid == holder.pid
        assert (co / "modal-login/.env").read_text().endswith("SMART_CONTRACT_ADDRESS=0xdefault\n")  # untouched
    finally:
        holder.stdin.close()
        holder.wait(5)


async def test_missing_node_or_yarn_says_how_to_install(tmp_path, state_dir):
    co = lay_checkout(tmp_path / "co", "E6")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SetupError, match="Node.js is not installed.*nvm"):
        await ModalLogin(co, state_dir, "E6", port=free_port(), env={"PATH": str(empty)}).start()
    node_only = tmp_path / "nodeonly"
    fake_bin(node_only, "node", "print('v20')\n")
    with pytest.raises(SetupError, match=r"npm install -g yarn"):
        await ModalLogin(co, state_dir, "E6", port=free_port(), env={"PATH": str(node_only)}).start()


async def test_yarn_build_failure_names_log(tmp_path, tools, state_dir):
    co = lay_checkout(tmp_path / "co", "E6")
    modal = ModalLogin(co, state_dir, "E6", port=free_port(), env={**tools, "YARN_FAIL": "build"})
    with pytest.raises(SetupError, match=r"`yarn build`.*failed.*yarn.log"):
        await modal.start()
    assert not modal.sidecar.running()
    assert modal.restore_env()


async def test_crashed_server_is_reported_with_log(tmp_path, tools, state_dir):
    co = lay_checkout(tmp_path / "co", "E6")
    modal = ModalLogin(co, state_dir, "E6", port=free_port(), env={**tools, "MODAL_ARGS": "--no-such-flag"})
    with pytest.raises(SetupError, match=r"exited with status 2 before answering.*yarn.log"):
        await modal.start(ready_timeout=20)
    modal.restore_env()


async def test_ollama_started_when_installed_and_not_running(tmp_path):
    co = lay_checkout(tmp_path / "co", "E6")
    bin_dir = tmp_path / "obin"
    fake_bin(bin_dir, "ollama", OLLAMA)
    port = free_port()
    env = {**os.environ, "PATH": str(bin_dir)}
    car = await sidecars.ensure_ollama(co, port=port, env=env, ready_timeout=20)
    try:
        assert car is not None and await sidecars.ollama_answers(port)
        assert await sidecars.ensure_ollama(co, port=port, env=env) is None  # already answers: not ours to start
    finally:
        await car.stop(timeout=5)
    assert not await sidecars.ollama_answers(port)


async def test_ollama_missing_is_reported(tmp_path):
    with pytest.raises(SetupError, match=r"ollama is not installed.*Docker"):
        await sidecars.ensure_ollama(tmp_path, port=free_port(), env={"PATH": str(tmp_path)})


def test_port_holders_of_free_port_is_empty():
    assert sidecars.port_holders(free_port()) == []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        held = s.getsockname()[1]
        assert [h.pid for h in sidecars.port_holders(held)] == [os.getpid()]


async def test_keeper_revives_a_dead_modal_server_and_closes_on_cancel(tmp_path, tools, state_dir, fake_clock):
    import asyncio
    import signal

    from gswarm.events import EventBus, Notice
    from gswarm.rlswarm.login import PreparedNode

    co = lay_checkout(tmp_path / "co", "E4")
    original = (co / "modal-login/.env").read_text()
    modal = ModalLogin(co, state_dir, "E4", port=free_port(), env=tools)
    await modal.start(ready_timeout=30)
    first = modal.sidecar.pid
    bus = EventBus()
    notices = []
    bus.subscribe(lambda ev: notices.append(ev) if isinstance(ev, Notice) else None)
    keeper = sidecars.SidecarKeeper(PreparedNode(co, state_dir, "E4", "direct", modal=modal), fake_clock, bus, "n1", 10.0)
    task = asyncio.create_task(keeper.run())
    await asyncio.sleep(0)
    fake_clock.advance(10)
    await asyncio.sleep(0.05)
    assert modal.sidecar.pid == first and not notices  # alive: nothing to do
    os.killpg(first, signal.SIGKILL)  # our own sidecar crashes
    modal.sidecar.proc.wait(5)
    fake_clock.advance(10)
    for _ in range(200):
        if notices:
            break
        await asyncio.sleep(0.05)
    assert modal.sidecar.running() and modal.sidecar.pid != first
    assert "modal-login server restarted" in notices[0].title
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not modal.sidecar.running()
    assert (co / "modal-login/.env").read_text() == original


def test_create_service_needs_a_prepared_node():
    class Rt:
        prepared = None

    assert sidecars.create_service(Rt()) is None


async def test_server_left_by_a_killed_gswarm_is_stopped_but_a_recycled_record_is_not(tmp_path, tools, state_dir):
    co = lay_checkout(tmp_path / "co", "E4")
    port = free_port()
    old = ModalLogin(co, state_dir, "E4", port=port, env=tools)
    orphan = await old.start(ready_timeout=30)  # then "gswarm is SIGKILLed": nobody calls stop()
    fresh = ModalLogin(co, state_dir, "E4", port=port, env=tools)
    pid = await fresh.start(ready_timeout=30)
    try:
        assert pid != orphan and fresh.sidecar.running()
        old.sidecar.proc.wait(5)  # reap our test child; it was stopped by its group signal
        assert old.sidecar.proc.returncode is not None
    finally:
        await fresh.stop(timeout=5)
    # a record whose pid now belongs to someone else (different start time) is never signalled
    holder = _listener(port)
    try:
        import json as _json

        (fresh.store / "modal-sidecar.json").write_text(_json.dumps({"pid": holder.pid, "create_time": 1.0, "argv": []}))
        assert fresh.stop_orphan() is False and holder.poll() is None
        with pytest.raises(SetupError, match=f"pid {holder.pid}"):
            await fresh.start(ready_timeout=5)
    finally:
        holder.stdin.close()
        holder.wait(5)
        fresh.restore_env()


async def test_stop_ends_the_whole_group_even_after_the_leader_died(tmp_path):
    spawn = "import subprocess,sys; subprocess.Popen([sys.executable,'-c','import time; time.sleep(300)']);"
    port = free_port()
    serve = (f"import http.server; http.server.HTTPServer(('127.0.0.1',{port}),"
             "http.server.SimpleHTTPRequestHandler).serve_forever()")
    car = sidecars.Sidecar("t", [sys.executable, "-c", spawn + serve], tmp_path, tmp_path / "t.log", port)
    car.start()
    await car.wait_ready(20)
    members = sidecars._group_members(car.pid)
    assert len(members) == 2
    await car.stop(5)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in members)
    # the leader exits by itself and leaves a member behind: stop() still ends our group
    car2 = sidecars.Sidecar("t2", [sys.executable, "-c", spawn], tmp_path, tmp_path / "t2.log", free_port())
    car2.start()
    car2.proc.wait(10)
    left = sidecars._group_members(car2.pid)
    assert len(left) == 1
    await car2.stop(5)
    assert not psutil.pid_exists(left[0]) or psutil.Process(left[0]).status() == psutil.STATUS_ZOMBIE
