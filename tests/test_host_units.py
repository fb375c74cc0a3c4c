"""Host, [[nodes]] config and placement (issue #15): validation messages, placement rules, setup once per
checkout and staggered starts on the injected clock, with real emulated node processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gswarm.clock import FakeClock
from gswarm.config import load_settings
from gswarm.config.nodes import HostConfig, NodeConfig, parse_host, read_host_config
from gswarm.emulator.checkout import init_checkout
from gswarm.errors import ConfigError, LockError
from gswarm.events import EventBus, ProcessStarted
from gswarm.host import Host
from gswarm.placement import apply, place
from gswarm.runtime import Runtime
from gswarm.supervisor._procgroup import live_members
from tests.helpers import until


def _err(tables, host=None) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as exc:
        parse_host(tables, host, "config file h.toml")
    return str(exc.value)


def test_nodes_tables_bad_input_names_node_and_field() -> None:
    assert _err([{"name": "a"}, {"name": "a"}]) == \
        "config file h.toml: nodes 'a' and 'a' both use name; give each node its own"
    assert _err([{"name": "a", "gpus": [0]}, {"name": "b", "gpus": [1, 0]}]) == \
        "config file h.toml: nodes 'a' and 'b' both use GPU 0; give each node its own"
    assert _err([{"name": "a", "colour": "red"}]).startswith("config file h.toml: node 'a': field 'colour' is unknown; use name,")
    assert _err([{"name": "a", "api_port": 1}]) == \
        "config file h.toml: node 'a': field 'api_port' is shared by every node; set it at the top level of the file"
    assert _err([{"name": "a", "gpus": "0,1"}]).startswith("config file h.toml: node 'a': field gpus must be a list")
    assert _err([{"gpus": [0]}]).startswith("config file h.toml: [[nodes]] #1: field name is missing; give each node a name of 1-64")
    assert _err([{"name": "a", "identity_path": "/k.pem"}, {"name": "b", "identity_path": "/k.pem"}]) == \
        ("config file h.toml: nodes 'a' and 'b' both use identity_path /k.pem (two nodes would share one peer ID); "
         "give each node its own")
    assert _err([{"name": "a"}], {"stager": 1}) == \
        "config file h.toml: [host] field 'stager' is unknown; allowed: stagger, p2p_base_port, node_ram_gb, node_vram_gb"


def test_config_file_nodes_inherit_top_level_and_leave_settings_alone(tmp_path: Path) -> None:
    cfg = tmp_path / "h.toml"
    cfg.write_text('model_name = "m/top"\nbackoff_initial = 2\n[host]\nstagger = 3\n[[nodes]]\nname = "a"\n'
                   '[[nodes]]\nname = "b"\nmodel_name = "m/b"\nextra_env = {X = "1"}\n', encoding="utf-8")
    settings = load_settings({"config_file": cfg}, env={})  # the tables are not Settings options
    host = read_host_config(cfg)
    assert host is not None and host.stagger == 3.0 and [n.name for n in host.nodes] == ["a", "b"]
    placed = place(settings, host, tmp_path / "st", detect=lambda co: "E6")
    assert [p.settings.model_name for p in placed] == ["m/top", "m/b"]
    assert [p.settings.backoff_initial for p in placed] == [2.0, 2.0]
    assert placed[1].settings.extra_env == {"X": "1"} and placed[1].settings.node_name == "b"


def test_placement_auto_gpus_ports_identity_and_second_account(tmp_path: Path) -> None:
    base = load_settings({"rl_swarm_dir": tmp_path}, env={})
    host = HostConfig((NodeConfig("a", gpus="auto"), NodeConfig("b", gpus=(0,)), NodeConfig("c", gpus="auto")),
                      p2p_base_port=40000)
    placed = place(base, host, tmp_path / "st", detect=lambda co: "E2", gpu_count=lambda: 4)
    assert [p.cuda for p in placed] == ["1", "0", "2"]
    assert [p.p2p_port for p in placed] == [40000, 40001, 40002]
    assert [p.identity_path for p in placed] == [tmp_path.resolve() / "swarm.pem", tmp_path / "st/nodes/b/swarm.pem",
                                                 tmp_path / "st/nodes/c/swarm.pem"]
    with pytest.raises(ConfigError, match=r"needs 2 free GPUs, NVML sees 1 not already given"):
        place(base, host, tmp_path / "st", detect=lambda co: "E2", gpu_count=lambda: 2)
    two = HostConfig((NodeConfig("a"), NodeConfig("b", account="second")))
    with pytest.raises(ConfigError) as exc:
        place(base, two, tmp_path / "st", detect=lambda co: "E2")
    assert "node 'b': account 'second' needs its own modal-login port, and only E3-E6 in direct mode" in str(exc.value)
    e6 = place(base, two, tmp_path / "st", detect=lambda co: "E6")
    assert [p.modal_port for p in e6] == [3000, 3001] and [p.p2p_port for p in e6] == [None, None]


def test_apply_writes_placement_into_the_launch_spec(tmp_path: Path) -> None:
    from gswarm.supervisor.spec import LaunchSpec

    base = load_settings({"rl_swarm_dir": tmp_path}, env={})
    p2, = place(base, HostConfig((NodeConfig("a", gpus=(3,), p2p_port=40100),)), tmp_path, detect=lambda co: "E2")
    spec = LaunchSpec(argv=("py", "-m", "x", "--host_maddr", "/ip4/0.0.0.0/tcp/38331"), cwd=tmp_path, env={},
                      mode="direct", generation="E2")
    out = apply(spec, p2)
    assert out.argv[-2:] == ("--host_maddr", "/ip4/0.0.0.0/tcp/40100")
    assert out.env == {"CUDA_VISIBLE_DEVICES": "3", "HOST_MULTI_ADDRS": "/ip4/0.0.0.0/tcp/40100"}
    _, p6 = place(base, HostConfig((NodeConfig("a"), NodeConfig("b", account="other"))), tmp_path, detect=lambda co: "E6")
    spec6 = LaunchSpec(argv=("py", "-m", "y"), cwd=tmp_path, env={}, mode="direct", generation="E6")
    assert apply(spec6, p6).argv[-1] == "blockchain.modal_proxy_url=http://localhost:3001/api/"


def _runtimes(tmp_path: Path, clock: FakeClock, bus: EventBus, shared: int, own: int,
              accounts: dict[str, str] | None = None) -> tuple[list[Runtime], object]:
    """``shared`` nodes on one emulated E6 checkout and ``own`` nodes on a checkout each (``accounts``:
    node name -> account, default "default")."""
    accounts = accounts or {}
    co = init_checkout(tmp_path / "shared", "E6", logged_in=True)
    base = load_settings({"rl_swarm_dir": co, "state_dir": tmp_path / "st", "stop_timeout": 5,
                          "extra_env": {"GSWARM_EMU_PACE": "0.05", "GSWARM_EMU_FAULTS": ""}}, env={})
    nodes = [NodeConfig(f"s{i}", gpus=(i,)) for i in range(shared)]
    for j in range(own):
        nodes.append(NodeConfig(f"o{j}", checkout=init_checkout(tmp_path / f"own{j}", "E6", logged_in=True),
                                gpus=(shared + j,), account=accounts.get(f"o{j}", "default")))
    runtimes = []
    for p in place(base, HostConfig(tuple(nodes)), tmp_path / "st"):
        rt = Runtime(p.settings, clock, bus, checkout=p.checkout, services=(), install_signals=False)
        rt.placement = p
        runtimes.append(rt)
    return runtimes, base


async def test_setup_once_per_checkout_login_once_per_account_one_at_a_time(tmp_path: Path) -> None:
    clock, bus = FakeClock(), EventBus()
    runtimes, base = _runtimes(tmp_path, clock, bus, shared=2, own=2, accounts={"o1": "second"})
    calls: list[tuple[str, str | None]] = []
    active = {"now": 0, "max": 0}

    async def setup(rt: Runtime, login_from: Runtime | None) -> None:
        calls.append((rt.node, login_from.node if login_from is not None else None))
        active["now"] += 1
        active["max"] = max(active["max"], active["now"])
        await asyncio.sleep(0.05)
        active["now"] -= 1

    for rt in runtimes:
        rt.prepare = True
    host = Host(base, runtimes, clock, bus, install_signals=False, setup=setup)
    task = asyncio.ensure_future(host.run())
    try:
        await until(lambda: all(rt.snapshot()["state"] == "RUNNING" for rt in runtimes) or task.done(), 30)
        assert not task.done(), task.result()
    finally:
        host.request("stop", "test", shutdown=True)
        assert await asyncio.wait_for(task, 30) == 0
    # s1 shares s0's checkout: not set up again; o0 (own checkout, same account) reuses s0's login server;
    # o1 (another account) runs its own
    assert calls == [("s0", None), ("o0", "s0"), ("o1", None)]
    assert active["max"] == 1


async def test_starts_are_staggered_on_the_injected_clock_and_stop_reaches_all(tmp_path: Path) -> None:
    clock, bus = FakeClock(), EventBus()
    runtimes, base = _runtimes(tmp_path, clock, bus, shared=3, own=0)
    started: list[tuple[str, float]] = []
    bus.subscribe(lambda e: started.append((e.node, clock.monotonic())) if isinstance(e, ProcessStarted) else None)
    host = Host(base, runtimes, clock, bus, stagger=7.0, install_signals=False)
    task = asyncio.ensure_future(host.run())
    try:
        await until(lambda: len(started) == 1 or task.done(), 30)
        await asyncio.sleep(0.2)
        assert started == [("s0", 0.0)] and clock.pending_sleeps[:2] == [7.0, 14.0]
        clock.advance(7.0)
        await until(lambda: len(started) == 2, 30)
        await asyncio.sleep(0.2)
        assert started[1] == ("s1", 7.0) and len(started) == 2
        clock.advance(7.0)
        await until(lambda: len(started) == 3, 30)
        assert started[2] == ("s2", 14.0)
        await until(lambda: all(rt.snapshot()["state"] == "RUNNING" for rt in runtimes), 30)
        groups = [rt.snapshot()["pgid"] for rt in runtimes]
    finally:
        host.request("stop", "test", shutdown=True)
        assert await asyncio.wait_for(task, 30) == 0
    assert [live_members(g) for g in groups] == [[], [], []]
    assert {rt.node: rt.snapshot()["state"] for rt in runtimes} == {"s0": "STOPPED", "s1": "STOPPED", "s2": "STOPPED"}


async def test_stop_during_the_stagger_wait_starts_nothing_more(tmp_path: Path) -> None:
    clock, bus = FakeClock(), EventBus()
    runtimes, base = _runtimes(tmp_path, clock, bus, shared=2, own=0)
    started: list[str] = []
    bus.subscribe(lambda e: started.append(e.node) if isinstance(e, ProcessStarted) else None)
    host = Host(base, runtimes, clock, bus, stagger=60.0, install_signals=False)
    task = asyncio.ensure_future(host.run())
    await until(lambda: started == ["s0"] or task.done(), 30)
    host.request("stop", "test", shutdown=True)
    assert await asyncio.wait_for(task, 30) == 0
    assert started == ["s0"]


async def test_one_host_locks_each_checkout_once_a_second_host_is_refused(tmp_path: Path) -> None:
    clock, bus = FakeClock(), EventBus()
    runtimes, base = _runtimes(tmp_path, clock, bus, shared=2, own=0)
    host = Host(base, runtimes, clock, bus, install_signals=False)
    task = asyncio.ensure_future(host.run())
    try:
        await until(lambda: all(rt.snapshot()["state"] == "RUNNING" for rt in runtimes) or task.done(), 30)
        assert not task.done(), task.result()
        assert runtimes[1].lock.record_path.name == runtimes[0].lock.record_path.stem + "-s1.json"
        assert runtimes[1].lock.record_path.exists() and runtimes[0].lock.record_path.exists()
        other = Runtime(runtimes[0].settings, FakeClock(), checkout=runtimes[0].checkout, services=(), install_signals=False)
        with pytest.raises(LockError, match="already supervises"):
            await other.run()
    finally:
        host.request("stop", "test", shutdown=True)
        assert await asyncio.wait_for(task, 30) == 0


def test_fit_check_warns_before_starting_more_nodes_than_fit(tmp_path: Path) -> None:
    from gswarm.placement import GIB, fit_warnings

    base = load_settings({"rl_swarm_dir": tmp_path}, env={})
    host = parse_host([{"name": "a", "gpus": [0]}, {"name": "b", "gpus": [1]}, {"name": "c", "gpus": [2]}],
                      {"node_ram_gb": 16, "node_vram_gb": 20}, "h.toml")
    placed = place(base, host, tmp_path, detect=lambda co: "E6")
    assert fit_warnings(placed, host, 64 * GIB, {0: 24 * GIB, 1: 24 * GIB, 2: 24 * GIB}) == []
    assert fit_warnings(placed, host, 40 * GIB, {0: 24 * GIB, 1: 10 * GIB}) == [
        "3 nodes need about 48 GiB of RAM (16 GiB each, [host] node_ram_gb) but 40.0 GiB is available: 2 fit; "
        "run fewer nodes or lower node_ram_gb if yours need less",
        "node 'b': GPU 1 has 10.0 GiB free, less than node_vram_gb 20 GiB",
        "node 'c': GPU 2 does not exist (NVML lists 0, 1)"]


def test_node_sampler_reports_only_its_own_gpus(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from gswarm.monitor.gpu import GpuSampler
    from gswarm.monitor.sampler import create_service

    nv = SimpleNamespace(
        NVML_TEMPERATURE_GPU=0, nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlDeviceGetCount=lambda: 3,
        nvmlDeviceGetHandleByIndex=lambda i: i, nvmlDeviceGetName=lambda h: f"GPU{h}", nvmlDeviceGetUUID=lambda h: f"U{h}",
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=10 * h, memory=0),
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=1, total=2, free=1),
        nvmlDeviceGetTemperature=lambda h, s: 50, nvmlDeviceGetPowerUsage=lambda h: 1000,
        nvmlDeviceGetComputeRunningProcesses=lambda h: [], nvmlDeviceGetGraphicsRunningProcesses=lambda h: [])
    clock, bus = FakeClock(), EventBus()
    runtimes, _ = _runtimes(tmp_path, clock, bus, shared=2, own=0)
    svc = create_service(runtimes[1])  # node s1 placed on GPU 1
    svc.sampler.gpu = GpuSampler(nv)
    assert [g["index"] for g in svc.sample_once().data["gpu"]] == [1]
    alone = Runtime(runtimes[0].settings, clock, bus, services=(), install_signals=False)  # no placement: every GPU
    svc0 = create_service(alone)
    svc0.sampler.gpu = GpuSampler(nv)
    assert [g["index"] for g in svc0.sample_once().data["gpu"]] == [0, 1, 2]


async def test_shared_store_and_json_log_are_built_once_and_close_every_node_s_orphan_runs(tmp_path: Path) -> None:
    import json
    import sqlite3

    clock, bus = FakeClock(), EventBus()
    runtimes, base = _runtimes(tmp_path, clock, bus, shared=2, own=0)
    db = Path(base.state_dir) / "gswarm.db"
    from gswarm.logs.store import Store

    Store(db, now=clock.time()).close()
    with sqlite3.connect(db) as conn:  # runs a SIGKILLed host left open, and one of another supervisor
        conn.executemany("INSERT INTO runs(node, started_at, pid) VALUES (?, ?, 1)",
                         [("s0", clock.time() - 50), ("s1", clock.time() - 50), ("other", clock.time() - 50)])
    for rt in runtimes:
        rt.service_paths = ("gswarm.logs.store:create_service", "gswarm.logs.jsonlog:create_service")
    host = Host(base, runtimes, clock, bus, install_signals=False)
    task = asyncio.ensure_future(host.run())
    try:
        await until(lambda: all(rt.snapshot()["state"] == "RUNNING" for rt in runtimes) or task.done(), 30)
        assert [s.name for s in host.services] == ["store", "jsonlog"]
    finally:
        host.request("stop", "test", shutdown=True)
        assert await asyncio.wait_for(task, 30) == 0
    log = Path(base.state_dir) / "logs" / "gswarm.jsonl"
    states = [r["node"] for r in map(json.loads, log.read_text().splitlines()) if r["kind"] == "state"]
    assert sorted(states) == ["s0"] * 4 + ["s1"] * 4  # each transition once, not once per writer
    with sqlite3.connect(db) as conn:
        left = conn.execute("SELECT node FROM runs WHERE pid = 1 AND stopped_at IS NULL").fetchall()
    assert left == [("other",)]


async def test_prepare_node_without_login_starts_no_modal_login_server(tmp_path: Path) -> None:
    from gswarm.rlswarm.login import prepare_node

    co = init_checkout(tmp_path / "co", "E4")  # not logged in: a login would wait for the browser
    settings = load_settings({"rl_swarm_dir": co, "state_dir": tmp_path / "st"}, env={})
    node = await prepare_node(settings, co, state_dir=tmp_path / "st", install=False, login=False, lock_dir=tmp_path / "locks")
    try:
        assert (node.generation, node.mode, node.modal, node.org_id) == ("E4", "direct", None, None)
    finally:
        await node.close()


def test_shared_checkout_placement_logs_apart_and_refuses_script_mode(tmp_path: Path) -> None:
    from gswarm.supervisor.spec import LaunchSpec

    base = load_settings({"rl_swarm_dir": tmp_path}, env={})
    host = HostConfig((NodeConfig("a"), NodeConfig("b"), NodeConfig("c", checkout=tmp_path / "other")))
    a, b, c = place(base, host, tmp_path / "st", detect=lambda co: "E6")
    assert (a.log_root, b.log_root, c.log_root) == (tmp_path / "st/nodes/a", tmp_path / "st/nodes/b", None)
    spec = LaunchSpec(argv=("py",), cwd=tmp_path, env={}, mode="direct", generation="E6")
    assert apply(spec, b).env == {"ROOT": str(tmp_path / "st/nodes/b")} and apply(spec, c).env == {}
    assert [p.log_root for p in place(base, host, tmp_path / "st", detect=lambda co: "E2")] == [None, None, None]
    scripted = HostConfig((NodeConfig("a", options={"via_script": True}), NodeConfig("b")))
    with pytest.raises(ConfigError, match=r"node 'a' shares its checkout .* with b in script mode: run_rl_swarm.sh "
                                          r"deletes modal-login/temp-data/\*.json on every exit"):
        place(base, scripted, tmp_path / "st", detect=lambda co: "E6")
    two = HostConfig((NodeConfig("a", options={"via_script": True}),
                      NodeConfig("b", checkout=tmp_path / "b", options={"via_script": True})))
    with pytest.raises(ConfigError) as exc:
        place(base, two, tmp_path / "st", detect=lambda co: "E4")
    assert str(exc.value) == ("nodes 'a', 'b' all run run_rl_swarm.sh (script mode), and each script starts "
                              "modal-login on port 3000; run them in direct mode (via_script = false)")
