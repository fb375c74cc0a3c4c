"""History routes: events, incidents, runs, progress (filters + pagination), metrics series, analytics.

Pagination: ``limit`` 1..1000 (default 100), ``offset`` 0..1,000,000; rows newest
first. ``since``/``until`` are Unix seconds; ``since > until`` → 422 naming ``since``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from fastapi import APIRouter, Depends, FastAPI, Query

from gswarm.api import history
from gswarm.api.auth import Guard
from gswarm.api.errors import ApiError, invalid
from gswarm.api.schemas import ErrorOut, MetricsOut, PageOut
from gswarm.api.source import DataSource
from gswarm.events import Category, Severity

_ERR = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}}
EventKind = Literal["state", "start", "exit", "restart", "recovery", "notice"]


def Ts() -> Any:  # noqa: N802 - one fresh Query per parameter (FastAPI binds the alias to the object)
    return Query(None, ge=0, le=1e11, allow_inf_nan=False, description="Unix seconds")


def Limit() -> Any:  # noqa: N802
    return Query(100, ge=1, le=1000, description="Rows per page")


def Offset() -> Any:  # noqa: N802
    return Query(0, ge=0, le=1_000_000, description="Rows skipped")
def _range(since: float | None, until: float | None) -> None:
    if since is not None and until is not None and since > until:
        raise invalid("since", f"since ({since}) is after until ({until})")


def _page(rows: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    return {"items": rows, "limit": limit, "offset": offset, "count": len(rows)}


async def _known(source: DataSource, node: str) -> None:
    names = await source.db(lambda r: source.cache.get(r, "nodes", r.nodes))
    if node not in names and node != source.node and node not in source.live_snapshots():
        raise ApiError(404, f"unknown node {node!r}; known nodes: {', '.join(names) or 'none'}", {"field": "node"})


def register(app: FastAPI, source: DataSource, guard: Guard) -> None:
    """Add the history routes to ``app``."""
    api = APIRouter(prefix="/api/v1", tags=["history"], dependencies=[Depends(guard.read)], responses=_ERR)

    @api.get("/events", response_model=PageOut)
    async def events(node: Optional[str] = None, kind: Optional[EventKind] = None, since: Optional[float] = Ts(),
                     until: Optional[float] = Ts(), limit: int = Limit(), offset: int = Offset()) -> dict[str, Any]:
        """Supervisor events (state changes, starts, exits, restarts with cause, recoveries, notices)."""
        _range(since, until)
        rows = await source.db(lambda r: r.events(node, since, until, limit, offset, desc=True, kind=kind))
        return _page(rows, limit, offset)

    @api.get("/incidents", response_model=PageOut)
    async def incidents(node: Optional[str] = None, category: Optional[Category] = None,
                        severity: Optional[Severity] = None, since: Optional[float] = Ts(),
                        until: Optional[float] = Ts(), limit: int = Limit(), offset: int = Offset()) -> dict[str, Any]:
        """Classified failures with evidence lines and operator advice."""
        _range(since, until)
        rows = await source.db(lambda r: r.incidents(node, since, until, limit, offset, desc=True,
                                                     category=category, severity=severity))
        return _page(rows, limit, offset)

    @api.get("/runs", response_model=PageOut)
    async def runs(node: Optional[str] = None, since: Optional[float] = Ts(), until: Optional[float] = Ts(),
                   limit: int = Limit(), offset: int = Offset()) -> dict[str, Any]:
        """Runs of the node (start, stop, exit code/signal, cause): the restarts timeline."""
        _range(since, until)
        return _page(await source.db(lambda r: r.runs(node, since, until, limit, offset, desc=True)), limit, offset)

    @api.get("/progress", response_model=PageOut)
    async def progress(node: Optional[str] = None, since: Optional[float] = Ts(), until: Optional[float] = Ts(),
                       advanced: Optional[bool] = None, limit: int = Limit(), offset: int = Offset()) -> dict[str, Any]:
        """Training progress rows (round, stage, advanced)."""
        _range(since, until)
        rows = await source.db(lambda r: r.progress(node, since, until, limit, offset, desc=True, advanced=advanced))
        return _page(rows, limit, offset)

    @api.get("/nodes/{node}/metrics", response_model=MetricsOut, responses={404: {"model": ErrorOut}})
    async def metrics(node: str, since: Optional[float] = Ts(), until: Optional[float] = Ts(),
                      points: int = Query(120, ge=1, le=2000, description="Buckets")) -> dict[str, Any]:
        """CPU / RAM / GPU history downsampled to ``points`` buckets (avg and max); default: the last hour."""
        until = source.now() if until is None else until
        since = until - 3600.0 if since is None else since
        if since >= until:
            raise invalid("since", f"since ({since}) must be before until ({until})")
        await _known(source, node)
        return await source.db(history.series, node, since, until, points)

    @api.get("/nodes/{node}/analytics", responses={404: {"model": ErrorOut}})
    async def analytics(node: str, since: Optional[float] = Ts(), until: Optional[float] = Ts()) -> dict[str, Any]:
        """Uptime, restarts by cause, rounds and more over the range (default: the last 7 days)."""
        until = source.now() if until is None else until
        since = until - 7 * 86400.0 if since is None else since
        if since >= until:
            raise invalid("since", f"since ({since}) must be before until ({until})")
        await _known(source, node)
        return await source.db(history.analytics, node, since, until)

    app.include_router(api)
