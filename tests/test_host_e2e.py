"""One ``gswarm run`` supervising three emulated nodes from one config file (issue #15 "Done when").

A real ``gswarm run`` process, three real emulated E2 nodes sharing one checkout, the real API on
127.0.0.1 and (when /usr/bin/chromium exists) the real dashboard in headless Chromium. Each node's
placement is read back from ``/proc/<pid>/environ`` and ``/proc/<pid>/cmdline`` of the real child.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from gswarm.emulator.checkout import init_checkout
from tests.helpers import stop_gracefully, wait_for

CHROMIUM = "/usr/bin/chromium"
NODES = ("gpu0", "gpu1", "gpu2")
BASE_PORT = 41731


def _config(tmp: Path) -> Path:
    co = init_checkout(tmp / "rl-swarm", "E2", logged_in=True, force=True)
    cfg = tmp / "host.toml"
    cfg.write_text(f"""
rl_swarm_dir = "{co}"
state_dir = "{tmp / 'state'}"
api_port = 0
backoff_initial = 0.2
backoff_jitter = false
stop_timeout = 5
extra_env = {{ GSWARM_EMU_PACE = "0.2" }}
[host]
stagger = 0.3
p2p_base_port = {BASE_PORT}
[[nodes]]
name = "gpu0"
gpus = [0]
[[nodes]]
name = "gpu1"
gpus = [1]
extra_env = {{ GSWARM_EMU_FAULTS = "crash:dht_daemon_timeout@1.5" }}
crash_loop_max = 1000
[[nodes]]
name = "gpu2"
gpus = [2]
""", encoding="utf-8")
    return cfg


def _env() -> dict[str, str]:
    """The environment without GSWARM_* (conftest points GSWARM_STATE_DIR elsewhere; the file decides here)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")}


def _gswarm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gswarm", *args], capture_output=True, text=True, timeout=60, env=_env())


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.fixture(scope="module")
def host(tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("host")
    cfg = _config(tmp)
    out = open(tmp / "run.out", "w")  # a file, not a pipe nobody reads (a full pipe would block gswarm)
    proc = subprocess.Popen([sys.executable, "-m", "gswarm", "run", "--config-file", str(cfg), "--duration", "90"],
                            stdout=out, stderr=subprocess.STDOUT, text=True, env=_env())
    try:
        api = tmp / "state" / "run" / "api.json"
        wait_for(lambda: api.exists() or proc.poll() is not None, 30, "api.json", step=0.1)
        assert proc.poll() is None, (tmp / "run.out").read_text()
        yield {"proc": proc, "cfg": cfg, "state": tmp / "state", "url": json.loads(api.read_text())["url"]}
    finally:
        stop_gracefully(proc)
        out.close()


def _nodes(url: str) -> dict[str, dict]:
    return {n["node"]: n for n in httpx.get(f"{url}/api/v1/nodes", timeout=10).json()}


def test_plan_json_places_every_node(host) -> None:  # type: ignore[no-untyped-def]
    res = _gswarm("plan", "--config-file", str(host["cfg"]), "--json")
    assert res.returncode == 0, res.stderr
    plan = {n["node"]: n for n in json.loads(res.stdout)["nodes"]}
    assert [plan[n]["cuda_visible_devices"] for n in NODES] == ["0", "1", "2"]
    assert [plan[n]["p2p_port"] for n in NODES] == [BASE_PORT, BASE_PORT + 1, BASE_PORT + 2]
    co = Path(plan["gpu0"]["checkout"])
    assert plan["gpu0"]["identity_path"] == str(co / "swarm.pem")  # the first node keeps the checkout's identity
    assert plan["gpu1"]["identity_path"] == str(host["state"] / "nodes" / "gpu1" / "swarm.pem")
    assert plan["gpu2"]["launch"]["env"]["HOST_MULTI_ADDRS"] == f"/ip4/0.0.0.0/tcp/{BASE_PORT + 2}"


def test_three_nodes_placed_fault_restarts_only_one_status_lists_three(host) -> None:  # type: ignore[no-untyped-def]
    url = host["url"]
    nodes = wait_for(lambda: (lambda ns: ns if all(ns.get(n, {}).get("state") == "RUNNING" and ns[n]["pid"] for n in NODES)
                              else None)(_nodes(url)), 30, "three RUNNING nodes", step=0.1)
    for i, name in enumerate(NODES):
        pid = nodes[name]["pid"]
        env = _environ(pid)
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        assert env["CUDA_VISIBLE_DEVICES"] == str(i)
        assert env["HOST_MULTI_ADDRS"] == f"/ip4/0.0.0.0/tcp/{BASE_PORT + i}"
        assert argv[argv.index("--host_maddr") + 1] == f"/ip4/0.0.0.0/tcp/{BASE_PORT + i}"
        ident = argv[argv.index("--identity_path") + 1]
        assert ident.endswith("rl-swarm/swarm.pem") if i == 0 else ident == str(host["state"] / "nodes" / name / "swarm.pem")
    pids = {n: nodes[n]["pid"] for n in NODES}
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert [f'gswarm_node_up{{node="{n}"}} 1.0' in metrics for n in NODES] == [True, True, True]
    # the fault in gpu1 (crash 1.5 s into every run) restarts gpu1 only
    after = wait_for(lambda: (lambda ns: ns if ns["gpu1"]["restarts"] >= 1 else None)(_nodes(url)), 30, "gpu1 restart", step=0.1)
    assert after["gpu0"]["restarts"] == 0 and after["gpu2"]["restarts"] == 0
    assert after["gpu0"]["pid"] == pids["gpu0"] and after["gpu2"]["pid"] == pids["gpu2"]
    incidents = httpx.get(f"{url}/api/v1/incidents", timeout=10).json()["items"]
    assert {i["node"] for i in incidents} == {"gpu1"}
    # control through the API reaches only the node named in the route
    token = (host["state"] / "api_token").read_text().strip()
    before = _nodes(url)
    r = httpx.post(f"{url}/api/v1/nodes/gpu2/restart", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 202 and r.json() == {"accepted": True, "node": "gpu2", "command": "restart"}
    moved = wait_for(lambda: (lambda ns: ns if ns["gpu2"]["pid"] not in (None, before["gpu2"]["pid"]) else None)(_nodes(url)),
                     30, "gpu2 restarted by the API", step=0.1)
    assert moved["gpu0"]["pid"] == pids["gpu0"]
    bad = httpx.post(f"{url}/api/v1/nodes/nope/stop", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert bad.status_code == 404 and bad.json()["error"] == "unknown node 'nope'; this supervisor runs 'gpu0', 'gpu1', 'gpu2'"
    res = _gswarm("status", "--state-dir", str(host["state"]), "--json")
    assert res.returncode == 0, res.stderr
    assert sorted(n["node"] for n in json.loads(res.stdout)["nodes"]) == list(NODES)
    one = _gswarm("status", "--state-dir", str(host["state"]), "--json", "--node", "gpu2")
    assert json.loads(one.stdout)["node"] == "gpu2"
    rep = _gswarm("report", "--state-dir", str(host["state"]), "--json")  # without --node: every node
    assert rep.returncode == 0, rep.stderr
    assert [d["title"].split("]")[0] for d in json.loads(rep.stdout)["nodes"]] == ["[gpu0", "[gpu1", "[gpu2"]
    out = host["state"].parent / "b.tar.gz"
    assert _gswarm("bundle", "--state-dir", str(host["state"]), "--node", "gpu1", "--output", str(out)).returncode == 0
    with tarfile.open(out) as tar:
        assert sorted(m for m in tar.getnames() if m.startswith("logs/")) == ["logs/gpu1/output.log", "logs/gswarm.jsonl"]
        config = json.loads(tar.extractfile("config.json").read())  # type: ignore[union-attr]
    assert config["settings"]["node_name"] == "gpu1" and config["settings"]["crash_loop_max"] == 1000


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs the system Chromium (/usr/bin/chromium)")
def test_dashboard_overview_shows_three_cards(host) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(host["url"] + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=30000)  # generous: a shared 2-core box
            page.wait_for_function("document.querySelectorAll('#node-cards .node-tile').length === 3", timeout=20000)
            assert page.locator("#overview").is_visible()
            assert page.locator("#node-cards .tile-name").all_text_contents() == list(NODES)
            page.locator("#node-cards .node-tile[data-node='gpu2']").click()  # click through to the detail view
            page.wait_for_function("document.getElementById('node-name').textContent === 'gpu2'", timeout=20000)
            assert errors == []
        finally:
            browser.close()


def test_stop_leaves_no_process_of_any_node(host) -> None:  # type: ignore[no-untyped-def]
    nodes = _nodes(host["url"])
    groups = [n["pgid"] for n in nodes.values() if n.get("pgid")]
    assert groups
    proc = host["proc"]
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert time.monotonic() - t0 < 15  # all nodes stopped in parallel (stop_timeout 5 s each)
    for pgid in groups:
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)
