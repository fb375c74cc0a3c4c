"""Configuration updates from the API: ``<state_dir>/config_override.json``.

The file holds only the options changed through the API (JSON object, mode 0600,
written atomically). It takes effect on the NEXT start of ``gswarm run``, which
merges it above the TOML config file and below ``GSWARM_*`` env and flags.
Secrets (``hf_token``, ``api_token``) and the file locations (``state_dir``,
``config_file``) cannot be changed here: set them in the environment or the
config file, so they are never sent over HTTP nor echoed back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gswarm.api.errors import ApiError
from gswarm.config import Settings
from gswarm.config.settings import SECRET_FIELDS, redact_options
from gswarm.paths import atomic_write

OVERRIDE_FILE = "config_override.json"
LOCKED = frozenset(SECRET_FIELDS | {"state_dir", "config_file"})


def override_path(state_dir: Path) -> Path:
    """``<state_dir>/config_override.json``."""
    return Path(state_dir) / OVERRIDE_FILE


def read_override(state_dir: Path) -> dict[str, Any]:
    """The stored override (``{}`` when missing or unreadable)."""
    try:
        data = json.loads(override_path(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def validate(current: Settings, changes: dict[str, Any]) -> dict[str, Any]:
    """Check ``changes`` on top of ``current``; return them normalised (JSON values).

    Raises ApiError 422 naming the first bad field (unknown option, locked option, bad value).
    """
    for name in changes:
        if name in LOCKED:
            raise ApiError(422, f"invalid {name}: cannot be changed through the API; set GSWARM_{name.upper()} "
                           "or the config file", [{"field": name, "in": "body", "message": "locked option"}])
    base = current.model_dump()
    try:
        checked = Settings.model_validate({**base, **changes})
    except ValidationError as exc:
        detail = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "in": "body",
                   "message": "unknown option" if e["type"] == "extra_forbidden" else e["msg"]} for e in exc.errors()]
        raise ApiError(422, f"invalid {detail[0]['field']}: {detail[0]['message']}", detail) from None
    dumped = checked.model_dump(mode="json")
    return {k: dumped[k] for k in changes}


def save(state_dir: Path, override: dict[str, Any]) -> None:
    """Write the override atomically (0600)."""
    atomic_write(override_path(state_dir), json.dumps(override, indent=2, sort_keys=True) + "\n", mode=0o600)


def shown(override: dict[str, Any]) -> dict[str, Any]:
    """The override as shown by the API: secrets, URL credentials and secret env values as ``***``."""
    return redact_options(override)
