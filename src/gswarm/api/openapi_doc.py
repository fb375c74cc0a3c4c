"""The OpenAPI document says what the server does (issue #19: schema = behaviour).

FastAPI's generated schema differs from this API in three ways, corrected here once for every
route (present and future) instead of in each route module:

* **Auth**: every route declares the bearer scheme, which reads as "token required". Reads
  (``GET``) need it only when GSwarm listens on a non-loopback address; on loopback their
  ``security`` is ``[{}, {"bearer": []}]`` (OpenAPI's "optional"), control and configuration
  writes keep ``[{"bearer": []}]``.
* **422 bodies**: FastAPI advertises ``HTTPValidationError`` (``{detail: [{loc, msg, type}]}``);
  this API answers ``{error, detail: [{field, in, message}]}`` (``gswarm.api.errors``). Every
  response that pointed at FastAPI's shape points at ``ValidationErrorOut``.
* **Configuration bodies**: ``PUT``/``PATCH /api/v1/config`` take only known, writable options
  (unknown and locked ones answer 422): the body schema lists them with their types and
  ``additionalProperties: false``.

Rules JSON Schema cannot state are written in descriptions: ``since`` later than ``until`` (``until``
defaults to now) answers 422 on every history route; an option's own checks (e.g. ``extra_env`` names)
answer 422 naming it.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_OURS_422 = "#/components/schemas/ValidationErrorOut"
_VALIDATION_ERROR_OUT = {
    "title": "ValidationErrorOut", "type": "object", "required": ["error", "detail"],
    "description": "422: `error` repeats the first problem in words; `detail` names each field.",
    "properties": {
        "error": {"type": "string"},
        "detail": {"anyOf": [{"type": "array", "items": {
            "type": "object", "required": ["field", "in", "message"],
            "properties": {"field": {"type": "string"}, "in": {"type": "string"}, "message": {"type": "string"}}}},
            {"type": "null"}]},
    },
}
_SINCE_UNTIL = " Must not be later than `until` (422 otherwise)."


def install(app: FastAPI, *, reads_need_token: bool, writable_options: Callable[[], dict[str, Any]]) -> None:
    """Replace ``app.openapi`` with a builder applying the corrections above (built once, cached).

    ``reads_need_token``: the server's rule for GET routes (non-loopback bind address).
    ``writable_options()``: JSON Schema ``properties`` of the options ``PUT/PATCH /api/v1/config`` accept."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = correct(doc, reads_need_token, writable_options())
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def correct(doc: dict[str, Any], reads_need_token: bool, options: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (FastAPI's OpenAPI dict) with auth, 422 shapes and config bodies as the server behaves; pure."""
    doc = copy.deepcopy(doc)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ValidationErrorOut"] = _VALIDATION_ERROR_OUT
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            if op.get("security") and method == "get" and not reads_need_token:
                op["security"] = [{}, *op["security"]]
            for resp in op.get("responses", {}).values():
                _point_422_at_ours(resp)
            if (path, method) in (("/api/v1/config", "put"), ("/api/v1/config", "patch"), ("/api/v1/config/check", "post")):
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
                body["schema"] = {"type": "object", "additionalProperties": False, "properties": options,
                                  "description": "Option → value; unknown and locked options answer 422, and so does "
                                                 "a value an option's own checks refuse (see `gswarm options`)."}
            for param in op.get("parameters", []):
                if param.get("name") == "since":
                    param["description"] = (param.get("description") or "Start, Unix seconds.") + _SINCE_UNTIL
    return doc


def _point_422_at_ours(resp: dict[str, Any]) -> None:
    for media in resp.get("content", {}).values():
        schema = media.get("schema", {})
        if schema.get("$ref") == _FASTAPI_422:
            media["schema"] = {"$ref": _OURS_422}


def config_body_properties(settings_model: Any, locked: frozenset[str]) -> dict[str, Any]:
    """JSON Schema ``properties`` of ``settings_model`` without ``locked`` options (secrets, paths of GSwarm's own);
    seconds options (``DURATION_FIELDS``) also allow a duration string (:data:`gswarm.config.durations.SCHEMA_PATTERN`)."""
    from gswarm.config.durations import SCHEMA_PATTERN
    from gswarm.config.settings import DURATION_FIELDS

    props = settings_model.model_json_schema().get("properties", {})
    out = {name: prop for name, prop in props.items() if name not in locked}
    for name in DURATION_FIELDS:  # seconds options also take a duration string ("10m", "1h30m")
        if name in out:
            prop = dict(out[name])
            meta = {k: prop.pop(k) for k in ("title", "description", "default") if k in prop}
            out[name] = {**meta, "anyOf": [*prop.get("anyOf", [prop]), {"type": "string", "pattern": SCHEMA_PATTERN}]}
    return out
