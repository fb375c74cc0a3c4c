"""Tail and search of the node output and GSwarm's events: the capture files ``<state_dir>/logs/<node>/output.log``
(node output, issue #18) and the JSON log ``<state_dir>/logs/gswarm.jsonl`` (GSwarm's events), merged newest first.

Records have the shape ``gswarm logs --json`` prints (:func:`gswarm.logs._jsonread.normalized`): ``ts_unix``
(Unix seconds), ``node``, ``level``, ``kind``, ``category``, ``pid``, ``message`` (+ ``stream`` on output, ``data``
on events). Capture lines become output records with read-time levels (:mod:`gswarm.logs._captureread`); a
JSON log written before issue #18 also holds output records, left out where the node's capture covers their
time (nothing twice). Every file is read from its end (plain files backwards in 64 KiB blocks, gzipped ones
through a bounded deque) and the sources are merged lazily (``heapq.merge``), so a short tail of a long history
reads only the end of each current file; at most ``max_scan`` records are looked at, so a search over a big
history costs bounded time. Lines that are not JSON or have no capture prefix are skipped.

``grep`` is a case-insensitive plain substring (never a regular expression: a
pathological pattern would freeze the whole process, supervisor included, since
Python's ``re`` holds the GIL and cannot be interrupted). Every string field of a
returned record is cut at ``limits.MAX_MESSAGE_CHARS`` with a marker, and collecting
stops once the returned text reaches ``max_chars`` (``limited`` in the answer).
"""

from __future__ import annotations

import heapq
import json
from pathlib import Path
from typing import Any, Iterator

from gswarm.api.limits import MAX_MESSAGE_CHARS, cut_text
from gswarm.logs import _captureread as cap
from gswarm.logs._jsonread import compressed_twin, in_category, normalized
from gswarm.logs._jsonread import log_files as oldest_first
from gswarm.logs._merged import covered_by_capture, sources_of
from gswarm.logs._reverse import lines_newest_first

MAX_ANSWER_CHARS = 4 * 1024 * 1024  # text of all returned records together


def log_files(state_dir: Path) -> list[Path]:
    """``logs/gswarm.jsonl`` then its rotated files (``.gz`` too), newest first; a rotated file being
    compressed right now is listed once (:func:`gswarm.logs._jsonread.log_files`)."""
    return list(reversed(oldest_first(Path(state_dir) / "logs")))


def file_names(state_dir: Path) -> list[str]:
    """Every file the tail reads, relative to ``<state_dir>/logs``, newest first per source: the JSON log's
    (``gswarm.jsonl``, ``gswarm.jsonl.<stamp>.gz`` …), then each node's capture (``<node>/output.log``,
    ``<node>/output.log.<stamp>.gz`` …; nodes by name)."""
    logs = Path(state_dir) / "logs"
    out = [p.name for p in log_files(state_dir)]
    for node, path in cap.node_captures(logs).items():
        out += [f"{node}/{p.name}" for p in reversed(cap.capture_files(path))]
    return out


def _json_newest(state_dir: Path, node: str | None, budget: int) -> Iterator[dict[str, Any]]:
    """The JSON log's records, newest first, without output records a capture covers."""
    covered = covered_by_capture(Path(state_dir) / "logs")
    for path in log_files(state_dir):
        for raw in lines_newest_first(path, budget, compressed_twin):
            rec = _parse(raw)
            if rec is not None and (node is None or rec.get("node") == node) and not covered(rec):
                yield rec


def tail(state_dir: Path, n: int, *, node: str | None = None, level: str | None = None,
         grep: str | None = None, since: float | None = None, until: float | None = None,
         max_scan: int = 200_000, max_chars: int = MAX_ANSWER_CHARS,
         category: str | None = None) -> tuple[list[dict[str, Any]], int, bool]:
    """(the last ``n`` matching records oldest first, records scanned, limited).

    Sources: the JSON log and every node's capture (``node`` given: that node's only), merged newest first.
    ``category``: only records of it (``output`` reads only the captures, any other only the JSON log);
    None: every record but progress ones (state kept for ``category=progress``, as ``gswarm logs`` does).
    ``grep`` is a case-insensitive plain substring searched in ``message``. String fields
    longer than ``MAX_MESSAGE_CHARS`` are cut with a marker; ``limited`` is True when fewer
    than ``n`` records came back because their text reached ``max_chars`` characters.
    """
    found: list[dict[str, Any]] = []
    scanned = chars = 0
    needle = grep.casefold() if grep else None
    want_json, want_out = sources_of(category)
    sources = [_json_newest(state_dir, node, max_scan)] if want_json else []
    if want_out:
        sources += [cap.newest_first(name, path, max_scan) for name, path in cap.node_captures(Path(state_dir) / "logs", node).items()]
    for rec in heapq.merge(*sources, key=cap.ts_of, reverse=True):
        scanned += 1
        if in_category(rec, category) and _match(rec, node, level, needle, since, until):
            rec = _cut(rec)
            chars += sum(len(v) for v in rec.values() if isinstance(v, str))
            if found and chars > max_chars:
                return list(reversed(found)), scanned, True
            found.append(rec)
        if len(found) >= n or scanned >= max_scan:
            break
        ts = rec.get("ts_unix")
        if since is not None and isinstance(ts, (int, float)) and ts < since - 60:
            break
    return list(reversed(found)), scanned, False


def _cut(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: cut_text(v) if isinstance(v, str) and len(v) > MAX_MESSAGE_CHARS else v for k, v in rec.items()}


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        rec = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    return normalized(rec) if isinstance(rec, dict) else None


def _match(rec: dict[str, Any], node: str | None, level: str | None, needle: str | None,
           since: float | None, until: float | None) -> bool:
    if node is not None and rec.get("node") != node:
        return False
    if level is not None and str(rec.get("level", "")).lower() != level.lower():
        return False
    ts = rec.get("ts_unix")
    if since is not None and (not isinstance(ts, (int, float)) or ts < since):
        return False
    if until is not None and (not isinstance(ts, (int, float)) or ts > until):
        return False
    return needle is None or needle in str(rec.get("message", "")).casefold()
