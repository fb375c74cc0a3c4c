"""Size limits of the API: request bodies and the text of log records in answers.

``BodyLimitMiddleware`` answers 413 before any route runs when ``Content-Length`` is over
``MAX_BODY_BYTES`` (1 MiB; the configuration body is a few hundred bytes), and stops a
chunked upload at the same size (413 too). ``cut_text`` shortens one log message to
``MAX_MESSAGE_CHARS`` (8 KiB) with a marker saying how much was cut, so a huge node line
never makes a huge answer.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException

MAX_BODY_BYTES = 1024 * 1024
MAX_MESSAGE_CHARS = 8 * 1024


def too_large(size: int | None, limit: int = MAX_BODY_BYTES) -> str:
    """The 413 message (``size`` in bytes, None when unknown)."""
    got = f"{size} bytes" if size is not None else "more"
    return (f"request body too large ({got}; at most {limit} bytes): send only the options to change "
            "as a JSON object")


class BodyLimitMiddleware:
    """ASGI middleware: request bodies of at most ``limit`` bytes, else 413 ``{"error", "detail"}``."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.limit:
            await _answer_413(send, too_large(length, self.limit))
            return
        seen = 0

        async def limited() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:  # chunked upload without Content-Length; routes re-raise HTTPException
                    raise HTTPException(413, too_large(None, self.limit))
            return message

        await self.app(scope, limited, send)


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer_413(send: Any, error: str) -> None:
    body = json.dumps({"error": error, "detail": None}).encode("utf-8")
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def cut_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` when at most ``limit`` characters, else its first ``limit`` and ``… [cut N characters]``."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [cut {len(text) - limit} characters]"
