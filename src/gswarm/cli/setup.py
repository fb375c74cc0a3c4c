"""``gswarm setup`` (venv, requirements, modal-login build) and ``gswarm login`` (modal-login flow).

Exit codes: 0 done; 2 bad option or not a checkout; 4 LoginError (malformed userData.json,
nobody logged in, activation timeout, identity mismatch); 5 SetupError (Python, pip, yarn,
port held by another process) — the message names the file / log / pid and what to do.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from gswarm.cli._common import ConfigFile, RlSwarmDir, StateDir, settings_from, state_dir_of


def register(app: typer.Typer) -> None:
    """Add ``gswarm setup`` and ``gswarm login`` to ``app``."""

    @app.command()
    def setup(
        rl_swarm_dir: Optional[Path] = RlSwarmDir,
        state_dir: Optional[Path] = StateDir,
        config_file: Optional[Path] = ConfigFile,
        reinstall: bool = typer.Option(False, "--reinstall", help="Install the requirements even when unchanged."),
        hardware: Optional[str] = typer.Option(None, "--hardware", help="cpu, gpu (NVIDIA) or mps (Apple); default: detected."),
        python: Optional[Path] = typer.Option(None, "--python", help="Use this venv's interpreter instead of <checkout>/.venv."),
        requirements: Optional[Path] = typer.Option(None, "--requirements", help="Install this file instead of the generation's."),
        modal: bool = typer.Option(True, "--modal/--no-modal", help="Also yarn install/build modal-login (testnet generations)."),
    ) -> None:
        """Prepare a checkout: Python venv + the generation's requirements, modal-login build."""
        from gswarm.errors import ConfigError
        from gswarm.rlswarm.generations import TESTNET_GENERATIONS
        from gswarm.rlswarm.login import detect_generation
        from gswarm.rlswarm.setup import ensure_environment
        from gswarm.rlswarm.sidecars import ModalLogin

        if hardware not in (None, "cpu", "gpu", "mps"):
            raise ConfigError(f"option --hardware: {hardware!r} is not one of cpu, gpu, mps")
        settings = settings_from(rl_swarm_dir=rl_swarm_dir, state_dir=state_dir, config_file=config_file,
                                 python=python, requirements=requirements)
        console = Console(highlight=False)
        checkout = Path(settings.rl_swarm_dir).resolve()
        gen = detect_generation(checkout)
        res = ensure_environment(checkout, gen, hardware=hardware, requirements=settings.requirements, python=settings.python,
                                 reinstall=reinstall, console=console, cpu_only=settings.cpu_only)
        console.print(f"{gen}: venv {res.venv} " + ("installed" if res.installed else "already up to date (use --reinstall to force)"))
        console.print(f"pip log: {res.log_path}")
        if modal and gen in TESTNET_GENERATIONS and not settings.via_script:
            m = ModalLogin(checkout, state_dir_of(settings), gen, swarm=settings.swarm, contract=settings.contract_address)
            m.check_tools()
            m.write_env()
            try:
                built = m.build(force=reinstall)
            finally:
                m.restore_env()
            console.print("modal-login: " + ("built" if built else "already built") + f" (log {m.log_path})")

    @app.command()
    def login(
        rl_swarm_dir: Optional[Path] = RlSwarmDir,
        state_dir: Optional[Path] = StateDir,
        config_file: Optional[Path] = ConfigFile,
        timeout: Optional[str] = typer.Option(None, "--timeout", help="Wait this long for the browser login (userData.json): "
                                              "seconds or e.g. 90s, 10m, 1h (default: option login_timeout, 600)."),
        activation_timeout: Optional[str] = typer.Option(None, "--activation-timeout", help="Wait this long for API-key "
                                                         "activation: seconds or e.g. 5m (default: option activation_timeout, 300)."),
        port: int = typer.Option(3000, "--port", help="modal-login port (RL Swarm's Python side expects 3000)."),
    ) -> None:
        """Log in through modal-login once; the login is backed up so restarts need no browser."""
        from gswarm.config.durations import parse_duration

        login_s = parse_duration(timeout, "option --timeout") if timeout is not None else None
        activation_s = parse_duration(activation_timeout, "option --activation-timeout") if activation_timeout is not None else None
        settings = settings_from(rl_swarm_dir=rl_swarm_dir, state_dir=state_dir, config_file=config_file)
        org = asyncio.run(_login(settings, settings.login_timeout if login_s is None else login_s,
                                 settings.activation_timeout if activation_s is None else activation_s, port))
        Console(highlight=False).print(f"logged in: ORG_ID {org} (login files backed up in {state_dir_of(settings)}/backups)")


async def _login(settings, timeout: float, activation_timeout: float, port: int) -> str:
    from gswarm.errors import LoginError
    from gswarm.rlswarm.generations import TESTNET_GENERATIONS
    from gswarm.rlswarm.login import detect_generation, ensure_login
    from gswarm.rlswarm.sidecars import ModalLogin

    checkout = Path(settings.rl_swarm_dir).resolve()
    gen = detect_generation(checkout)
    if gen not in TESTNET_GENERATIONS:
        raise LoginError(f"{checkout} is generation {gen}, which has no modal-login (nothing to log in to)")
    state = state_dir_of(settings)
    modal = ModalLogin(checkout, state, gen, port=port, swarm=settings.swarm, contract=settings.contract_address)
    console = Console(highlight=False)
    try:
        await modal.start()
        return await ensure_login(checkout, state, port=port, console=console, login_timeout=timeout,
                                  activation_timeout=activation_timeout)
    finally:
        await modal.stop(timeout=settings.stop_timeout)
