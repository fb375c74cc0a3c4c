"""``GET /api/v1/events/stream``: live updates as ``text/event-stream`` (see :mod:`gswarm.api.stream`).

The dashboard reads it with ``fetch`` (so it can send the bearer token when one is
needed) and refreshes the parts an event concerns.
"""

from __future__ import annotations

from typing import AsyncIterator

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import StreamingResponse

from gswarm.api import stream
from gswarm.api.auth import Guard
from gswarm.api.schemas import ErrorOut
from gswarm.api.source import DataSource


def register(app: FastAPI, source: DataSource, guard: Guard, *, poll: float = 2.0, heartbeat: float = 15.0) -> None:
    """Add the stream route; ``poll`` (read-only store polling) and ``heartbeat`` in seconds."""
    api = APIRouter(prefix="/api/v1", tags=["stream"], dependencies=[Depends(guard.read)],
                    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})

    @api.get("/events/stream", response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}})
    async def events_stream(max_events: int = Query(0, ge=0, le=100_000,
                                                    description="Close after this many events (0 = never)")) -> StreamingResponse:
        """Server-sent events: supervisor events, incidents, progress, samples and log lines."""
        return StreamingResponse(_frames(source, poll, heartbeat, max_events), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    app.include_router(api)


async def _frames(source: DataSource, poll: float, heartbeat: float, max_events: int) -> AsyncIterator[str]:
    feed = stream.LiveFeed(source.bus) if source.live and source.bus is not None else None
    poller = None
    try:
        if feed is None:
            poller = stream.StorePoller(source)
            await poller.prime()
        yield f"retry: 2000\n: gswarm {'live' if feed else 'store'} stream\n\n"
        items = feed.items(heartbeat, source.stopping) if feed else poller.items(poll, heartbeat, source.stopping)
        seq = 0
        async for item in items:
            if item is None:
                yield ": ping\n\n"
                continue
            seq += 1
            yield stream.frame(seq, item, source.scrub)
            if max_events and seq >= max_events:
                break
        await items.aclose()
    finally:
        if feed is not None:
            feed.close()
        if poller is not None:
            poller.close()
