"""Follow growing log files like ``tail -F``: rotation (rename + new file) and truncation handled.

Polling, not inotify: the caller calls :meth:`FileFollower.read_lines` on its own
clock (the progress service every second). Cost per poll: one ``fstat``, one
``stat`` and reading only the new bytes (at most ``max_bytes`` per call).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import BinaryIO


class FileFollower:
    """Yield complete new lines of ``path``.

    ``from_end=True`` skips what the file held when it was first seen (history is
    not replayed); a file that appears later is read from its start. After a
    rotation the rest of the old file is read before switching to the new one; a
    truncated file (size below the read offset) is read again from the start.
    Lines are decoded as UTF-8 with ``errors="replace"``, without the newline; a
    partial last line is kept until its newline arrives.
    """

    def __init__(self, path: Path, from_end: bool = True, max_bytes: int = 1 << 20) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._fh: BinaryIO | None = None
        self._partial = b""
        self._first = from_end
        if from_end:
            self._open()  # remember where the file ends now

    def close(self) -> None:
        """Close the open file (the next read reopens it from the start)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._partial = b""

    def _open(self) -> bool:
        try:
            self._fh = open(self.path, "rb")
        except OSError:
            self._fh = None
            self._first = False  # a file created later is read from its beginning
            return False
        if self._first:
            self._fh.seek(0, os.SEEK_END)
        self._first = False
        return True

    def read_lines(self) -> list[str]:
        """New complete lines since the last call (may be empty)."""
        if self._fh is None and not self._open():
            return []
        assert self._fh is not None
        lines = self._split(self._fh.read(self.max_bytes))
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return lines  # rotated away, the new file is not there yet: keep the old one open
        cur = os.fstat(self._fh.fileno())
        if (st.st_ino, st.st_dev) != (cur.st_ino, cur.st_dev):
            if cur.st_size > self._fh.tell():
                return lines  # old file not fully read yet; switch on a later call
            if self._partial:  # the rotated file's last line had no newline
                lines.append(self._partial.decode("utf-8", errors="replace"))
            self.close()
            if self._open():
                lines += self._split(self._fh.read(self.max_bytes))  # type: ignore[union-attr]
        elif st.st_size < self._fh.tell():  # truncated in place
            self._fh.seek(0)
            self._partial = b""
            lines += self._split(self._fh.read(self.max_bytes))
        return lines

    def _split(self, data: bytes) -> list[str]:
        buf = self._partial + data
        *lines, self._partial = buf.split(b"\n")
        return [ln.rstrip(b"\r").decode("utf-8", errors="replace") for ln in lines]


class GlobFollower:
    """Follow every file matching ``pattern`` (e.g. ``logs/training_*.log``); new matches join later."""

    def __init__(self, pattern: str, from_end: bool = True) -> None:
        self.pattern = pattern
        self._followers: dict[str, FileFollower] = {}
        for p in sorted(glob.glob(pattern)):
            self._followers[p] = FileFollower(Path(p), from_end=from_end)

    def read_lines(self) -> list[str]:
        """New lines of all matching files (file by file, sorted by name)."""
        for p in sorted(glob.glob(self.pattern)):
            if p not in self._followers:
                self._followers[p] = FileFollower(Path(p), from_end=False)
        out: list[str] = []
        for p in sorted(self._followers):
            out.extend(self._followers[p].read_lines())
        return out

    def close(self) -> None:
        """Close every file."""
        for f in self._followers.values():
            f.close()
