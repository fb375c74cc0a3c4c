"""The control socket of a host with several nodes (issues #14 + #15): one socket for the host, verbs
act on the named node only, a verb without a name is refused with the node names, status lists every node.
Real unix socket in the state dir, real emulated node processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gswarm.clock import SystemClock
from gswarm.config import load_settings
from gswarm.config.nodes import HostConfig, NodeConfig
from gswarm.daemon.client import request
from gswarm.emulator.checkout import init_checkout
from gswarm.events import EventBus
from gswarm.host import Host
from gswarm.placement import place
from gswarm.runtime import Runtime
from tests.helpers import until


async def test_control_socket_acts_on_the_named_node_only(tmp_path: Path) -> None:
    co = init_checkout(tmp_path / "co", "E6", logged_in=True)
    base = load_settings({"rl_swarm_dir": co, "state_dir": tmp_path / "st", "stop_timeout": 5,
                          "extra_env": {"GSWARM_EMU_PACE": "0.05", "GSWARM_EMU_FAULTS": ""}}, env={})
    clock, bus = SystemClock(), EventBus()
    runtimes = []
    for p in place(base, HostConfig((NodeConfig("a", gpus=(0,)), NodeConfig("b", gpus=(1,)))), tmp_path / "st"):
        rt = Runtime(p.settings, clock, bus, checkout=p.checkout, services=("gswarm.daemon:create_service",),
                     install_signals=False)
        rt.placement = p
        runtimes.append(rt)
    host = Host(base, runtimes, clock, bus, install_signals=False)
    task = asyncio.ensure_future(host.run())
    sd = tmp_path / "st"
    try:
        await until(lambda: all(rt.snapshot()["state"] == "RUNNING" for rt in runtimes) or task.done(), 30)
        assert not task.done(), task.result()
        assert [s.name for s in host.services] == ["daemon"]  # one control socket for the host
        pid_a = runtimes[0].snapshot()["pid"]
        refused = await asyncio.to_thread(request, sd, "stop")
        assert refused["ok"] is False and refused["message"] == \
            "this supervisor runs a, b: name the node (e.g. gswarm stop a)"
        unknown = await asyncio.to_thread(request, sd, "stop", "c")
        assert unknown["message"] == "unknown node 'c': this supervisor runs a, b (pass one of them)"
        stopped = await asyncio.to_thread(request, sd, "stop", "b", 20.0)
        assert (stopped["ok"], stopped["node"], stopped["state"]) == (True, "b", "STOPPED")
        assert runtimes[0].snapshot()["state"] == "RUNNING" and runtimes[0].snapshot()["pid"] == pid_a
        status = await asyncio.to_thread(request, sd, "status")
        assert {n: s["state"] for n, s in status["snapshots"].items()} == {"a": "RUNNING", "b": "STOPPED"}
    finally:
        host.request("stop", "test", shutdown=True)
        assert await asyncio.wait_for(task, 30) == 0
