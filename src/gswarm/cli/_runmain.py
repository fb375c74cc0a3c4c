"""The body of ``gswarm run`` (kept out of the Typer module so the command stays thin)."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

from gswarm.config import load_settings
from gswarm.errors import NodeFatal


def run_main(flags: dict[str, Any], seconds: float | None = None, generation: str = "E6",
             emu_faults: str | None = None, emu_pace: float | None = None) -> int:
    """Load settings, print the plan, supervise; returns 0 or raises NodeFatal / LockError / ConfigError."""
    from gswarm.cli._runview import RunView
    from gswarm.runtime import Runtime

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings(flags)
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
    try:
        rt = Runtime(settings, console=view.lines, prepare=_wants_setup(settings, view))
        rt.cli_flags = flags  # gswarm reload loads the configuration again as this run did (issue #14)
        rt.setup_console = view.console
        rt.bus.subscribe(view.event)
        if rt.prepare:  # the plan needs the venv interpreter and ORG_ID that preparation finds
            rt.on_first_spec = view.plan
        else:
            view.plan(rt.build_spec())
        code = asyncio.run(_supervise(rt, seconds))
    finally:
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
        view.say("emulated checkout: no environment setup or login needed (--no-auto-setup implied)")
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
