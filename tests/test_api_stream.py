"""Server-sent events: live from the bus, read-only by polling the store and the JSON log."""

from __future__ import annotations

import asyncio
import json

import pytest

from gswarm import events as ev
from gswarm.api.source import DataSource
from gswarm.clock import FakeClock
from gswarm.logs.store import Store
from tests.test_api_support import HF, NODE, T0, LiveRuntime, fill_store, live_source, log_record, running_api, settings, write_log

NOW = T0 + 1000


async def _frames(client, n: int, on_open=None, timeout: float = 10.0) -> list[tuple[str, dict]]:
    """Read ``n`` SSE frames (event name, data) from the stream; call ``on_open()`` once headers arrived."""
    out: list[tuple[str, dict]] = []

    async def read() -> None:
        async with client.stream("GET", "/api/v1/events/stream", params={"max_events": n}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            event = None
            async for line in r.aiter_lines():
                if line.startswith(": gswarm") and on_open:
                    await on_open()
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    out.append((event, json.loads(line[6:])))

    await asyncio.wait_for(read(), timeout)
    return out


async def test_live_stream_carries_bus_events_with_plain_values(state_dir) -> None:
    rt = LiveRuntime(state_dir, settings(), FakeClock(NOW))

    async def publish() -> None:
        rt.bus.publish(ev.RestartScheduled(NODE, NOW, 5.0, ev.Category.CUDA_OOM, ev.Recovery.RESTART, 2, "restart in 5 s"))
        rt.bus.publish(ev.OutputBatch(NODE, NOW + 1, 200, (f"pushing with token {HF}", "done"), ("raw", "done")))
        rt.bus.publish(ev.OutputLine(NODE, NOW + 2, 200, "single", "stderr", "raw"))

    async with running_api(live_source(rt)) as (_, c):
        frames = await _frames(c, 4, publish)
        # the stream unsubscribed when it closed
        await asyncio.sleep(0.05)
        assert len(rt.bus._subs) == 0
    assert frames[0] == ("restart", {"type": "restart", "node": NODE, "ts": NOW, "delay": 5.0, "cause": "cuda_oom",
                                     "recovery": "restart", "attempt": 2, "detail": "restart in 5 s"})
    assert frames[1][0] == "log" and frames[1][1]["text"] == "pushing with token ***" and "raw" not in frames[1][1]
    assert frames[2] == ("log", {"type": "log", "node": NODE, "ts": NOW + 1, "pid": 200, "text": "done", "stream": "stdout"})
    assert frames[3] == ("log", {"type": "log", "node": NODE, "ts": NOW + 2, "pid": 200, "text": "single", "stream": "stderr"})


async def test_read_only_stream_polls_new_store_rows_and_log_lines(state_dir) -> None:
    fill_store(state_dir, NOW)
    write_log(state_dir, [log_record(1, "before")])
    src = DataSource(state_dir, settings(), clock=FakeClock(NOW))

    async def write() -> None:
        store = Store(state_dir / "gswarm.db")
        store.write([ev.StateChanged(NODE, NOW + 1, ev.NodeState.RUNNING, ev.NodeState.STALLED, "no progress")])
        store.close()
        write_log(state_dir, [after])

    after = log_record(2, "after") | {"ts_unix": NOW + 2}  # after the state change (a poll is yielded in time order)
    async with running_api(src, poll=0.05) as (_, c):
        frames = await _frames(c, 2, write)
    assert frames[0][0] == "state" and frames[0][1]["state"] == "STALLED" and frames[0][1]["message"] == "no progress"
    assert frames[1] == ("log", {"type": "log", **after})


@pytest.mark.parametrize("live", [True, False])
async def test_stream_sends_heartbeats_when_idle(state_dir, live) -> None:
    rt = LiveRuntime(state_dir, settings(), FakeClock(NOW))
    src = live_source(rt) if live else DataSource(state_dir, settings(), clock=FakeClock(NOW))
    async with running_api(src, poll=0.02, heartbeat=0.05) as (_, c):
        async with c.stream("GET", "/api/v1/events/stream") as r:
            lines = []
            async for line in r.aiter_lines():
                lines.append(line)
                if line == ": ping":
                    break
    assert lines[0] == "retry: 2000" and lines[-1] == ": ping"


async def test_closed_stream_leaves_no_pending_tasks() -> None:
    """A client that goes away (the generator is cancelled and closed) must not leave its Queue.get and
    stopping.wait helper tasks pending: with the feed gone they were destroyed while pending, which asyncio
    logged as "Task was destroyed but it is pending!" on every Ctrl-C after the dashboard had been open."""
    from gswarm.api.stream import LiveFeed

    bus = ev.EventBus()
    feed = LiveFeed(bus)
    items = feed.items(60.0, asyncio.Event())
    bus.publish(ev.StateChanged(NODE, T0, ev.NodeState.STOPPED, ev.NodeState.STARTING))
    first = await items.__anext__()
    assert first["type"] == "state"
    pending = asyncio.ensure_future(items.__anext__())  # now waiting for the next event
    await asyncio.sleep(0.05)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    await items.aclose()
    feed.close()
    await asyncio.sleep(0)  # let the cancellations run
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert left == []
