"""Script mode: ``run_rl_swarm.sh`` under a pty, prompts answered, the Python child watched.

Facts (``shared/rlswarm/generations.md``): every prompt is bash ``read -p``, whose
text appears only when stdin is a terminal (§2.3) — hence the pty; every prompt
needs a line (EOF aborts under errexit, v0.3.1+). The script's exit code means
nothing (EXIT trap kills its own group → 143, or 0) and when Python exits 0 it
hangs in ``wait`` forever (§2.2) — hence the node's outcome is the *Python
child's* exit, found among the script's descendants of OUR group by
``spec.watch_pattern``.

The Python child is not our child, so its status cannot be ``wait()``-ed. In
order: (1) the zombie's status from ``/proc/<pid>/stat`` if we win the race with
bash; (2) bash's job message for that pid ("line N: PID Killed …" →
SIGKILL, "Terminated", "Segmentation fault", "Aborted"); (3) the script's
reaction within ``infer_grace`` s: it stays alive (the ``wait`` trap-door) → exit
0; it ends → a failure (exit code 1, or the script's own code for E0, which has
no trap and ends with Python's status, §3). Then the script's group is stopped.

Login wait (E1–E6, §2.4; :class:`~gswarm.supervisor._scriptenv.LoginWait`): the script prints its wait line
*before* it looks for the file, so the line alone means nothing; GSwarm counts it as a login wait only when
``modal-login/temp-data/userData.json`` is missing then, or when the activation poll fails. The wait ends
at "API key is activated!" or when the trainer appears;
``on_login_wait(waiting, ts)`` reports both edges and :attr:`ScriptRun.login_waited` sums the wait
(monotonic seconds) so it is not counted as uptime. ``on_trainer(pid)`` fires once when the Python child
is found (the login is complete then: the moment to back it up).

Environment: the node inherits GSwarm's environment *without* any ``GSWARM_*`` variable (GSwarm's own
settings, e.g. ``GSWARM_HF_TOKEN``) and without ``MODEL_NAME`` (the script's ``read -p … MODEL_NAME``
overwrites an inherited value and keeps its export flag, so an empty answer would export an empty
``MODEL_NAME``, §2.3). A ``MODEL_NAME`` in ``extra_env`` (the OOM ladder's model) becomes the answer to
the model prompt instead, so it reaches the trainer the way an operator's answer would.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from typing import Any, Callable

import psutil

from gswarm.supervisor._procgroup import proc_info, zombie_exit_status
from gswarm.supervisor.process import ExitStatus, NodeProcess
from gswarm.events import Notice, Severity
from gswarm.supervisor._scriptenv import LOGIN_DONE, LoginWait, node_environ, with_model
from gswarm.supervisor.spec import MASK, LaunchSpec
from gswarm.supervisor.stream import Batch

log = logging.getLogger(__name__)
# The Python child is found by scanning the script's children (no event tells us when bash forks it). For the
# first FAST_SCAN_SECONDS after start the scan runs every FAST_SCAN_POLL s (~1 ms of CPU per scan), so a node
# crashing at import is still seen. One that lives less than a scan interval can be missed while the script
# sits in its final `wait`; the health service's stall detection then restarts the node.
FAST_SCAN_SECONDS = 120.0
FAST_SCAN_POLL = 0.05
BASH_JOB_RE = re.compile(r"line \d+:\s+(\d+)\s+(Killed|Terminated|Segmentation fault|Aborted|Bus error|Hangup|Quit)")
_JOB_SIGNALS = {"Killed": 9, "Terminated": 15, "Segmentation fault": 11, "Aborted": 6, "Bus error": 7, "Hangup": 1, "Quit": 3}


class ScriptRun:
    """Same interface as :class:`NodeProcess` (start, wait, stop, kill, pid, pgid …).

    ``poll`` seconds between scans for the Python child; ``stop_timeout`` grace
    (s) when ending the script's group after Python exited; ``infer_grace`` (s)
    to watch the script's reaction; ``read_zombie(pid)`` reads a zombie's raw
    wait status (injectable so tests can take the inference path). ``on_login_wait``/``on_trainer``:
    see the module docstring (without ``on_login_wait`` a login wait publishes one Notice itself);
    ``monotonic`` measures the login wait (seconds).
    """

    def __init__(self, spec: LaunchSpec, node: str, bus: Any, time_fn: Any, *, capture: Any = None,
                 on_batch: Any = None, extra_env: Any = None, prompt_idle: float = 0.3,
                 stop_timeout: float = 10.0, poll: float = 0.25, infer_grace: float = 2.0,
                 read_zombie: Any = zombie_exit_status, on_login_wait: Callable[[bool, float], Any] | None = None,
                 on_trainer: Callable[[int], Any] | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        pty_spec = spec if spec.use_pty else LaunchSpec(**{**spec.__dict__, "use_pty": True})
        prompts, extra = with_model(spec, extra_env)
        self.spec, self.capture, self._outer = spec, capture, on_batch
        self._bus, self._node = bus, node
        self.proc = NodeProcess(pty_spec, node, bus, time_fn, capture=capture, on_batch=self._on_batch,
                                extra_env=extra, prompt_idle=prompt_idle, base_env=node_environ())
        self._time = time_fn
        self.prompts = [(re.compile(p.pattern), p) for p in prompts]
        self.on_login_wait, self.on_trainer = on_login_wait, on_trainer
        self.login = LoginWait(spec.cwd, monotonic)
        self.watch_re = re.compile(spec.watch_pattern) if spec.watch_pattern else None
        self.stop_timeout, self.poll, self.infer_grace = stop_timeout, poll, infer_grace
        self.py_pid: int | None = None
        self._read_zombie = read_zombie
        self.answered: list[str] = []
        self._job_msgs: dict[int, int] = {}
        self._login_wait_told = False
        self._status: ExitStatus | None = None
        self._done = asyncio.Event()

    pid = property(lambda self: self.proc.pid)
    pgid = property(lambda self: self.proc.pgid)
    started_at = property(lambda self: self.proc.started_at)
    requested = property(lambda self: self.proc.requested)
    ownership = property(lambda self: self.proc.ownership)  # marker + leader start stamp (see _procgroup)

    async def start(self) -> None:
        await self.proc.start()
        self._task = asyncio.ensure_future(self._watch())

    # ------------------------------------------------------------- output side
    def _on_batch(self, batch: Batch, ts: float) -> None:
        # the batch is shown first, then GSwarm's reactions to it (an answer follows the prompt it answers)
        if self._outer is not None:
            self._outer(batch, ts)
        for text in batch.texts:
            if self.py_pid is None:
                for rx, prompt in self.prompts:
                    if rx.search(text):
                        self._answer(prompt, ts)
                        break
            if "Waiting for" in text or LOGIN_DONE in text:
                self._login_edge(self.login.line(text), ts)
            if "line " in text:
                m = BASH_JOB_RE.search(text)
                if m:
                    self._job_msgs[int(m.group(1))] = _JOB_SIGNALS[m.group(2)]

    @property
    def login_waited(self) -> float:
        """Seconds (monotonic) this run spent waiting for a browser login, the current wait included."""
        return self.login.waited

    def _login_edge(self, edge: bool | None, ts: float) -> None:
        if edge is None:
            return
        if self.on_login_wait is not None:
            try:
                self.on_login_wait(edge, ts)
            except Exception:  # pragma: no cover - a display hook must not end supervision
                log.exception("login-wait hook failed")
        elif edge and not self._login_wait_told:
            self._tell_login_wait(ts)

    def _tell_login_wait(self, ts: float) -> None:
        """The script polls for the browser login (it prints its line once, then waits silently)."""
        self._login_wait_told = True
        if self._bus is not None:
            self._bus.publish(Notice(self._node, ts, "login", Severity.WARNING,
                                     "the script waits for the modal-login browser login",
                                     "open http://localhost:3000 in a browser on this machine (over SSH: ssh -L "
                                     "3000:localhost:3000 this-host, then the same URL on yours) and log in; or stop and "
                                     "run `gswarm login` once, after which restarts need no browser"))

    def _answer(self, prompt: Any, ts: float) -> None:
        self.proc.write_stdin(prompt.answer.encode() + b"\n")
        shown = MASK if prompt.secret else repr(prompt.answer)
        self.answered.append(prompt.name)
        log.info("answered prompt %s with %s", prompt.name, shown)
        if self.capture is not None:
            self.capture.note(f"gswarm: answered prompt {prompt.name} with {shown}", ts, self.proc.pid)
        if self._bus is not None:  # shown by gswarm run and kept in the JSON log
            self._bus.publish(Notice(self._node, ts, "prompt", Severity.INFO, f"answered prompt {prompt.name}: {shown}"))

    # ------------------------------------------------------------- python child
    async def _watch(self) -> None:
        script_wait = asyncio.ensure_future(self.proc.wait())
        loop = asyncio.get_running_loop()
        fast_until = loop.time() + FAST_SCAN_SECONDS
        try:
            while self.py_pid is None and not script_wait.done():
                self.py_pid = self._find_child()
                if self.py_pid is None:  # scan often at first: a node that dies at import lives well under a second
                    step = min(self.poll, FAST_SCAN_POLL) if loop.time() < fast_until else self.poll
                    await asyncio.wait({script_wait}, timeout=step)
            if self.py_pid is None:
                self._status = await script_wait
            else:
                self._trainer_found()
                await self._until_gone(self.py_pid, script_wait)
                self._status = await self._python_status(self.py_pid, script_wait)
                if self._status != ExitStatus(0, None) and not script_wait.done():
                    # a failed trainer: the script's EXIT trap is cleaning up (deletes the login files, ends its
                    # group); a SIGTERM now would cut it short half-way — give it infer_grace s (exit 0: `wait` hangs)
                    await asyncio.wait({script_wait}, timeout=self.infer_grace)
                await self.proc.stop(self.stop_timeout)
        except Exception:  # pragma: no cover - never leave wait() hanging
            log.exception("script-mode watcher failed")
            self._status = await self.proc.stop(self.stop_timeout)
        finally:
            self.login.set(False)  # the script ended while waiting: close the wait (uptime excludes it)
            self._done.set()

    def _trainer_found(self) -> None:
        """The Python child runs: any login wait is over; tell ``on_trainer``."""
        self._login_edge(self.login.set(False), self._time())
        if self.on_trainer is not None and self.py_pid is not None:
            try:
                self.on_trainer(self.py_pid)
            except Exception:  # pragma: no cover - e.g. a backup that failed; supervision goes on
                log.exception("trainer-start hook failed")

    def _find_child(self) -> int | None:
        if self.watch_re is None:
            return None
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return None
        for kid in kids:
            try:
                if os.getpgid(kid.pid) == self.proc.pgid and self.watch_re.search(" ".join(kid.cmdline())):
                    return kid.pid
            except (psutil.Error, OSError):
                continue
        return None

    async def _until_gone(self, pid: int, script_wait: asyncio.Future) -> None:
        loop = asyncio.get_running_loop()
        gone = loop.create_future()
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = -1
        if pidfd >= 0:
            loop.add_reader(pidfd, lambda: gone.done() or gone.set_result(None))
        try:
            while not gone.done():
                info = proc_info(pid)
                if info is None or info[0] in ("Z", "X"):
                    break
                await asyncio.wait({gone}, timeout=0.05 if pidfd < 0 else 1.0)
        finally:
            if pidfd >= 0:
                loop.remove_reader(pidfd)
                os.close(pidfd)

    async def _python_status(self, pid: int, script_wait: asyncio.Future) -> ExitStatus:
        raw = self._read_zombie(pid)
        if raw is not None:
            return ExitStatus.from_returncode(-os.WTERMSIG(raw) if os.WIFSIGNALED(raw) else os.WEXITSTATUS(raw))
        loop = asyncio.get_running_loop()
        end = loop.time() + self.infer_grace
        while loop.time() < end and pid not in self._job_msgs and not script_wait.done():
            await asyncio.wait({script_wait}, timeout=0.05)
        if pid in self._job_msgs:
            return ExitStatus(None, self._job_msgs[pid])
        if not script_wait.done():
            return ExitStatus(0, None)  # script alive in its final `wait`: Python exited 0 (§2.2)
        st = script_wait.result()
        if self.spec.generation == "E0" and st.exit_code is not None:
            return st  # E0: no trap, the script ends with Python's status (§3)
        return ExitStatus(1, None)

    # ------------------------------------------------------------- control
    async def wait(self) -> ExitStatus:
        await self._done.wait()
        await self.proc.wait()
        assert self._status is not None
        return self._status

    async def stop(self, timeout: float) -> ExitStatus:
        await self.proc.stop(timeout)
        return await self.wait()

    def kill(self) -> None:
        self.proc.kill()

    async def sweep_group(self, grace: float) -> None:
        await self.proc.sweep_group(grace)

    def write_stdin(self, data: bytes) -> bool:
        return self.proc.write_stdin(data)
