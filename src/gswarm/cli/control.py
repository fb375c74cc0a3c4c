"""``gswarm stop|start|restart [NODE]`` and ``gswarm reload``: control the running supervisor.

They talk to the supervisor's control socket (``<state_dir>/control.sock``, :mod:`gswarm.daemon.control`).
The state dir is the one given (``--state-dir``, env, config file), else the installed service's when it
runs, else the default. Exit codes: 0 done; 1 refused (e.g. start of a running node) or no supervisor
running (the message says how to start one); 2 bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gswarm.cli._common import ConfigFile, JsonOut, StateDir, settings_from

NodeArg = typer.Argument(None, help="Node name (default: the node the supervisor runs).")
WaitOpt = typer.Option("60", "--wait", help="Wait up to this long for the node to reach the new state: seconds or "
                       "e.g. 90s, 2m (0 = do not wait; at most 5m).")


def _send(verb: str, node: Optional[str], state_dir: Optional[Path], config_file: Optional[Path],
          wait_text: str, as_json: bool) -> None:
    import json

    from gswarm.config.durations import parse_duration
    from gswarm.daemon.client import request, running_state_dir
    from gswarm.errors import ConfigError

    wait = parse_duration(wait_text, "option --wait", allow_zero=True)
    if not 0 <= wait <= 300:
        raise ConfigError(f"option --wait: {wait_text!r} is out of range; use 0 to 300 seconds (5m)")
    sdir = running_state_dir(settings_from(state_dir=state_dir, config_file=config_file))
    answer = request(sdir, verb, node, wait)
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
    else:
        typer.echo(answer.get("message", ""), err=not answer.get("ok"))
    if not answer.get("ok"):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``gswarm stop|start|restart|reload`` to ``app``."""

    @app.command("stop")
    def stop(node: Optional[str] = NodeArg, wait: str = WaitOpt, state_dir: Optional[Path] = StateDir,
             config_file: Optional[Path] = ConfigFile, json_out: bool = JsonOut) -> None:
        """Stop the node gracefully; the supervisor keeps running (and records the stop as requested)."""
        _send("stop", node, state_dir, config_file, wait, json_out)

    @app.command("start")
    def start(node: Optional[str] = NodeArg, wait: str = WaitOpt, state_dir: Optional[Path] = StateDir,
              config_file: Optional[Path] = ConfigFile, json_out: bool = JsonOut) -> None:
        """Start a stopped node under the running supervisor."""
        _send("start", node, state_dir, config_file, wait, json_out)

    @app.command("restart")
    def restart(node: Optional[str] = NodeArg, wait: str = WaitOpt, state_dir: Optional[Path] = StateDir,
                config_file: Optional[Path] = ConfigFile, json_out: bool = JsonOut) -> None:
        """Stop the node gracefully and start it again (applies options changed by `gswarm reload`)."""
        _send("restart", node, state_dir, config_file, wait, json_out)

    @app.command("reload")
    def reload(node: Optional[str] = NodeArg, state_dir: Optional[Path] = StateDir,
               config_file: Optional[Path] = ConfigFile, json_out: bool = JsonOut) -> None:
        """Re-read the configuration: notifications and heartbeat apply now; says what needs a restart."""
        _send("reload", node, state_dir, config_file, "0", json_out)
