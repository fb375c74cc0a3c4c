"""The composition root: one Runtime per ``gswarm run`` (see docs/architecture.md "Runtime").

Builds the bus, the checkout lock, the node watcher and the optional services
(lazy factories ``module:create_service``; a missing module or attribute is
skipped and logged at debug), runs them as tasks of one loop and shuts down in
order: node first, then services in reverse order of creation. Signal handlers
only enqueue commands: SIGINT/SIGTERM/SIGHUP → graceful stop and exit (SIGHUP: the
terminal or SSH session went away; without a handler it would kill ``gswarm run`` and
orphan the node's group); a second SIGINT while stopping → kill now.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gswarm.clock import Clock, SystemClock
from gswarm.errors import GSwarmError
from gswarm.events import EventBus, RecoveryAction, Recovery, Notice, Severity
from gswarm.paths import state_dir as resolve_state_dir
from gswarm.supervisor.spec import LaunchSpec

log = logging.getLogger(__name__)

SERVICE_FACTORIES = (
    "gswarm.logs.store:create_service",
    "gswarm.logs.jsonlog:create_service",
    "gswarm.rlswarm.sidecars:create_service",
    "gswarm.monitor.sampler:create_service",
    "gswarm.monitor.progress:create_service",
    "gswarm.monitor.health:create_service",
    "gswarm.notify.service:create_service",
    "gswarm.api.server:create_service",
    "gswarm.daemon:create_service",  # control socket, sd_notify, heartbeat (issue #14)
)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that stop the node gracefully and end ``gswarm run`` (SIGHUP: terminal/SSH hang-up)."""


@dataclass(frozen=True)
class Command:
    """A request to the node watcher. ``kind``: "start" | "stop" | "restart" | "kill"
    (also "stalled", "degraded", "healthy" from the health monitor); ``source``: who
    asked ("signal", "api", "cli", "duration", …); ``shutdown``: also end ``gswarm run``
    once the node stopped."""

    kind: str
    source: str = "api"
    shutdown: bool = False


class Runtime:
    """Everything one ``gswarm run`` owns. See the module docstring.

    ``spec_factory`` builds the LaunchSpec before each start (default:
    ``gswarm.rlswarm.launch.build_launch_spec(settings, checkout)``); ``checkout``
    defaults to ``settings.rl_swarm_dir``. ``services`` lists factory paths
    (default :data:`SERVICE_FACTORIES`; pass ``()`` for none).
    """

    def __init__(self, settings: Any, clock: Clock | None = None, bus: EventBus | None = None, *,
                 checkout: Path | None = None, spec_factory: Callable[[], LaunchSpec] | None = None,
                 rng: random.Random | None = None, console: Any = None, reinstall: Callable[[], Any] | None = None,
                 services: tuple[str, ...] | None = None, install_signals: bool = True,
                 prestart: Callable[[], Any] | None = None, prepare: bool = False) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.bus = bus or EventBus()
        self.state_dir: Path = resolve_state_dir(settings.state_dir)
        self.node: str = settings.node_name
        self.checkout = Path(checkout or settings.rl_swarm_dir).expanduser().resolve()
        self.commands: asyncio.Queue = asyncio.Queue()
        self.spec: LaunchSpec | None = None
        self._spec_factory = spec_factory or self._default_spec
        self.rng, self.console = rng, console
        self.reinstall = reinstall or self._default_reinstall
        self.prestart = prestart or self._keep_login_files
        self.service_paths = SERVICE_FACTORIES if services is None else services
        self.install_signals = install_signals
        self.prepare = prepare
        self.prepared: Any = None
        self.setup_console: Any = None  # a rich Console for setup/login progress and countdowns
        self.on_first_spec: Callable[[LaunchSpec], Any] | None = None
        self.poststart: Callable[[], Any] | None = None if prestart else self._keep_login_files
        self.watcher: Any = None
        self.services: list[Any] = []
        self._sigint_seen = 0

    def _default_spec(self) -> LaunchSpec:
        from gswarm.rlswarm.launch import build_launch_spec

        return build_launch_spec(self.settings, self.checkout)

    def _keep_login_files(self) -> None:
        """Before each start and once a trainer runs (without ``--auto-setup`` preparation): repair, restore
        and back up the login files and swarm.pem (``identity.keep_login``, ``identity.guard_identity``; §2.2).

        Problems are reported as a Notice, never fatal (a checkout without login, e.g. E0, has nothing to keep).
        """
        from gswarm.rlswarm import identity

        try:
            notes = identity.keep_login(self.checkout, self.state_dir)
            st = identity.guard_identity(self.checkout, self.state_dir, self.settings.identity_path)
            if st.action in ("restored", "backed_up"):
                notes.append(f"swarm.pem {st.action.replace('_', ' ')} ({st.backup})")
        except Exception as exc:  # IdentityError (a different swarm.pem), OSError
            self.bus.publish(Notice(self.node, self.clock.time(), "identity", Severity.WARNING,
                                    "login/identity files not kept", str(exc)))
            return
        for note in notes:
            self.bus.publish(RecoveryAction(self.node, self.clock.time(), Recovery.NONE, note))

    async def _default_reinstall(self, target: str = "python") -> None:
        """Reinstall the node's dependencies (in a thread: pip and yarn block).

        ``target`` "python": ``gswarm.rlswarm.setup.reinstall`` (venv requirements); "modal-login":
        rebuild the modal-login app (``yarn install`` + ``yarn build`` forced) when GSwarm runs it.
        Raises SetupError when the install fails (the watcher reports it).
        """
        if target == "modal-login":
            modal = getattr(self.prepared, "modal", None)
            if modal is not None:
                await asyncio.to_thread(modal.build, True)
            return
        from gswarm.rlswarm.setup import reinstall

        generation = self.spec.generation if self.spec else None
        await asyncio.to_thread(reinstall, self.settings, self.checkout, generation)

    def update_settings(self, **changes: Any) -> None:
        """Apply option changes for the next start (e.g. the OOM ladder's E2 ``model_size``)."""
        self.settings = self.settings.model_copy(update=changes)
        if self.watcher is not None:
            self.watcher.settings = self.settings

    async def _prepare(self) -> None:
        """Direct mode on a real checkout: venv + requirements, modal-login sidecar, login, identity guard.

        Uses :func:`gswarm.rlswarm.login.prepare_node` (raises SetupError / LoginError / CheckoutError);
        afterwards every start restores login files and swarm.pem and revives dead sidecars.
        """
        from gswarm.rlswarm.login import prepare_node

        s = self.settings
        self.prepared = await prepare_node(s, self.checkout, state_dir=self.state_dir, console=self.setup_console,
                                           modal_port=s.modal_port, ollama_port=s.ollama_port,
                                           login_timeout=s.login_timeout, activation_timeout=s.activation_timeout)
        for note in self.prepared.notes:
            self.bus.publish(Notice(self.node, self.clock.time(), "setup", Severity.INFO, note))
        self.settings = s.model_copy(update=self.prepared.settings_update())
        self.prestart = self._prepared_prestart
        self.poststart = self.prepared.after_start

    async def _prepared_prestart(self) -> None:
        for note in await self.prepared.before_start():
            self.bus.publish(RecoveryAction(self.node, self.clock.time(), Recovery.NONE, note))

    def build_spec(self) -> LaunchSpec:
        """Build (and remember) the LaunchSpec for the next start (raises CheckoutError/ConfigError).

        ``on_first_spec(spec)``, when set, is called once with the first spec built (the CLI prints the plan).
        """
        first = self.spec is None
        self.spec = self._spec_factory()
        if first and self.on_first_spec is not None:
            self.on_first_spec(self.spec)
        return self.spec

    # ----------------------------------------------------------------- running
    async def run(self) -> int:
        """Lock the checkout, adopt leftovers, supervise, shut down. Returns the exit code.

        Raises LockError when another gswarm run supervises the same checkout.
        """
        from gswarm.supervisor.lock import CheckoutLock
        from gswarm.supervisor.watcher import Watcher

        lock = CheckoutLock(self.state_dir, self.checkout, node=self.node)
        lock.acquire()
        try:
            await self._adopt_leftover(lock)
            if self.prepare:
                await self._prepare()
            self.watcher = Watcher(self.node, self.settings, self.bus, self.clock, self.state_dir, self.build_spec,
                                   self.commands, rng=self.rng, lock=lock, console=self.console, reinstall=self.reinstall,
                                   prestart=self.prestart, poststart=self.poststart, update_settings=self.update_settings)
            tasks = await self._start_services()
            for svc in self.services:
                if getattr(svc, "name", "") == "api" and getattr(svc, "url", None):
                    self.bus.publish(Notice(self.node, self.clock.time(), "api", Severity.INFO,
                                            f"dashboard {svc.url}/ (API {svc.url}/api/v1, docs {svc.url}/docs)"))
            self._install_signals()
            try:
                return await self.watcher.run()
            finally:
                self._remove_signals()
                await self._stop_services(tasks)
        finally:
            if self.prepared is not None:
                await self.prepared.close()
            lock.release()

    async def _adopt_leftover(self, lock: Any) -> None:
        """Stop what a SIGKILLed gswarm left on this checkout, found through this state dir's record or
        the host-wide one (any state dir); each process proven ours by marker + start stamp."""
        from gswarm.supervisor.lock import stop_orphan_group

        for rec in lock.leftovers():
            stopped = await asyncio.to_thread(stop_orphan_group, rec, self.settings.stop_timeout)
            if stopped:
                detail = f"stopped node group {rec.pgid} (pid {rec.node_pid}) left behind by gswarm pid {rec.gswarm_pid}"
                self.bus.publish(RecoveryAction(self.node, self.clock.time(), Recovery.CLEANUP_THEN_RESTART, detail,
                                                {"pgid": rec.pgid, "pid": rec.node_pid, "gswarm_pid": rec.gswarm_pid}))
                self.bus.publish(Notice(self.node, self.clock.time(), "orphan", Severity.WARNING,
                                        "stopped a node left behind by a killed gswarm", detail))
        lock.clear_leftovers()

    async def _start_services(self) -> list[asyncio.Task]:
        """Create and start the services. A factory raising GSwarmError (e.g. the API port is taken)
        ends the run with that error after stopping what was started; any other failure is logged."""
        tasks: list[asyncio.Task] = []
        for path in self.service_paths:
            mod_name, _, attr = path.partition(":")
            try:
                factory = getattr(importlib.import_module(mod_name), attr)
            except (ImportError, AttributeError) as exc:
                log.debug("service %s not available: %s", path, exc)
                continue
            try:
                svc = factory(self)
            except GSwarmError:
                await self._stop_services(tasks)
                raise
            except Exception:
                log.exception("service factory %s failed; continuing without it", path)
                continue
            if svc is not None:
                self.services.append(svc)
                tasks.append(asyncio.ensure_future(svc.run()))
        return tasks

    async def _stop_services(self, tasks: list[asyncio.Task]) -> None:
        for task in reversed(tasks):
            task.cancel()
            try:
                await asyncio.wait_for(task, 10)
            except (asyncio.CancelledError, asyncio.TimeoutError):
                pass
            except Exception:
                log.exception("service failed while stopping")

    # ----------------------------------------------------------------- signals
    def _install_signals(self) -> None:
        if not self.install_signals:
            return
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _remove_signals(self) -> None:
        if self.install_signals:
            loop = asyncio.get_running_loop()
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        """Only enqueue: first signal (any of :data:`STOP_SIGNALS`) → graceful stop + exit; a second SIGINT → kill now."""
        if sig == signal.SIGINT:
            self._sigint_seen += 1
        kind = "kill" if sig == signal.SIGINT and self._sigint_seen > 1 else "stop"
        self.commands.put_nowait(Command(kind, "signal", shutdown=True))

    def request(self, kind: str, source: str = "api", shutdown: bool = False) -> None:
        """Enqueue a command (thread-unsafe; call from the loop)."""
        self.commands.put_nowait(Command(kind, source, shutdown))

    # ----------------------------------------------------------------- snapshot
    def snapshot(self) -> dict[str, Any]:
        """The node's state for the API/CLI (shape in docs/architecture.md; times Unix seconds)."""
        w = self.watcher
        spec = self.spec
        state = w.sm.state.value if w else "STOPPED"
        info = w.info if w else None
        live = state in ("STARTING", "RUNNING", "DEGRADED", "STALLED", "STOPPING", "WAITING_LOGIN")
        started = info.started_at if info and live and state != "WAITING_LOGIN" else None  # a login wait is no uptime
        waiting = info.login_wait_since if info and state == "WAITING_LOGIN" else None
        return {
            "node": self.node,
            "state": state,
            "pid": info.pid if info and live else None,
            "pgid": info.pgid if info and live else None,
            "generation": spec.generation if spec else None,
            "mode": spec.mode if spec else None,
            "started_at": started,
            "uptime": (self.clock.time() - started) if started else None,
            "restarts": info.restarts if info else 0,
            "last_exit": dict(info.last_exit) if info and info.last_exit else None,
            "next_restart_at": info.next_restart_at if info else None,
            "fatal_reason": info.fatal_reason if info else None,
            "degraded": bool(info.degraded) if info else False,
            "waiting_login_for": (self.clock.time() - waiting) if waiting is not None else None,
        }
