"""Status routes: ``/api/v1/status``, ``/api/v1/nodes``, ``/api/v1/nodes/{node}``, ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from gswarm import __version__
from gswarm.api import nodeview, prom
from gswarm.api.auth import Guard
from gswarm.api.errors import ApiError
from gswarm.api.schemas import ErrorOut, NodeOut, ReadyOut, StatusOut
from gswarm.api.source import DataSource
from gswarm.monitor.status import maintenance

_ERR = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}}


def _collect(reader: Any, source: DataSource, only: str | None, now: float) -> list[dict[str, Any]]:
    """Summaries of every node (live nodes first, in the host's order), or of ``only`` (404 if unknown)."""
    live = source.live_snapshots()
    names = nodeview.node_names(reader, source.node, source.cache)
    names = list(live) + [n for n in names if n not in live]
    if only is not None:
        if only not in names:
            raise ApiError(404, f"unknown node {only!r}; known nodes: {', '.join(names) or 'none'}", {"field": "node"})
        names = [only]
    window = maintenance(source.state_dir, now)  # one window per state dir: every node shows it
    return [nodeview.summary(reader, n, live.get(n), now, source.cache) | {"maintenance": window}
            for n in names]


def register(app: FastAPI, source: DataSource, guard: Guard) -> None:
    """Add the status routes to ``app``."""
    api = APIRouter(prefix="/api/v1", tags=["status"], dependencies=[Depends(guard.read)], responses=_ERR)

    @api.get("/status", response_model=StatusOut)
    async def status() -> JSONResponse:
        """Version, data source, the active maintenance window (``{until, reason}`` or null: restarts
        and alerts paused) and a summary of every node (live node first).

        Answered as a plain JSONResponse (shape documented by StatusOut) to skip the
        response-model round trip on the hottest endpoint.
        """
        now = source.now()
        nodes = await source.db(_collect, source, None, now)
        window = nodes[0]["maintenance"] if nodes else maintenance(source.state_dir, now)
        return JSONResponse({"version": __version__, "source": "live" if source.live else "store", "now": now,
                             "auth": {"reads": guard.reads_need_token, "control": True}, "maintenance": window,
                             "nodes": nodes})

    @api.get("/nodes", response_model=list[NodeOut])
    async def nodes() -> list[dict[str, Any]]:
        """Every node known to this state directory."""
        return await source.db(_collect, source, None, source.now())

    @api.get("/nodes/{node}", response_model=NodeOut, responses={404: {"model": ErrorOut}})
    async def node(node: str) -> dict[str, Any]:
        """One node; 404 when the name is unknown."""
        return (await source.db(_collect, source, node, source.now()))[0]

    app.include_router(api)

    @app.get("/api/v1", tags=["status"], dependencies=[Depends(guard.read)])
    async def api_index() -> dict[str, Any]:
        """What is here: the API's paths (GET unless marked) and where its reference is."""
        paths = sorted(p for p in app.openapi().get("paths", {}) if p.startswith("/api/v1/"))  # the schema is cached
        return {"version": __version__, "reference": "/openapi.json", "docs": "/docs (needs internet for its scripts)",
                "paths": paths}

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, Any]:
        """Liveness: the GSwarm process answers (no token ever needed)."""
        return {"ok": True, "version": __version__}

    @app.get("/readyz", tags=["probes"], response_model=ReadyOut, dependencies=[Depends(guard.read)],
             responses={503: {"model": ReadyOut}, **_ERR})
    async def readyz() -> JSONResponse:
        """Readiness: 200 when the node is RUNNING and progressing, else 503 with the reason."""
        now = source.now()
        node = (await source.db(_collect, source, source.node, now))[0] if source.live else \
            await source.db(_readonly_node, source, now)
        ok, reason = nodeview.readiness(node, now, source.stall_timeout)
        body = {"ready": ok, "reason": reason, "state": node.get("state"), "last_advance": node.get("last_advance")}
        return JSONResponse(body, 200 if ok else 503)

    @app.get("/metrics", tags=["probes"], response_class=PlainTextResponse, dependencies=[Depends(guard.read)],
             responses=_ERR)
    async def metrics() -> PlainTextResponse:
        """Prometheus text exposition (format 0.0.4)."""
        text = await source.db(prom.render_text, source, source.now())
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def _readonly_node(reader: Any, source: DataSource, now: float) -> dict[str, Any]:
    return nodeview.summary(reader, source.node, None, now, source.cache)
