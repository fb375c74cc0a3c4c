"""Control routes: ``POST /api/v1/nodes/{node}/start|stop|restart`` (token always required).

The handler only posts ``Command(kind, "api")`` on the runtime's queue and answers
202; the supervisor loop acts. Read-only (``gswarm serve``) → 409.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse

from gswarm.api.auth import Guard
from gswarm.api.errors import ApiError
from gswarm.api.schemas import CommandOut, ErrorOut
from gswarm.api.source import DataSource, NotLive

_ERR = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}}


def register(app: FastAPI, source: DataSource, guard: Guard) -> None:
    """Add the control routes to ``app``."""
    api = APIRouter(prefix="/api/v1", tags=["control"], dependencies=[Depends(guard.control)], responses=_ERR)

    @api.post("/nodes/{node}/{command}", status_code=202, response_model=CommandOut)
    async def control(node: str, command: Literal["start", "stop", "restart"]) -> Any:
        """Ask the supervisor to start, stop or restart ``node``."""
        if not source.live:
            raise ApiError(409, "no supervisor running: `gswarm serve` is read-only; control needs `gswarm run`")
        if node != source.node:
            raise ApiError(404, f"unknown node {node!r}; this supervisor runs {source.node!r}", {"field": "node"})
        try:
            source.send(command, "api")
        except NotLive as exc:  # pragma: no cover - live checked above
            raise ApiError(409, str(exc)) from None
        except asyncio.QueueFull:
            raise ApiError(503, "the supervisor's command queue is full; try again in a moment") from None
        return JSONResponse({"accepted": True, "node": node, "command": command}, 202)

    app.include_router(api)
