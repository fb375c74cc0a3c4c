"""The capture file: every line of the node's output with a timestamp and the pid.

Path: ``<state_dir>/logs/<node>/output.log``, rotated by size like the JSON log (issue #18): the
full file is renamed ``output.log.<YYYYmmddTHHMMSSZ>[-n]`` and gzipped (``.gz``, level 1, temp +
rename, 0600) by one background thread, which also deletes the oldest rotated files beyond
``backups`` (:func:`rotated_captures` lists them, oldest first). The write path only renames.
One record per line, UTF-8::

    2026-11-29T15:33:17.123456Z 12345 > text of the line

``ts`` is UTC with microseconds (the time the chunk holding the line was read; all
lines of one read share it), then the node pid, then a mark: ``>`` a complete
line, ``~`` a ``\\r`` redraw, ``?`` a partial line flushed after idle (a prompt),
``+`` a piece of a line longer than the splitter's cap (the rest follows), ``#``
a note written by GSwarm itself. ANSI escapes are removed (the text is for humans
and grep). The file is opened unbuffered: each batch is one ``write`` syscall, so
nothing is lost when GSwarm is killed.

A write that fails (disk full, EIO) never raises out of :meth:`CaptureFile.write_batch` /
:meth:`CaptureFile.note`: the file is cut back to its size before that write (no torn record), closed
(the next write reopens it), the lines are counted in ``lost`` and the failure goes to the ``alarm``
(:class:`gswarm.diskfull.DiskAlarm`; issue #13 case 2: ``note()`` raising ENOSPC out of the watcher
ended ``gswarm run``).

About 260 lines: the write path, its failure handling (cut back, reopen, report) and its rotation with
background compression are kept together (one file, one fd, one thread).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from gswarm.paths import gzip_file
from gswarm.supervisor.stream import CONTINUED, PARTIAL, REDRAW, Batch

GZIP_LEVEL = 1  # as the JSON log's rotated files (gswarm.logs.jsonlog.GZIP_LEVEL): fast, a flood rotates often
_MARKS = {0: ">", REDRAW: "~", PARTIAL: "?", CONTINUED: "+"}
_STAMPED = re.compile(r"\.(\d{8}T\d{6}Z)(?:-(\d+))?(\.gz)?$")


def rotated_captures(path: Path) -> list[Path]:
    """Rotated files of the capture ``path`` (plain or ``.gz``; a file being compressed once), oldest first."""
    found: dict[tuple[str, int], Path] = {}
    for p in Path(path).parent.glob(Path(path).name + ".*"):
        m = _STAMPED.fullmatch(p.name[len(Path(path).name):])
        if m:
            key = (m[1], int(m[2] or 0))
            if key not in found or not m[3]:  # X and X.gz both present for a moment: X
                found[key] = p
    return [found[k] for k in sorted(found)]
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})
"""Errors of the disk, not of the configuration: reported and retried instead of raised at construction."""
log = logging.getLogger(__name__)


def capture_path(state_dir: Path, node: str) -> Path:
    """``<state_dir>/logs/<node>/output.log`` (folders created, mode 0700).

    Raises ConfigError for a ``node`` that is not a safe name (``config.settings.node_name_problem``), so
    no name can place the file outside the state dir (settings check it first; this is the last guard).
    """
    from gswarm.config.settings import check_node_name

    check_node_name(node, "node_name")
    folder = Path(state_dir) / "logs" / node
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        # a full disk: CaptureFile reports it and creates the folder at its first write that can
    return folder / "output.log"


class _TsCache:
    """UTC ISO timestamp with microseconds; the second part is formatted once per second."""

    __slots__ = ("_sec", "_prefix")

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def format(self, ts: float) -> str:
        sec = int(ts)
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._prefix}.{int((ts - sec) * 1_000_000):06d}Z"


class CaptureFile:
    """Append-only, size-rotated capture of one node's output.

    ``max_bytes``: rotate when the file reaches this size (bytes, checked per
    batch, so a file may exceed it by one batch); ``backups``: rotated files kept
    (0 = truncate instead); ``alarm``: where write failures go (``failed``/``ok``,
    see :mod:`gswarm.diskfull`; None = logged only). Raises OSError when the file
    cannot be opened for a reason of configuration (e.g. the folder is not writable);
    a full or failing disk (:data:`DISK_ERRNOS`) is reported and the open retried at
    the next write; a later failure to write is reported, never raised; ``lost``
    counts the lines it dropped.
    """

    def __init__(self, path: Path, max_bytes: int = 50 * 1024 * 1024, backups: int = 10, alarm: Any = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.alarm = alarm
        self.lost = 0
        self._ts = _TsCache()
        self._tidy_lock = threading.Lock()
        self._tidy_thread: threading.Thread | None = None
        self._tidy_again = False
        self._fd = -1
        self._size = 0
        try:
            self._open()
        except OSError as exc:
            if exc.errno not in DISK_ERRNOS:
                raise
            self._report(exc)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size

    def write_batch(self, batch: Batch, ts: float, pid: int) -> None:
        """Append every line of ``batch`` read at ``ts`` (Unix seconds) from ``pid``. Never raises OSError."""
        texts = batch.texts
        if not texts:
            return
        head = f"{self._ts.format(ts)} {pid} "
        flags = batch.flags
        try:
            if flags is None or not any(flags):
                if batch.data is not None:  # the chunk's own bytes: no join/encode per line (the hot path)
                    start = (head + "> ").encode()
                    self._write_parts((start, batch.data.replace(b"\n", b"\n" + start), b"\n"))
                else:
                    sep = "\n" + head + "> "
                    self._write((head + "> " + sep.join(texts) + "\n").encode("utf-8", "replace"))
            else:
                marks = {f: f"{head}{_MARKS.get(f, '>')} " for f in set(flags)}  # one prefix per mark, joined in C
                self._write(("\n".join(map(str.__add__, map(marks.__getitem__, flags), texts)) + "\n").encode("utf-8", "replace"))
        except OSError as exc:
            self._failed(exc, len(texts))
            return
        if self.alarm is not None and self.alarm.active:
            self.alarm.ok()

    def note(self, text: str, ts: float, pid: int = 0) -> None:
        """Write a line of GSwarm's own (start, exit, restart) marked ``#`` (a newline in ``text``, e.g. of
        an argv with ``-c`` code, is written as ``\\n``: one record, one line). Never raises OSError."""
        if "\n" in text:
            text = text.replace("\n", "\\n")
        try:
            self._write(f"{self._ts.format(ts)} {pid} # {text}\n".encode("utf-8", "replace"))
        except OSError as exc:
            self._failed(exc, 1)
            return
        if self.alarm is not None and self.alarm.active:
            self.alarm.ok()

    def _failed(self, exc: OSError, lines: int) -> None:
        """A write failed: cut the file back to its last complete record, close it (reopened by the next
        write), count the lines and tell the alarm."""
        self.lost += lines
        if self._fd >= 0:
            try:
                os.ftruncate(self._fd, self._size)  # drop a partly written record (a short write before ENOSPC)
            except OSError:
                pass
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
        self._report(exc)

    def _report(self, exc: OSError) -> None:
        if self.alarm is not None:
            self.alarm.failed("capture file", exc, self.path)
        else:
            log.warning("cannot write %s: %s", self.path, exc)

    def _write(self, data: bytes) -> None:
        if self._fd < 0:
            self._open()
        if self._size and self._size + len(data) > self.max_bytes:
            self.rotate()
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._size += len(data)

    def _write_parts(self, parts: tuple[bytes, ...]) -> None:
        """Like :meth:`_write` for the concatenation of ``parts``, in one ``writev`` (no join copy)."""
        total = sum(map(len, parts))
        if self._fd < 0:
            self._open()
        if self._size and self._size + total > self.max_bytes:
            self.rotate()
        n = os.writev(self._fd, parts)
        if n < total:  # short write (disk nearly full, signal): finish it the slow way
            view = memoryview(b"".join(parts))[n:]
            while view:
                view = view[os.write(self._fd, view):]
        self._size += total

    def rotate(self) -> None:
        """``output.log`` → ``output.log.<stamp>``, then gzipped and pruned in the background
        (:meth:`tidy`); ``backups`` 0: truncated instead."""
        os.close(self._fd)
        self._fd = -1
        if self.backups <= 0:
            os.truncate(self.path, 0)
        else:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            existing = rotated_captures(self.path)
            last = _STAMPED.search(existing[-1].name) if existing else None
            stamp = max(stamp, last[1]) if last else stamp  # names stay in write order if the clock steps back
            n = int(last[2] or 0) + 1 if last and last[1] == stamp else 0  # after the newest, never in a pruned gap
            target = self.path.with_name(f"{self.path.name}.{stamp}" + (f"-{n}" if n else ""))
            while target.exists() or target.with_name(target.name + ".gz").exists():
                n += 1
                target = self.path.with_name(f"{self.path.name}.{stamp}-{n}")
            os.replace(self.path, target)
            self._start_tidy()
        self._open()

    def _start_tidy(self) -> None:
        with self._tidy_lock:
            if self._tidy_thread is not None and self._tidy_thread.is_alive():
                self._tidy_again = True  # the running pass looks again before it ends
                return
            self._tidy_again = False
            try:
                loop = asyncio.get_running_loop()  # a failure is reported on it (the alarm is not thread-safe)
            except RuntimeError:
                loop = None
            self._tidy_thread = threading.Thread(target=self._tidy_loop, args=(loop,), name="gswarm-capture-gzip", daemon=True)
            self._tidy_thread.start()

    def _tidy_loop(self, loop: Any) -> None:
        while True:
            try:
                self.tidy()
            except OSError as exc:  # a full disk: the plain rotated file stays; the next rotation tries again
                if loop is not None:
                    try:
                        loop.call_soon_threadsafe(self._report, exc)
                    except RuntimeError:  # the loop is closed: nobody to tell
                        pass
                else:
                    log.warning("cannot compress rotated files of %s: %s", self.path, exc)
            with self._tidy_lock:
                if not self._tidy_again:
                    self._tidy_thread = None
                    return
                self._tidy_again = False

    def tidy(self) -> int:
        """Gzip every plain rotated file (temp + rename, 0600), then delete the oldest beyond ``backups``;
        returns the number compressed. Runs in the background after a rotation (:meth:`wait_tidy`)."""
        n = 0
        for p in rotated_captures(self.path):
            if p.suffix != ".gz":
                gzip_file(p, GZIP_LEVEL)
                n += 1
        files = rotated_captures(self.path)
        for p in files[: max(0, len(files) - self.backups)]:
            p.unlink(missing_ok=True)
        return n

    def wait_tidy(self, timeout: float | None = None) -> None:
        """Wait until the background compression is done (tests, shutdown)."""
        thread = self._tidy_thread
        if thread is not None:
            thread.join(timeout)

    def close(self) -> None:
        """Close the file (idempotent); a later write reopens it."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
