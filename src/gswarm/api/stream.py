"""Server-sent events for ``/api/v1/events/stream``.

Live: every bus event, as ``event: <type>`` (log, state, start, exit, restart,
incident, recovery, progress, sample, notice) with the event's fields as JSON
data (enums as values). Read-only: new store rows polled every ``poll`` seconds
(``type`` = event kind, or incident/progress/sample), new lines of the JSON
log and new node output lines of every node's capture file ``logs/<node>/output.log`` (``log``,
records of the shape ``gswarm logs --json`` prints; issue #18: the JSON log no longer holds output). A comment line is sent every ``heartbeat`` seconds. Known secret
values are replaced by ``***`` before anything is sent. Log text is cut at 8 KiB with a
marker (:func:`gswarm.api.limits.cut_text`); in read-only mode a JSON-log line longer than
1 MiB is skipped (a ``log`` item says so) instead of stalling the stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from typing import Any, AsyncIterator, Callable

from gswarm import events as ev
from gswarm.api.limits import MAX_MESSAGE_CHARS, cut_text
from gswarm.logs.jsonlog import LOG_NAME

TYPES = {ev.OutputLine: "log", ev.OutputBatch: "log", ev.StateChanged: "state", ev.ProcessStarted: "start", ev.ProcessExited: "exit",
         ev.Incident: "incident", ev.RestartScheduled: "restart", ev.RecoveryAction: "recovery",
         ev.ProgressUpdate: "progress", ev.ResourceSample: "sample", ev.Notice: "notice"}
_TABLES = ("events", "incidents", "progress", "samples")


def event_dict(event: ev.Event) -> dict[str, Any]:
    """``{"type": ..., <fields>}`` for a bus event (OutputLine drops ``raw``)."""
    data = {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event) if f.name != "raw"}
    return {"type": TYPES.get(type(event), type(event).__name__.lower()), **data}


def event_dicts(event: ev.Event) -> list[dict[str, Any]]:
    """The dicts for a bus event: one ``log`` dict per line of an ``OutputBatch`` (the same shape as an
    ``OutputLine``'s: type, node, ts, pid, text, stream), else ``[event_dict(event)]``."""
    if type(event) is not ev.OutputBatch:
        return [event_dict(event)]
    node, ts, pid, stream = event.node, event.ts, event.pid, event.stream
    return [{"type": "log", "node": node, "ts": ts, "pid": pid, "text": cut_text(text), "stream": stream}
            for text in event.texts]


def _plain(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return getattr(v, "value", v)


def frame(seq: int, item: dict[str, Any], scrub: Callable[[str], str]) -> str:
    """One SSE frame: ``id``, ``event`` and one ``data`` line of JSON (NaN/inf sent as null)."""
    data = scrub(json.dumps(_finite(item), default=str))
    return f"id: {seq}\nevent: {item.get('type', 'message')}\ndata: {data}\n\n"


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v


class LiveFeed:
    """Bus events as dicts. Subscribes at construction (so nothing published after it is
    missed); ``close()`` unsubscribes. At most about ``maxsize`` items wait (an output batch
    counts its lines; one batch may overshoot); more are dropped and counted in ``dropped``."""

    def __init__(self, bus: ev.EventBus, maxsize: int = 2000) -> None:
        self.queue: asyncio.Queue[ev.Event] = asyncio.Queue()
        self.maxsize = maxsize
        self.waiting = 0  # items (lines for output batches) in the queue
        self.dropped = 0
        self.close = bus.subscribe(self._put)

    def _put(self, event: ev.Event) -> None:
        n = len(event.texts) if type(event) is ev.OutputBatch else 1
        if self.waiting >= self.maxsize:
            self.dropped += n
            return
        self.waiting += n
        self.queue.put_nowait(event)

    async def items(self, heartbeat: float, stopping: asyncio.Event) -> AsyncIterator[dict[str, Any] | None]:
        """Yield event dicts (one per output line); None after ``heartbeat`` seconds of silence; end when
        ``stopping`` is set."""
        stop = asyncio.ensure_future(stopping.wait())
        getter: asyncio.Future[ev.Event] | None = None
        try:
            while not stopping.is_set():
                if getter is None:  # kept across heartbeats: a cancelled get could drop an event
                    getter = asyncio.ensure_future(self.queue.get())
                done, _ = await asyncio.wait({getter, stop}, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    event, getter = getter.result(), None
                    self.waiting -= len(event.texts) if type(event) is ev.OutputBatch else 1
                    for item in event_dicts(event):
                        yield item
                elif not done:
                    yield None
        finally:  # client gone or shutdown: end the helper tasks (left pending they are destroyed with the queue)
            for task in (getter, stop):
                if task is not None and not task.done():
                    task.cancel()


class StorePoller:
    """New store rows and JSON-log lines as dicts (read-only mode).

    ``await prime()`` records where the store and the log end now; ``items()`` then
    checks every ``poll`` seconds and yields what is new (None as heartbeat).
    """

    def __init__(self, source: Any) -> None:
        self.source = source
        self.last: dict[str, int] = {}
        self.offset = 0
        self.output: Any = None  # the capture files' follower (gswarm.logs._merged.MergedFollower), from prime()

    async def prime(self) -> None:
        """Remember the newest row ids and the log file size."""
        self.last = await self.source.db(_max_ids)
        path = self.source.state_dir / "logs" / LOG_NAME
        self.offset = path.stat().st_size if path.exists() else 0
        self.output = await asyncio.to_thread(_output_follower, self.source.state_dir)

    def close(self) -> None:
        """Close the capture files followed (idempotent)."""
        if self.output is not None:
            self.output.close()
            self.output = None

    async def items(self, poll: float, heartbeat: float, stopping: asyncio.Event) -> AsyncIterator[dict[str, Any] | None]:
        """Yield new rows and lines, oldest first; None after ``heartbeat`` seconds without any."""
        quiet = 0.0
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), poll)
                return
            except asyncio.TimeoutError:
                pass
            rows = await self.source.db(_new_rows, self.last)
            lines, self.offset = await asyncio.to_thread(_new_lines, self.source.state_dir, self.offset)
            if self.output is not None:
                lines += await asyncio.to_thread(_new_output, self.output)
            for item in sorted(rows + lines, key=_item_ts):  # store rows, JSON-log records and node lines in time order
                yield item
            quiet = 0.0 if rows or lines else quiet + poll
            if quiet >= heartbeat:
                quiet = 0.0
                yield None


def _max_ids(reader: Any) -> dict[str, int]:
    out = {}
    for t in _TABLES:
        rows = reader.query(f"SELECT MAX(id) AS m FROM {t}")
        out[t] = int(rows[0]["m"] or 0) if rows else 0
    return out


def _new_rows(reader: Any, last: dict[str, int]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for t in _TABLES:
        for row in reader.query(f"SELECT * FROM {t} WHERE id > ? ORDER BY id LIMIT 500", (last[t],)):
            last[t] = max(last[t], int(row["id"]))
            kind = row["kind"] if t == "events" else {"incidents": "incident", "progress": "progress", "samples": "sample"}[t]
            items.append({"type": kind, **row})
    return sorted(items, key=lambda r: r.get("ts") or 0)


def _item_ts(item: dict[str, Any]) -> float:
    """The time of a stream item: ``ts_unix`` of a log record (whose ``ts``, in files written before #18, is ISO
    text), else ``ts`` of a store row (Unix s); 0 when neither is a number."""
    for key in ("ts_unix", "ts"):
        ts = item.get(key)
        if isinstance(ts, (int, float)):
            return float(ts)
    return 0.0


def _output_follower(state_dir: Any) -> Any:
    """A follower of every node's capture from its current end (nodes appearing later from their start)."""
    from gswarm.logs._jsonread import LogFilter
    from gswarm.logs._merged import MergedFollower

    return MergedFollower(state_dir / "logs", LogFilter(category="output"))


def _new_output(follower: Any) -> list[dict[str, Any]]:
    """New output records of the captures as ``log`` items (text cut at 8 KiB), oldest first."""
    return [{"type": "log", **{k: cut_text(v) if isinstance(v, str) and len(v) > MAX_MESSAGE_CHARS else v
                               for k, v in rec.items()}} for rec in follower.poll()]


def _new_lines(state_dir: Any, offset: int) -> tuple[list[dict[str, Any]], int]:
    path = state_dir / "logs" / LOG_NAME
    try:
        size = path.stat().st_size
    except OSError:
        return [], 0
    if size < offset:
        offset = 0
    if size == offset:
        return [], offset
    with open(path, "rb") as fh:
        fh.seek(max(0, offset - 1))
        at_line_start = offset == 0 or fh.read(1) == b"\n"
        data = fh.read(min(size - offset, 1 << 20))
    end = data.rfind(b"\n") + 1
    if end == 0 and len(data) >= 1 << 20:  # one line over 1 MiB: skip it rather than wait on it forever
        note = {"type": "log", "level": "warning", "message": "[a JSON-log line over 1 MiB was skipped; see /api/v1/logs]"}
        return [note] if at_line_start else [], offset + len(data)
    out = []
    for raw in data[:end].splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append({"type": "log", **{k: cut_text(v) if isinstance(v, str) and len(v) > MAX_MESSAGE_CHARS else v
                                          for k, v in rec.items()}})
    return out, offset + end
