"""``gswarm emulate …``: emulated RL Swarm checkouts for demos and tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from gswarm.emulator.checkout import init_checkout
from gswarm.emulator.node import parse_faults
from gswarm.errors import CheckoutError, ConfigError
from gswarm.rlswarm.generations import detect


def register(app: typer.Typer) -> None:
    """Add the ``gswarm emulate`` group (``init``, ``node``) to ``app``."""
    emulate = typer.Typer(help="Emulated RL Swarm checkouts (no GPU, login or network needed).", no_args_is_help=True)

    @emulate.command("init")
    def init(
        directory: Path = typer.Argument(..., help="Folder to create (must be new, empty, or an emulated checkout with --force)."),
        generation: str = typer.Option("E6", "--generation", "-g", help="E0 … E6."),
        logged_in: bool = typer.Option(False, "--logged-in", help="Pre-create modal-login/temp-data login files (E1-E6)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing emulated checkout."),
    ) -> None:
        """Write a fake checkout that GSwarm detects as GENERATION and whose node behaves like the real one."""
        try:
            path = init_checkout(directory, generation.upper(), logged_in=logged_in, force=force)
        except OSError as exc:  # a folder we may not create or write (read-only mount, a file on the path, …)
            where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(directory) else ""
            raise CheckoutError(f"cannot write the emulated checkout to {directory}: {exc.strerror or exc}{where}; "
                                "choose another DIR") from None
        det = detect(path)
        typer.echo(f"emulated {det.generation} checkout at {path}")
        typer.echo("env: GSWARM_EMU_PACE (s/step), GSWARM_EMU_FAULTS (e.g. crash:cuda_oom@20#1), GSWARM_EMU_ROUNDS")

    @emulate.command("node", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def node(
        ctx: typer.Context,
        rl_swarm_dir: Path = typer.Option(Path("."), "--rl-swarm-dir", help="The emulated checkout."),
        faults: str = typer.Option("", "--faults", help="Fault schedule (sets GSWARM_EMU_FAULTS)."),
        pace: Optional[str] = typer.Option(None, "--pace", help="Per step: seconds or e.g. 2s, 1m (sets GSWARM_EMU_PACE)."),
    ) -> None:
        """Run the emulated node of the checkout in the foreground (extra args go to the entry point)."""
        from gswarm.emulator import node as emu

        try:
            parse_faults(faults)
        except ValueError as exc:
            raise ConfigError(f"option --faults: {exc}") from None
        if not ctx.args:  # without the entry point's args the node would only show a Hydra/argparse error
            raise ConfigError("usage: gswarm emulate node [--rl-swarm-dir DIR] [--faults F] [--pace S] -- ENTRY_ARGS...; "
                              "ENTRY_ARGS are the node's own arguments: `gswarm plan --rl-swarm-dir DIR` shows them, "
                              "and `gswarm run --rl-swarm-dir DIR` supervises the node with them")
        pace_s = None
        if pace is not None:
            from gswarm.config.durations import parse_duration

            pace_s = parse_duration(pace, "option --pace")
        checkout = Path(rl_swarm_dir).resolve()
        gen = detect(checkout).generation
        if faults:
            os.environ["GSWARM_EMU_FAULTS"] = faults
        if pace_s is not None:
            os.environ["GSWARM_EMU_PACE"] = repr(pace_s)
        os.chdir(checkout)
        raise typer.Exit(emu.main(gen, list(ctx.args), str(checkout)))

    app.add_typer(emulate, name="emulate")
