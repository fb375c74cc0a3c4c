"""Log route: ``GET /api/v1/logs`` — tail N lines of the JSON log, optionally filtered by a regex.

``grep`` is a Python regular expression (max 200 characters) searched in each
line's message; an invalid one → 422 naming ``grep``.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Literal, Optional

from fastapi import APIRouter, Depends, FastAPI, Query

from gswarm.api import logfile
from gswarm.api.auth import Guard
from gswarm.api.errors import invalid
from gswarm.api.schemas import ErrorOut
from gswarm.api.source import DataSource

Level = Literal["debug", "info", "warning", "error", "critical"]


def register(app: FastAPI, source: DataSource, guard: Guard) -> None:
    """Add the log route to ``app``."""
    api = APIRouter(prefix="/api/v1", tags=["logs"], dependencies=[Depends(guard.read)],
                    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}})

    @api.get("/logs")
    async def logs(tail: int = Query(200, ge=1, le=5000, description="Lines to return (the newest)"),
                   grep: Optional[str] = Query(None, max_length=200, description="Regex searched in the message"),
                   node: Optional[str] = None, level: Optional[Level] = None,
                   since: Optional[float] = Query(None, ge=0, le=1e11, allow_inf_nan=False),
                   until: Optional[float] = Query(None, ge=0, le=1e11, allow_inf_nan=False)) -> dict[str, Any]:
        """``{"lines": [records oldest first], "scanned": n, "files": [names]}``."""
        pattern = None
        if grep:
            try:
                pattern = re.compile(grep)
            except re.error as exc:
                raise invalid("grep", f"not a valid regular expression: {exc}") from None
        lines, scanned = await asyncio.to_thread(
            logfile.tail, source.state_dir, tail, node=node, level=level, grep=pattern, since=since, until=until)
        files = [p.name for p in logfile.log_files(source.state_dir)]
        return {"lines": json.loads(source.scrub(json.dumps(lines, default=str))), "scanned": scanned, "files": files}

    app.include_router(api)
