"""Levels of node output lines for the JSON log: the node's own markers, and Python tracebacks as errors.

Markers (generations.md §12 "Timestamp prefixes"): ``LEVEL:logger:`` (hivemind E0–E2 colorlog),
`` - LEVEL - `` (E2 swarm.log), ``[LEVEL]`` (genrl E3–E6 ``[time][logger][LEVEL] - ``), and
``[name] time LEVEL: `` (E3 per-animal training log); a line without one is ``info``.
"""

from __future__ import annotations

import re
from typing import Any

from gswarm.wordscan import WordSet

_LEVEL = re.compile(r"^(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL):|\[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\]"
                    r"| - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - |^\[[a-z_]+\] [\d\- :,]+ (DEBUG|INFO|WARNING|ERROR|CRITICAL): ")
_TB_START = "Traceback (most recent call last):"
_TB_OPENERS = (_TB_START, "During handling of the above exception", "The above exception was the direct cause")
_TB_OPENER_WORDS = WordSet(_TB_OPENERS)  # the same, for a whole chunk
_TB_INNER = (" ", "\t", "File ")
_TB_MAX = 2000  # lines; a traceback whose final line never came stops marking lines after this


# The same pattern split by where it can match: the two ``^`` forms only at 0 (one ``match``), the two others
# anywhere (a ``search`` that only stops at "[" or " "). At position 0 at most one of the four can match, so
# "at 0, else the leftmost of the others" is exactly the leftmost match of ``_LEVEL`` (~1 µs instead of ~3).
_W = "(DEBUG|INFO|WARNING|ERROR|CRITICAL)"
_LEVEL_AT0 = re.compile(r"(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL):|\[[a-z_]+\] [\d\- :,]+ " + _W + ": ")
_LEVEL_ANY = re.compile(r"\[" + _W + r"\]| - " + _W + " - ")
_LEVEL_NAMES = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning", "WARN": "warning", "ERROR": "error",
                "CRITICAL": "critical"}


_NOT_INFO = WordSet(("ERROR", "WARN", "DEBUG", "CRITICAL"))  # every level name but INFO contains one of these


def chunk_levels(texts: Any, joined: str) -> list[str]:
    """:func:`line_level` of each of ``texts`` (``joined`` = ``"\\n".join(texts)``).

    A line is ``info`` unless it holds one of the other level names, and each of those contains
    ``ERROR``, ``WARN``, ``DEBUG`` or ``CRITICAL``: a chunk without these words (genrl prints
    ``[INFO]`` on nearly every line) is ``info`` throughout after four ``memchr`` scans (:mod:`gswarm.wordscan`),
    and otherwise only the lines around each such word are examined (their line index found by
    counting newlines), so the cost stays per chunk, not per line (~0.2 µs per line-equivalent
    instead of ~3 µs of a regex per line).
    """
    found = _NOT_INFO.found_in(joined)
    out = ["info"] * len(texts)
    if not found:
        return out
    if joined.count("\n") != len(texts) - 1:  # a line holding "\n" (never from the splitter): line by line
        return [line_level(t) for t in texts]
    if sum(joined.count(w) for w in found) * _DENSE > len(texts):  # an error flood: most lines hold a word
        return _dense_levels(joined)
    hits: set[int] = set()
    count = joined.count
    for word in found:
        pos, line, at = joined.find(word), 0, 0
        while pos >= 0:
            line += count("\n", at, pos)
            at = pos
            hits.add(line)
            nxt = joined.find("\n", pos)
            if nxt < 0:
                break
            line, at = line + 1, nxt + 1
            pos = joined.find(word, at)
    for i in hits:
        out[i] = line_level(texts[i])
    return out


_DENSE = 8  # a chunk where more than one line in 8 holds a non-INFO word is levelled line by line from the cache
_DIGITS = str.maketrans("123456789", "000000000")
_CACHE: dict[str, str] = {}
_CACHE_MAX = 4096


def _dense_levels(joined: str) -> list[str]:
    """:func:`line_level` of every line of ``joined``, through a cache keyed by the line with its digits
    made ``0`` (exact: no marker pattern tells one digit from another, ``[\\d\\- :,]+`` takes any). A
    flood of one error repeated with other numbers costs a dict lookup per line instead of two regex
    searches (issue #18: an error flood cost ~2.5x a plain line in the JSON log's levels)."""
    cache = _CACHE
    keys = joined.translate(_DIGITS).split("\n")
    out = list(map(cache.get, keys))
    if None in out:
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        for key in set(keys).difference(cache):  # each distinct new line once (C-level set work, no loop per line)
            cache[key] = line_level(key)
        out = list(map(cache.get, keys))
    return out


def line_level(text: str) -> str:
    """The node's own level marker in ``text`` (lower case), or ``info``."""
    m = _LEVEL_AT0.match(text) or _LEVEL_ANY.search(text)
    if m is None:
        return "info"
    return _LEVEL_NAMES[next(g for g in m.groups() if g)]


class TracebackTracker:
    """Levels of node output lines, with Python tracebacks as ``error``.

    ``levels(node, stream, texts) -> list[str]``: one level per line, in order; remembers per
    ``(node, stream)`` whether a traceback is open across calls (a traceback may span reads).
    A traceback opens at a line starting ``Traceback (most recent call last):``, stays open
    over lines starting with a space, a tab or ``File ``, and closes after the first other
    line (the exception line, e.g. ``ValueError: x``), which is ``error`` too; the headers of
    chained exceptions (``During handling of the above exception…``, ``The above exception was
    the direct cause…``) are ``error``. A traceback still open after ``_TB_MAX`` lines is closed.
    Elsewhere :func:`line_level`. Cost per line: one ``startswith`` when no traceback is open.
    """

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], int] = {}  # (node, stream) -> lines marked so far

    def levels(self, node: str, stream: str, texts: Any, joined: str | None = None) -> list[str]:
        """The level of each of ``texts`` (strings, oldest first) of ``node``'s ``stream``; ``joined``:
        ``"\\n".join(texts)`` when the caller has it (then a chunk without traceback text is levelled
        as a whole, :func:`chunk_levels`)."""
        key = (node, stream)
        if joined is not None and key not in self._open and not _TB_OPENER_WORDS.any_in(joined):
            return chunk_levels(texts, joined)
        depth = self._open.pop(key, 0)
        if joined is not None and joined.count("\n") == len(texts) - 1:
            out, depth = _traceback_levels(texts, joined, depth)
        else:
            out, depth = self._by_line(texts, depth)
        if depth:
            self._open[key] = depth
        return out

    @staticmethod
    def _by_line(texts: Any, depth: int) -> tuple[list[str], int]:
        """The line-by-line rule (reference for :func:`_traceback_levels`; used for lines holding ``\\n``)."""
        out: list[str] = []
        for text in texts:
            if not depth:
                if text.startswith(_TB_OPENERS):
                    depth = 1 if text.startswith(_TB_START) else 0  # a chain header is error, opens nothing
                    out.append("error")
                else:
                    out.append(line_level(text))
            elif depth >= _TB_MAX:
                depth = 0
                out.append(line_level(text))
            else:
                depth = depth + 1 if text.startswith(_TB_INNER) else 0  # 0: this is the final exception line
                out.append("error")
        return out, depth

    def reset(self, node: str) -> None:
        """Forget open tracebacks of ``node`` (a new process starts)."""
        for key in [k for k in self._open if k[0] == node]:
            del self._open[key]


_TB_END = re.compile(r"\n(?![ \t]|File )")  # the line break before the first line that is not inside a traceback


def _traceback_levels(texts: Any, joined: str, depth: int) -> tuple[list[str], int]:
    """:meth:`TracebackTracker._by_line` for a chunk (``joined`` = ``"\\n".join(texts)``, no line holding
    ``\\n``), per traceback instead of per line: the chunk's marker levels (:func:`chunk_levels`), then each
    traceback (an opener found with ``find``, its end with one C-level regex search) marked ``error`` with
    one slice assignment. ``depth``: lines of a traceback still open from the previous chunk (0: none).
    Returns ``(levels, depth left open)``."""
    out = chunk_levels(texts, joined)
    n = len(texts)
    idx, pos = 0, 0  # next line not yet decided, and where it starts in joined
    if depth:
        idx, pos, depth = _mark(out, joined, n, 0, 0, depth)
    for at in _opener_starts(joined, pos):
        if at < pos:  # inside a traceback marked meanwhile: there it is the final line, not an opener
            continue
        idx += joined.count("\n", pos, at)
        pos = at
        out[idx] = "error"
        nxt = joined.find("\n", at)
        if not joined.startswith(_TB_START, at):  # a chain header: error, opens nothing
            idx, pos = idx + 1, (nxt + 1 if nxt >= 0 else len(joined) + 1)
            continue
        if nxt < 0:
            return out, 1
        idx, pos, depth = _mark(out, joined, n, idx + 1, nxt + 1, 1)
        if depth:
            return out, depth
    return out, depth


def _opener_starts(joined: str, start: int) -> list[int]:
    """Positions ≥ ``start`` of the lines of ``joined`` that start with a traceback opener, in order."""
    found: set[int] = set()
    for opener in _TB_OPENERS:
        if joined.startswith(opener, start) and (start == 0 or joined[start - 1] == "\n"):
            found.add(start)
        at = joined.find("\n" + opener, max(start - 1, 0))
        while at >= 0:
            found.add(at + 1)
            at = joined.find("\n" + opener, at + 1)
    return sorted(found)


def _mark(out: list[str], joined: str, n: int, idx: int, pos: int, depth: int) -> tuple[int, int, int]:
    """Mark the open traceback from line ``idx`` (at ``pos``) with ``depth`` lines marked so far; returns
    ``(next line, its position, depth still open at the end of the chunk or 0)``."""
    room = _TB_MAX - depth  # lines that may still be marked before the cap closes it
    if joined.startswith(_TB_INNER, pos):
        m = _TB_END.search(joined, pos)
        end = idx + joined.count("\n", pos, m.start()) + 1 if m else n  # the first line not inside
    else:
        m, end = None, idx
    if end - idx >= room:  # the cap: lines idx .. idx+room-1 error, the next one keeps its own level
        cut = idx + room
        out[idx:cut] = ["error"] * room
        if cut >= n:
            return n, len(joined) + 1, 0 if cut > n else _TB_MAX
        return cut + 1, _line_after(joined, _nth_line(joined, pos, cut - idx)), 0
    if end >= n:  # still open at the end of the chunk
        out[idx:n] = ["error"] * (n - idx)
        return n, len(joined) + 1, depth + n - idx
    out[idx:end + 1] = ["error"] * (end + 1 - idx)  # the inner lines and the final exception line
    start = m.start() + 1 if m else pos  # where line `end` starts
    return end + 1, _line_after(joined, start), 0


def _nth_line(joined: str, pos: int, k: int) -> int:
    """Start of the ``k``-th line after the one starting at ``pos``."""
    for _ in range(k):
        pos = joined.find("\n", pos) + 1
    return pos


def _line_after(joined: str, pos: int) -> int:
    """Start of the line after the one starting at ``pos`` (past the end when it is the last)."""
    nxt = joined.find("\n", pos)
    return nxt + 1 if nxt >= 0 else len(joined) + 1

