"""What ``gswarm run`` shows: the node's output as it comes, GSwarm's own events in Rich style.

Node lines are written as they are (colours kept on a terminal, stripped
otherwise; ``\\r`` redraws drawn in place on a terminal). Events are one line
each, prefixed ``gswarm``. Secrets never reach this view: the plan shows the
masked env only, and answers to secret prompts are masked by script mode.

The console must never stall the supervisor (issue #18 follow-up): as a service stdout is journald's
stream socket, and a slow or stuck reader (journald rate-limited or on a full disk, ``| less`` nobody
scrolls, a stalled SSH session) would block a synchronous write on the event loop — no reading of the
node's pipe, no health checks, no watchdog pings, no API. So when ``out`` has a file descriptor, every byte
this view writes goes through :class:`ConsoleWriter`: the loop only appends to a queue bounded in bytes,
one daemon thread writes it out. When the bound is hit node output is dropped (counted, and told in one
line where the gap is); GSwarm's own lines have a small extra allowance. A sink without a descriptor
(``io.StringIO`` in tests) lives in memory, cannot block, and is written synchronously as before.
The writer lives here, not in a module of its own, because the view is its only user (module ~430 lines).
"""

from __future__ import annotations

import logging
import os
import select
import shlex
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Sequence, TextIO

from rich.console import Console
from rich.markup import escape

from gswarm.ansi import terminal_safe
from gswarm.events import (Event, Incident, Notice, ProcessExited, ProcessStarted, Recovery, RecoveryAction,
                           RestartScheduled, Severity, StateChanged)
from gswarm.supervisor.stream import REDRAW, Batch

_SEV_STYLE = {Severity.DEBUG: "dim", Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.ERROR: "red",
              Severity.CRITICAL: "bold red"}

LIMIT = 4 << 20  # bytes queued for stdout before node output is dropped
ALLOWANCE = 256 << 10  # extra bytes GSwarm's own lines may queue beyond LIMIT
DRAIN_TIMEOUT = 2.0  # s (monotonic) gswarm run waits at exit for the console to take the last lines
_MAX_PARTS = 512  # iovecs per writev (IOV_MAX is 1024 on Linux)
_MAX_BATCH = 1 << 20  # bytes per writev


def notice_line(lines: int, own: int, logs_args: str = "") -> str:
    """The line written where output was dropped: ``lines`` node lines and ``own`` of GSwarm's lines
    (counts ≥ 0, one of them > 0); ``logs_args`` is appended to the ``gswarm logs`` commands it names (e.g.
    ``--state-dir /srv/gswarm``, so they can be run as printed); ends in ``\\n``."""
    parts = []
    if lines:
        parts.append(f"{lines:,} lines of node output")
    if own:
        parts.append(f"{own:,} of GSwarm's own lines")
    tail = f" {logs_args}" if logs_args else ""
    return (f"gswarm: {' and '.join(parts)} not shown here (stdout was not keeping up); every line is in the "
            f"capture: gswarm logs --category output{tail}" + (f"; GSwarm's lines: gswarm logs{tail}" if own else "") + "\n")


def fd_sink(fd: int) -> Callable[[list[bytes]], None]:
    """A sink for :class:`ConsoleWriter` writing ``parts`` to ``fd`` completely with ``os.writev``
    (partial writes continued; a descriptor someone made non-blocking is waited on with ``poll``).
    Raises OSError (EPIPE, EIO, ENOSPC …) as the write does."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)

    def write(parts: list[bytes]) -> None:
        views: list[Any] = list(parts)
        i = 0
        while i < len(views):
            try:
                n = os.writev(fd, views[i:i + _MAX_PARTS])
            except BlockingIOError:
                poller.poll(1000)
                continue
            while i < len(views) and n >= len(views[i]):
                n -= len(views[i])
                i += 1
            if n:
                views[i] = memoryview(views[i])[n:]
    return write


class ConsoleWriter:
    """A queue bounded in bytes between the event loop and a slow console, drained by one daemon thread.

    Why a thread and not a non-blocking descriptor: O_NONBLOCK is a flag of the open file description,
    shared with the shell and every other process writing to the same terminal or pipe (they would get
    EAGAIN after we set it, and ``cat`` / the shell do not retry); a regular file or a stuck disk ignores
    it anyway. A thread blocked in ``writev`` releases the GIL and blocks nobody but itself.

    ``sink(parts)`` writes every byte of ``parts`` (a list of bytes, in order) or raises OSError; it runs
    only in the writer thread. ``put(parts, lines, own)`` is called from any thread (the loop, Rich's
    refresh thread) and never blocks on the sink: node output (``own`` False) is queued while fewer than
    ``limit`` bytes are pending (bytes queued or being written), GSwarm's own lines while fewer than
    ``limit + allowance``; an empty queue takes anything. Once node output was dropped, more is dropped
    until the writer is down to ``limit // 2`` pending bytes (so a reader that barely keeps up gets one
    notice per half queue, not one per chunk). Dropped lines are counted; the next item let through is
    preceded by :func:`notice_line` with the counts, so the notice stands exactly where the gap is, and
    order is kept. An OSError from the sink (EPIPE/EIO: the reader went away) sets ``broken``: everything
    is dropped from then on, silently. ``close(timeout)`` drains with a bounded wait on the monotonic clock.
    """

    def __init__(self, sink: Callable[[list[bytes]], None], limit: int = LIMIT, allowance: int = ALLOWANCE,
                 monotonic: Callable[[], float] = time.monotonic, name: str = "gswarm-console",
                 notice: Callable[[int, int, str], str] = notice_line) -> None:
        if limit <= 0 or allowance < 0:
            raise ValueError(f"ConsoleWriter: limit must be > 0 and allowance ≥ 0 bytes (got {limit}, {allowance})")
        self._sink, self.limit, self.allowance, self._monotonic = sink, limit, allowance, monotonic
        self._notice = notice  # (node lines, own lines, logs_args) -> the line written where the gap is
        self._items: deque[bytes] = deque()
        self._cond = threading.Condition(threading.Lock())
        self.pending = 0  # bytes queued or being written
        self._dropping = False
        self._gap_lines = self._gap_own = 0  # dropped since the last notice
        self.dropped_lines = self.dropped_own = 0  # in all
        self.broken = False
        self._closed = False
        self._open_line = False  # the last byte queued was not a newline (a terminal redraw in progress)
        self._idle = False
        self.logs_args = ""  # appended to the notice's `gswarm logs` commands (RunView.state_dir_is)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, parts: Sequence[bytes], lines: int = 1, own: bool = False) -> bool:
        """Queue ``parts`` (``lines`` lines: what a drop counts); True when queued, False when dropped."""
        size = 0
        for p in parts:
            size += len(p)
        if not size:
            return True
        with self._cond:
            if self.broken or self._closed:
                return False
            pending = self.pending
            if pending:
                if own:
                    room = pending + size <= self.limit + self.allowance
                elif self._dropping:
                    room = pending <= self.limit // 2 and pending + size <= self.limit
                else:
                    room = pending + size <= self.limit
                if not room:
                    if own:
                        self._gap_own += lines
                        self.dropped_own += lines
                    else:
                        self._dropping = True
                        self._gap_lines += lines
                        self.dropped_lines += lines
                    return False
            if not own:
                self._dropping = False
            items = self._items
            if (self._gap_lines or self._gap_own) and self._queue_notice() and parts[0][:1] == b"\n":
                parts = [parts[0][1:], *parts[1:]]  # the notice closed the redraw row this item would have closed
                size -= 1
            items.extend(parts)
            self.pending += size
            self._open_line = next((p[-1:] != b"\n" for p in reversed(parts) if p), False)
            if self._idle:
                self._cond.notify()
        return True

    def _queue_notice(self) -> bool:
        """Queue the notice for the current gap (lock held); True when it had to close an open row first."""
        closed = self._open_line
        data = (("\n" if closed else "") + self._notice(self._gap_lines, self._gap_own, self.logs_args)).encode()
        self._items.append(data)
        self.pending += len(data)
        self._gap_lines = self._gap_own = 0
        self._open_line = False
        return closed

    def _run(self) -> None:
        cond, items = self._cond, self._items
        while True:
            with cond:
                while not items and not self._closed:
                    self._idle = True
                    cond.wait()
                    self._idle = False
                if not items:
                    return
                batch, size = [], 0
                while items and len(batch) < _MAX_PARTS and size < _MAX_BATCH:
                    part = items.popleft()
                    batch.append(part)
                    size += len(part)
            try:
                self._sink(batch)
            except OSError:
                with cond:
                    self.broken = True
                    items.clear()
                    self.pending = 0
                    cond.notify_all()
                return
            with cond:
                self.pending -= size
                if not self.pending:
                    cond.notify_all()

    def close(self, timeout: float = DRAIN_TIMEOUT) -> bool:
        """Stop taking output, queue the notice for a gap still open, and wait at most ``timeout`` s
        (monotonic) for the writer to write everything. True when all was written; False when the sink
        is still stuck (the daemon thread is left behind and dies with the process) or broke."""
        with self._cond:
            if not self._closed:
                self._closed = True
                if (self._gap_lines or self._gap_own) and not self.broken:
                    self._queue_notice()
                self._cond.notify_all()
            end = self._monotonic() + timeout
            while self.pending and not self.broken:
                left = end - self._monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return not self.broken


STDERR_LIMIT = 256 << 10  # bytes of GSwarm's log messages queued for stderr before they are dropped
_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"  # as gswarm run's logging.basicConfig had it


def stderr_notice(lines: int, own: int, logs_args: str = "") -> str:
    """The line written to stderr where GSwarm's log messages were dropped (``lines + own`` of them). They
    are not kept anywhere else (warnings such as a failed heartbeat are not events of the JSON log)."""
    return f"gswarm: {lines + own:,} of GSwarm's log messages dropped here (stderr was not keeping up)\n"


class StderrLogHandler(logging.Handler):
    """A ``logging`` handler writing formatted records to ``fd`` (stderr) through a :class:`ConsoleWriter`,
    so a record logged on the event loop never waits for the reader: as a service stderr is journald too,
    and a stuck journald would otherwise stop the supervisor at its next warning. Beyond ``limit`` queued
    bytes records are dropped and counted; :func:`stderr_notice` stands where the gap is. ``finish(timeout)``
    drains for at most ``timeout`` s (monotonic) and stops the writer; ``close()`` (what ``logging`` calls,
    also from ``dictConfig`` when uvicorn starts the API) leaves it running."""

    def __init__(self, fd: int = 2, limit: int = STDERR_LIMIT) -> None:
        super().__init__()
        self.writer = ConsoleWriter(fd_sink(fd), limit, 0, name="gswarm-stderr", notice=stderr_notice)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - logging's own contract: a bad record must not raise
            self.handleError(record)
            return
        self.writer.put([data], lines=1, own=True)

    def finish(self, timeout: float = DRAIN_TIMEOUT) -> bool:
        """Write what is queued (at most ``timeout`` s, monotonic) and stop; True when all was written."""
        done = self.writer.close(timeout)
        super().close()
        return done


def install_stderr_log(level: int = logging.WARNING) -> StderrLogHandler | None:
    """Send the root logger to stderr through :class:`StderrLogHandler` (as ``logging.basicConfig`` would,
    and only when the root logger has no handler yet and stderr has a descriptor). Returns the handler, to
    be removed and closed at exit (:func:`remove_stderr_log`), or None when nothing was installed."""
    root = logging.getLogger()
    fd = _fileno(sys.stderr)
    if root.handlers or fd is None:
        logging.basicConfig(level=level, format=_LOG_FORMAT)  # no-op with handlers, synchronous without fd
        return None
    handler = StderrLogHandler(fd)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def remove_stderr_log(handler: StderrLogHandler | None, timeout: float = DRAIN_TIMEOUT) -> None:
    """Undo :func:`install_stderr_log`: the last messages are written (at most ``timeout`` s)."""
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.finish(timeout)


class _ConsoleFile:
    """The text file Rich's Console writes to when the view has a writer: each ``write`` is queued as
    GSwarm's own output (encoded like ``out``); ``isatty``/``encoding`` are ``out``'s so Rich picks the
    same colours and characters as before."""

    def __init__(self, view: RunView) -> None:
        self._view = view
        self.encoding = getattr(view.out, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        self._view._own(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:  # no fileno(): nothing may write around the queue
        return self._view.tty


def _fileno(out: Any) -> int | None:
    try:
        return int(out.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError + ValueError
        return None


class RunView:
    """Console for one ``gswarm run``: ``lines(batch, ts)`` for node output, ``event(ev)`` for the bus.

    ``out`` (default ``sys.stdout``) with a file descriptor gets a :class:`ConsoleWriter` (``limit`` /
    ``allowance`` in bytes) unless ``threaded`` is False; call :meth:`close` before exiting. Without a
    descriptor (in-memory sinks) writes are synchronous, as they cannot block.
    """

    def __init__(self, out: TextIO | None = None, *, threaded: bool | None = None, limit: int = LIMIT,
                 allowance: int = ALLOWANCE) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        fd = _fileno(self.out)
        self.writer: ConsoleWriter | None = None
        if fd is not None and threaded is not False:
            try:
                self.out.flush()  # what was printed before the view existed comes first
            except OSError:
                pass  # a stdout already gone: the writer finds out and turns the view off
            self._enc = self.out.encoding if isinstance(getattr(self.out, "encoding", None), str) else "utf-8"
            self.writer = ConsoleWriter(fd_sink(fd), limit, allowance)
        self.console = Console(file=_ConsoleFile(self) if self.writer else self.out,  # type: ignore[arg-type]
                               highlight=False, soft_wrap=True)
        self._in_redraw = False
        self._restarts = 0  # RestartScheduled seen: tells a streak reset (#1 again) from the first restart
        self._broken = False
        self.multi = False  # several nodes (one host): every line names its node

    @property
    def broken(self) -> bool:
        """The terminal went away (SSH drop: EIO/EPIPE); output is dropped from then on."""
        return self._broken or (self.writer is not None and self.writer.broken)

    @broken.setter
    def broken(self, value: bool) -> None:
        self._broken = value

    def state_dir_is(self, state_dir: Any) -> None:
        """Name ``state_dir`` in the drop notice's ``gswarm logs`` commands (quoted for a shell), so they
        read this run's logs when pasted."""
        if self.writer is not None:
            self.writer.logs_args = f"--state-dir {shlex.quote(str(state_dir))}"

    def close(self, timeout: float = DRAIN_TIMEOUT) -> bool:
        """Drain the writer (at most ``timeout`` s): True when every queued line was written (or there is
        no writer). A stuck stdout costs ``timeout`` and no more."""
        return self.writer.close(timeout) if self.writer is not None else True

    def _guard(self, write: Any) -> None:
        """Run ``write()``; an OSError (hung-up terminal, closed pipe) turns the view off instead of
        raising into the supervisor's output pump or bus while ``gswarm run`` stops gracefully."""
        if self.broken:
            return
        try:
            write()
        except OSError:
            self.broken = True

    def _node(self, text: str, lines: int, was_redraw: bool) -> None:
        """Write node output ``text`` (``lines`` lines); a drop restores the redraw state it was drawn in."""
        if self.writer is None:
            self.out.write(text)
            self.out.flush()
        elif not self.writer.put((text.encode(self._enc, "replace"),), lines):
            self._in_redraw = was_redraw

    def _own(self, text: str) -> None:
        """Write GSwarm's own ``text`` (Rich's rendered lines, or the newline ending a redraw)."""
        if self.writer is None:
            self.out.write(text)
        else:
            self.writer.put((text.encode(self._enc, "replace"),), text.count("\n") or 1, own=True)

    def lines(self, batch: Batch, ts: float) -> None:
        """Write one batch of node output (``ts`` unused: the node's lines carry their own times)."""
        self._guard(lambda: self._lines(batch))

    def _lines(self, batch: Batch) -> None:
        data = getattr(batch, "data", None)
        if data is not None and not self.tty and not self._in_redraw:
            # not a terminal (a file, a pipe, /dev/null): the chunk's own bytes, no join + encode (issue #18)
            if self.writer is not None:
                self.writer.put((data, b"\n"), len(batch.texts))
                return
            buf = getattr(self.out, "buffer", None)
            if buf is not None:
                self.out.flush()
                buf.write(data)
                buf.write(b"\n")
                buf.flush()
                return
        was_redraw = self._in_redraw
        rows = batch.texts
        if self.tty and batch.raws is not batch.texts:  # colours for a terminal; nothing else from the node
            rows = [terminal_safe(r) for r in batch.raws]
        flags = batch.flags
        if not self.tty or not flags:
            text = "\n".join(rows) + "\n"
            if self._in_redraw:
                text, self._in_redraw = "\n" + text, False
        else:
            out = []
            for row, flag in zip(rows, flags):
                if flag & REDRAW:
                    out.append(f"\r{row}\x1b[K")
                    self._in_redraw = True
                else:
                    out.append(("\n" if self._in_redraw else "") + row + "\n")
                    self._in_redraw = False
            text = "".join(out)
        self._node(text, len(rows), was_redraw)

    def node_lines(self, node: str) -> Any:
        """With several nodes: a ``lines(batch, ts)`` callback that writes ``<node>| <line>`` per row
        (text without colours or redraws, so interleaved nodes stay readable)."""
        def write(batch: Batch, ts: float) -> None:
            self._guard(lambda: self._node("".join(f"{node}| {row}\n" for row in batch.texts), len(batch.texts),
                                           self._in_redraw))
        return write

    def say(self, text: str, style: str = "bold cyan") -> None:
        """One ``gswarm`` line (Rich markup in ``text``)."""
        self._guard(lambda: self._say(text, style))

    def _say(self, text: str, style: str) -> None:
        if self._in_redraw:
            self._own("\n")
            self._in_redraw = False
        self.console.print(f"[{style}]gswarm[/] {text}")

    def plan(self, spec: Any, node: str | None = None) -> None:
        """The generation, the mode, the argv and the notes (no secrets: argv carries none); ``node``
        prefixes every line with ``[node]`` (several nodes)."""
        tag = f"[bold]\\[{escape(node)}][/] " if node else ""
        self.say(f"{tag}generation [bold]{spec.generation}[/] ({escape(', '.join(spec.evidence[:3]))})")
        self.say(f"{tag}mode {spec.mode}: {escape(shlex.join(spec.argv))}  (cwd {escape(str(spec.cwd))})")
        for note in spec.notes:
            self.say(f"{tag}note: {escape(note)}", "yellow")

    def event(self, ev: Event) -> None:
        """One bus event as a ``gswarm`` line (with several nodes, prefixed by ``[node]``)."""
        if not self.multi:
            self._event(ev)
            return
        say = self.say
        self.say = lambda text, style="bold cyan": say(f"[bold]\\[{escape(ev.node)}][/] {text}", style)  # type: ignore[method-assign]
        try:
            self._event(ev)
        finally:
            self.say = say  # type: ignore[method-assign]

    def _event(self, ev: Event) -> None:  # noqa: C901 - a flat dispatch table
        if isinstance(ev, ProcessStarted):
            self.say(f"started node pid {ev.pid} (run {ev.run_id}, {ev.generation}, {ev.mode} mode)", "bold green")
        elif isinstance(ev, ProcessExited):
            self.say(f"node pid {ev.pid} {ev.words} after {ev.uptime:.1f}s", "bold green" if ev.requested else "bold yellow")
        elif isinstance(ev, Incident):
            self.say(f"cause: [bold]{ev.category.value}[/] (rule {escape(ev.rule_id)}, {ev.severity.value}) "
                     f"→ {ev.recovery.value}", _SEV_STYLE.get(ev.severity, "red"))
            for line in ev.evidence[-3:]:
                self.say(f"  evidence: {escape(line[:300])}", "dim")
            if ev.advice:
                self.say(f"  advice: {escape(ev.advice)}", "italic")
        elif isinstance(ev, RestartScheduled):
            self._restarts += 1
            self.say(restart_line(ev, self._restarts), "bold magenta")
        elif isinstance(ev, StateChanged):
            self.say(f"state {ev.old.value} → {ev.new.value}" + (f" ({escape(ev.reason)})" if ev.reason else ""), "dim")
        elif isinstance(ev, Notice):
            self.say(f"{escape(ev.title)}" + (f": {escape(ev.body)}" if ev.body else ""), _SEV_STYLE.get(ev.severity, "cyan"))
        elif isinstance(ev, RecoveryAction) and not ev.data.get("gave_up"):  # a give-up is told by its Notice
            if ev.recovery == Recovery.NONE:  # housekeeping (login files restored/backed up), not a recovery step
                self.say(f"note: {escape(ev.detail)}", "dim")
            else:
                self.say(f"recovery {ev.recovery.value}: {escape(ev.detail)}", "cyan")


def restart_line(ev: RestartScheduled, total: int) -> str:
    """The console line (Rich markup) for a scheduled restart: ``restart #N`` is the attempt within the
    current backoff streak (``ev.attempt``, ≥ 1); when it is #1 again after earlier restarts (``total``
    restarts seen by this view, this one included) the line says the streak was reset and how many
    restarts there were in all."""
    detail = ev.detail if ev.detail and not ev.detail.startswith(ev.cause.value) else ""
    reset = (f"; streak reset after a healthy run or a new kind of failure, {total} restarts in total"
             if ev.attempt <= 1 and total > 1 else "")
    return (f"restart #{ev.attempt} in [bold]{ev.delay:.1f}s[/] (cause {ev.cause.value}, recovery {ev.recovery.value}"
            f"{'; ' + escape(detail) if detail else ''}{reset})")
