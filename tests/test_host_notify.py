"""Notifications of a host with several nodes (issue #15): alerts name their node, the supervisor's
started/stopped messages name every node, and the digest is built for each node. Real HTTP receiver on
127.0.0.1, real node processes, injected clock."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gswarm.clock import FakeClock
from gswarm.config import load_settings
from gswarm.events import EventBus
from gswarm.host import Host
from gswarm.runtime import Runtime
from gswarm.supervisor.spec import LaunchSpec
from tests.helpers import until
from tests.test_notify_support import HttpReceiver, http_rx  # noqa: F401  (fixture)


async def test_host_notifications_name_the_node(tmp_path: Path, http_rx: HttpReceiver) -> None:  # noqa: F811
    clock, bus = FakeClock(), EventBus()
    settings = load_settings({"state_dir": tmp_path / "state", "rl_swarm_dir": tmp_path, "backoff_initial": 60,
                              "notify_urls": [f"json://{http_rx.base}/n"]}, env={})
    crash = ("import sys; print('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.32 GiB', "
             "file=sys.stderr, flush=True); sys.exit(1)")
    specs = {"a": (sys.executable, "-c", "import time; time.sleep(60)"), "b": (sys.executable, "-c", crash)}
    runtimes = []
    for name, argv in specs.items():
        spec = LaunchSpec(argv=argv, cwd=tmp_path, env={}, mode="direct", generation="E6")
        runtimes.append(Runtime(settings.model_copy(update={"node_name": name}), clock, bus,
                                checkout=tmp_path / name, services=("gswarm.notify.service:create_service",),
                                install_signals=False, spec_factory=lambda spec=spec: spec))
        (tmp_path / name).mkdir()
    host = Host(settings, runtimes, clock, bus, install_signals=False)
    task = asyncio.ensure_future(host.run())
    try:
        await until(lambda: any(r.json()["title"].startswith("[b] crashed") for r in list(http_rx.requests)) or task.done())
        notify = next(s for s in host.services if s.name == "notify")
        assert notify.digest_nodes == ("a", "b")
        sent = await notify.send_digest(clock.time() - 3600, clock.time())
        assert sent == 2
        await until(lambda: sum("digest" in r.json()["title"] for r in list(http_rx.requests)) == 2)
    finally:
        host.request("stop", "test", shutdown=True)
        await asyncio.wait_for(task, 30)
    titles = [r.json()["title"] for r in http_rx.requests]
    # (info: not sent at the default min severity warning; the message itself names every node)
    assert notify.rules.lifecycle(notify.node, clock.time(), started=True).title == "[a, b] GSwarm started supervising"
    assert "[b] crashed: cuda oom" in titles and not any(t.startswith("[a] crashed") for t in titles)
    assert sorted(t.split("]")[0] for t in titles if "digest" in t) == ["[a", "[b"]
