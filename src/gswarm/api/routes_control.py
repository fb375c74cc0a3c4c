"""Control routes: ``POST /api/v1/nodes/{node}/start|stop|restart`` (token always required).

The handler only posts ``Command(kind, "api")`` on the runtime's queue and answers
202; the supervisor loop acts. Read-only (``gswarm serve``) → 409. A command that does
not apply to the node's current state (from the live snapshot) → 409 naming the state:
``start`` only from STOPPED, FATAL or BACKOFF; ``stop`` not when already STOPPED or FATAL;
``restart`` is always accepted while a supervisor runs.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse

from gswarm.api.auth import Guard
from gswarm.api.errors import ApiError
from gswarm.api.schemas import CommandOut, ErrorOut
from gswarm.api.source import DataSource, NotLive

# gswarm.events.NodeState values: start only from these; stop from any other; restart from any.
START_FROM = frozenset({"STOPPED", "FATAL", "BACKOFF"})
STOPPED = frozenset({"STOPPED", "FATAL"})
_ERR = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}}


def read_only_message(state_dir: Path) -> str:
    """Why ``gswarm serve`` cannot control: read-only; names the live dashboard of a ``gswarm run`` that is
    supervising this state dir (its ``run/api.json``, written only while it serves) when there is one."""
    base = "`gswarm serve` is read-only"
    try:
        url = json.loads((Path(state_dir) / "run" / "api.json").read_text(encoding="utf-8"))["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{base}; control needs `gswarm run` (or `gswarm stop|start|restart` from a shell)"
    return f"{base}; a gswarm run supervises this state directory: control it at {url}/ (or `gswarm stop|start|restart`)"


def register(app: FastAPI, source: DataSource, guard: Guard) -> None:
    """Add the control routes to ``app``."""
    api = APIRouter(prefix="/api/v1", tags=["control"], dependencies=[Depends(guard.control)], responses=_ERR)

    @api.post("/nodes/{node}/{command}", status_code=202, response_model=CommandOut)
    async def control(node: str, command: Literal["start", "stop", "restart"]) -> Any:
        """Ask the supervisor to start, stop or restart ``node``.

        409 when read-only, or when the command does not fit the node's state (start only from
        STOPPED/FATAL/BACKOFF; stop not when STOPPED/FATAL); ``detail.state`` names the state.
        """
        if not source.live:
            raise ApiError(409, read_only_message(source.state_dir))
        live = source.live_snapshots()
        if node not in live:
            runs = ", ".join(repr(n) for n in live)
            raise ApiError(404, f"unknown node {node!r}; this supervisor runs {runs}", {"field": "node"})
        check_state(command, node, live[node].get("state"))
        try:
            source.send(command, "api", node)
        except NotLive as exc:  # pragma: no cover - live checked above
            raise ApiError(409, str(exc)) from None
        except asyncio.QueueFull:
            raise ApiError(503, "the supervisor's command queue is full; try again in a moment") from None
        return JSONResponse({"accepted": True, "node": node, "command": command}, 202)

    app.include_router(api)


def check_state(command: str, node: str, state: object) -> None:
    """Raise ApiError 409 when ``command`` does not apply to ``state``.

    ``state`` is a NodeState or its value; None (not known yet) lets the command through.
    """
    state = getattr(state, "value", state)
    if state is None:
        return
    if command == "start" and state not in START_FROM:
        why = f"node {node!r} is {state}; start only applies to a STOPPED, FATAL or BACKOFF node (use restart to restart it)"
    elif command == "stop" and state in STOPPED:
        why = f"node {node!r} is already {state}; there is nothing to stop"
    else:
        return
    raise ApiError(409, why, {"state": state, "command": command})
