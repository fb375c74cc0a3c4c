"""The composition root: one Host per ``gswarm run``, owning N node runtimes (docs/architecture.md "Host").

A :class:`Host` builds what is shared once — checkout locks, the store writer, the JSON log, the
notifier and the API/dashboard (factories in :data:`SHARED_SERVICES`) — and runs every node's own
parts (:class:`gswarm.runtime.Runtime`: watcher, process, capture, sampler, progress, health, sidecars).
All of them share one EventBus and one clock; every event carries its ``node``, so shared parts need no
per-node wiring. A single-node run is a host with one node, and then the shared factories get that
node's Runtime itself (exactly the objects and order of a Wave-1 run).

Coordination (issue #15 point 3): one CheckoutLock per distinct checkout, held by the host for all its
nodes (nodes sharing a checkout keep separate pid records); environment setup runs once per checkout
and nodes one after the other, never N at once; node *i* starts ``i * stagger`` seconds after the first
(injected clock; a stop during the wait starts nothing); stop reaches every node at once, each with its
own stop timeout, so all stop in parallel. Signal handlers only enqueue (SIGINT/SIGTERM/SIGHUP → stop
every node and end; a second SIGINT → kill now).

Longer than ~150 lines because it is the one place where the run's lifecycle is ordered.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from pathlib import Path
from typing import Any, Callable, Sequence

from gswarm.clock import Clock, SystemClock, wait_event_or_timeout
from gswarm.errors import ConfigError, GSwarmError, NodeFatal
from gswarm.events import EventBus, Notice, Severity

log = logging.getLogger(__name__)

SHARED_SERVICES = frozenset({
    "gswarm.logs.store:create_service", "gswarm.logs.jsonlog:create_service",
    "gswarm.notify.service:create_service", "gswarm.api.server:create_service",
    "gswarm.daemon:create_service",  # one control socket, sd_notify and heartbeat per host (#14)
})
"""Factories built once per host (given the host, or the single node's Runtime); the rest run per node."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Host:
    """``Host(settings, runtimes, clock, bus, stagger=0.0, install_signals=True, setup=None)``.

    ``settings``: the host-wide Settings (state_dir, API, notifications); ``runtimes``: the node
    Runtimes (same ``bus`` and ``clock`` as the host, unique ``node`` names); ``stagger``: seconds
    between two node starts; ``setup(rt, login_from)``: async environment setup of one checkout (default
    ``rt._prepare(login_from=…)``), run for the first node of each checkout whose Runtime has ``prepare``
    set; ``login_from`` is the account's node that already logged in, or None.
    The host looks like a Runtime to the shared factories: ``settings``, ``clock``, ``bus``,
    ``state_dir``, ``node`` (the first node), ``checkout``, ``spec``, ``commands``, ``service_paths``, ``snapshot()``,
    ``request()``; plus ``runtimes`` (name → Runtime) and ``snapshots()``.
    """

    def __init__(self, settings: Any, runtimes: Sequence[Any], clock: Clock | None = None, bus: EventBus | None = None,
                 *, stagger: float = 0.0, install_signals: bool = True,
                 setup: Callable[[Any], Any] | None = None) -> None:
        if not runtimes:
            raise ValueError("a host needs at least one node runtime")
        names = [rt.node for rt in runtimes]
        if len(set(names)) != len(names):
            raise ValueError(f"node names must be unique, got {names}")
        self.settings = settings
        self.clock = clock or runtimes[0].clock or SystemClock()
        self.bus = bus or runtimes[0].bus
        self.runtimes: dict[str, Any] = {rt.node: rt for rt in runtimes}
        self.stagger = float(stagger)
        self.install_signals = install_signals
        self.setup = setup
        self.services: list[Any] = []
        self.codes: dict[str, int] = {}
        self._stopping = asyncio.Event()
        self._sigint_seen = 0

    @classmethod
    def single(cls, rt: Any) -> "Host":
        """The host of a one-node run: its settings, clock, bus and signal choice are the node's."""
        return cls(rt.settings, [rt], rt.clock, rt.bus, install_signals=rt.install_signals)

    # ------------------------------------------------------------- Runtime-like surface
    @property
    def first(self) -> Any:
        return next(iter(self.runtimes.values()))

    @property
    def node(self) -> str:
        return self.first.node

    @property
    def state_dir(self) -> Path:
        return self.first.state_dir

    @property
    def checkout(self) -> Path:
        return self.first.checkout

    @property
    def spec(self) -> Any:
        return self.first.spec

    @property
    def service_paths(self) -> tuple[str, ...]:
        """The nodes' factory list (shared factories look at it, e.g. the store runs the JSON log itself
        only when ``gswarm.logs.jsonlog:create_service`` is not listed)."""
        return tuple(self.first.service_paths)

    @property
    def commands(self) -> asyncio.Queue:
        return self.first.commands

    @property
    def prepare(self) -> bool:
        """True when any node sets up its environment before its first start (systemd READY during setup)."""
        return any(rt.prepare for rt in self.runtimes.values())

    def update_settings(self, **changes: Any) -> None:
        """Apply option changes (``gswarm reload``) to the host's settings and every node's next start."""
        self.settings = self.settings.model_copy(update=changes)
        for rt in self.runtimes.values():
            rt.update_settings(**changes)

    def snapshot(self) -> dict[str, Any]:
        """The first node's snapshot (what single-node readers expect)."""
        return self.first.snapshot()

    def snapshots(self) -> dict[str, dict[str, Any]]:
        """``{node: Runtime.snapshot()}`` for every node, in configuration order."""
        return {name: rt.snapshot() for name, rt in self.runtimes.items()}

    def request(self, kind: str, source: str = "api", shutdown: bool = False, node: str | None = None) -> None:
        """Enqueue ``Command(kind, source, shutdown)`` for ``node`` (None = every node). KeyError naming
        the known nodes for an unknown one. ``shutdown`` also ends the host once the nodes stopped."""
        if node is not None and node not in self.runtimes:
            raise KeyError(f"unknown node {node!r}; known nodes: {', '.join(self.runtimes)}")
        if shutdown:
            self._stopping.set()
        for name, rt in self.runtimes.items():
            if node is None or name == node:
                rt.request(kind, source, shutdown)

    # ------------------------------------------------------------- running
    async def run(self) -> int:
        """Lock, adopt leftovers, set up, start services and nodes (staggered), supervise until every
        node's watcher returned, shut down. Returns 0, or NodeFatal's code when any node gave up.
        Raises LockError when another gswarm run supervises one of the checkouts."""
        locks = self._lock_all()
        try:
            for rt in self.runtimes.values():
                await rt._adopt_leftover(rt.lock)
            await self._setup_all()
            for rt in self.runtimes.values():
                _identity_folder(rt)
                rt.make_watcher()
            tasks = await self._start_services()
            self._announce_api()
            self._install_signals()
            try:
                return await self._run_nodes()
            finally:
                self._remove_signals()
                await self._stop_services(tasks)
        finally:
            for rt in self.runtimes.values():
                if rt.prepared is not None:
                    await rt.prepared.close()
            for lock in locks:
                lock.release()

    def _lock_all(self) -> list[Any]:
        """One CheckoutLock per distinct checkout (acquired); a node sharing a checkout gets a view of
        that lock with its own pid record. Releases what it took when one is held elsewhere."""
        from gswarm.supervisor.lock import CheckoutLock

        owners: dict[Path, Any] = {}
        views: list[Any] = []
        try:
            for rt in self.runtimes.values():
                owner = owners.get(rt.checkout)
                if owner is None:
                    owner = CheckoutLock(rt.state_dir, rt.checkout, node=rt.node)
                    try:
                        owner.acquire()
                    except OSError as exc:  # e.g. a state dir on a full disk: no room even for an empty lock file
                        raise ConfigError(f"option state_dir: cannot create GSwarm's lock files in {rt.state_dir / 'run'} "
                                          f"({exc.strerror or exc}); free space on that disk or pick another --state-dir") from None
                    rt.lock = owners[rt.checkout] = owner
                else:
                    rt.lock = record_view(owner, rt.node)
                    views.append(rt.lock)
        except BaseException:
            for lock in views + list(owners.values()):
                lock.release()
            raise
        return views + list(owners.values())

    async def _setup_all(self) -> None:
        """Environment setup once per checkout, one checkout at a time (pip/yarn/downloads never run N at once);
        one login server and login per account: a further checkout of an account is set up with
        ``login_from`` = the account's first node (its venv, but no second modal-login on the same port)."""
        done: dict[Path, Any] = {}
        logged_in: dict[str, Any] = {}
        for rt in self.runtimes.values():
            if not rt.prepare:
                continue
            owner = done.get(rt.checkout)
            if owner is not None:
                rt.share_setup(owner)
                continue
            account = getattr(rt.placement, "account", "default")
            login_from = logged_in.get(account)
            await (self.setup(rt, login_from) if self.setup is not None else rt._prepare(login_from=login_from))
            done[rt.checkout] = rt
            logged_in.setdefault(account, rt)

    async def _run_nodes(self) -> int:
        codes = await asyncio.gather(*(self._run_node(i, rt) for i, rt in enumerate(self.runtimes.values())))
        self.codes = dict(zip(self.runtimes, codes))
        return NodeFatal.exit_code if NodeFatal.exit_code in codes else max(codes, default=0)

    async def _run_node(self, index: int, rt: Any) -> int:
        """Node ``index`` waits ``index * stagger`` s (a shutdown meanwhile: it never starts), then runs."""
        delay = index * self.stagger
        if delay > 0:
            if await wait_event_or_timeout(self.clock, self._stopping, delay):
                return 0
            self.bus.publish(Notice(rt.node, self.clock.time(), "stagger", Severity.INFO,
                                    f"starting node {rt.node} {delay:g} s after the first (staggered starts)"))
        return await rt.watcher.run()

    async def _start_services(self) -> list[asyncio.Task]:
        """Create and start services in the nodes' factory order: shared ones once (given this host, or the
        only Runtime), the others once per node. A factory raising GSwarmError ends the run with it."""
        tasks: list[asyncio.Task] = []
        target = self.first if len(self.runtimes) == 1 else self
        for path in self.first.service_paths:
            factory = _factory(path)
            if factory is None:
                continue
            for owner in ([target] if path in SHARED_SERVICES else list(self.runtimes.values())):
                try:
                    svc = factory(owner)
                except GSwarmError:
                    await self._stop_services(tasks)
                    raise
                except Exception:
                    log.exception("service factory %s failed; continuing without it", path)
                    continue
                if svc is not None:
                    self.services.append(svc)
                    if owner is not self:
                        owner.services.append(svc)
                    tasks.append(asyncio.ensure_future(svc.run()))
        return tasks

    def _announce_api(self) -> None:
        for svc in self.services:
            if getattr(svc, "name", "") == "api" and getattr(svc, "url", None):
                self.bus.publish(Notice(self.node, self.clock.time(), "api", Severity.INFO,
                                        f"dashboard {svc.url}/ (API {svc.url}/api/v1, docs {svc.url}/docs)"))

    async def _stop_services(self, tasks: list[asyncio.Task]) -> None:
        """Shut the services down: first let each service with ``drain(timeout)`` finish its queued work
        (notifications: the give-up alert must go out; at most the first node's ``drain_timeout`` s in all),
        then cancel them in reverse order of creation."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + getattr(self.first, "drain_timeout", 10.0)
        for svc in self.services:
            drain = getattr(svc, "drain", None)
            left = deadline - loop.time()
            if drain is None or left <= 0:
                continue
            try:
                await asyncio.wait_for(drain(left), left + 1.0)
            except asyncio.TimeoutError:
                log.warning("service %s did not finish its queued work within %.0f s", getattr(svc, "name", "?"), left)
            except Exception:
                log.exception("service %s failed while draining", getattr(svc, "name", "?"))
        for task in reversed(tasks):
            task.cancel()
            try:
                await asyncio.wait_for(task, 10)
            except (asyncio.CancelledError, asyncio.TimeoutError):
                pass
            except Exception:
                log.exception("service failed while stopping")

    # ------------------------------------------------------------- signals
    def _install_signals(self) -> None:
        if self.install_signals:
            loop = asyncio.get_running_loop()
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, self._on_signal, sig)

    def _remove_signals(self) -> None:
        if self.install_signals:
            loop = asyncio.get_running_loop()
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        """Only enqueue: first signal → graceful stop of every node + exit; a second SIGINT → kill now."""
        if sig == signal.SIGINT:
            self._sigint_seen += 1
        self.request("kill" if sig == signal.SIGINT and self._sigint_seen > 1 else "stop", "signal", True)


def _factory(path: str) -> Callable[[Any], Any] | None:
    mod_name, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        log.debug("service %s not available: %s", path, exc)
        return None


def record_view(owner: Any, node: str) -> Any:
    """The lock of ``node``, a further node on ``owner``'s checkout (``owner`` holds the checkout locks):
    it takes only its own (state dir, node name) owner lock and keeps its own pid records —
    ``run/<hash>-<node>.json`` and the host-wide ``live-<checkout hash>-<node hash>.json`` (found by the
    owner's ``leftovers()`` after a SIGKILL). ``release()`` drops its records and its owner lock.
    Raises LockError when another run keeps this node's history in the same state dir."""
    from gswarm.supervisor.lock import CheckoutLock, _flock_node

    view = CheckoutLock(owner.state_dir, owner.checkout, host_dir=owner.host_dir or False, node=node)
    view.record_path = owner.record_path.with_name(f"{owner.record_path.stem}-{node}.json")
    view._node_fd = _flock_node(view.node_lock_path, view.state_dir, node, view.checkout)
    view.acquire = lambda: None  # type: ignore[method-assign]
    plain_release = view.release

    def release() -> None:
        view.clear_record()
        plain_release()

    view.release = release  # type: ignore[method-assign]
    return view


def _identity_folder(rt: Any) -> None:
    """Create (0700) the folders of a placed node: its own identity file's, e.g. ``<state_dir>/nodes/<name>/``
    (the node writes swarm.pem there on its first start but creates no folders), and its log root."""
    placement = getattr(rt, "placement", None)
    if placement is not None:
        placement.identity_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if placement.log_root is not None:
            placement.log_root.mkdir(mode=0o700, parents=True, exist_ok=True)
