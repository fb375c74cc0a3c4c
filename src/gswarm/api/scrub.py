"""Last line of defence for secrets: an ASGI middleware that masks known secret values.

Every JSON and plain-text answer (``application/json``, ``text/plain``) is buffered and
each known secret value (HF token, API token, notification URL credentials — see
:meth:`gswarm.api.source.DataSource.scrub`) is replaced by ``***`` before it is sent,
so a token that reached the store by another path (e.g. an E0-E2 ``--hf_token`` argv
in a ``start`` event) never leaves the process. Event streams are masked per frame
by :mod:`gswarm.api.stream`; static files pass through.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
_MASKED = (b"application/json", b"text/plain")


class ScrubMiddleware:
    """``ScrubMiddleware(app, scrub)`` where ``scrub(text: str) -> str`` masks secrets."""

    def __init__(self, app: Any, scrub: Callable[[str], str]) -> None:
        self.app, self.scrub = app, scrub

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                      send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def masked_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                ctype = dict(message.get("headers", [])).get(b"content-type", b"")
                if ctype.startswith(_MASKED):
                    start = message
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = self.scrub(b"".join(chunks).decode("utf-8", errors="replace")).encode("utf-8")
                headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
                await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, masked_send)
