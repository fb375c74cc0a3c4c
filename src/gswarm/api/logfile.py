"""Tail and search of the JSON log ``<state_dir>/logs/gswarm.jsonl`` and its rotated files.

Each line is one JSON object with ``ts`` (ISO text), ``ts_unix`` (Unix seconds),
``node``, ``level``, ``category``, ``message``, ``pid``, ``kind`` (writer:
``gswarm.logs.jsonlog``; rotated files ``gswarm.jsonl.<stamp>[.gz]``). The current
file is read backwards in 64 KiB blocks, gzipped ones through a bounded deque, newest
first, and at most ``max_scan`` lines are looked at, so a search over a big
history costs bounded time. Lines that are not JSON are skipped.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections import deque
from pathlib import Path
from typing import Any, Iterator

LOG_NAME = "gswarm.jsonl"
_BLOCK = 64 * 1024


def log_files(state_dir: Path) -> list[Path]:
    """``logs/gswarm.jsonl`` then its rotated files (``.gz`` too), newest first."""
    folder = Path(state_dir) / "logs"
    try:
        from gswarm.logs.jsonlog import rotated_files

        rotated = list(reversed(rotated_files(folder)))
    except ImportError:
        rotated = sorted((p for p in folder.glob(LOG_NAME + ".*") if p.is_file()), key=lambda p: -p.stat().st_mtime)
    current = folder / LOG_NAME
    return ([current] if current.is_file() else []) + [p for p in rotated if p != current]


def _lines_newest_first(path: Path, budget: int) -> Iterator[bytes]:
    if not path.name.endswith(".gz"):
        yield from _reverse_lines(path)
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
    with open(path, "rb") as fh:
        pos = fh.seek(0, os.SEEK_END)
        rest = b""
        while pos > 0:
            size = min(_BLOCK, pos)
            pos -= size
            fh.seek(pos)
            chunk = fh.read(size) + rest
            lines = chunk.split(b"\n")
            rest = lines[0]
            for line in reversed(lines[1:]):
                if line.strip():
                    yield line
        if rest.strip():
            yield rest


def tail(state_dir: Path, n: int, *, node: str | None = None, level: str | None = None,
         grep: re.Pattern[str] | None = None, since: float | None = None, until: float | None = None,
         max_scan: int = 200_000) -> tuple[list[dict[str, Any]], int]:
    """(the last ``n`` matching records oldest first, lines scanned). ``grep`` searches ``message``."""
    found: list[dict[str, Any]] = []
    scanned = 0
    for path in log_files(state_dir):
        for raw in _lines_newest_first(path, max_scan - scanned):
            scanned += 1
            rec = _parse(raw)
            if rec is not None and _match(rec, node, level, grep, since, until):
                found.append(rec)
            if len(found) >= n or scanned >= max_scan:
                return list(reversed(found)), scanned
            ts = rec.get("ts_unix") if rec else None
            if since is not None and isinstance(ts, (int, float)) and ts < since - 60:
                return list(reversed(found)), scanned
    return list(reversed(found)), scanned


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        rec = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def _match(rec: dict[str, Any], node: str | None, level: str | None, grep: re.Pattern[str] | None,
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
    return grep is None or grep.search(str(rec.get("message", ""))) is not None
