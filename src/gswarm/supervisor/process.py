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
* Exit: a pidfd (Linux ≥ 5.3) wakes the loop when the leader exits, else a 0.2 s
  poll. After the leader exits, the rest of OUR group is ended (TERM, short
  grace, KILL), so no grandchild survives.
* Stop: SIGTERM to the group, ``stop_timeout`` seconds, SIGKILL to the group, reap;
  idempotent; :meth:`NodeProcess.kill` is the "kill now" path.
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
from gswarm.supervisor._procgroup import live_members
from gswarm.supervisor.capture import CaptureFile
from gswarm.supervisor.spec import LaunchSpec
from gswarm.supervisor.stream import Batch, LineSplitter

READ_SIZE = 1 << 20
COALESCE_MIN = 4096  # bytes: a read this big means output is streaming…
COALESCE_DELAY = 0.005  # …so wait 5 ms before the next read (the 1 MiB pipe buffers; saves per-batch costs)
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
    ``raws`` is None when the chunk had no ANSI escape, ``flags`` None when no line
    is marked; ``data`` the chunk's bytes when the splitter kept them (:attr:`Batch.data`).
    """
    texts, raws, flags = batch.texts, batch.raws, batch.flags
    bus.publish(OutputBatch(node, ts, pid, tuple(texts), None if raws is texts else tuple(raws),
                            tuple(flags) if flags and any(flags) else None, data=batch.data))


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

    # ----------------------------------------------------------------- spawn
    async def start(self) -> None:
        """Spawn the node; registers readers on the running loop."""
        self._loop = asyncio.get_running_loop()
        env = {**(os.environ if self.base_env is None else self.base_env), **self.spec.env, **self.extra_env}
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
                fcntl.fcntl(r, F_SETPIPE_SZ, READ_SIZE)
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
    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: pty slave closed
            data = b""
        if not data:
            self._close_output()
            return
        if len(data) >= COALESCE_MIN:  # a busy stream: let the pipe fill a little (fewer, bigger batches)
            self._loop.remove_reader(self._fd)  # type: ignore[union-attr]
            self._loop.call_later(COALESCE_DELAY, self._resume_reading)  # type: ignore[union-attr]
        ts = self._time()
        batch = self.splitter.feed(data)
        if batch.texts:
            self._dispatch(batch, ts)
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
        """After the leader exits: end the rest of our group, drain output, mark done."""
        await self._exited.wait()
        await self.sweep_group(grace=2.0)
        try:
            await asyncio.wait_for(self._eof.wait(), 1.0)
        except asyncio.TimeoutError:
            pass  # something outside our group holds the pipe: stop reading it
        self._close_output()
        self._done.set()

    async def wait(self) -> ExitStatus:
        """Wait until the leader is reaped, our group is gone and the output drained."""
        await self._done.wait()
        assert self.status is not None
        return self.status

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the node's process group; False when no member is left."""
        if not self.pgid:
            return False
        try:
            os.killpg(self.pgid, sig)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover - a member changed uid
            return False

    def group_alive(self) -> bool:
        """True while any non-zombie process is in our group."""
        return bool(self.pgid) and bool(live_members(self.pgid))

    async def sweep_group(self, grace: float) -> None:
        """TERM what is left of our group, wait ``grace`` s, then KILL the rest."""
        if not self.group_alive():
            return
        self.signal_group(signal.SIGTERM)
        if not await self._group_gone(grace):
            self.signal_group(signal.SIGKILL)
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
        """Graceful stop: TERM the group, ``timeout`` s, KILL the group, reap. Idempotent."""
        self.requested = True
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(timeout))
        await asyncio.shield(self._stopping)
        return await self.wait()

    async def _stop(self, timeout: float) -> None:
        if self._exited.is_set():
            return
        self.signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._exited.wait(), timeout)
        except asyncio.TimeoutError:
            self.signal_group(signal.SIGKILL)

    def kill(self) -> None:
        """Kill now: SIGKILL to the whole group (the reaper and sweep follow as usual)."""
        self.requested = True
        self.signal_group(signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self.popen is not None and not self._exited.is_set()
