"""One run of the node: spawn in its own session, stream its output, signal and reap it.

Longer than ~150 lines because spawning, reading, idle flushing and the stop
sequence share the same few pieces of state; split further they would leak it.

* Spawn: ``subprocess.Popen(argv, start_new_session=True)`` (no shell), stdout and
  stderr merged into one pipe (or one pty when ``spec.use_pty``), stdin a pipe
  (or the pty) for prompt answers, env = ``os.environ`` (or ``base_env``) + ``spec.env`` + extras.
* Read: ``loop.add_reader`` on the output fd (no thread per child), 1 MiB reads;
  after a read of ≥ 4 KiB the reader pauses 5 ms so a fast stream arrives in
  large batches (per-batch costs — loop wakeup, capture write — amortised over
  hundreds of lines; measured: 9,000 → ~300 reads per million lines), lines via :class:`~gswarm.supervisor.stream.LineSplitter`; a partial line is
  flushed after ``prompt_idle`` seconds of silence. Every batch goes to the
  capture file, then one :class:`~gswarm.events.OutputBatch` (all complete lines
  of the read) on the bus, then the ``on_batch`` callback (console, classifier, prompt answering).
* Ownership: the child's env gets ``GSWARM_RUN_MARKER=<fresh random hex>``
  (:data:`~gswarm.supervisor._procgroup.MARKER_VAR`); :attr:`NodeProcess.ownership`
  (marker + the leader's start stamp) proves which processes are this run's.
* Exit: a pidfd (Linux ≥ 5.3) wakes the loop when the leader exits, else a 0.2 s
  poll. After the leader exits, the rest of OUR group is ended (TERM, short
  grace, KILL), and so is every process carrying our marker that left the group
  (``setsid``), so no grandchild survives.
* Stop: SIGTERM to the group and escaped descendants, ``stop_timeout`` seconds,
  SIGKILL to them, reap; idempotent; :meth:`NodeProcess.kill` is the "kill now" path.
* Signals: ``killpg`` only while the leader is unreaped (its pid, hence the group
  id, cannot be recycled before we reap it); after that, and for escaped
  descendants, each pid is signalled alone after :class:`Ownership` proves it ours.
Grace periods here use the loop's real time (they wait for real processes).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import signal
import subprocess
import termios
from dataclasses import dataclass
from typing import Callable, Mapping

from gswarm.errors import LaunchError
from gswarm.events import EventBus, OutputBatch
from gswarm.supervisor._procgroup import (MARKER_VAR, Ownership, find_owned, live_members, new_marker, proc_info,
                                         signal_owned)
from gswarm.supervisor.capture import CaptureFile
from gswarm.supervisor.spec import LaunchSpec
from gswarm.supervisor.stream import Batch, LineSplitter

PIPE_SIZE = 1 << 20  # the node's stdout pipe (F_SETPIPE_SZ; Linux's default is 64 KiB)
READ_SIZE = 1 << 18  # bytes of one batch at most: the working set of a batch (the chunk, its text, its lines)
# then stays in a core's 1 MiB L2 cache; 1 MiB batches cost 5-12 % more per line on the 2-core EPYC VM (bench/kinds.py
# --chunk, best of 5: coloured 0.841 vs 0.785 µs, redraw 0.611 vs 0.538, plain 0.328 vs 0.313; issue #18)
READ_CHUNK = 1 << 16  # bytes per read(2) of a batch: a pipe read holds the pipe's lock while it copies, and
# the node's write(2) spins on that lock meanwhile (perf: mutex_spin_on_owner in the child's system time);
# one 1 MiB read held it ~10x longer than each 64 KiB read does (issue #18)
COALESCE_MIN = 4096  # bytes: a read this big means output is streaming…
COALESCE_DELAY = 0.005  # …so wait 5 ms before the next read (the 1 MiB pipe buffers; saves per-batch costs),
# unless the read took READ_SIZE: the pipe holds more, and when full the node is blocked in write(2)
F_SETPIPE_SZ = 1031

BatchCallback = Callable[[Batch, float], None]


@dataclass(frozen=True)
class ExitStatus:
    """How the leader ended: ``exit_code`` (None when killed) or ``signal`` number."""

    exit_code: int | None
    signal: int | None

    @classmethod
    def from_returncode(cls, rc: int) -> "ExitStatus":
        return cls(None, -rc) if rc < 0 else cls(rc, None)


def publish_batch(bus: EventBus, node: str, pid: int, batch: Batch, ts: float) -> None:
    """Publish ``batch`` (the complete lines of one read at ``ts``) as one :class:`OutputBatch`.

    One event per chunk, not per line: the bus and its inline subscribers run once
    per read (~300 per million lines on a busy stream), not once per line.
    ``raws`` is None when the chunk had no ANSI escape (or ``raw_text`` holds them, as the
    splitter kept them), ``flags`` None when no line is marked; ``data`` the chunk's bytes and
    ``joined_text`` its lines' joined text when the splitter kept them (:class:`Batch`).
    """
    texts, flags, raw_text = batch.texts, batch.flags, batch.raw_text
    raws = None if raw_text is not None or batch.raws is texts else tuple(batch.raws)
    bus.publish(OutputBatch(node, ts, pid, tuple(texts), raws, tuple(flags) if flags and any(flags) else None,
                            data=batch.data, raw_text=raw_text, joined_text=batch.joined))


class NodeProcess:
    """Start, stream, stop. ``await start()`` then ``await wait() -> ExitStatus``.

    ``time_fn`` gives wall seconds for timestamps; ``capture`` may be None;
    ``on_batch(batch, ts)`` sees every batch after the bus. Raises LaunchError when
    the argv cannot be executed.
    """

    def __init__(self, spec: LaunchSpec, node: str, bus: EventBus, time_fn: Callable[[], float],
                 capture: CaptureFile | None = None, on_batch: BatchCallback | None = None,
                 extra_env: Mapping[str, str] | None = None, prompt_idle: float = 0.3,
                 publish_lines: bool = True, base_env: Mapping[str, str] | None = None) -> None:
        self.spec, self.node, self.bus, self._time = spec, node, bus, time_fn
        self.capture, self.on_batch = capture, on_batch
        self.extra_env = dict(extra_env or {})
        self.base_env = base_env  # the inherited environment (None = os.environ at start)
        self.prompt_idle = prompt_idle
        self.publish_lines = publish_lines
        self.splitter = LineSplitter()
        self.popen: subprocess.Popen[bytes] | None = None
        self.pid = self.pgid = 0
        self.started_at = 0.0
        self.status: ExitStatus | None = None
        self.requested = False  # GSwarm asked it to stop
        self._fd = self._stdin_fd = -1
        self._pidfd = -1
        self._last_data = 0.0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._eof = asyncio.Event()
        self._exited = asyncio.Event()
        self._done = asyncio.Event()
        self._stopping: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.marker = new_marker()  # this start's GSWARM_RUN_MARKER value
        self.ownership: Ownership | None = None  # set once spawned (marker + leader start stamp)
        self._escaped: list[int] = []  # our marked processes outside the group, found by the last sweep
        self._stop_timeout = 2.0  # s: grace of the sweep after the leader's exit (capped at 2 s)

    # ----------------------------------------------------------------- spawn
    async def start(self) -> None:
        """Spawn the node; registers readers on the running loop."""
        self._loop = asyncio.get_running_loop()
        env = {**(os.environ if self.base_env is None else self.base_env), **self.spec.env, **self.extra_env,
               MARKER_VAR: self.marker}
        if self.spec.use_pty:
            master, slave = pty.openpty()
            attrs = termios.tcgetattr(slave)
            attrs[3] &= ~termios.ECHO  # answers (maybe secret) must not be echoed into the log
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            fds = (slave, slave, slave)
            read_fd, stdin_fd, close_after = master, master, [slave]
        else:
            r, w = os.pipe()
            ir, iw = os.pipe()
            try:
                fcntl.fcntl(r, F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass
            fds = (ir, w, w)
            read_fd, stdin_fd, close_after = r, iw, [w, ir]
        try:
            self.popen = subprocess.Popen(list(self.spec.argv), cwd=str(self.spec.cwd), env=env,
                                          stdin=fds[0], stdout=fds[1], stderr=fds[2], start_new_session=True)
        except OSError as exc:
            for fd in {read_fd, stdin_fd, *close_after}:
                os.close(fd)
            raise LaunchError(f"cannot start {self.spec.argv[0]!r} in {self.spec.cwd}: {exc.strerror or exc}; "
                              f"check --python / --rl-swarm-dir") from None
        finally:
            for fd in close_after:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.pid = self.pgid = self.popen.pid
        self.started_at = self._time()
        self.ownership = Ownership.of(self.pid, self.marker)  # unreaped, so even a zombie still has its stamp
        self._fd, self._stdin_fd = read_fd, stdin_fd
        os.set_blocking(read_fd, False)
        if stdin_fd != read_fd:
            os.set_blocking(stdin_fd, False)
        self._loop.add_reader(read_fd, self._on_readable)
        self._watch_exit()
        asyncio.ensure_future(self._finish())

    def _watch_exit(self) -> None:
        assert self._loop is not None
        try:
            self._pidfd = os.pidfd_open(self.pid)
            self._loop.add_reader(self._pidfd, self._on_exit_ready)
        except (AttributeError, OSError):
            self._loop.call_later(0.2, self._poll_exit)

    def _poll_exit(self) -> None:
        if not self._reap():
            self._loop.call_later(0.2, self._poll_exit)  # type: ignore[union-attr]

    def _on_exit_ready(self) -> None:
        if self._reap():
            self._loop.remove_reader(self._pidfd)  # type: ignore[union-attr]
            os.close(self._pidfd)
            self._pidfd = -1

    def _reap(self) -> bool:
        assert self.popen is not None
        rc = self.popen.poll()
        if rc is None:
            return False
        self.status = ExitStatus.from_returncode(rc)
        self._exited.set()
        return True

    # ----------------------------------------------------------------- output
    def _read_available(self) -> tuple[bytes, bool]:
        """``(what the pipe holds, up to READ_SIZE bytes read in READ_CHUNK reads, ended)``; ``ended``: end
        of output (EOF, or EIO from a pty whose slave closed) came after those bytes."""
        parts: list[bytes] = []
        got = 0
        while got < READ_SIZE:
            try:
                part = os.read(self._fd, READ_CHUNK)
            except BlockingIOError:
                break
            except OSError:  # EIO: pty slave closed
                part = b""
            if not part:
                return b"".join(parts), True
            parts.append(part)
            got += len(part)
            if len(part) < READ_CHUNK:  # drained
                break
        return b"".join(parts), False  # one part: join returns it as is

    def _on_readable(self) -> None:
        """Dispatch what the pipe holds as one batch (:meth:`_read_available`), then close the output if it
        ended. A busy read (≥ COALESCE_MIN bytes, below READ_SIZE) pauses reading for COALESCE_DELAY."""
        data, ended = self._read_available()
        if not data:
            if ended:
                self._close_output()
            return
        if not ended and COALESCE_MIN <= len(data) < READ_SIZE:  # a busy stream: let the pipe fill a little
            self._loop.remove_reader(self._fd)  # type: ignore[union-attr]
            self._loop.call_later(COALESCE_DELAY, self._resume_reading)  # type: ignore[union-attr]
        # len(data) == READ_SIZE: the pipe holds more (the node may be blocked in write(2)): read again at once
        ts = self._time()
        batch = self.splitter.feed(data)
        if batch.texts:
            self._dispatch(batch, ts)
        if ended:
            self._close_output()
            return
        if self.splitter.pending:
            self._last_data = self._loop.time()  # type: ignore[union-attr]
            if self._flush_handle is None:
                self._flush_handle = self._loop.call_later(self.prompt_idle, self._idle_flush)  # type: ignore[union-attr]

    def _resume_reading(self) -> None:
        if self._fd >= 0:
            self._loop.add_reader(self._fd, self._on_readable)  # type: ignore[union-attr]

    def _idle_flush(self) -> None:
        self._flush_handle = None
        if not self.splitter.pending or self._fd < 0:
            return
        left = self._last_data + self.prompt_idle - self._loop.time()  # type: ignore[union-attr]
        if left > 0.001:
            self._flush_handle = self._loop.call_later(left, self._idle_flush)  # type: ignore[union-attr]
            return
        batch = self.splitter.flush_partial()
        if batch.texts:
            self._dispatch(batch, self._time())

    def _dispatch(self, batch: Batch, ts: float) -> None:
        if self.capture is not None:
            try:
                self.capture.write_batch(batch, ts, self.pid)
            except OSError:
                pass  # a full disk must not stop supervision; the store/health report it
        if self.publish_lines:
            publish_batch(self.bus, self.node, self.pid, batch, ts)
        if self.on_batch is not None:
            self.on_batch(batch, ts)

    def _close_output(self) -> None:
        if self._fd < 0:
            return
        tail = self.splitter.close()
        if tail.texts:
            self._dispatch(tail, self._time())
        self._loop.remove_reader(self._fd)  # type: ignore[union-attr]
        os.close(self._fd)
        if self._stdin_fd not in (-1, self._fd):
            os.close(self._stdin_fd)
        self._fd = self._stdin_fd = -1
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._eof.set()

    def write_stdin(self, data: bytes) -> bool:
        """Send ``data`` to the node's stdin (pty or pipe); False when it is closed or full."""
        if self._stdin_fd < 0:
            return False
        try:
            return os.write(self._stdin_fd, data) == len(data)
        except OSError:
            return False

    # ----------------------------------------------------------------- end
    async def _finish(self) -> None:
        """After the leader exits: end the rest of our run (group + escaped descendants; grace 2 s, or the
        stop timeout when shorter and a stop was asked), drain output, mark done."""
        await self._exited.wait()
        await self.sweep_group(grace=min(2.0, self._stop_timeout) if self.requested else 2.0)
        try:
            await asyncio.wait_for(self._eof.wait(), 1.0)
        except asyncio.TimeoutError:
            pass  # something we cannot prove ours (no marker) holds the pipe: stop reading it
        self._close_output()
        self._done.set()

    async def wait(self) -> ExitStatus:
        """Wait until the leader is reaped, our group is gone and the output drained."""
        await self._done.wait()
        assert self.status is not None
        return self.status

    def _leader_unreaped(self) -> bool:
        return self.popen is not None and self.popen.returncode is None

    def _members(self) -> list[int]:
        """Live members of our group; once the leader is reaped, only those the marker proves ours."""
        if not self.pgid:
            return []
        members = live_members(self.pgid)
        if self._leader_unreaped():
            return members
        own = self.ownership
        return [p for p in members if own is not None and own.owns(p)]

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the node's process group; False when no member is left.

        ``killpg`` while the leader is unreaped; afterwards each member alone, if proven ours.
        """
        if not self.pgid:
            return False
        if self._leader_unreaped():
            try:
                os.killpg(self.pgid, sig)
                return True
            except (ProcessLookupError, PermissionError):
                return False
        own = self.ownership
        sent = [signal_owned(p, sig, own) for p in self._members()] if own is not None else []
        return any(sent)

    def owned_pids(self) -> list[int]:
        """Every live process of this run: our group's members plus, found by a host-wide scan for
        our marker, descendants that left the group (``setsid``). Sorted pids."""
        own = self.ownership
        marked = find_owned(own) if own is not None else []
        return sorted(set(self._members()) | set(marked))

    def _signal_all(self, sig: int, scan: bool = True) -> None:
        """``sig`` to our group and to our escaped descendants (rescanned when ``scan``)."""
        self.signal_group(sig)
        own = self.ownership
        if own is None:
            return
        if scan:
            self._escaped = self._find_escaped()
        for pid in self._escaped:
            signal_owned(pid, sig, own)

    def _find_escaped(self) -> list[int]:
        """Our marked processes whose process group is no longer ours (they called ``setsid``/``setpgid``).

        Decided by each process's own group id, not by a snapshot of the group's members taken a moment
        earlier: a child forked in between (the script's EXIT trap running ``rm``) is still in our group
        and must not be signalled on its own (that killed the trap's ``rm`` and left the login files)."""
        own = self.ownership
        if own is None:
            return []
        out = []
        for pid in find_owned(own):
            info = proc_info(pid)
            if info is not None and info[2] != self.pgid:
                out.append(pid)
        return out

    def group_alive(self) -> bool:
        """True while any process of our group or an escaped descendant of this run is alive.

        Once the group is empty the escaped list is rescanned, not taken from the sweep's start: a member
        that calls ``setsid`` during the grace period (after ignoring SIGTERM) must still get the SIGKILL."""
        if self._members():
            return True
        self._escaped = self._find_escaped()
        return bool(self._escaped)

    async def sweep_group(self, grace: float) -> None:
        """TERM what is left of our run (group + escaped), wait ``grace`` s, then KILL the rest."""
        members = self._members()
        escaped = self._find_escaped()
        if not members and not escaped:
            return
        self._escaped = escaped
        self._signal_all(signal.SIGTERM, scan=False)
        if not await self._group_gone(grace):
            self._signal_all(signal.SIGKILL)
            await self._group_gone(5.0)

    async def _group_gone(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self.group_alive():
            if loop.time() >= end:
                return False
            await asyncio.sleep(0.05)
        return True

    async def stop(self, timeout: float) -> ExitStatus:
        """Graceful stop: TERM the group and escaped descendants, ``timeout`` s, KILL them, reap. Idempotent."""
        self.requested = True
        self._stop_timeout = timeout
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(timeout))
        await asyncio.shield(self._stopping)
        return await self.wait()

    async def _stop(self, timeout: float) -> None:
        if self._exited.is_set():
            return
        self._signal_all(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._exited.wait(), timeout)
        except asyncio.TimeoutError:
            self._signal_all(signal.SIGKILL)

    def kill(self) -> None:
        """Kill now: SIGKILL to the whole group and escaped descendants (the reaper and sweep follow as usual)."""
        self.requested = True
        self._signal_all(signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self.popen is not None and not self._exited.is_set()
