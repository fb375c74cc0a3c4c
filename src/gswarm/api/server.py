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
import errno
import ipaddress
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any, Iterator

import uvicorn

from gswarm.api.app import create_app
from gswarm.api.auth import TokenFileError
from gswarm.api.source import DataSource
from gswarm.errors import ConfigError
from gswarm.paths import atomic_write

log = logging.getLogger(__name__)
API_FILE = "api.json"
SERVE_FILE = "serve.json"


class EmbeddedServer(uvicorn.Server):
    """uvicorn without signal handling (the embedding loop handles signals), waking once a second.

    uvicorn's own main loop wakes every 0.1 s to refresh the ``Date`` header and look at
    ``should_exit``: ~0.3 % of a core on this 2-vCPU VM while nothing happens, most of an idle
    ``gswarm run`` (bench/idle.py). Here it wakes every :attr:`TICK` seconds, and at once on
    :meth:`request_exit`, so a stop is not slower.
    """

    TICK = 1.0  # seconds between wake-ups (the Date header is refreshed at each)

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        counter = 0  # uvicorn.Server.on_tick refreshes the headers when counter % 10 == 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            try:
                await asyncio.wait_for(self._wake.wait(), self.TICK)
            except asyncio.TimeoutError:
                pass

    def request_exit(self) -> None:
        """Ask the server to stop now (``should_exit`` plus an immediate wake-up of the main loop)."""
        self.should_exit = True
        wake = getattr(self, "_wake", None)
        if wake is not None:
            wake.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        return None


def check_port(port: int, option: str) -> None:
    """Raise ConfigError naming ``option`` unless 0 <= ``port`` <= 65535."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"{option} {port} is not a port: use 1-65535 (0 = any free port)")


def bind_socket(host: str, port: int, *, host_option: str = "api_host (GSWARM_API_HOST or the config file)",
                port_option: str = "--api-port") -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 = free port).

    Raises ConfigError naming ``host_option`` (bad address) or ``port_option`` (port taken or
    out of range): the option the caller's command line has (``gswarm serve``: --host/--port).
    """
    check_port(port, port_option)
    if host.replace(".", "").isdigit() and host.count(".") == 3:  # looks like IPv4: no name lookup for 999.1.1.1
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ConfigError(f"{host_option} {host!r} is not a valid IP address; use an address of this machine, "
                              "e.g. 127.0.0.1") from None
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, socket.gaierror) as exc:
        raise ConfigError(f"{host_option} {host!r} cannot be used ({exc.strerror or exc}); "
                          "use an address of this machine, e.g. 127.0.0.1") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(f"{host_option} {host!r} is not an address of this machine ({exc.strerror}); "
                              "use one of its addresses, e.g. 127.0.0.1") from None
        raise ConfigError(f"port {port} on {host} is not available ({exc.strerror}); "
                          f"choose another with {port_option} (0 = any free port)") from None
    return sock


class ApiService:
    """Service ``api``: ``ApiService(source, host, port)``; ``run()`` serves until cancelled.

    The socket is bound in the constructor (ConfigError when the port is taken, naming the
    command-line ``options`` (host flag, port flag) given, default api_host/--api-port of
    ``gswarm run``; TokenFileError when ``<state_dir>/api_token`` is unusable);
    ``port`` is the bound port. Cancelling ``run()`` stops accepting, closes open
    event streams (``graceful`` seconds at most) and removes its run file (``run/api.json``
    when ``source`` is live, ``run/serve.json`` when read-only) if it still names this process.
    """

    name = "api"

    def __init__(self, source: DataSource, host: str = "127.0.0.1", port: int = 8787, *, graceful: float = 2.0,
                 app_options: dict[str, Any] | None = None, options: tuple[str, str] | None = None) -> None:
        self.source, self.host = source, host
        names = dict(zip(("host_option", "port_option"), options)) if options else {}
        self.sock = bind_socket(host, port, **names)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://{host if ':' not in host else '[' + host + ']'}:{self.port}"
        source.bound = {"host": host, "port": self.port}
        try:
            self.app = create_app(source, **{"host": host, **(app_options or {})})
        except BaseException:
            self.sock.close()
            raise
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
        self.server.request_exit()
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

    Raises ConfigError when ``api_host``/``api_port`` cannot be bound. An unusable
    ``<state_dir>/api_token`` logs one warning naming the file and what to do, and the
    node runs without the API (None).
    """
    settings = rt.settings
    if not settings.api_enabled:
        return None
    source = DataSource(rt.state_dir, settings, runtime=rt, clock=rt.clock)
    try:
        return ApiService(source, settings.api_host, settings.api_port)
    except TokenFileError as exc:
        source.close()
        log.warning("API and dashboard off: %s", exc)
        return None
