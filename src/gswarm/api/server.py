"""The API server embedded in ``gswarm run`` (and used by ``gswarm serve``).

uvicorn runs in the caller's event loop (``await server.serve()``) and installs
no signal handlers (:class:`EmbeddedServer`): the runtime owns signals. The
socket is bound here before serving, so port 0 resolves to a free port at once;
the bound address is on ``service.port`` and in a run file
(``{"host", "port", "pid", "url"}``): ``<state_dir>/run/api.json`` for the live API of
``gswarm run``, ``<state_dir>/run/serve.json`` for the read-only ``gswarm serve``, so a
``gswarm serve`` next to a running supervisor never overwrites or removes the supervisor's
``api.json``. On stop a run file is removed only by the process (pid) and port that wrote it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any, Iterator

import uvicorn

from gswarm.api.app import create_app
from gswarm.api.source import DataSource
from gswarm.errors import ConfigError
from gswarm.paths import atomic_write

log = logging.getLogger(__name__)
API_FILE = "api.json"
SERVE_FILE = "serve.json"


class EmbeddedServer(uvicorn.Server):
    """uvicorn without signal handling (the embedding loop handles signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        return None


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 = free port); raises ConfigError naming api_host/api_port."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, socket.gaierror) as exc:
        raise ConfigError(f"api_host {host!r} cannot be used: {exc}; use an address of this machine") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"api_port {port} on {host} is not available ({exc.strerror}); "
                          "choose another with --api-port (0 = any free port)") from None
    return sock


class ApiService:
    """Service ``api``: ``ApiService(source, host, port)``; ``run()`` serves until cancelled.

    The socket is bound in the constructor (ConfigError when the port is taken);
    ``port`` is the bound port. Cancelling ``run()`` stops accepting, closes open
    event streams (``graceful`` seconds at most) and removes its run file (``run/api.json``
    when ``source`` is live, ``run/serve.json`` when read-only) if it still names this process.
    """

    name = "api"

    def __init__(self, source: DataSource, host: str = "127.0.0.1", port: int = 8787, *, graceful: float = 2.0,
                 app_options: dict[str, Any] | None = None) -> None:
        self.source, self.host = source, host
        self.sock = bind_socket(host, port)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://{host if ':' not in host else '[' + host + ']'}:{self.port}"
        source.bound = {"host": host, "port": self.port}
        self.app = create_app(source, **{"host": host, **(app_options or {})})
        config = uvicorn.Config(self.app, lifespan="off", log_level="warning", access_log=False,
                                timeout_graceful_shutdown=graceful, ws="none", server_header=False)
        self.server = EmbeddedServer(config)

    @property
    def api_file(self) -> Path:
        """``<state_dir>/run/api.json`` (live source) or ``<state_dir>/run/serve.json`` (read-only)."""
        return self.source.state_dir / "run" / (API_FILE if self.source.live else SERVE_FILE)

    async def run(self) -> None:
        """Serve until cancelled; errors are logged, never raised."""
        task = asyncio.ensure_future(self.server.serve(sockets=[self.sock]))
        try:
            self._write_api_file()
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await self._stop(task)
            raise
        except Exception:
            log.exception("the API server failed; the node keeps running without it")
        finally:
            self._remove_api_file()

    async def _stop(self, task: asyncio.Future[None]) -> None:
        self.source.stopping.set()
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), self.server.config.timeout_graceful_shutdown + 3)
        except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
            task.cancel()
        self.sock.close()
        self.source.close()

    def _write_api_file(self) -> None:
        data = {"host": self.host, "port": self.port, "pid": os.getpid(), "url": self.url}
        try:
            atomic_write(self.api_file, json.dumps(data) + "\n", mode=0o600)  # like every file in the state dir
        except OSError as exc:
            log.warning("cannot write %s: %s", self.api_file, exc)

    def _remove_api_file(self) -> None:
        with contextlib.suppress(OSError):
            data = json.loads(self.api_file.read_text())
            if data.get("pid") == os.getpid() and data.get("port") == self.port:
                self.api_file.unlink()


def create_service(rt: Any) -> ApiService | None:
    """Factory for the runtime: None when ``settings.api_enabled`` is false.

    Raises ConfigError when ``api_host``/``api_port`` cannot be bound.
    """
    settings = rt.settings
    if not settings.api_enabled:
        return None
    source = DataSource(rt.state_dir, settings, runtime=rt, clock=rt.clock)
    return ApiService(source, settings.api_host, settings.api_port)
