"""Bytes → lines without loss: the hot path of the whole product.

:class:`LineSplitter` is fed raw chunks (``bytes`` as read from the node's pipe
or pty) and returns :class:`Batch` objects (parallel lists, so the common case
costs one C-level ``decode`` and one ``split`` per chunk, not Python work per
character).

Rules (a line is what a terminal would show on one row):

* ``\\n`` and ``\\r\\n`` end a line (a chunk whose every ``\\r`` ends a ``\\r\\n``, what a pty
  gives in script mode, costs two C-level passes more than a ``\\n`` chunk). A bare ``\\r`` (a progress redraw, e.g. tqdm)
  ends a line too; such a line gets :data:`REDRAW` so a console can draw it in
  place while the capture keeps every state. Empty redraw segments (``\\r`` right
  after a line end, or ``\\r\\r``) carry nothing and are dropped.
* Invalid UTF-8 is decoded with ``errors="replace"`` (U+FFFD); a multi-byte
  character split across two chunks is decoded whole.
* ANSI escape sequences (CSI, OSC, two-byte ESC) are removed from ``texts``;
  ``raws`` keeps them (same list object when the chunk had no ESC byte; split on first use when
  the splitter kept only their joined text, :attr:`Batch.raw_text`).
* Lines of 1 MiB and more are kept whole up to ``max_line`` bytes (default
  8 MiB). A longer line is cut into pieces of at most ``max_line`` bytes (at a
  UTF-8 character boundary); every piece but the last has :data:`CONTINUED`.
* A partial line without terminator (a prompt such as ``[Y/n] ``) stays pending
  until :meth:`LineSplitter.flush_partial`, which the caller invokes after
  ``prompt_idle`` seconds without output (the splitter itself has no clock). The
  flushed piece has :data:`PARTIAL`; what follows on the same row later becomes
  a line of its own. :meth:`LineSplitter.close` flushes at end of stream.
"""

from __future__ import annotations

import operator
import re
from itertools import compress
from typing import Iterator, NamedTuple

from gswarm.ansi import strip_ansi

REDRAW = 1
PARTIAL = 2
CONTINUED = 4
DEFAULT_MAX_LINE = 8 * 1024 * 1024
_TERMS = re.compile("(\r\n|\n|\r)")
_FLAG = {"\n": 0, "\r\n": 0, "\r": REDRAW}
_LONE_CR = re.compile(rb"\r(?!\n)")



class Line(NamedTuple):
    """One line for tests and slow consumers: ``text`` (no ANSI), ``raw``, ``flags``."""

    text: str
    raw: str
    flags: int = 0

    @property
    def redraw(self) -> bool:
        return bool(self.flags & REDRAW)

    @property
    def partial(self) -> bool:
        return bool(self.flags & PARTIAL)

    @property
    def continued(self) -> bool:
        return bool(self.flags & CONTINUED)


class Batch:
    """Lines from one chunk: ``texts``, ``raws`` (may be ``texts`` itself), ``flags`` (None = all 0).

    ``data``: when not None, the UTF-8 bytes of ``"\n".join(texts)`` (set by the common path for
    a chunk without ``\r`` or invalid UTF-8: the bytes as read, or for a chunk with ANSI escapes
    the stripped text encoded once), so the capture file and a console that is no terminal can
    write the chunk without joining and encoding every line.

    ``raw_text``: when not None, ``"\n".join(raws)``, given instead of ``raws`` (pass ``raws=None``):
    the common path's coloured chunk, whose raw lines only a terminal console asks for, so ``raws``
    splits it on first use (issue #18: a split per chunk less, ~0.06 µs a line). ``joined``: when not
    None, ``"\n".join(texts)``, which the common path has anyway (the subscribers' prefilters search it).
    Raises ValueError when neither ``raws`` nor ``raw_text`` is given.
    """

    __slots__ = ("texts", "_raws", "raw_text", "flags", "data", "joined")

    def __init__(self, texts: list[str], raws: list[str] | None, flags: list[int] | None = None,
                 data: bytes | None = None, raw_text: str | None = None, joined: str | None = None) -> None:
        if raws is None and raw_text is None:
            raise ValueError("Batch needs raws or raw_text")
        self.texts = texts
        self._raws = raws
        self.raw_text = raw_text
        self.flags = flags
        self.data = data
        self.joined = joined

    @property
    def raws(self) -> list[str]:
        """The lines as received (colours kept); ``texts`` itself when the chunk had no escape."""
        if self._raws is None:
            self._raws = self.raw_text.split("\n")  # type: ignore[union-attr]  # raw_text is set (__init__)
        return self._raws

    def __len__(self) -> int:
        return len(self.texts)

    def lines(self) -> Iterator[Line]:
        """Iterate as :class:`Line` tuples (convenient, slower than the lists)."""
        flags = self.flags or [0] * len(self.texts)
        return map(Line, self.texts, self.raws, flags)


EMPTY = Batch([], [])


def _char_cut(data: bytes, limit: int) -> int:
    """Largest cut ≤ ``limit`` that does not split a UTF-8 character (≥ limit-3)."""
    cut = limit
    while cut > limit - 3 and cut < len(data) and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


class LineSplitter:
    """Incremental splitter; see the module docstring for the rules.

    ``max_line``: hard cap of one line in bytes (pieces beyond it are marked
    CONTINUED). Not thread-safe; one per stream.
    """

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 8:
            raise ValueError("max_line must be at least 8 bytes")
        self.max_line = max_line
        self._pending = b""

    @property
    def pending(self) -> int:
        """Bytes of the unterminated tail waiting for a terminator or a flush."""
        return len(self._pending)

    def feed(self, data: bytes) -> Batch:
        """Split ``data`` (appended to the pending tail); returns the completed lines."""
        if self._pending:
            data = self._pending + data
        if len(data) > self.max_line:
            return self._split_generic(data)
        tail = b""
        if b"\r" in data:
            if data[-1] == 13:  # maybe half of \r\n: kept pending
                data, tail = data[:-1], b"\r"
            if _LONE_CR.search(data):  # a redraw: not every \r ends a \r\n line
                return self._split_generic(data + tail)
            # every \r ends a \r\n line (a pty's output, ONLCR: script mode): the same lines as \n ends,
            # at the cost of two C-level passes (a terminator split cost ~6x a plain chunk; issue #18)
            data = data.translate(None, b"\r")
        end = data.rfind(b"\n")
        if end < 0:
            self._pending = data + tail
            return EMPTY
        self._pending = data[end + 1 :] + tail
        chunk = data[:end]
        text = chunk.decode("utf-8", "replace")
        if "\x1b" not in text:
            raws = text.split("\n")
            # U+FFFD test is O(1) for an ASCII text; without it the decode was lossless
            return Batch(raws, raws, None, None if "\ufffd" in text else chunk, joined=text)
        plain = strip_ansi(text)  # the one unavoidable cost of a coloured chunk (~0.075 µs per escape)
        # its bytes come at memcpy speed: the capture and a console that is no terminal write them as
        # they write a chunk without escapes, not line by line; the raw lines are split only when a
        # terminal asks for them (issue #18)
        return Batch(plain.split("\n"), None, None, None if "\ufffd" in plain else plain.encode(), raw_text=text,
                     joined=plain)

    def _split_generic(self, data: bytes) -> Batch:
        """Chunks with ``\r`` or longer than ``max_line``: :meth:`_split_redraws` when no line can pass
        ``max_line``, else line by line."""
        if len(data) <= self.max_line:
            return self._split_redraws(data)
        return self._split_long(data)

    def _split_redraws(self, data: bytes) -> Batch:
        """A chunk with ``\r`` (tqdm bars): one decode and one C-level split on the terminators for the
        whole chunk instead of two ``find`` and a ``decode`` per line (issue #18: a redraw flood cost
        2.4x a plain line). Same lines and flags as :meth:`_split_long`."""
        last = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if last == len(data) - 1 and data[last] == 13:  # maybe half of \r\n: keep the \r pending
            last -= 1
            while last >= 0 and data[last] not in (10, 13):
                last -= 1
        self._pending = data[last + 1:]
        if last < 0:
            return EMPTY
        text = data[:last + 1].decode("utf-8", "replace")
        if text.count("\n") * 4 <= text.count("\r"):  # mostly redraws (a tqdm bar): Python work per line end, not per segment
            raws, flags = self._redraw_rows(text)
        else:
            raws, flags = self._terms_split(text)
        texts = strip_ansi("\n".join(raws)).split("\n") if b"\x1b" in data and raws else raws  # no escape spans a \n
        return Batch(texts, raws, flags)

    @staticmethod
    def _redraw_rows(text: str) -> tuple[list[str], list[int]]:
        """``text`` (ending with a terminator) cut at each ``\n`` (C-level), then each row at its ``\r``s:
        the segments before a ``\r`` are REDRAW (empty ones dropped), the last one of a row ended by
        ``\n`` (or ``\r\n``) a line. Same lines and flags as :meth:`_terms_split`."""
        raws: list[str] = []
        flags: list[int] = []
        rows = text.split("\n")
        last = rows.pop()  # after the final "\n": "" or redraw segments ending in "\r"
        for row in rows:
            segs = row.split("\r")
            line = segs.pop()
            if not line and segs and row.endswith("\r"):  # "…\r\n": the segment before the \r is the line
                line = segs.pop()
            segs = list(filter(None, segs))
            raws += segs
            flags += [REDRAW] * len(segs)
            raws.append(line)
            flags.append(0)
        segs = list(filter(None, last.split("\r")))
        raws += segs
        flags += [REDRAW] * len(segs)
        return raws, flags

    @staticmethod
    def _terms_split(text: str) -> tuple[list[str], list[int]]:
        """``text`` (ending with a terminator) split on every terminator by one C-level regex split."""
        parts = _TERMS.split(text)  # seg, term, seg, term, …, "" (text ends with a terminator)
        raws = parts[0:len(parts) - 1:2]
        flags = list(map(_FLAG.__getitem__, parts[1::2]))  # C-level: no Python work per line
        if text[0] == "\r" or "\n\r" in text or "\r\r" in text:  # maybe an empty redraw segment: it carries nothing
            keep = list(map(operator.or_, map(bool, raws), map(operator.not_, flags)))  # a text, or not a redraw
            raws, flags = list(compress(raws, keep)), list(compress(flags, keep))
        return raws, flags

    def _split_long(self, data: bytes) -> Batch:
        """Line-by-line path for chunks longer than ``max_line``."""
        raws: list[str] = []
        flags: list[int] = []
        pos, n, limit = 0, len(data), self.max_line
        while pos < n:
            nl = data.find(b"\n", pos, pos + limit + 1)
            cr = data.find(b"\r", pos, nl if nl >= 0 else pos + limit + 1)
            t = cr if cr >= 0 else nl
            if t < 0:
                if n - pos <= limit:
                    break  # unterminated tail: pending
                cut = _char_cut(data, pos + limit)
                raws.append(data[pos:cut].decode("utf-8", "replace"))
                flags.append(CONTINUED)
                pos = cut
                continue
            if t == cr:
                if t + 1 == n:
                    break  # maybe half of \r\n: wait for the next byte
                if data[t + 1] != 10:
                    if t > pos:
                        raws.append(data[pos:t].decode("utf-8", "replace"))
                        flags.append(REDRAW)
                    pos = t + 1
                    continue
            raws.append(data[pos:t].decode("utf-8", "replace"))
            flags.append(0)
            pos = t + 2 if t == cr else t + 1
        self._pending = data[pos:]
        texts = [strip_ansi(r) for r in raws] if b"\x1b" in data else raws
        return Batch(texts, raws, flags)

    @staticmethod
    def _piece(data: bytes, flag: int) -> Batch:
        raw = data.decode("utf-8", "replace")
        return Batch([strip_ansi(raw)], [raw], [flag])

    def flush_partial(self) -> Batch:
        """Emit the pending tail as a PARTIAL line (call after ``prompt_idle`` of silence).

        A pending lone ``\\r`` (maybe half of ``\\r\\n``) is kept back; returns EMPTY when
        nothing is pending.
        """
        data = self._pending
        if not data or data == b"\r":
            return EMPTY
        keep = b"\r" if data.endswith(b"\r") else b""
        self._pending = keep
        if keep:
            data = data[:-1]
        return self._piece(data, PARTIAL)

    def close(self) -> Batch:
        """End of stream: the unterminated tail (if any) as a PARTIAL line.

        A final bare ``\r`` ends a REDRAW line (nothing can follow it any more).
        """
        data, self._pending = self._pending, b""
        if data.endswith(b"\r"):
            return self._piece(data[:-1], REDRAW) if len(data) > 1 else EMPTY
        return self._piece(data, PARTIAL) if data else EMPTY
