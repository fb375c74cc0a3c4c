"""The ``gswarm`` command line (Typer). Commands live in one thin module each.

Each module in ``_COMMAND_MODULES`` defines ``register(app)``. Errors of type
:class:`gswarm.errors.GSwarmError` are printed as one clear message and mapped to
their exit code; no traceback is shown to the operator.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from gswarm import __version__
from gswarm.errors import GSwarmError

_COMMAND_MODULES = (
    "run",       # gswarm run            (supervisor core)
    "plan",      # gswarm plan           (generation detection, launch plan)
    "emulate",   # gswarm emulate ...    (emulated checkouts)
    "setup",     # gswarm setup / login  (environment, modal-login)
    "doctor",    # gswarm doctor
    "diagnose",  # gswarm diagnose / bundle
    "status",    # gswarm status / logs
    "report",    # gswarm report / digest
    "serve",     # gswarm serve
    "notify",    # gswarm notify ... / maintenance
    "options",   # gswarm options        (every configuration option)
    "control",   # gswarm stop/start/restart/reload (the running supervisor)
    "service",   # gswarm service install/uninstall/status
    "profile",   # gswarm profile ...    (named option sets, templates)
    "init",      # gswarm init           (setup wizard)
)

err_console = Console(stderr=True)

EXIT_CODES = (
    (0, "success (also after a requested stop, --duration, or Ctrl-C/SIGTERM ending gswarm run gracefully)"),
    (1, "failure: the node could not be started, or a check found a problem (e.g. profile validate)"),
    (2, "bad input: invalid option, flag, environment variable, config file or profile; not an RL Swarm checkout"),
    (3, "another gswarm run already supervises this checkout"),
    (4, "login failed (modal-login, API key activation)"),
    (5, "environment setup failed (venv, pip, yarn); the message names the log"),
    (6, "gave up on the node (crash loop or a cause a restart cannot fix)"),
    (7, "the SQLite store is unusable"),
    (130, "interrupted (Ctrl-C) in a command that is not supervising, e.g. at a wizard question"),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gswarm {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    """Create the Typer app with every command registered."""
    app = typer.Typer(
        name="gswarm",
        help="GSwarm: a supervisor for Gensyn RL Swarm nodes (third-party, not affiliated with Gensyn).",
        epilog="Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES) + ".",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ) -> None:
        """GSwarm keeps an RL Swarm node training unattended."""

    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"gswarm.cli.{name}")
        module.register(app)
    return app


def visible(text: str) -> str:
    """``text`` with every control character (ESC, CR, BEL, … but not newline or tab) written as a Python
    escape (``\x1b``), so a path or value echoed in an error message cannot recolour or rewrite the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else c.encode("unicode_escape").decode("ascii") for c in text)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning GSwarmError into a message and exit code."""
    from rich.markup import escape

    app = build_app()
    try:
        rc = app(args=argv, standalone_mode=False)
    except GSwarmError as exc:
        # soft_wrap: one line however long (the terminal folds it); a path cut by a hard wrap would not copy-paste
        err_console.print(f"[bold red]error:[/] {escape(visible(str(exc)))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # click usage errors (typer may bundle its own copy of click)
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            if isinstance(getattr(exc, "message", None), str):
                exc.message = visible(exc.message)  # a bad path echoed back must not drive the terminal
            exc.show()
            sys.exit(exc.exit_code)
        raise
    if isinstance(rc, int) and rc:
        sys.exit(rc)
