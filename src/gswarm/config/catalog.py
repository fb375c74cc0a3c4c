"""Every option as data for display: group, environment variable, type, default, allowed values, meaning.

Read from the :class:`gswarm.config.Settings` model itself (so it cannot drift from what is accepted) and
shared by ``gswarm options`` and the dashboard's settings view (``GET /api/v1/config/options``). Groups follow
the blocks of ``settings.py``; a field added after the last block lands in "other".
"""

from __future__ import annotations

import typing
from typing import Any

from gswarm.config.settings import DURATION_FIELDS, LAYERS, Settings, is_secret_name

# first field of each block of settings.py -> group title
_GROUP_STARTS = {"node_name": "where things are", "python": "RL Swarm node", "auto_setup": "setup and login",
                 "backoff_initial": "supervision", "sample_interval": "monitoring and logs",
                 "api_enabled": "API and dashboard", "notify_urls": "notifications", "emulated": "emulator",
                 "heartbeat_url": "unattended running"}
PRECEDENCE = ("defaults < profile (--profile / GSWARM_PROFILE / `gswarm profile use`) < config file (--config-file) "
              "< API override (<state_dir>/config_override.json, saved from the dashboard/API, applied on the next start) "
              "< GSWARM_* environment < command-line flags")


def type_name(annotation: Any) -> str:
    """Short readable type: ``float | None``, ``Literal['A', 'B']`` → ``A|B``."""
    if typing.get_origin(annotation) is typing.Literal:
        return "|".join(str(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if getattr(annotation, "__name__", "") == "SecretStr":
        return "secret"
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None")


def choices(annotation: Any) -> list[Any] | None:
    """Allowed values of a Literal option (also inside ``X | None``), else None."""
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Literal:
            return list(typing.get_args(arg))
    return None


def kind(name: str, annotation: Any) -> str:
    """Input kind for editors: ``bool``, ``choice``, ``duration``, ``int``, ``float``, ``list``, ``dict``, ``text``."""
    if choices(annotation):
        return "choice"
    if name in DURATION_FIELDS:
        return "duration"
    text = str(annotation)
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float or text in ("float | None", "typing.Optional[float]"):
        return "float"
    if text.startswith(("list", "typing.Annotated[list")):
        return "list"
    if text.startswith("dict"):
        return "dict"
    return "text"


def option_catalog() -> list[dict[str, Any]]:
    """One dict per option in model order: ``name``, ``group``, ``env``, ``type``, ``kind``, ``choices``,
    ``default`` (None for secrets and unset), ``description`` (units included), ``secret`` (bool)."""
    rows, group = [], "other"
    for name, field in Settings.model_fields.items():
        group = _GROUP_STARTS.get(name, group)
        secret = is_secret_name(name)
        default = None if secret else field.get_default(call_default_factory=True)
        rows.append({
            "name": name, "group": group, "env": f"GSWARM_{name.upper()}", "type": type_name(field.annotation),
            "kind": kind(name, field.annotation), "choices": choices(field.annotation),
            "default": default if isinstance(default, (int, float, str, bool, type(None), list, dict)) else str(default),
            "description": field.description or "", "secret": secret,
        })
        if name == "emulated":
            group = "other"
    return rows


__all__ = ["LAYERS", "PRECEDENCE", "option_catalog", "type_name", "choices", "kind"]
