"""JSON errors: every failure answers ``{"error": "<clear message>", "detail": ...}``.

422 answers name the field: ``detail`` is a list of ``{"field", "in", "message"}``
and ``error`` repeats the first one in words. Unexpected exceptions are logged and
answered 500 with no internals (no paths, no secrets).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gswarm.errors import StoreError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than 2xx: ``status`` (int), ``error`` (message), ``detail`` (JSON-able)."""

    def __init__(self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


def invalid(field: str, message: str, where: str = "query") -> ApiError:
    """A 422 ApiError naming ``field`` (found ``where``: query, path, body)."""
    return ApiError(422, f"invalid {field}: {message}", [{"field": field, "in": where, "message": message}])


def error_body(error: str, detail: Any = None) -> dict[str, Any]:
    """The JSON shape of every error answer."""
    return {"error": error, "detail": detail}


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.error, exc.detail), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [_field(e) for e in exc.errors()]
        first = detail[0] if detail else {"field": "?", "message": "invalid input"}
        return JSONResponse(error_body(f"invalid {first['field']}: {first['message']}", detail), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        msg = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and msg == "Not Found":
            msg = "not found: no such endpoint; see /openapi.json (or /docs with internet)"
        return JSONResponse(error_body(msg), exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(error_body("the store is unreadable", str(exc)), 503)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("API handler failed")
        return JSONResponse(error_body("internal error; see the GSwarm log"), 500)


def _field(err: dict[str, Any]) -> dict[str, Any]:
    loc = [str(p) for p in err.get("loc", ())]
    where = loc[0] if loc and loc[0] in ("query", "path", "body", "header") else "body"
    name = ".".join(p for p in loc[1:] if p) if loc and loc[0] in ("query", "path", "body", "header") else ".".join(loc)
    return {"field": name or where, "in": where, "message": str(err.get("msg", "invalid value"))}
