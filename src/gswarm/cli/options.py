"""``gswarm options``: every configuration option, where it can be set, its type, default and meaning.

The one complete list (``gswarm run --help`` shows only the everyday flags): read from the
:class:`gswarm.config.Settings` model itself, so it cannot drift from what is accepted.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from gswarm.config import Settings
from gswarm.config.settings import is_secret_name


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None")


def option_rows() -> list[dict[str, Any]]:
    """One dict per option: ``name``, ``env`` (``GSWARM_…``), ``flag`` (``--…`` of ``gswarm run`` or None),
    ``type``, ``default`` (None for secrets), ``description`` (units included)."""
    from gswarm.cli.run import run

    run_params = set(inspect.signature(run).parameters)
    rows = []
    for name, field in Settings.model_fields.items():
        default = None if is_secret_name(name) else field.get_default(call_default_factory=True)
        rows.append({
            "name": name,
            "env": f"GSWARM_{name.upper()}",
            "flag": "--" + name.replace("_", "-") if name in run_params else None,
            "type": _type_name(field.annotation),
            "default": default if isinstance(default, (int, float, str, bool, type(None), list, dict)) else str(default),
            "description": field.description or "",
        })
    return rows


def options(json_out: bool = typer.Option(False, "--json", help="Print JSON."),
            grep: Optional[str] = typer.Argument(None, help="Only options whose name or description contains this.")) -> None:
    """Every option: environment variable, flag of gswarm run, type, default and meaning (also TOML keys)."""
    rows = option_rows()
    if grep:
        needle = grep.lower()
        rows = [r for r in rows if needle in r["name"] or needle in r["description"].lower()]
    if json_out:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(show_lines=False)
    for title in ("option / TOML key", "environment", "flag"):
        table.add_column(title, no_wrap=True, overflow="fold")
    table.add_column("default")
    table.add_column("meaning")
    for r in rows:
        table.add_row(r["name"], r["env"], r["flag"] or "-", "" if r["default"] is None else str(r["default"]), r["description"])
    Console(highlight=False).print(table)


def register(app: typer.Typer) -> None:
    """Add ``gswarm options`` to ``app``."""
    app.command("options")(options)
