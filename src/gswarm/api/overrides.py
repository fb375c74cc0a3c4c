"""Configuration updates from the API: ``<state_dir>/config_override.json``.

The file holds only the options changed through the API (JSON object, mode 0600,
written atomically). It takes effect on the NEXT start of ``gswarm run``, which
merges it above the TOML config file and below ``GSWARM_*`` env and flags.
Secrets (``hf_token``, ``api_token``) and the file locations (``state_dir``,
``config_file``) cannot be changed here: set them in the environment or the
config file, so they are never sent over HTTP nor echoed back.

A file that is not valid JSON (hand-edited) is never overwritten: writes answer 409
naming it (:func:`load_override`) and ``GET /api/v1/config`` shows the problem
(``override_error``). Each option's value is limited to ``MAX_OPTION_CHARS``
characters of JSON (422 naming the option).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gswarm.api.errors import ApiError
from gswarm.config import Settings
from gswarm.config.settings import OVERRIDE_FILE, SECRET_FIELDS, OverrideFileInvalid, read_override_file, redact_options
from gswarm.paths import atomic_write

LOCKED = frozenset(SECRET_FIELDS | {"state_dir", "config_file", "profile"})  # profile: read before this layer
MAX_OPTION_CHARS = 16 * 1024  # one option's value as JSON; real values are far shorter


def override_path(state_dir: Path) -> Path:
    """``<state_dir>/config_override.json``."""
    return Path(state_dir) / OVERRIDE_FILE


class OverrideFileError(ApiError):
    """``config_override.json`` exists but cannot be used (409): not JSON, not an object, unreadable."""

    def __init__(self, path: Path, problem: str) -> None:
        self.problem = problem
        super().__init__(409, f"{OVERRIDE_FILE} {problem}; fix or delete it before changing options through the API",
                         {"file": str(path), "problem": problem})


def load_override(state_dir: Path) -> dict[str, Any]:
    """The stored override (``{}`` when the file is missing).

    Raises OverrideFileError (409) when the file exists but is unreadable, not valid
    JSON or not a JSON object, so a write never replaces options it could not read.
    """
    try:
        return read_override_file(override_path(state_dir))
    except OverrideFileInvalid as exc:
        raise OverrideFileError(exc.path, exc.problem) from None


def _norm(value: Any) -> Any:
    """``value`` as JSON data (for comparing an old and a new value)."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def _field_of(err: Any) -> str:
    """The option a pydantic error is about: its location, or for a check across options (empty location, e.g.
    backoff_initial > backoff_max) the first option its message names; ``"body"`` when none."""
    import re

    if err["loc"]:
        return ".".join(str(p) for p in err["loc"])
    named = [w for w in re.findall(r"[a-z][a-z0-9_]+", err["msg"]) if w in Settings.model_fields]
    return named[0] if named else "body"


def validate(current: Settings, changes: dict[str, Any]) -> dict[str, Any]:
    """Check ``changes`` on top of ``current``; return them normalised (JSON values; a duration such as
    ``"1h30m"`` becomes seconds).

    Raises ApiError 422 naming every bad field in ``detail`` (unknown option, locked option, value
    longer than ``MAX_OPTION_CHARS`` characters of JSON, bad value) and the first in ``error``.
    """
    detail = []
    for name, value in changes.items():
        if name in LOCKED:
            detail.append({"field": name, "in": "body", "message": f"locked option: cannot be changed through the API; "
                           f"set GSWARM_{name.upper()} or the config file"})
            continue
        size = len(json.dumps(value, default=str))
        if size > MAX_OPTION_CHARS:
            detail.append({"field": name, "in": "body",
                           "message": f"value too long ({size} characters of JSON, at most {MAX_OPTION_CHARS})"})
    base = current.model_dump()
    try:
        checked = Settings.model_validate({**base, **changes})
    except ValidationError as exc:
        detail += [{"field": _field_of(e), "in": "body",
                    "message": "unknown option" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")}
                   for e in exc.errors() if not any(d["field"] == _field_of(e).split(".")[0] for d in detail)]
    if detail:
        raise ApiError(422, f"invalid {detail[0]['field']}: {detail[0]['message']}", detail)
    dumped = checked.model_dump(mode="json")
    return {k: dumped[k] for k in changes}


def save(state_dir: Path, override: dict[str, Any]) -> None:
    """Write the override atomically (0600)."""
    atomic_write(override_path(state_dir), json.dumps(override, indent=2, sort_keys=True) + "\n", mode=0o600)


def shown(override: dict[str, Any]) -> dict[str, Any]:
    """The override as shown by the API: secrets, URL credentials and secret env values as ``***``."""
    return redact_options(override)
