"""Options shared by every command (``--rl-swarm-dir``, ``--state-dir``, ``--config-file``) and output-path checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from gswarm.config import Settings, load_settings
from gswarm.errors import ConfigError
from gswarm.paths import probe_writable, state_dir as resolve_state_dir

RlSwarmDir = typer.Option(None, "--rl-swarm-dir", help="RL Swarm checkout (default: current folder).", envvar=None)
StateDir = typer.Option(None, "--state-dir", help="GSwarm state directory (env GSWARM_STATE_DIR).")
ConfigFile = typer.Option(None, "--config-file", help="TOML file with options (env GSWARM_CONFIG_FILE).")
JsonOut = typer.Option(False, "--json", help="Print JSON.")


def settings_from(**flags: Any) -> Settings:
    """Load settings with the given command-line flags (None = not given)."""
    return load_settings(flags)


def state_dir_of(settings: Settings, *, writable: bool = True) -> Path:
    """The resolved state directory for ``settings`` (created 0700; a command that only reads passes
    ``writable=False`` and gets a missing one as it is). ConfigError naming the folder when it is a file,
    cannot be created or (``writable``) is not writable (:func:`gswarm.paths.state_dir`)."""
    return resolve_state_dir(settings.state_dir, writable=writable)


def check_output_file(path: Path, option: str, example: str = "out") -> Path:
    """``path`` (``~`` expanded) if a file can be written there; else ConfigError naming ``option``
    (``example``: a file name suggested inside a folder given by mistake).

    Refuses a folder, a missing parent folder (never created: the commands using this only read), a
    parent that is a file and a parent where a temp file cannot be created (probe: create + remove, so
    root and read-only mounts are caught too)."""
    path = Path(path).expanduser()
    parent = path.parent
    if path.is_dir():
        raise ConfigError(f"option {option}: {path} is a folder; pass a file name, e.g. {path / example}")
    if not parent.exists():
        raise ConfigError(f"option {option}: folder {parent} does not exist; create it first or pick another path")
    if not parent.is_dir():
        raise ConfigError(f"option {option}: {parent} is a file, not a folder; pick another path")
    try:
        probe_writable(parent)
    except OSError as exc:
        raise ConfigError(f"option {option}: cannot write in folder {parent} ({exc.strerror or exc}); pick another path") from None
    return path


def pick_node(reader: object, sdir: Path, node: str | None, default: str) -> str:
    """The node a reading command (report, logs) is about, as ``gswarm status`` picks it: ``--node``, else
    node_name, else the only node the store knows. ConfigError naming --node and the known nodes for a node
    the store has no record of."""
    known: list[str] = reader.nodes()  # type: ignore[attr-defined]
    name = node or default
    if node is None and name not in known and len(known) == 1:
        return known[0]
    if known and name not in known:
        raise ConfigError(f"unknown node {name!r} in {sdir}; known nodes: {', '.join(known)} (pass one with --node)")
    return name
