"""``gswarm doctor [--json]``: prerequisites of a node, one line each (pass / warn / fail + fix).

JSON: ``{"checks": [{"name", "status", "detail", "fix"}]}``. Exit code 1 when any check fails,
else 0. Thresholds: :mod:`gswarm.rlswarm.doctor`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gswarm.cli._common import ConfigFile, JsonOut, RlSwarmDir, StateDir, settings_from, state_dir_of

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def register(app: typer.Typer) -> None:
    """Add ``gswarm doctor`` to ``app``."""

    @app.command()
    def doctor(
        rl_swarm_dir: Optional[Path] = RlSwarmDir,
        state_dir: Optional[Path] = StateDir,
        config_file: Optional[Path] = ConfigFile,
        json_out: bool = JsonOut,
        python: Optional[Path] = typer.Option(None, "--python", help="Interpreter of the node's venv."),
        modal_port: Optional[int] = typer.Option(None, "--modal-port", help="modal-login port to check (default: option modal_port, 3000)."),
        p2p_port: int = typer.Option(38331, "--p2p-port", help="libp2p port of E0-E2 GPU configs to check."),
        ollama_port: Optional[int] = typer.Option(None, "--ollama-port", help="ollama port to check (E6; default: option ollama_port, 11434)."),
    ) -> None:
        """Check Python, venv, Node/yarn, GPU, memory, disk, ports, identity, login and ollama."""
        from gswarm.rlswarm.doctor import run_checks

        settings = settings_from(rl_swarm_dir=rl_swarm_dir, state_dir=state_dir, config_file=config_file, python=python,
                                 modal_port=modal_port, ollama_port=ollama_port)
        checks = run_checks(settings, state_dir=state_dir_of(settings, writable=False), modal_port=settings.modal_port, p2p_port=p2p_port,
                            ollama_port=settings.ollama_port)
        if json_out:
            typer.echo(json.dumps({"checks": [c.to_json() for c in checks]}, indent=2))
        else:
            console = Console()
            if not console.is_terminal:  # piped (bug reports): one line per check, nothing cut off
                for c in checks:
                    typer.echo(f"{c.status:4}  {c.name}: {c.detail}" + (f"  → fix: {c.fix}" if c.fix else ""))
            else:
                table = Table("check", "status", "detail", "fix", show_lines=False)
                for c in checks:
                    table.add_row(c.name, f"[{_STYLE[c.status]}]{c.status}[/]", escape(c.detail), escape(c.fix))
                console.print(table)
        if any(c.status == "fail" for c in checks):
            raise typer.Exit(1)
