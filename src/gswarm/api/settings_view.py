"""Data of the dashboard's settings view: every option with its meaning, default, value and source.

``view(source)`` → ``{"precedence", "editable", "live", "override_error", "options": [row…]}`` where a row is
the :func:`gswarm.config.catalog.option_catalog` entry plus ``value`` (the effective value of this process,
secrets ``***``), ``source`` (``default``, ``profile NAME``, ``file PATH``, ``api override …``, ``GSWARM_X``,
``--x``), ``pending`` (the value saved in ``config_override.json`` for the next start, or absent) and
``locked`` (cannot be changed through the API: secrets and file locations, :data:`overrides.LOCKED`).
``check(source, changes)`` validates like ``PATCH /api/v1/config`` without saving and returns the diff.
"""

from __future__ import annotations

from typing import Any

from gswarm.api import overrides
from gswarm.config import redacted_dict
from gswarm.config.catalog import PRECEDENCE, option_catalog
from gswarm.config.settings import option_sources, redact_options


def view(source: Any) -> dict[str, Any]:
    """The settings view of ``source`` (a :class:`gswarm.api.source.DataSource`); see the module doc."""
    values, sources = redacted_dict(source.settings), option_sources(source.settings)
    try:
        pending, problem = overrides.shown(overrides.load_override(source.state_dir)), None
    except overrides.OverrideFileError as exc:
        pending, problem = {}, exc.error
    rows = []
    for row in option_catalog():
        name = row["name"]
        row.update(value=values.get(name), source=sources.get(name, "default"), locked=name in overrides.LOCKED)
        if name in pending:
            row["pending"] = pending[name]
        rows.append(row)
    return {"precedence": PRECEDENCE, "live": source.live, "editable": source.live and problem is None,
            "override_error": problem, "override_file": str(overrides.override_path(source.state_dir)), "options": rows}


def check(source: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """``{"changes": [{"name", "old", "new"}]}`` for ``changes`` on top of the stored override (values
    normalised, secrets redacted). Raises ApiError 422 naming each bad field (``detail``), 409 when the stored
    override file is unusable."""
    stored = overrides.load_override(source.state_dir)
    checked = overrides.validate(source.settings, {**stored, **changes})
    effective = redacted_dict(source.settings)
    shown_new = redact_options({k: checked[k] for k in changes})
    return {"changes": [{"name": k, "old": stored.get(k, effective.get(k)), "new": shown_new[k]}
                        for k in changes if overrides._norm(stored.get(k, effective.get(k))) != overrides._norm(checked[k])]}
