"""One node's runtime: its watcher, process, capture and per-node services (see docs/architecture.md "Host").

Since issue #15 the composition root is :class:`gswarm.host.Host`: it holds the checkout lock, builds
the shared services (store, JSON log, notifier, API) once and runs N Runtimes; :meth:`Runtime.run`
runs this node as a one-node host, exactly as a Wave-1 run did. Services are lazy factories
``module:create_service`` (a missing module or attribute is skipped and logged at debug); shutdown order:
nodes first, then services in reverse order of creation. Signal handlers (installed by the host) only
enqueue commands: SIGINT/SIGTERM/SIGHUP → graceful stop and exit (SIGHUP: the terminal or SSH session
went away); a second SIGINT while stopping → kill now.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gswarm.clock import Clock, SystemClock
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

DRAIN_TIMEOUT = 10.0
"""Seconds (real time) the services get at shutdown to finish queued work (notifications) before cancel."""

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
    (default :data:`SERVICE_FACTORIES`; pass ``()`` for none). ``drain_timeout``: seconds the
    services get at shutdown to deliver what they queued (:meth:`_stop_services`).
    """

    def __init__(self, settings: Any, clock: Clock | None = None, bus: EventBus | None = None, *,
                 checkout: Path | None = None, spec_factory: Callable[[], LaunchSpec] | None = None,
                 rng: random.Random | None = None, console: Any = None, reinstall: Callable[[], Any] | None = None,
                 services: tuple[str, ...] | None = None, install_signals: bool = True,
                 prestart: Callable[[], Any] | None = None, prepare: bool = False,
                 drain_timeout: float = DRAIN_TIMEOUT) -> None:
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
        self.drain_timeout = drain_timeout
        self.prepared: Any = None
        self.setup_console: Any = None  # a rich Console for setup/login progress and countdowns
        self.on_first_spec: Callable[[LaunchSpec], Any] | None = None
        self.poststart: Callable[[], Any] | None = None if prestart else self._keep_login_files
        self.watcher: Any = None
        self.services: list[Any] = []
        self.placement: Any = None  # gswarm.placement.Placement when the host runs several nodes
        self.lock: Any = None  # the CheckoutLock (or a per-node view of it) the host took for this node

    def _default_spec(self) -> LaunchSpec:
        from gswarm.rlswarm.launch import build_launch_spec

        return build_launch_spec(self.settings, self.checkout)

    def _keep_login_files(self) -> None:
        """Before each start and once a trainer runs (without ``--auto-setup`` preparation): repair, restore
        and back up the login files and swarm.pem (``identity.keep_login``, ``identity.guard_identity``; §2.2).

        Never fatal: a failing write goes to the disk alarm, a different swarm.pem is a Notice (a checkout
        without login, e.g. E0, has nothing to keep).
        """
        from gswarm.rlswarm import identity

        try:
            notes = identity.keep_login(self.checkout, self.state_dir)
            if self.placement is None:  # one node: its swarm.pem too (nodes sharing a checkout: the host's placement)
                st = identity.guard_identity(self.checkout, self.state_dir, self.settings.identity_path)
                if st.action in ("restored", "backed_up"):
                    notes.append(f"swarm.pem {st.action.replace('_', ' ')} ({st.backup})")
        except OSError as exc:  # disk full / failing: one alert for every writer (gswarm.diskfull)
            from gswarm.diskfull import alarm_for

            alarm_for(self.bus, self.clock, self.node).failed("login file backup", exc, self.state_dir / "backups")
            return
        except Exception as exc:  # IdentityError (a different swarm.pem)
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

    async def _prepare(self, login_from: "Runtime | None" = None) -> None:
        """Direct mode on a real checkout: venv + requirements, modal-login sidecar, login, identity guard.

        Uses :func:`gswarm.rlswarm.login.prepare_node` (raises SetupError / LoginError / CheckoutError);
        afterwards every start restores login files and swarm.pem and revives dead sidecars. ``login_from``:
        a node of the same account on another checkout that already runs the login server and logged in
        (this checkout then gets its venv but no second login server; ORG_ID comes from that node).
        """
        from gswarm.rlswarm.login import prepare_node

        s = self.settings
        self.prepared = await prepare_node(s, self.checkout, state_dir=self.state_dir, console=self.setup_console,
                                           modal_port=s.modal_port, ollama_port=s.ollama_port,
                                           login_timeout=s.login_timeout, activation_timeout=s.activation_timeout,
                                           login=login_from is None)
        for note in self.prepared.notes:
            self.bus.publish(Notice(self.node, self.clock.time(), "setup", Severity.INFO, note))
        update = self.prepared.settings_update()
        org = getattr(login_from.prepared, "org_id", None) if login_from is not None else None
        if org and not s.org_id:  # the account's login, done by login_from's checkout
            update["org_id"] = org
        self.settings = s.model_copy(update=update)
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
        spec = self._spec_factory()
        if self.placement is not None:  # one node of several on this host (gswarm.placement)
            from gswarm.placement import apply

            spec = apply(spec, self.placement)
        self.spec = spec
        if first and self.on_first_spec is not None:
            self.on_first_spec(self.spec)
        return self.spec

    # ----------------------------------------------------------------- running
    async def run(self) -> int:
        """Supervise this node as a one-node :class:`gswarm.host.Host` (lock the checkout, adopt leftovers,
        set up, services, watcher, shut down in order). Returns the exit code.

        Raises LockError when another gswarm run supervises the same checkout, ConfigError when the lock
        files cannot even be created in the state dir (e.g. its disk is full).
        """
        from gswarm.host import Host

        return await Host.single(self).run()

    def make_watcher(self) -> Any:
        """Build this node's Watcher (after the lock is held and setup ran); the host calls it."""
        from gswarm.supervisor.watcher import Watcher

        self.watcher = Watcher(self.node, self.settings, self.bus, self.clock, self.state_dir, self.build_spec,
                               self.commands, rng=self.rng, lock=self.lock, console=self.console, reinstall=self.reinstall,
                               prestart=self.prestart, poststart=self.poststart, update_settings=self.update_settings)
        return self.watcher

    def share_setup(self, owner: "Runtime") -> None:
        """Use the environment ``owner`` (same checkout) already prepared: its venv/ORG_ID settings; before
        each start only the login files are restored (the owner keeps sidecars alive and closes them)."""
        prepared = owner.prepared
        if prepared is None:
            return
        keep = {k: v for k, v in prepared.settings_update().items() if k != "identity_path"}
        self.settings = self.settings.model_copy(update=keep)
        self.prestart = self._keep_login_files

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
        return {
            "node": self.node,
            "state": state,
            "pid": info.pid if info and live else None,
            "pgid": info.pgid if info and live else None,
            "generation": spec.generation if spec else None,
            "mode": spec.mode if spec else None,
            "started_at": started,
            "uptime": w.uptime() if started else None,  # monotonic: a wall-clock step cannot make it negative
            "restarts": info.restarts if info else 0,
            "last_exit": dict(info.last_exit) if info and info.last_exit else None,
            "next_restart_at": info.next_restart_at if info else None,
            "fatal_reason": info.fatal_reason if info else None,
            "degraded": bool(info.degraded) if info else False,
            "waiting_login_for": w.login_wait() if w else None,  # s, monotonic
            "idle": self._idle() if live else None,
        }

    def _idle(self) -> float | None:
        """Seconds without progress (monotonic) from the health service, or None without one."""
        health = next((s for s in self.services if getattr(s, "name", "") == "health"), None)
        idle = getattr(health, "idle", None)
        return idle() if callable(idle) else None
