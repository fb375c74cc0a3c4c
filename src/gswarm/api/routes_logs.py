"""Log route: ``GET /api/v1/logs`` — tail N records of node output (capture files) and GSwarm events (JSON log), merged.

``grep`` is a case-insensitive plain substring (max 200 characters) searched in each
line's message — not a regular expression: Python's ``re`` cannot be interrupted and
holds the GIL, so one pathological pattern from any loopback client would freeze the
whole process, a running supervisor included. (``gswarm logs --grep`` on the command
line keeps regular expressions: it runs as the local user in its own process.) Each
text field is cut at 8 KiB with a ``… [cut N characters]`` marker and an answer carries at
most 4 MiB of text (``limited``: true when that stopped it before ``tail`` lines).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any, Callable, Literal, Optional

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from gswarm.api import errors, logfile
from gswarm.api.auth import Guard
from gswarm.api.schemas import ErrorOut
from gswarm.api.source import DataSource
from gswarm.logs._jsonread import categories

Level = Literal["debug", "info", "warning", "error", "critical"]
Category = Literal[tuple(sorted(categories()))]  # type: ignore[valid-type]  # the JSON log's categories + output
_GREP = ("Case-insensitive plain substring searched in the message (not a regular expression; "
         "`.`, `*`, `(` … match themselves)")


_LIKELY = {"n": "tail", "lines": "tail", "limit": "tail", "count": "tail", "q": "grep", "search": "grep",
           "regex": "grep", "cat": "category"}  # names people try -> the parameter meant


def only_params(endpoint: Callable[..., Any]) -> Callable[[Request], None]:
    """A dependency raising a 422 ApiError that names a query parameter ``endpoint`` does not take (its
    parameters are the known ones: ``?n=50`` on ``/api/v1/logs`` was silently ignored and answered with the
    default 200 lines), with the known ones and the likely meant one."""
    known = tuple(inspect.signature(endpoint).parameters)

    def check(request: Request) -> None:
        for key in request.query_params.keys():
            if key not in known:
                likely = f"; use {_LIKELY[key]}" if _LIKELY.get(key) in known else ""
                raise errors.invalid(key, f"unknown parameter (known: {', '.join(known)}){likely}")
    return check


def register(app: FastAPI, source: DataSource, guard: Guard) -> None:
    """Add the log route to ``app``."""
    api = APIRouter(prefix="/api/v1", tags=["logs"], dependencies=[Depends(guard.read)],
                    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}})

    async def logs(tail: int = Query(200, ge=1, le=5000, description="Lines to return (the newest)"),
                   grep: Optional[str] = Query(None, max_length=200, description=_GREP),
                   node: Optional[str] = None, level: Optional[Level] = None,
                   category: Optional[Category] = Query(None, description="Only records of this category (`output`: "
                                                        "node lines; a source or a failure category). Without it, "
                                                        "progress records are left out, as in `gswarm logs`"),
                   since: Optional[float] = Query(None, ge=0, le=1e11, allow_inf_nan=False),
                   until: Optional[float] = Query(None, ge=0, le=1e11, allow_inf_nan=False)) -> dict[str, Any]:
        """``{"lines": [records oldest first], "scanned": n, "files": [names], "limited": bool}``.

        ``grep`` is a case-insensitive plain substring (no regular expressions). Text fields longer
        than 8 KiB end in ``… [cut N characters]``; ``limited`` is true when the answer reached
        4 MiB of text before ``tail`` lines (ask again with ``until`` for older lines).
        """
        lines, scanned, limited = await asyncio.to_thread(
            logfile.tail, source.state_dir, tail, node=node, level=level, grep=grep or None, since=since, until=until,
            category=category)
        files = await asyncio.to_thread(logfile.file_names, source.state_dir)
        return {"lines": json.loads(source.scrub(json.dumps(lines, default=str))), "scanned": scanned,
                "files": files, "limited": limited}

    api.add_api_route("/logs", logs, methods=["GET"], dependencies=[Depends(only_params(logs))])
    app.include_router(api)
