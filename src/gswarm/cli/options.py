"""``gswarm options``: every configuration option, where it can be set, its type, default and meaning.

The one complete list (``gswarm run --help`` shows only the everyday flags): read from the
:class:`gswarm.config.Settings` model itself (:mod:`gswarm.config.catalog`), so it cannot drift from what is
accepted. The text form is one block per option (name, environment variable, flag, default, then the
meaning indented below), so it stays readable at 80 columns and when piped; ``--current`` adds the effective
value and where it came from. ``options WORD`` with no match exits 2.
"""

from __future__ import annotations

import inspect
import json
import textwrap
from pathlib import Path
from typing import Any, Optional

import typer

from gswarm.cli._common import ConfigFile, StateDir
from gswarm.config.catalog import PRECEDENCE, option_catalog
from gswarm.errors import ConfigError


def option_rows() -> list[dict[str, Any]]:
    """One dict per option: ``name``, ``group``, ``env`` (``GSWARM_…``), ``flag`` (``--…`` of ``gswarm run`` or
    None), ``type``, ``kind``, ``choices``, ``default`` (None for secrets), ``description`` (units included)."""
    from gswarm.cli.run import run

    run_params = set(inspect.signature(run).parameters)
    rows = option_catalog()
    for r in rows:
        r["flag"] = "--" + r["name"].replace("_", "-") if r["name"] in run_params else None
    return rows


def _show(value: Any) -> str:
    if value is None:
        return "-"
    return json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)


def _block(r: dict[str, Any], width: int) -> str:
    where = r["env"] + (f", {r['flag']}" if r["flag"] else "")
    head, default = f"{r['name']}  ({where})", f"default {_show(r['default'])}"
    head += f"  {default}" if len(head) + 2 + len(default) <= width else f"\n    {default}"
    if "value" in r:
        head += f"\n    now {_show(r['value'])}  from {r['source']}"
    body = textwrap.fill(r["description"] or "-", width=max(40, width), initial_indent="    ", subsequent_indent="    ")
    return head + "\n" + body


def options(grep: Optional[str] = typer.Argument(None, help="Only options whose name or meaning contains this."),
            json_out: bool = typer.Option(False, "--json", help="Print JSON."),
            current: bool = typer.Option(False, "--current", help="Also show each effective value and its source."),
            state_dir: Optional[Path] = StateDir, config_file: Optional[Path] = ConfigFile,
            profile: Optional[str] = typer.Option(None, "--profile", help="Profile to apply with --current.")) -> None:
    """Every option: environment variable, flag of gswarm run, default and meaning (also TOML and profile keys).

    Precedence, lowest first: defaults < profile < config file < API override (config_override.json,
    saved from the dashboard) < GSWARM_* environment < flags. Seconds options take durations: 90s, 30m,
    1h30m, 2d. Exit 2 when WORD matches no option."""
    import shutil

    rows = option_rows()
    if grep:
        needle = grep.lower()
        rows = [r for r in rows if needle in r["name"] or needle in r["description"].lower()]
        if not rows:
            raise ConfigError(f"no option matches {grep!r}; `gswarm options` lists them all")
    if current:
        from gswarm.config import load_settings, redacted_dict
        from gswarm.config.settings import option_sources

        settings = load_settings({"state_dir": state_dir, "config_file": config_file, "profile": profile})
        values, sources = redacted_dict(settings), option_sources(settings)
        for r in rows:
            r["value"], r["source"] = values[r["name"]], sources[r["name"]]
    if json_out:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    width = min(shutil.get_terminal_size((80, 24)).columns, 100) - 1
    text = [textwrap.fill("Precedence: " + PRECEDENCE, width=width), ""]
    group = None
    for r in rows:
        if r["group"] != group:
            group = r["group"]
            text.append(f"[{group}]")
        text.append(_block(r, width))
    typer.echo("\n".join(text))


def register(app: typer.Typer) -> None:
    """Add ``gswarm options`` to ``app``."""
    app.command("options")(options)
