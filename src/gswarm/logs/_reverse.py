"""Reading a log file from its end: plain files backwards in 64 KiB blocks, gzipped ones through a bounded deque.

Used by the tails of the JSON log and of the capture files (:mod:`gswarm.api.logfile`,
:mod:`gswarm.logs._captureread`), so a short tail of a long history reads only the end of each file.
"""

from __future__ import annotations

import gzip
import os
from collections import deque
from pathlib import Path
from typing import Callable, Iterator

_BLOCK = 64 * 1024


def reverse_lines(path: Path) -> Iterator[bytes]:
    """Non-blank lines of a plain file, newest first, read backwards in 64 KiB blocks (a multi-megabyte line
    stays linear: its pieces are joined once)."""
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


def lines_newest_first(path: Path, budget: int, twin: Callable[[Path], Path | None]) -> Iterator[bytes]:
    """Lines of a plain (read backwards) or gzipped file (its last ``budget`` lines), newest first; a listed
    file gone meanwhile is read from ``twin(path)`` (its ``.gz``) when that is not None."""
    if not path.name.endswith(".gz"):
        try:
            yield from reverse_lines(path)
        except FileNotFoundError:
            other = twin(path)
            if other is not None:
                yield from lines_newest_first(other, budget, twin)
        except OSError:
            pass
        return
    last: deque[bytes] = deque(maxlen=max(1, budget))
    try:
        with gzip.open(path, "rb") as fh:
            for line in fh:
                last.append(line.rstrip(b"\n"))
    except (EOFError, OSError):
        pass
    yield from reversed(last)
