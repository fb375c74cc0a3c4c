"""Options shared by every command: ``--rl-swarm-dir``, ``--state-dir``, ``--config-file``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from gswarm.config import Settings, load_settings
from gswarm.paths import state_dir as resolve_state_dir

RlSwarmDir = typer.Option(None, "--rl-swarm-dir", help="RL Swarm checkout (default: current folder).", envvar=None)
StateDir = typer.Option(None, "--state-dir", help="GSwarm state directory (env GSWARM_STATE_DIR).")
ConfigFile = typer.Option(None, "--config-file", help="TOML file with options (env GSWARM_CONFIG_FILE).")
JsonOut = typer.Option(False, "--json", help="Print JSON.")


def settings_from(**flags: Any) -> Settings:
    """Load settings with the given command-line flags (None = not given)."""
    return load_settings(flags)


def state_dir_of(settings: Settings) -> Path:
    """The resolved state directory for ``settings`` (created 0700)."""
    return resolve_state_dir(settings.state_dir)
