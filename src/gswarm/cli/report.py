"""``gswarm report --since 24h [--node N] [--send] [--json] [--png PATH]``: the digest on demand."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer

from gswarm.cli._common import ConfigFile, JsonOut, StateDir, check_output_file, settings_from, state_dir_of
from gswarm.errors import ConfigError


def _send(settings: object, message: object) -> dict[str, tuple[bool, str]]:
    from gswarm.notify.channels import load_channels
    from gswarm.notify.dispatch import Dispatcher

    channels = load_channels(settings.notify_urls, getattr(settings, "notify_channels", None) or [],  # type: ignore[attr-defined]
                             settings.notify_min_severity)  # type: ignore[attr-defined]
    if not channels:
        raise ConfigError("--send needs a notification channel; set GSWARM_NOTIFY_URLS")

    async def go() -> dict[str, tuple[bool, str]]:
        d = Dispatcher(channels, retries=1, backoff=2.0)
        try:
            return await d.send_now(message)  # type: ignore[arg-type]
        finally:
            await d.aclose()

    results = asyncio.run(go())
    return {next(c.redacted for c in channels if c.name == n): r for n, r in results.items()}


def _pick_node(reader: object, sdir: Path, node: Optional[str], default: str) -> str:
    """The node to report on, as ``gswarm status`` picks it: ``--node``, else node_name, else the only node
    the store knows. ConfigError naming --node and the known nodes for a node the store has no record of."""
    known: list[str] = reader.nodes()  # type: ignore[attr-defined]
    name = node or default
    if node is None and name not in known and len(known) == 1:
        return known[0]
    if known and name not in known:
        raise ConfigError(f"unknown node {name!r} in {sdir}; known nodes: {', '.join(known)} (pass one with --node)")
    return name


def report(since: str, node: Optional[str], send: bool, json_out: bool, png: Optional[Path],
           state_dir: Optional[Path], config_file: Optional[Path]) -> None:
    """Build the digest of the last ``since`` from the store; print, save the chart, send."""
    from gswarm.logs.store import StoreReader
    from gswarm.notify.digest import build_digest
    from gswarm.notify.schedule import parse_duration

    settings = settings_from(state_dir=state_dir, config_file=config_file)
    span = parse_duration(since, "--since")
    until = time.time()
    if until - span < 0:
        raise ConfigError(f"--since {since!r} reaches back before 1970; use e.g. 24h, 7d or 30d")
    if png is not None:
        png = check_output_file(png, "--png", "digest.png")  # a reading command creates no folder (a typo left one behind)
    sdir = state_dir_of(settings, writable=False)
    reader = StoreReader(sdir / "gswarm.db")
    try:
        node = _pick_node(reader, sdir, node, settings.node_name)
    except BaseException:
        reader.close()
        raise
    tmp = None
    if png is None and send:
        tmp = tempfile.TemporaryDirectory(prefix="gswarm-report-")
        png = Path(tmp.name) / "digest.png"
    try:
        digest = build_digest(reader, node, until - span, until, png)
        sent = _send(settings, digest.message()) if send else {}
    finally:
        reader.close()
        if tmp is not None:
            tmp.cleanup()
    if json_out:
        typer.echo(json.dumps({"title": digest.title, "text": digest.text, "summary": digest.summary.to_dict(),
                               "png": str(png) if png and tmp is None else None,
                               "sent": {k: {"delivered": ok, "error": err} for k, (ok, err) in sent.items()}},
                              indent=2))
    else:
        typer.echo(digest.title)
        typer.echo(digest.text)
        if png is not None and tmp is None:
            typer.echo(f"chart: {png}")
        for url, (ok, err) in sent.items():
            typer.echo(f"sent to {url}: {'delivered' if ok else 'FAILED: ' + err}")
    if sent and not all(ok for ok, _ in sent.values()):
        raise SystemExit(1)  # not typer.Exit: cli.main drops its code (standalone_mode=False)


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""

    @app.command("report")
    def report_cmd(since: str = typer.Option("24h", "--since", help="Span back from now: 24h, 7d, 90m…"),
                   node: Optional[str] = typer.Option(None, "--node", help="Node name (default: node_name)."),
                   send: bool = typer.Option(False, "--send", help="Also send it through the configured channels."),
                   json_out: bool = JsonOut,
                   png: Optional[Path] = typer.Option(None, "--png", help="Write the chart to this PNG file."),
                   state_dir: Optional[Path] = StateDir, config_file: Optional[Path] = ConfigFile) -> None:
        """Uptime, restarts by cause, rounds, incidents and resource peaks (the digest, on demand)."""
        report(since, node, send, json_out, png, state_dir, config_file)
