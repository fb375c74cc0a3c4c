"""JSON errors: every failure answers ``{"error": "<clear message>", "detail": ...}``.

422 answers name the field: ``detail`` is a list of ``{"field", "in", "message"}``
and ``error`` repeats the first one in words. Unexpected exceptions are logged and
answered 500 with no internals (no paths, no secrets). Body problems say what to send:
a body that is not JSON (syntax error or binary) → 422 "request body is not valid JSON (at
position N …)", a body sent without ``Content-Type: application/json`` → 415, a JSON body
that is not an object → 422 "request body must be a JSON object".
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
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        body_error = _body_problem(request, list(exc.errors()))
        if body_error is not None:
            return JSONResponse(error_body(body_error.error, body_error.detail), body_error.status)
        detail = [_field(e) for e in exc.errors()]
        first = detail[0] if detail else {"field": "?", "message": "invalid input"}
        return JSONResponse(error_body(f"invalid {first['field']}: {first['message']}", detail), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        msg = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and msg == "Not Found":
            msg = "not found: no such endpoint; see /openapi.json (or /docs with internet)"
        if exc.status_code == 400 and msg == _FASTAPI_BODY_400:  # e.g. binary bytes sent as JSON
            bad = _not_json("it is not UTF-8 text")
            return JSONResponse(error_body(bad.error, bad.detail), bad.status)
        return JSONResponse(error_body(msg), exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(error_body("the store is unreadable", str(exc)), 503)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("API handler failed")
        return JSONResponse(error_body("internal error; see the GSwarm log"), 500)


_FASTAPI_BODY_400 = "There was an error parsing the body"
_SEND = "send a JSON object of option -> value with Content-Type: application/json, e.g. {\"backoff_max\": 600}"


def _not_json(why: str) -> ApiError:
    msg = f"request body is not valid JSON ({why})"
    return ApiError(422, f"{msg}; {_SEND}", [{"field": "body", "in": "body", "message": msg}])


def _body_problem(request: Request, errs: list[dict[str, Any]]) -> ApiError | None:
    """A clear ApiError when the request body as a whole is wrong (not JSON, wrong type), else None."""
    body_errs = [e for e in errs if tuple(e.get("loc", ()))[:1] == ("body",)]
    if not body_errs:
        return None
    err = body_errs[0]
    loc = tuple(err.get("loc", ()))
    if err.get("type") == "json_invalid":
        pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
        reason = (err.get("ctx") or {}).get("error")
        where = f"at position {pos}" if pos is not None else "syntax error"
        return _not_json(f"{where}: {reason}" if reason else where)
    if len(loc) == 1 and err.get("type") == "missing":
        msg = "request body is missing"
        return ApiError(422, f"{msg}; {_SEND}", [{"field": "body", "in": "body", "message": msg}])
    ctype = request.headers.get("content-type")
    if ctype is None or not _is_json_type(ctype):
        got = f"got {ctype!r}" if ctype is not None else "no Content-Type was sent"
        msg = f"request body must be JSON: send Content-Type: application/json ({got})"
        return ApiError(415, msg, [{"field": "body", "in": "header", "message": "Content-Type is not application/json"}])
    if len(loc) == 1 and err.get("type") == "dict_type":
        msg = "request body must be a JSON object (option -> value)"
        return ApiError(422, f"{msg}; {_SEND}", [{"field": "body", "in": "body", "message": msg}])
    return None


def _is_json_type(ctype: str) -> bool:
    media = ctype.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


_MOMENTS = ("since", "until")  # query parameters holding a moment (every route: events, metrics, logs …)


def _field(err: dict[str, Any]) -> dict[str, Any]:
    loc = [str(p) for p in err.get("loc", ())]
    where = loc[0] if loc and loc[0] in ("query", "path", "body", "header") else "body"
    name = ".".join(p for p in loc[1:] if p) if loc and loc[0] in ("query", "path", "body", "header") else ".".join(loc)
    message = str(err.get("msg", "invalid value"))
    if where == "query" and name in _MOMENTS and str(err.get("type", "")).startswith(("float", "finite")):
        message += "; since and until are Unix seconds (e.g. 1765000000.5), not durations or ISO times"
    return {"field": name or where, "in": where, "message": message}
