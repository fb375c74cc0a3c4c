"""Configuration routes: ``GET /api/v1/config`` (secrets redacted), ``PUT``/``PATCH`` (token required).

``PUT`` replaces the stored override with the body, ``PATCH`` merges the body into
it; both validate against the Settings model (422 naming the field) and apply on
the next start (see :mod:`gswarm.api.overrides`). ``GET /api/v1/config/options`` and
``POST /api/v1/config/check`` feed the dashboard's settings view (:mod:`gswarm.api.settings_view`). ``gswarm serve`` is read-only: there both answer
409 (like the control commands). Answers never carry a secret. When the stored
``config_override.json`` is not valid JSON, ``GET`` shows ``override: null`` and the problem
in ``override_error``, and ``PUT``/``PATCH`` answer 409 without touching the file. Bodies are
JSON objects (``Content-Type: application/json``) of at most 1 MiB (:mod:`gswarm.api.limits`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, FastAPI

from gswarm.api import overrides, settings_view
from gswarm.api.auth import Guard
from gswarm.api.errors import ApiError
from gswarm.api.schemas import ConfigOut, ErrorOut
from gswarm.api.source import DataSource
from gswarm.config import redacted_dict

_APPLIES = "on the next start of `gswarm run` (above the config file, below GSWARM_* env and flags)"
_ERR = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 409: {"model": ErrorOut}, 413: {"model": ErrorOut},
        415: {"model": ErrorOut}, 422: {"model": ErrorOut}}
_EXAMPLE = {"backoff_max": 600, "sample_interval": 5}


def register(app: FastAPI, source: DataSource, guard: Guard) -> None:
    """Add the configuration routes to ``app``."""
    api = APIRouter(prefix="/api/v1", tags=["config"], responses=_ERR)

    def out() -> dict[str, Any]:
        try:
            stored: dict[str, Any] | None = overrides.shown(overrides.load_override(source.state_dir))
            problem = None
        except overrides.OverrideFileError as exc:
            stored, problem = None, exc.error
        return {"effective": redacted_dict(source.settings), "override": stored, "override_error": problem,
                "override_file": str(overrides.override_path(source.state_dir)), "applies": _APPLIES}

    @api.get("/config", response_model=ConfigOut, dependencies=[Depends(guard.read)])
    async def get_config() -> dict[str, Any]:
        """The effective configuration of this process and the stored override."""
        return out()

    def writable() -> None:
        if not source.live:
            raise ApiError(409, "`gswarm serve` is read-only: change options through the API of `gswarm run`, with "
                                f"GSWARM_* variables or flags, or in the TOML file (--config-file); the stored override "
                                f"is {overrides.override_path(source.state_dir)}")

    @api.put("/config", response_model=ConfigOut, dependencies=[Depends(guard.control)])
    async def put_config(body: dict[str, Any] = Body(..., examples=[_EXAMPLE])) -> dict[str, Any]:
        """Replace the override with ``body`` (option → value); ``{}`` clears it.

        409 under ``gswarm serve`` or when the stored file is not valid JSON (fix or delete it first)."""
        writable()
        overrides.load_override(source.state_dir)  # 409 when the stored file is broken: fix it first
        overrides.save(source.state_dir, overrides.validate(source.settings, body))
        return out()

    @api.patch("/config", response_model=ConfigOut, dependencies=[Depends(guard.control)])
    async def patch_config(body: dict[str, Any] = Body(..., examples=[_EXAMPLE])) -> dict[str, Any]:
        """Merge ``body`` into the stored override.

        409 under ``gswarm serve`` or when the stored file is not valid JSON (fix or delete it first)."""
        writable()
        merged = {**overrides.load_override(source.state_dir), **body}
        overrides.save(source.state_dir, overrides.validate(source.settings, merged))
        return out()

    @api.get("/config/options", dependencies=[Depends(guard.read)])
    async def config_options() -> dict[str, Any]:
        """Every option grouped, with meaning, default, effective value, its source (default, profile, file,
        api override, env, flag), the value pending for the next start and whether it can be edited here."""
        return settings_view.view(source)

    @api.post("/config/check", dependencies=[Depends(guard.control)])
    async def config_check(body: dict[str, Any] = Body(..., examples=[_EXAMPLE])) -> dict[str, Any]:
        """Validate ``body`` (option → value) like ``PATCH /config`` without saving anything (token required, like
        the write it prepares); answer the diff
        ``{"changes": [{"name", "old", "new"}]}`` or 422 naming every bad field in ``detail``."""
        return settings_view.check(source, body)

    app.include_router(api)
