"""Facts as small immutable typed events, their enums, and the in-process event bus.

Domain packages do not import each other; they publish and subscribe here.
All timestamps ``ts`` are wall-clock Unix seconds (float, microsecond precision).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)


class NodeState(str, enum.Enum):
    """Supervisor states (words after supervisord/circus)."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STALLED = "STALLED"
    DEGRADED = "DEGRADED"
    WAITING_LOGIN = "WAITING_LOGIN"  # script mode: run_rl_swarm.sh waits for a browser login GSwarm cannot supply
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    FATAL = "FATAL"


class Category(str, enum.Enum):
    """Failure categories. Names follow ``shared/failures/INDEX.md`` plus GSwarm's own."""

    NONE = "none"
    CUDA_OOM = "cuda_oom"
    MPS_OOM = "mps_oom"
    SYSTEM_OOM_KILLED = "system_oom_killed"
    DHT_BOOTSTRAP_FAILED = "dht_bootstrap_failed"
    DHT_DAEMON_TIMEOUT = "dht_daemon_timeout"
    DHT_BOOTSTRAP_PING_FAILED = "dht_bootstrap_ping_failed"
    IDENTITY_TAKEN = "identity_taken"
    PEER_ID_ALREADY_REGISTERED = "peer_id_already_registered"
    API_KEY_PENDING = "api_key_pending"
    MODAL_LOGIN_SERVER_ERROR = "modal_login_server_error"
    CHAIN_SUBMIT_REJECTED = "chain_submit_rejected"
    CHAIN_REGISTER_PEER_FAILED = "chain_register_peer_failed"
    CHAIN_RPC_UNREACHABLE = "chain_rpc_unreachable"
    DEPENDENCY_CONFLICT = "dependency_conflict"
    BENIGN_DEPENDENCY_WARNING = "benign_dependency_warning"
    MISSING_BINARY = "missing_binary"
    SHELL_ENV_ERROR = "shell_env_error"
    HF_DOWNLOAD_ERROR = "hf_download_error"
    GPU_ARCH_UNSUPPORTED = "gpu_arch_unsupported"
    TRAINER_BUG_CURRENT_BATCH = "trainer_bug_current_batch"
    TRAINER_BUG_SWARM_STATE = "trainer_bug_swarm_state"
    TRAINER_ERROR_SWALLOWED = "trainer_error_swallowed"
    ROUND_SKIP_BENIGN = "round_skip_benign"
    HANG_NO_PROGRESS = "hang_no_progress"
    WRAPPER_ONLY_ERROR = "wrapper_only_error"
    OLLAMA_ERROR = "ollama_error"
    GAME_EXCEPTION_EXIT_ZERO = "game_exception_exit_zero"
    NATIVE_ABORT = "native_abort"  # glibc heap abort / SIGABRT / "Aborted (core dumped)" (issue #17)
    PRECISION_UNSUPPORTED = "precision_unsupported"  # bf16/tf32/fp16 not supported by this CPU/GPU
    CUDA_INTERNAL_ASSERT = "cuda_internal_assert"  # CUDA device-side / PyTorch INTERNAL ASSERT / cuBLAS-cuDNN status
    INSTALL_FAILED = "install_failed"  # pip/git failed while the launcher installed requirements
    SCRIPT_SYNTAX_ERROR = "script_syntax_error"  # bash syntax error in the launcher, SyntaxError in edited code
    P2PD_SOCKET_ERROR = "p2pd_socket_error"  # hivemind cannot reach p2pd's control socket
    LOGIN_WAITING = "login_waiting"  # waiting for modal-login's userData.json (nobody logged in)
    NETWORK_ERROR = "network_error"  # connection refused/reset/DNS/timeouts outside a known endpoint
    DISK_FULL = "disk_full"  # ENOSPC
    UNKNOWN_CRASH = "unknown_crash"
    CLEAN_EXIT = "clean_exit"
    STALLED = "stalled"


class Recovery(str, enum.Enum):
    """What the supervisor does about a failure (vocabulary of ``INDEX.md``)."""

    NONE = "none"
    WAIT = "wait"
    RESTART = "restart"
    BACKOFF = "backoff"
    CLEANUP_THEN_RESTART = "cleanup_then_restart"
    STOP_AND_ALERT = "stop_and_alert"
    REINSTALL_DEPS = "reinstall_deps"
    REDUCE_MODEL = "reduce_model"


class Severity(str, enum.Enum):
    """Severity of an incident or notification, lowest first."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


@dataclass(frozen=True)
class Event:
    """Base event: ``node`` name and wall-clock ``ts`` (Unix seconds)."""

    node: str
    ts: float


@dataclass(frozen=True)
class OutputLine(Event):
    """One line of the node's output (ANSI stripped in ``text``; ``raw`` keeps colours)."""

    pid: int
    text: str
    stream: str = "stdout"
    raw: str = ""


@dataclass(frozen=True)
class OutputBatch(Event):
    """All complete lines of one chunk read from the node's output (the live output event).

    One event per read (hundreds of lines on a busy stream) instead of one per line,
    so the bus and its inline subscribers pay per chunk, not per line. ``ts`` is the
    time the chunk was read (shared by its lines). ``texts``: the lines, ANSI
    stripped; ``raws``: the lines as received (colours kept) or None when equal to
    ``texts`` or given as ``raw_text`` (:attr:`raw_lines` has them either way); ``flags``:
    per-line marks of :mod:`gswarm.supervisor.stream` (1 redraw, 2 partial, 4 continued) or None
    when all 0. Consumers iterate ``texts`` directly (cheapest) or :meth:`lines` for
    :class:`OutputLine` values.
    ``data``: when not None, exactly ``"\\n".join(texts).encode("utf-8")`` (the splitter's common
    path: no ``\\r`` or invalid UTF-8 in the chunk; the bytes as read when it held no ANSI escape),
    so no consumer needs to encode the chunk again. ``raw_text``: when not None (and ``raws`` None),
    ``"\\n".join`` of the lines as received, which :attr:`raw_lines` splits on demand (a coloured chunk:
    only a terminal wants its colours). ``joined_text``: when not None, ``"\\n".join(texts)`` as the
    splitter had it (:attr:`joined` then costs nothing).
    """

    pid: int
    texts: tuple[str, ...]
    raws: tuple[str, ...] | None = None
    flags: tuple[int, ...] | None = None
    stream: str = "stdout"
    data: bytes | None = field(default=None, repr=False, compare=False)
    raw_text: str | None = field(default=None, repr=False, compare=False)
    joined_text: str | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.texts)

    @cached_property
    def joined(self) -> str:
        """``"\\n".join(texts)``, built once and shared by the subscribers that prefilter a whole
        chunk with one C-level search (progress, health, classifier) instead of a Python loop per
        line. Lines never contain ``\\n``, so a literal word is found in ``joined`` exactly when
        some line contains it."""
        return self.joined_text if self.joined_text is not None else "\n".join(self.texts)

    @cached_property
    def raw_lines(self) -> tuple[str, ...]:
        """The lines as received (colours kept): ``raws``, else ``raw_text`` split, else ``texts``."""
        if self.raws is not None:
            return self.raws
        return tuple(self.raw_text.split("\n")) if self.raw_text is not None else self.texts

    def lines(self) -> Iterator[OutputLine]:
        """The lines as :class:`OutputLine` events (created lazily, ``raw`` filled in)."""
        node, ts, pid, stream = self.node, self.ts, self.pid, self.stream
        for text, raw in zip(self.texts, self.raw_lines):
            yield OutputLine(node, ts, pid, text, stream, raw)


@dataclass(frozen=True)
class StateChanged(Event):
    old: NodeState
    new: NodeState
    reason: str = ""


@dataclass(frozen=True)
class ProcessStarted(Event):
    pid: int
    pgid: int
    argv: tuple[str, ...]
    generation: str
    mode: str
    run_id: int = 0


@dataclass(frozen=True)
class ProcessExited(Event):
    """The node process ended. ``uptime`` in seconds; ``requested`` names who asked for it (``"api"``,
    ``"cli"``, ``"signal"``, ``"duration"`` …) when the exit answered an operator's stop or restart, else ``""``."""

    pid: int
    exit_code: int | None
    signal: int | None
    uptime: float
    run_id: int = 0
    requested: str = ""

    @property
    def words(self) -> str:
        """What happened, for people: see :func:`exit_words`."""
        return exit_words(self.exit_code, self.signal, self.requested)


def exit_words(exit_code: int | None, sig: int | None, requested: str = "") -> str:
    """``"stopped on request (api)"``, ``"killed by SIGKILL (signal 9)"``, ``"exited with code 1"``,
    ``"exited normally (code 0)"``: an exit in words rather than ``code=1 signal=None``."""
    import signal as _signal

    if requested:
        return f"stopped on request ({requested})"
    if sig is not None:
        try:
            name = _signal.Signals(sig).name
        except ValueError:
            return f"killed by signal {sig}"
        return f"killed by {name} (signal {sig})"
    if exit_code == 0:
        return "exited normally (code 0)"
    return "exited (code unknown)" if exit_code is None else f"exited with code {exit_code}"


@dataclass(frozen=True)
class Incident(Event):
    """A classified failure with the lines that prove it and the operator advice."""

    category: Category
    recovery: Recovery
    severity: Severity
    rule_id: str
    evidence: tuple[str, ...] = ()
    advice: str = ""


@dataclass(frozen=True)
class RestartScheduled(Event):
    delay: float
    cause: Category
    recovery: Recovery
    attempt: int
    detail: str = ""


@dataclass(frozen=True)
class RecoveryAction(Event):
    """A recovery step taken (cleanup, reinstall, OOM ladder step…)."""

    recovery: Recovery
    detail: str
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class ProgressUpdate(Event):
    """Training progress parsed from the node's output or log files."""

    kind: str  # hello, round, stage, waiting, winners, reward, bet, claim
    round: int | None = None
    stage: int | None = None
    round_total: int | None = None
    animal: str | None = None
    peer_id: str | None = None
    advanced: bool = False
    detail: str = ""


@dataclass(frozen=True)
class ResourceSample(Event):
    """One sample of node-tree and host resources (percent, bytes, counts)."""

    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Notice(Event):
    """A message for the operator from any part of GSwarm (alerts, needs-you…)."""

    kind: str
    severity: Severity
    title: str
    body: str = ""


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out with optional async queues.

    ``publish`` never blocks and never raises: a subscriber that raises is logged
    and kept; a full async queue drops the event and counts it in ``dropped``.
    Synchronous subscribers run inline, so they must be cheap (the output path:
    one :class:`OutputBatch` per chunk read). The subscribers are kept as a tuple
    replaced on (un)subscribe, so ``publish`` iterates a snapshot without copying
    and a callback may (un)subscribe while an event is being delivered.
    """

    def __init__(self) -> None:
        self._subs: tuple[Subscriber, ...] = ()
        self.dropped = 0

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns an unsubscribe function (idempotent)."""
        self._subs = (*self._subs, callback)

        def unsubscribe() -> None:
            subs = list(self._subs)
            if callback in subs:
                subs.remove(callback)
                self._subs = tuple(subs)

        return unsubscribe

    def queue(self, maxsize: int = 10_000, types: tuple[type, ...] = (Event,)) -> asyncio.Queue[Event]:
        """An asyncio queue receiving events of ``types`` (dropped when full)."""
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize)

        def put(ev: Event) -> None:
            if isinstance(ev, types):
                try:
                    q.put_nowait(ev)
                except asyncio.QueueFull:
                    self.dropped += 1

        self.subscribe(put)
        return q

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber inline; never raises."""
        for cb in self._subs:
            try:
                cb(event)
            except Exception:  # a broken consumer must never hurt supervision
                try:
                    log.exception("event subscriber failed on %s", type(event).__name__)
                except Exception:  # pragma: no cover - a broken log handler must not either
                    pass
