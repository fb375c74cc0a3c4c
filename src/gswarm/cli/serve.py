"""``gswarm serve``: the REST API and dashboard over a state directory, read-only (no supervisor).

Control endpoints answer 409 here; use ``gswarm run`` to supervise. Ctrl-C or
SIGTERM stops the server. Errors name this command's options (``--host``, ``--port``), and
an unusable ``<state_dir>/api_token`` ends it with a message naming the file. The bound address goes to ``<state_dir>/run/serve.json``
(never ``run/api.json``, which belongs to a running ``gswarm run``). ``/openapi.json`` is the
offline API reference; ``/docs`` (Swagger UI) loads its script from a CDN and needs internet.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Optional

import typer

from gswarm.cli._common import ConfigFile, StateDir, settings_from, state_dir_of
from gswarm.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""

    @app.command("serve")
    def serve(
        host: Optional[str] = typer.Option(None, "--host", help="Bind address (default 127.0.0.1; others need the token for every request)."),
        port: Optional[int] = typer.Option(None, "--port", "--api-port",
                                           help="Port (default 8787; 0 = any free port); --api-port as in gswarm run."),
        state_dir: Optional[Path] = StateDir,
        config_file: Optional[Path] = ConfigFile,
    ) -> None:
        """Serve the API and dashboard from the state directory, read-only."""
        if port is not None:
            from gswarm.api.server import check_port

            check_port(port, "--port")
        settings = settings_from(state_dir=state_dir, config_file=config_file, api_host=host, api_port=port)
        folder = state_dir_of(settings, writable=False)
        if not folder.is_dir():  # serving is reading: a mistyped --state-dir must not leave a folder + api_token
            raise ConfigError(f"state directory {folder} does not exist: nothing was recorded there; start "
                              "`gswarm run` first (it creates it) or pass the --state-dir of a run")
        asyncio.run(_serve(settings, folder))


async def _serve(settings, folder: Path) -> None:  # type: ignore[no-untyped-def]
    from gswarm.api.auth import is_loopback, token_path
    from gswarm.api.server import ApiService
    from gswarm.api.source import DataSource

    source = DataSource(folder, settings)
    try:
        service = ApiService(source, settings.api_host, settings.api_port, options=("--host", "--port"))
    except BaseException:
        source.close()
        raise
    typer.echo(f"GSwarm dashboard (read-only) at {service.url}/  API reference at {service.url}/openapi.json "
               f"(interactive {service.url}/docs needs internet)", err=False)
    typer.echo(f"state directory {folder}; API token in {token_path(folder)}" if not settings.api_token
               else f"state directory {folder}; API token from the configuration")
    if not is_loopback(settings.api_host):
        typer.echo(f"note: {settings.api_host} is not a loopback address: every API request needs the bearer token", err=True)
    task = asyncio.ensure_future(service.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        typer.echo("stopped")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
