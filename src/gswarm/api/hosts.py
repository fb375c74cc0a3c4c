"""DNS-rebinding guard: on a loopback bind, only loopback ``Host`` names are served.

Reads need no token while GSwarm listens on a loopback address, so a web page on
another site could rebind its own name to 127.0.0.1 and read the API through the
visitor's browser. Browsers always send the name they resolved in ``Host``; when the
bind address is loopback, :class:`LoopbackHostMiddleware` answers any request whose
``Host`` is not ``localhost`` or a loopback IP (``127.0.0.0/8``, ``::1``; any port,
IPv6 in brackets or bare) with 421 ``{"error", "detail"}`` — for every path, the
dashboard files included. A request without ``Host`` (HTTP/1.0 tools, never a browser)
passes. On any other bind the bearer token already guards every request, so no check.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from gswarm.api.auth import is_loopback

Scope = dict[str, Any]
Message = dict[str, Any]


def host_name(header: str) -> str:
    """The name part of a ``Host`` header value: ``[::1]:80`` → ``::1``, ``a:80`` → ``a``, ``::1`` → ``::1``."""
    value = header.strip()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value  # a bare name, or a bare IPv6 address


def loopback_host(header: str) -> bool:
    """True when a ``Host`` header value names this machine's loopback (``localhost``, ``127.x``, ``::1``)."""
    name = host_name(header).rstrip(".").lower()
    return bool(name) and is_loopback(name)


class LoopbackHostMiddleware:
    """``LoopbackHostMiddleware(app)``: 421 JSON for HTTP requests with a non-loopback ``Host``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] == "http":
            given = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), None)
            if given is not None and not loopback_host(given):
                await _refuse(send, given)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Callable[[Message], Awaitable[None]], given: str) -> None:
    body = json.dumps({"error": "this GSwarm API listens on a loopback address and only answers requests for "
                                "localhost, 127.0.0.1 or [::1]; open it by one of those names",
                       "detail": {"field": "Host", "value": given[:200]}}).encode("utf-8")
    await send({"type": "http.response.start", "status": 421,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
