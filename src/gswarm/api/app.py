"""``create_app(source)``: the FastAPI app of the REST API and the dashboard.

Built in a function (no import-time app). Routes live in ``routes_*`` modules,
each with ``register(app, source, guard)``. CORS is off unless ``cors_origins``
is given. OpenAPI at ``/openapi.json`` (the offline reference); interactive docs at ``/docs``
(FastAPI's Swagger UI page, whose script and CSS come from a CDN: it needs internet;
ReDoc is off); the dashboard (``gswarm/web``: index.html, app.js, style.css, no external
assets) at ``/``. On a loopback bind, requests for any other ``Host`` answer 421
(:mod:`gswarm.api.hosts`, DNS rebinding).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Sequence

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from gswarm import __version__
from gswarm.api import (errors, openapi_doc, overrides, routes_config, routes_control, routes_history, routes_logs,
                        routes_stream, routes_status)
from gswarm.api.auth import Guard, is_loopback, load_or_create_token
from gswarm.api.hosts import LoopbackHostMiddleware
from gswarm.api.limits import MAX_BODY_BYTES, BodyLimitMiddleware
from gswarm.api.scrub import ScrubMiddleware
from gswarm.api.source import DataSource

DESCRIPTION = """REST API of GSwarm (third-party supervisor for Gensyn RL Swarm nodes).

Reads need no token while GSwarm listens on a loopback address; control and configuration
writes always need `Authorization: Bearer <token>` (token in `<state_dir>/api_token`), and every
request does when GSwarm listens on another address. Times are Unix seconds. Errors are
`{"error": "...", "detail": ...}`; invalid input answers 422 naming the field. Request bodies are
JSON objects sent with `Content-Type: application/json` (else 415), at most 1 MiB (else 413)."""


# A hexagon cell (the swarm) in the dashboard's accent colour: the tab's icon, no file to ship.
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><path d="M16 2 28 9v14L16 30 4 23V9z" '
           'fill="#4fa3ff"/><path d="M16 9l6 3.5v7L16 23l-6-3.5v-7z" fill="#0f1419"/></svg>')


def web_dir() -> Path:
    """Folder of the packaged dashboard files."""
    return Path(str(resources.files("gswarm") / "web"))


def create_app(source: DataSource, *, host: str | None = None, token: str | None = None,
               cors_origins: Sequence[str] = (), poll: float = 2.0, heartbeat: float = 15.0) -> FastAPI:
    """The app over ``source``.

    ``host`` is the bind address (default ``settings.api_host``): non-loopback means
    every API request needs the token; loopback means only loopback ``Host`` names are
    served. ``token`` defaults to ``settings.api_token`` or the token file (created 0600
    on first use). ``poll``/``heartbeat`` (seconds) tune the event stream. Raises OSError
    when the token file cannot be written.
    """
    settings = source.settings
    host = settings.api_host if host is None else host
    configured = settings.api_token.get_secret_value() if settings.api_token else None
    token = token or load_or_create_token(source.state_dir, configured)
    source.add_secret(token)
    loopback = is_loopback(host)
    guard = Guard(token, reads_need_token=not loopback)
    app = FastAPI(title="GSwarm API", version=__version__, description=DESCRIPTION,
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.source, app.state.guard = source, guard
    errors.install(app)
    for module in (routes_status, routes_history, routes_logs, routes_config, routes_control):
        module.register(app, source, guard)
    routes_stream.register(app, source, guard, poll=poll, heartbeat=heartbeat)
    openapi_doc.install(app, reads_need_token=not loopback,
                        writable_options=lambda: openapi_doc.config_body_properties(type(settings), overrides.LOCKED))
    _dashboard(app)
    app.add_middleware(ScrubMiddleware, scrub=source.scrub)
    app.add_middleware(BodyLimitMiddleware, limit=MAX_BODY_BYTES)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST", "PUT", "PATCH"],
                           allow_headers=["Authorization", "Content-Type"])
    if loopback:  # outermost: a rebound name never reaches a route (see gswarm.api.hosts)
        app.add_middleware(LoopbackHostMiddleware)
    return app


def _dashboard(app: FastAPI) -> None:
    folder = web_dir()
    app.mount("/static", StaticFiles(directory=folder), name="static")

    @app.get("/favicon.svg", include_in_schema=False)
    @app.get("/favicon.ico", include_in_schema=False)  # asked for by browsers and tools whatever the page says
    async def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(folder / "index.html", media_type="text/html", headers={"Cache-Control": "no-store"})
