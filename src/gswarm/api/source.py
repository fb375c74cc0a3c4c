"""Where the API's data comes from: a live Runtime, or only a state directory.

The app never touches processes: live control posts a ``Command`` on
``runtime.commands`` and the supervisor acts. Store reads run on worker threads
(:meth:`DataSource.db`) so a long history query never blocks the supervisor loop.
"""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

from gswarm.api.nodeview import StoreCache
from gswarm.config import Settings
from gswarm.config.settings import is_secret_name

T = TypeVar("T")
DB_NAME = "gswarm.db"


class NotLive(Exception):
    """Raised by :meth:`DataSource.send` when no supervisor runs in this process."""


class DataSource:
    """The API's view of one GSwarm state directory.

    ``runtime`` (a ``gswarm.runtime.Runtime``) makes the source live: snapshot,
    bus and command queue come from it. Without it the source is read-only and
    everything is read from ``<state_dir>/gswarm.db`` and ``<state_dir>/logs``.
    ``clock`` needs ``time()`` (Unix seconds); ``reader`` defaults to a
    ``gswarm.logs.store.StoreReader`` on the state dir's database;
    ``command_type`` defaults to ``gswarm.runtime.Command``. Store reads run on
    ``db_threads`` worker threads (the reader serialises queries on one connection;
    two threads let one slow history query not stall everything, more only add GIL
    contention).
    """

    def __init__(self, state_dir: Path, settings: Settings, *, runtime: Any = None,
                 clock: Any = None, reader: Any = None, stall_timeout: float = 1800.0,
                 command_type: Callable[[str, str], Any] | None = None, db_threads: int = 2) -> None:
        self.state_dir = Path(state_dir)
        self.settings = settings
        self.runtime = runtime
        self.clock = clock or getattr(runtime, "clock", None) or _WallClock()
        self._reader = reader
        self.stall_timeout = settings.stall_timeout or stall_timeout
        self.bound: dict[str, Any] = {}
        self._command_type = command_type
        self.cache = StoreCache()
        self.db_threads = db_threads
        self._executor: ThreadPoolExecutor | None = None
        self.stopping = asyncio.Event()
        self._secrets: set[str] = set()
        for secret in (settings.hf_token, settings.api_token):
            if secret is not None:
                self.add_secret(secret.get_secret_value())
        for key, value in settings.extra_env.items():
            if is_secret_name(key):
                self.add_secret(value)
        for url in settings.notify_urls:
            rest = url.split("://", 1)[-1]
            self.add_secret(rest)
            for part in re.split(r"[/:@?&=]", rest):
                if len(part) >= 12:
                    self.add_secret(part)

    @property
    def closing(self) -> bool:
        """True once the server is stopping (event streams end)."""
        return self.stopping.is_set()

    @property
    def live(self) -> bool:
        """True when a supervisor runs in this process (control endpoints work)."""
        return self.runtime is not None

    @property
    def node(self) -> str:
        """The supervised node's name (``settings.node_name``)."""
        return getattr(self.runtime, "node", None) or self.settings.node_name

    @property
    def bus(self) -> Any:
        """The live event bus, or None in read-only mode."""
        return getattr(self.runtime, "bus", None)

    @property
    def reader(self) -> Any:
        """The shared, thread-safe StoreReader (created on first use)."""
        if self._reader is None:
            from gswarm.logs.store import StoreReader

            self._reader = StoreReader(self.state_dir / DB_NAME)
        return self._reader

    def now(self) -> float:
        """Wall-clock Unix seconds from the injected clock."""
        return float(self.clock.time())

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(reader, *args)`` in a worker thread; StoreError propagates."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.db_threads, thread_name_prefix="gswarm-api-db")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, self.reader, *args)

    def snapshot(self) -> dict[str, Any] | None:
        """``runtime.snapshot()`` (keys per docs/architecture.md) or None when read-only."""
        return dict(self.runtime.snapshot()) if self.runtime is not None else None

    def live_snapshots(self) -> dict[str, dict[str, Any]]:
        """``{node: snapshot}`` of every node supervised in this process (a Host's nodes, in configuration
        order; the single Runtime's node), ``{}`` when read-only."""
        if self.runtime is None:
            return {}
        many = getattr(self.runtime, "snapshots", None)
        if callable(many):
            return {name: dict(snap) for name, snap in many().items()}
        return {self.node: dict(self.runtime.snapshot())}

    def _runtime_of(self, node: str | None) -> Any:
        runtimes = getattr(self.runtime, "runtimes", None)
        if isinstance(runtimes, dict) and node is not None:
            return runtimes[node]  # KeyError for a node this host does not run
        return self.runtime

    def send(self, kind: str, source: str = "api", node: str | None = None) -> None:
        """Post ``Command(kind, source)`` on the queue of ``node`` (None: the only/first node); raises
        NotLive when read-only, KeyError when this host does not run ``node``."""
        if self.runtime is None:
            raise NotLive("no supervisor running: `gswarm serve` is read-only; use `gswarm run`")
        if self._command_type is None:
            from gswarm.runtime import Command

            self._command_type = Command
        self._runtime_of(node).commands.put_nowait(self._command_type(kind, source))

    def add_secret(self, value: str | None) -> None:
        """Remember ``value`` (8+ characters) so :meth:`scrub` hides it."""
        if value and len(value) >= 8:
            self._secrets.add(value)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret value replaced by ``***`` (longest first)."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def close(self) -> None:
        """Release the store connection and the worker threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._reader is not None and hasattr(self._reader, "close"):
            self._reader.close()


class _WallClock:
    def time(self) -> float:
        return time.time()
