"""Issue #13 case 6: the give-up alert reaches the channel before ``gswarm run`` exits; lifecycle messages
carry a body.

Before the fix the runtime cancelled the notification service as soon as the node went FATAL: the webhook
got "crashed" but never "gave up", and Apprise refused "supervisor started/stopped" ("No message body")."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from gswarm.config import load_settings
from gswarm.events import Event
from gswarm.runtime import Runtime
from gswarm.supervisor.spec import LaunchSpec
from tests.test_notify_support import HttpReceiver, http_rx  # noqa: F401  (fixture)


def _runtime(tmp: Path, url: str, **kw) -> tuple[Runtime, list[Event]]:
    settings = load_settings({"state_dir": tmp / "st", "rl_swarm_dir": tmp, "backoff_initial": 0.05,
                              "backoff_jitter": False, "crash_loop_max": 2, "crash_loop_window": 600,
                              "notify_urls": [url], "notify_min_severity": "info", "notify_digest": "off"}, env={})
    code = "import sys; print('RuntimeError: boom', file=sys.stderr, flush=True); sys.exit(1)"
    spec = LaunchSpec(argv=(sys.executable, "-c", code), cwd=tmp, env={}, mode="direct", generation="E6")
    rt = Runtime(settings, services=("gswarm.notify.service:create_service",), install_signals=False,
                 spec_factory=lambda: spec, **kw)
    events: list[Event] = []
    rt.bus.subscribe(events.append)
    return rt, events


async def test_fatal_give_up_reaches_the_webhook_before_exit(tmp_path: Path, http_rx: HttpReceiver) -> None:  # noqa: F811
    rt, _ = _runtime(tmp_path, f"json://{http_rx.base}/hook")
    t0 = time.perf_counter()
    code = await asyncio.wait_for(rt.run(), 30)
    spent = time.perf_counter() - t0
    assert code == 6  # FATAL: crash loop
    got = [r.json() for r in http_rx.requests]
    titles = [m["title"] for m in got]
    assert any("gave up" in t for t in titles), titles  # before the fix: never sent
    assert titles[0] == "[default] GSwarm started supervising" and titles[-1] == "[default] GSwarm stopped supervising"
    assert all(m["message"].strip() for m in got)  # Apprise sends nothing with an empty body
    assert got[-1]["message"] == "GSwarm stopped supervising node default. The node is no longer watched or restarted."
    notify = next(s for s in rt.services if s.name == "notify")
    chan = next(iter(notify.status()["channels"].values()))
    assert chan["failures"] == 0 and chan["sent"] == len(got)
    assert spent < 10.0
    print(f"delivered before exit: {titles}; run took {spent:.2f} s")


async def test_a_hanging_channel_delays_exit_by_at_most_the_drain_deadline(tmp_path: Path,
                                                                          http_rx: HttpReceiver) -> None:  # noqa: F811
    http_rx.modes["/hang"] = "hang"
    rt, _ = _runtime(tmp_path, f"json://{http_rx.base}/hang", drain_timeout=0.5)
    t0 = time.perf_counter()
    assert await asyncio.wait_for(rt.run(), 30) == 6
    spent = time.perf_counter() - t0
    assert spent < 3.0  # bounded: the drain gives up after 0.5 s, the cancel abandons the hanging send
    print(f"exit with a hanging channel after {spent:.2f} s (drain deadline 0.5 s)")
