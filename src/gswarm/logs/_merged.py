"""``gswarm logs``' one stream: the JSON log's records and every node's capture, merged in time order.

Since issue #18 the JSON log (``logs/gswarm.jsonl``) holds GSwarm's own events and each node's output is
kept once, in ``logs/<node>/output.log`` (:mod:`gswarm.logs._captureread`). JSON logs written before
hold output records too (``kind`` ``output``): one of them is left out when its node's capture covers its
time (at or after the capture's first line), so no line is shown twice and older output the capture no
longer holds still shows. Which sources are read follows the filter: ``--category output`` reads only
captures, any other ``--category`` only the JSON log, ``--node`` only that node's folder.
"""

from __future__ import annotations

import heapq
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from gswarm.logs import _captureread as cap
from gswarm.logs import _jsonread as jr


def sources_of(category: str | None) -> tuple[bool, bool]:
    """``(read the JSON log, read the captures)`` for records of ``category`` (None: any); shared by
    ``gswarm logs`` and the API's tail."""
    return category != "output", category in (None, "output")


def _sources(flt: Any) -> tuple[bool, bool]:
    """:func:`sources_of` for a :class:`~gswarm.logs._jsonread.LogFilter`."""
    return sources_of(getattr(flt, "category", None))


def covered_by_capture(directory: Path) -> Callable[[dict[str, Any]], bool]:
    """``covered(rec) -> bool``: ``rec`` is an output record of a JSON log written before issue #18 whose
    node's capture (under ``directory`` = ``<state_dir>/logs``) holds its time, i.e. at or after the capture's
    first line (read once per node). Such a line is shown from the capture; older ones from the JSON log."""
    starts: dict[str, float | None] = {}

    def covered(rec: dict[str, Any]) -> bool:
        if rec.get("kind") != "output":
            return False
        node = str(rec.get("node"))
        if node not in starts:
            starts[node] = cap.first_ts(Path(directory) / node / cap.CAPTURE_NAME) if cap.plain_name(node) else None
        start, ts = starts[node], rec.get("ts_unix")
        return start is not None and isinstance(ts, (int, float)) and ts >= start - 1e-5

    return covered


def has_any(directory: Path) -> bool:
    """Whether a JSON log or any node's capture exists under ``directory`` (``<state_dir>/logs``)."""
    return bool(jr.log_files(directory)) or bool(cap.node_captures(directory))


def merged_records(directory: Path, flt: Any) -> Iterator[dict[str, Any]]:
    """Every record passing ``flt.match`` (JSON log + captures), oldest first."""
    want_json, want_out = _sources(flt)
    node = getattr(flt, "node", None)
    streams: list[Iterator[dict[str, Any]]] = []
    if want_json:
        covered = covered_by_capture(directory)
        streams.append(r for r in jr.iter_records(directory) if not covered(r))
    if want_out:
        streams.append(cap.iter_output(directory, node, getattr(flt, "since", None)))
    return (r for r in heapq.merge(*streams, key=cap.ts_of) if flt.match(r))


def tail_merged(directory: Path, flt: Any, n: int) -> list[dict[str, Any]]:
    """The last ``n`` records passing ``flt.match``, oldest first: each source's last ``n`` (the JSON log's
    files and each capture read from the end, newest first), merged. A capture is read back only to a
    minute before ``flt.since`` (a search with few matches does not read the whole history)."""
    want_json, want_out = _sources(flt)
    node = getattr(flt, "node", None)
    parts: list[list[dict[str, Any]]] = []
    if want_json:
        covered = covered_by_capture(directory)
        parts.append(jr.tail_records(directory, lambda r: flt.match(r) and not covered(r), n))
    if want_out:
        since = getattr(flt, "since", None)
        for name, path in cap.node_captures(directory, node).items():
            found = []
            for rec in cap.newest_first(name, path):
                if flt.match(rec):
                    found.append(rec)
                    if len(found) >= n:
                        break
                elif since is not None and rec["ts_unix"] < since - 60:  # older files cannot match (clock slack 60 s)
                    break
            parts.append(found[::-1])
    merged = list(heapq.merge(*parts, key=cap.ts_of))
    return merged[-n:]


class MergedFollower:
    """New records of the JSON log and of every node's capture (``tail -F`` each: rotation handled, a node
    folder that appears later is read from its start). ``poll() -> list[record]`` in time order, filtered."""

    def __init__(self, directory: Path, flt: Any) -> None:
        from gswarm.logs.jsonlog import LOG_NAME
        from gswarm.monitor.follow import FileFollower

        self.directory, self.flt = Path(directory), flt
        self._want_json, self._want_out = _sources(flt)
        self._node = getattr(flt, "node", None)
        self._json = FileFollower(self.directory / LOG_NAME, from_end=True) if self._want_json else None
        self._covered = covered_by_capture(self.directory)
        self._nodes: dict[str, tuple[Any, cap.CaptureReader]] = {}
        self._discover(from_end=True)

    def _discover(self, from_end: bool) -> None:
        from gswarm.monitor.follow import FileFollower

        if not self._want_out:
            return
        for name, path in cap.node_captures(self.directory, self._node).items():
            if name not in self._nodes:
                self._nodes[name] = (FileFollower(path, from_end=from_end), cap.CaptureReader(name))

    def poll(self) -> list[dict[str, Any]]:
        """The records written since the last poll (or since construction), oldest first."""
        self._discover(from_end=False)
        out: list[dict[str, Any]] = []
        if self._json is not None:
            out += [r for r in jr.parse_records(self._json.read_lines()) if not self._covered(r)]
        for follower, reader in self._nodes.values():
            out += reader.records(follower.read_lines())
        out.sort(key=cap.ts_of)
        return [r for r in out if self.flt.match(r)]

    def close(self) -> None:
        """Close every followed file."""
        for f in [self._json, *(f for f, _ in self._nodes.values())]:
            if f is not None:
                f.close()


def follow_merged(directory: Path, flt: Any, polls: int | None = None, interval: float = 0.5,
                  sleep: Callable[[float], Any] = time.sleep) -> Iterator[dict[str, Any]]:
    """Yield new matching records every ``interval`` s (:class:`MergedFollower`); ``polls`` bounds the number
    of polls (None = until interrupted); ``sleep`` is injectable for tests."""
    follower = MergedFollower(directory, flt)
    n = 0
    try:
        while polls is None or n < polls:
            n += 1
            yield from follower.poll()
            if polls is None or n < polls:
                sleep(interval)
    finally:
        follower.close()
