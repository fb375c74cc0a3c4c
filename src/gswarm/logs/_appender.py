"""An append-only file that never leaves a torn record behind (issue #13 case 2: disk full).

:class:`Appender` buffers up to ``buffer`` bytes itself (instead of ``io.BufferedWriter``, whose buffer
cannot be discarded after a failed flush) and writes with plain ``os.write``. When a write fails
(ENOSPC, EIO …) :meth:`Appender.abort` cuts the file back to the size it had when it was opened, so what
was written before this batch stays intact and no half record is left for the next batch to append to.
"""

from __future__ import annotations

import os
from pathlib import Path


class Appender:
    """``Appender(path, mode=0o600, buffer=65536)``: ``write(bytes)``, ``tell()`` (bytes, buffered
    included), ``close()`` (flush; on failure cut back and raise OSError), ``abort()`` (cut back to the
    size at open, close; never raises). Raises OSError when the file cannot be opened."""

    def __init__(self, path: Path, mode: int = 0o600, buffer: int = 1 << 16) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, mode)
        self.base = self.written = os.fstat(self.fd).st_size
        self.limit = buffer
        self._parts: list[bytes] = []
        self._pending = 0

    def tell(self) -> int:
        return self.written + self._pending

    def write(self, data: bytes) -> None:
        self._parts.append(data)
        self._pending += len(data)
        if self._pending >= self.limit:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered (OSError on failure; the caller then calls :meth:`abort`)."""
        if not self._pending:
            return
        view = memoryview(b"".join(self._parts))
        self._parts, self._pending = [], 0
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
            self.written += n

    def close(self) -> None:
        """Flush and close; when the flush fails the file is cut back (:meth:`abort`) and OSError raised."""
        if self.fd < 0:
            return
        try:
            self.flush()
        except OSError:
            self.abort()
            raise
        os.close(self.fd)
        self.fd = -1

    def abort(self) -> None:
        """Drop the buffer, cut the file back to its size at open and close it (idempotent, never raises)."""
        self._parts, self._pending = [], 0
        if self.fd < 0:
            return
        try:
            os.ftruncate(self.fd, self.base)
        except OSError:
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.fd = -1
