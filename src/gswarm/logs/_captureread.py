"""Reading the capture files ``<state_dir>/logs/<node>/output.log`` (current, rotated, gzipped) as log records.

Since issue #18 the node's output is kept once, in the capture file (format: docstring of
:mod:`gswarm.supervisor.capture`, e.g. ``2026-11-29T15:33:17.123456Z 12345 > text``), and no longer in the
JSON log. Readers (``gswarm logs``, the API tail, the read-only event stream) turn its lines into records of exactly the
shape they saw before (:func:`gswarm.logs._jsonread.normalized` of an output record)::

    {"ts_unix": float (Unix s, 6 decimals), "node": str, "level": str, "kind": "output", "pid": int,
     "category": "output", "stream": "stdout", "message": str}

Levels are computed at read time as the JSON log's writer did (:class:`gswarm.logs._levels.TracebackTracker`:
the node's own markers — generations.md §12 "Timestamp prefixes": hivemind ``LEVEL:logger:`` E0–E2, genrl
``[time][logger][LEVEL] - `` E3–E6 — and traceback lines ``error``), with the traceback state per node, reset when the pid
changes (a new process). Marks ``>`` ``~`` ``?`` ``+`` all give records (the JSON log held every line of a
batch too); ``#`` notes are skipped (the JSON log holds the start/exit events they mirror). A line without the
timestamp prefix is skipped; invalid UTF-8 is replaced (U+FFFD). Nothing here raises for a malformed or
vanished file. The ISO second of a line is parsed once per distinct second.

Newest-first reading (:func:`newest_first`, for tails) reads plain files backwards in 64 KiB blocks and
levels windows of lines forward, each window starting after a line that closes any traceback (a line that
is neither an opener nor indented/``File``), so the levels are exactly those of a forward read.

About 240 lines: parsing, listing and the forward and newest-first reading of one file format stay together.
"""

from __future__ import annotations

import calendar
import heapq
import re
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from gswarm.logs import _jsonread
from gswarm.logs._levels import _TB_INNER, _TB_START, TracebackTracker
from gswarm.logs._reverse import lines_newest_first

CAPTURE_NAME = "output.log"
_CHUNK = 4096  # lines levelled together (one chunk_levels call)
_WINDOW = 256  # lines per newest-first window (before extending to a traceback-closing line)
_BACK = 2000  # at most this many extra lines looked at for a closing line (TracebackTracker's cap)


def capture_files(path: Path) -> list[Path]:
    """The rotated files of the capture ``path`` (oldest first, ``.gz`` too) then ``path`` itself if present."""
    from gswarm.supervisor.capture import rotated_captures

    out = rotated_captures(path)
    return out + ([path] if path.exists() else [])


def node_captures(logs_dir: Path, node: str | None = None) -> dict[str, Path]:
    """``{node: <logs_dir>/<node>/output.log}`` of every node folder holding a capture (current or rotated),
    sorted by name; ``node`` given: that node's only (whether or not it exists yet), none when ``node`` is not
    a plain folder name (``..``, a ``/``: an API query must not reach outside ``logs_dir``)."""
    logs_dir = Path(logs_dir)
    if node is not None:
        return {node: logs_dir / node / CAPTURE_NAME} if plain_name(node) else {}
    out: dict[str, Path] = {}
    try:
        folders = sorted(p for p in logs_dir.iterdir() if p.is_dir())
    except OSError:
        return out
    for folder in folders:
        path = folder / CAPTURE_NAME
        if capture_files(path):
            out[folder.name] = path
    return out


def plain_name(node: str) -> bool:
    """Whether ``node`` can only name a folder inside the logs folder (not empty, ``.``, ``..``, no ``/``,
    ``\\`` or NUL)."""
    return node not in ("", ".", "..") and not any(c in node for c in "/\\\x00")


def _twin(path: Path) -> Path | None:
    """Where a listed rotated plain file went when gzipped since it was listed (``X`` → ``X.gz``)."""
    return None if path.name.endswith(".gz") or path.name == CAPTURE_NAME else path.with_name(path.name + ".gz")


def read_lines(path: Path) -> Iterator[str]:
    """Text lines (newline removed) of a plain or gzipped capture file; a rotated plain file compressed
    since it was listed is read from its ``.gz``; a missing or truncated file ends quietly."""
    for line in _jsonread.read_lines(path, _twin):
        yield line[:-1] if line.endswith("\n") else line


class CaptureReader:
    """Records of one node's capture lines, fed in file order (oldest first); the traceback and pid state
    is kept across calls and files. ``records(lines) -> list[record]`` (shape: module docstring)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._tracker = TracebackTracker()
        self._pid: int | None = None
        self._sec = ""
        self._sec_unix: int | None = None

    def parse(self, line: str) -> tuple[float, int, str, str] | None:
        """``(ts_unix, pid, mark, text)`` of one capture line, or None when it has no valid prefix."""
        if len(line) < 31 or line[19] != "." or line[26] != "Z" or line[27] != " ":
            return None
        sec = line[:19]
        if sec != self._sec:
            self._sec, self._sec_unix = sec, _second(sec)
        sp = line.find(" ", 28)
        if self._sec_unix is None or sp < 0 or sp + 1 >= len(line):
            return None
        try:
            ts = round(self._sec_unix + int(line[20:26]) / 1e6, 6)
            pid = int(line[28:sp])
        except ValueError:
            return None
        return ts, pid, line[sp + 1], line[sp + 3:]

    def records(self, lines: Iterable[str]) -> list[dict[str, Any]]:
        """The records of ``lines`` (capture lines, oldest first), notes and malformed lines left out."""
        out: list[dict[str, Any]] = []
        buf: list[tuple[float, int, str, str]] = []
        for line in lines:
            p = self.parse(line)
            if p is None:
                continue
            if p[2] == "#" or p[1] != self._pid:  # a note (start/exit) or a new process: tracebacks end here
                out += self._levelled(buf)
                buf = []
                if p[2] == "#":
                    continue
                self._pid = p[1]
                self._tracker.reset(self.node)
            buf.append(p)
            if len(buf) >= _CHUNK:
                out += self._levelled(buf)
                buf = []
        return out + self._levelled(buf)

    def _levelled(self, buf: list[tuple[float, int, str, str]]) -> list[dict[str, Any]]:
        if not buf:
            return []
        node = self.node
        texts = [p[3] for p in buf]
        levels = self._tracker.levels(node, "stdout", texts, "\n".join(texts))
        return [{"ts_unix": ts, "node": node, "level": lvl, "kind": "output", "pid": pid, "category": "output",
                 "stream": "stdout", "message": text} for (ts, pid, _, text), lvl in zip(buf, levels)]


def _second(sec: str) -> int | None:
    """Unix seconds of ``YYYY-mm-ddTHH:MM:SS`` (UTC), or None when it is not such a time."""
    try:
        if sec[4] != "-" or sec[7] != "-" or sec[10] != "T" or sec[13] != ":" or sec[16] != ":":
            return None
        return calendar.timegm((int(sec[:4]), int(sec[5:7]), int(sec[8:10]), int(sec[11:13]), int(sec[14:16]),
                                int(sec[17:19]), 0, 0, 0))
    except (ValueError, OverflowError):
        return None


def node_records(node: str, path: Path, since: float | None = None) -> Iterator[dict[str, Any]]:
    """Every record of ``node``'s capture ``path`` (rotated files first), oldest first. ``since`` (Unix s):
    rotated files renamed before it are not read (their stamp is the UTC second of the rotation, so every
    line in them is older); the caller still filters the records of the files read."""
    reader = CaptureReader(node)
    for f in capture_files(path):
        if since is not None and f.name != CAPTURE_NAME and _rotated_at(f) < since - 1:
            continue
        lines = read_lines(f)
        while True:
            chunk = [line for _, line in zip(range(_CHUNK), lines)]
            if not chunk:
                break
            yield from reader.records(chunk)


def iter_output(logs_dir: Path, node: str | None = None, since: float | None = None) -> Iterator[dict[str, Any]]:
    """The output records of every node (or ``node``'s only) under ``logs_dir``, merged in time order
    (``since``: see :func:`node_records`)."""
    return heapq.merge(*(node_records(n, p, since) for n, p in node_captures(logs_dir, node).items()), key=ts_of)


_STAMP = re.compile(r"\.(\d{8}T\d{6}Z)(?:-\d+)?(?:\.gz)?$")


def _rotated_at(path: Path) -> float:
    """Unix seconds of a rotated file's stamp (``output.log.<YYYYmmddTHHMMSSZ>[-n][.gz]``); +inf when unreadable."""
    m = _STAMP.search(path.name)
    if m is None:
        return float("inf")
    return calendar.timegm(time.strptime(m[1], "%Y%m%dT%H%M%SZ"))


def ts_of(rec: dict[str, Any]) -> float:
    ts = rec.get("ts_unix")
    return float(ts) if isinstance(ts, (int, float)) else 0.0


def first_ts(path: Path) -> float | None:
    """The time of the first line (notes included) of ``path``'s oldest capture file: output of that node
    from then on is in the capture (the coverage start), or None without any capture line."""
    reader = CaptureReader("")
    for f in capture_files(path):
        for line in read_lines(f):
            p = reader.parse(line)
            if p is not None:
                return p[0]
    return None


def _closes(text: str) -> bool:
    """After this line no traceback is open (it is neither an opener nor a line inside one)."""
    return not text.startswith(_TB_INNER) and not text.startswith(_TB_START)


def newest_first(node: str, path: Path, budget: int = 1 << 62) -> Iterator[dict[str, Any]]:
    """``node``'s output records, newest first, with exact levels: lines are taken backwards in windows of
    about ``_WINDOW`` lines, each extended back to a line after which no traceback is open, and levelled
    forward. ``budget``: lines of a gzipped file kept (its last ones). A traceback crossing a rotation is
    levelled from the newer file's start."""
    for f in reversed(capture_files(path)):
        probe = CaptureReader(node)
        window: list[str] = []  # newest first
        for raw in lines_newest_first(f, budget, _twin):
            line = raw.decode("utf-8", errors="replace")
            window.append(line)
            if len(window) < _WINDOW:
                continue
            p = probe.parse(line)
            if (p is not None and p[2] != "#" and _closes(p[3])) or len(window) >= _WINDOW + _BACK:
                keep = window.pop()  # the closing line: its own level needs the lines before it (next window)
                yield from reversed(CaptureReader(node).records(reversed(window)))
                window = [keep]
        yield from reversed(CaptureReader(node).records(reversed(window)))
