"""Tail and search of the JSON log ``<state_dir>/logs/gswarm.jsonl`` and its rotated files.

Each line is one JSON object with ``ts`` (ISO text), ``ts_unix`` (Unix seconds),
``node``, ``level``, ``category``, ``message``, ``pid``, ``kind`` (writer:
``gswarm.logs.jsonlog``; rotated files ``gswarm.jsonl.<stamp>[.gz]``). The current
file is read backwards in 64 KiB blocks, gzipped ones through a bounded deque, newest
first, and at most ``max_scan`` lines are looked at, so a search over a big
history costs bounded time. Lines that are not JSON are skipped.

``grep`` is a case-insensitive plain substring (never a regular expression: a
pathological pattern would freeze the whole process, supervisor included, since
Python's ``re`` holds the GIL and cannot be interrupted). Every string field of a
returned record is cut at ``limits.MAX_MESSAGE_CHARS`` with a marker, and collecting
stops once the returned text reaches ``max_chars`` (``limited`` in the answer).
"""

from __future__ import annotations

import gzip
import json
import os
from collections import deque
from pathlib import Path
from typing import Any, Iterator

from gswarm.api.limits import MAX_MESSAGE_CHARS, cut_text
from gswarm.logs._jsonread import compressed_twin, normalized
from gswarm.logs._jsonread import log_files as oldest_first

_BLOCK = 64 * 1024
MAX_ANSWER_CHARS = 4 * 1024 * 1024  # text of all returned records together


def log_files(state_dir: Path) -> list[Path]:
    """``logs/gswarm.jsonl`` then its rotated files (``.gz`` too), newest first; a rotated file being
    compressed right now is listed once (:func:`gswarm.logs._jsonread.log_files`)."""
    return list(reversed(oldest_first(Path(state_dir) / "logs")))


def _lines_newest_first(path: Path, budget: int) -> Iterator[bytes]:
    if not path.name.endswith(".gz"):
        try:
            yield from _reverse_lines(path)
        except FileNotFoundError:  # gzipped since it was listed
            twin = compressed_twin(path)
            if twin is not None:
                yield from _lines_newest_first(twin, budget)
        return
    last: deque[bytes] = deque(maxlen=max(1, budget))
    try:
        with gzip.open(path, "rb") as fh:
            for line in fh:
                last.append(line.rstrip(b"\n"))
    except (EOFError, OSError):
        pass
    yield from reversed(last)


def _reverse_lines(path: Path) -> Iterator[bytes]:
    # ``pending`` holds the pieces of the line being assembled, newest piece first: joining only
    # once per line keeps a multi-megabyte line linear in its size (no re-copy per block).
    with open(path, "rb") as fh:
        pos = fh.seek(0, os.SEEK_END)
        pending: list[bytes] = []
        while pos > 0:
            size = min(_BLOCK, pos)
            pos -= size
            fh.seek(pos)
            parts = fh.read(size).split(b"\n")
            if len(parts) == 1:
                pending.append(parts[0])
                continue
            pending.append(parts[-1])
            line = b"".join(reversed(pending))
            if line.strip():
                yield line
            for line in reversed(parts[1:-1]):
                if line.strip():
                    yield line
            pending = [parts[0]]
        line = b"".join(reversed(pending))
        if line.strip():
            yield line


def tail(state_dir: Path, n: int, *, node: str | None = None, level: str | None = None,
         grep: str | None = None, since: float | None = None, until: float | None = None,
         max_scan: int = 200_000, max_chars: int = MAX_ANSWER_CHARS) -> tuple[list[dict[str, Any]], int, bool]:
    """(the last ``n`` matching records oldest first, lines scanned, limited).

    ``grep`` is a case-insensitive plain substring searched in ``message``. String fields
    longer than ``MAX_MESSAGE_CHARS`` are cut with a marker; ``limited`` is True when fewer
    than ``n`` records came back because their text reached ``max_chars`` characters.
    """
    found: list[dict[str, Any]] = []
    scanned = chars = 0
    needle = grep.casefold() if grep else None
    for path in log_files(state_dir):
        for raw in _lines_newest_first(path, max_scan - scanned):
            scanned += 1
            rec = _parse(raw)
            if rec is not None and _match(rec, node, level, needle, since, until):
                rec = _cut(rec)
                chars += sum(len(v) for v in rec.values() if isinstance(v, str))
                if found and chars > max_chars:
                    return list(reversed(found)), scanned, True
                found.append(rec)
            if len(found) >= n or scanned >= max_scan:
                return list(reversed(found)), scanned, False
            ts = rec.get("ts_unix") if rec else None
            if since is not None and isinstance(ts, (int, float)) and ts < since - 60:
                return list(reversed(found)), scanned, False
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
