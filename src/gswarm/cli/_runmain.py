"""The body of ``gswarm run`` (kept out of the Typer module so the command stays thin)."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

from gswarm.config import load_settings
from gswarm.errors import ConfigError, NodeFatal


def run_main(flags: dict[str, Any], seconds: float | None = None, generation: str = "E6",
             emu_faults: str | None = None, emu_pace: float | None = None, nodes: int | None = None) -> int:
    """Load settings, print the plan, supervise; returns 0 or raises NodeFatal / LockError / ConfigError.

    ``[[nodes]]`` tables in the config file (or ``nodes`` with ``--emulated``) run several nodes in one
    host (:func:`_run_host`)."""
    from gswarm.cli._runview import install_stderr_log, remove_stderr_log

    log_handler = install_stderr_log(logging.WARNING)  # queued: a stuck stderr (journald) never stalls the loop
    try:
        return _run_main(flags, seconds, generation, emu_faults, emu_pace, nodes)
    finally:
        remove_stderr_log(log_handler)


def _run_main(flags: dict[str, Any], seconds: float | None, generation: str, emu_faults: str | None,
              emu_pace: float | None, nodes: int | None) -> int:
    from gswarm.cli._runview import RunView
    from gswarm.config.nodes import emulated_nodes, read_host_config
    from gswarm.runtime import Runtime

    settings = load_settings(flags)
    host_cfg = read_host_config(settings.config_file)
    if nodes is not None:
        if not settings.emulated:
            raise ConfigError("option --nodes: only with --emulated; declare real nodes as [[nodes]] tables in "
                              "--config-file (see README \"Several nodes on one host\")")
        if host_cfg is not None:
            raise ConfigError(f"option --nodes: the config file {settings.config_file} already declares [[nodes]]; "
                              "drop one of them")
        host_cfg = emulated_nodes(nodes)
    tmp = None
    view = RunView()
    if settings.emulated:
        from gswarm.emulator.demo import default_demo

        tmp = tempfile.TemporaryDirectory(prefix="gswarm-emulated-")
        kwargs: dict[str, Any] = {}
        if emu_faults is not None:
            kwargs["faults"] = emu_faults
        if emu_pace is not None:
            kwargs["pace"] = emu_pace
        checkout, env = default_demo(Path(tmp.name), generation, **kwargs)
        settings = settings.model_copy(update={"rl_swarm_dir": checkout, "extra_env": {**settings.extra_env, **env}})
        view.say(f"emulated {generation} checkout in {checkout} (faults: {env.get('GSWARM_EMU_FAULTS') or 'none'})")
    if host_cfg is not None:
        try:
            return _run_host(settings, host_cfg, view, seconds, flags)
        finally:
            view.close()  # the last lines (exits, "stopped") reach stdout; a stuck one costs 2 s, no more
            if tmp is not None:
                tmp.cleanup()
    try:
        rt = Runtime(settings, console=view.lines, prepare=_wants_setup(settings, view))
        view.state_dir_is(rt.state_dir)
        rt.cli_flags = flags  # gswarm reload loads the configuration again as this run did (issue #14)
        rt.setup_console = view.console
        rt.bus.subscribe(view.event)
        if rt.prepare:  # the plan needs the venv interpreter and ORG_ID that preparation finds
            rt.on_first_spec = view.plan
        else:
            view.plan(rt.build_spec())
        code = asyncio.run(_supervise(rt, seconds))
    finally:
        view.close()  # the last lines (exits, "stopped") reach stdout; a stuck one costs 2 s, no more
        if tmp is not None:
            tmp.cleanup()
    if code == NodeFatal.exit_code:
        snap = rt.snapshot()
        raise NodeFatal(f"node {rt.node} gave up ({snap['state']}): {snap['fatal_reason'] or 'see the output above'}; "
                        f"fix the cause shown above, then start gswarm run again")
    return code


def _wants_setup(settings: Any, view: Any) -> bool:
    """Prepare the environment (venv, modal-login, login) unless told not to or the checkout is emulated.

    An emulated checkout (``gswarm emulate init``; marker folder ``.gswarm-emulator``) runs its stdlib-only
    node on GSwarm's own interpreter and needs no venv, yarn or browser login.
    """
    from gswarm.emulator.checkout import EMU_DIR

    if not settings.auto_setup or settings.emulated:
        return False
    if (Path(settings.rl_swarm_dir) / EMU_DIR).is_dir():
        view.say("emulated checkout: no environment setup needed (--no-auto-setup implied); its login files, if any, are used as they are")
        return False
    return True


async def _supervise(rt: Any, seconds: float | None) -> int:
    if seconds is not None:
        asyncio.get_running_loop().call_later(seconds, rt.request, "stop", "duration", True)
    from gswarm.daemon.systemd import during_setup

    setup = asyncio.ensure_future(during_setup(rt)) if rt.prepare else None  # systemd: READY + pings during the login
    try:
        return await rt.run()
    finally:
        if setup is not None:
            setup.cancel()


def _run_host(settings: Any, host_cfg: Any, view: Any, seconds: float | None, flags: dict[str, Any]) -> int:
    """Several nodes in one :class:`gswarm.host.Host`: place them, print each plan, supervise all."""
    from gswarm.clock import SystemClock
    from gswarm.events import EventBus
    from gswarm.host import Host
    from gswarm.paths import state_dir as resolve_state_dir
    from gswarm.placement import fit_warnings, host_resources, place
    from gswarm.runtime import Runtime

    placements = place(settings, host_cfg, resolve_state_dir(settings.state_dir))
    view.state_dir_is(resolve_state_dir(settings.state_dir))  # the host's state dir: every node's logs/ are under it
    if not settings.emulated:  # emulated nodes need next to nothing
        ram, gpu_free = host_resources()
        for warning in fit_warnings(placements, host_cfg, ram, gpu_free):
            view.say(f"warning: {warning}", "bold yellow")
    bus, clock = EventBus(), SystemClock()
    view.multi = True
    runtimes = []
    for p in placements:
        rt = Runtime(p.settings, clock, bus, checkout=p.checkout, console=view.node_lines(p.node),
                     prepare=_wants_setup(p.settings, view), install_signals=False)
        rt.placement = p
        rt.setup_console = view.console
        runtimes.append(rt)
        view.say(f"[bold]\\[{p.node}][/] GPUs {p.cuda if p.cuda is not None else 'all'}, p2p "
                 f"{p.to_json()['p2p']}, identity {p.identity_path}, account {p.account} (modal-login :{p.modal_port})")
        if rt.prepare:  # the plan needs what setup finds (venv interpreter, ORG_ID)
            rt.on_first_spec = lambda spec, node=p.node: view.plan(spec, node)
        else:
            view.plan(rt.build_spec(), p.node)
    bus.subscribe(view.event)
    host = Host(settings, runtimes, clock, bus, stagger=host_cfg.stagger)
    host.cli_flags = flags  # gswarm reload loads the configuration again as this run did (issue #14)
    code = asyncio.run(_supervise(host, seconds))
    if code == NodeFatal.exit_code:
        failed = [f"{n} ({rt.snapshot()['fatal_reason'] or rt.snapshot()['state']})"
                  for n, rt in host.runtimes.items() if host.codes.get(n) == NodeFatal.exit_code]
        raise NodeFatal(f"node(s) gave up: {'; '.join(failed)}; fix the cause shown above, then start gswarm run again")
    return code
