"""``gswarm report --since 24h [--node N] [--send] [--json] [--png PATH]``: the digest on demand."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer

from gswarm.cli._common import ConfigFile, JsonOut, StateDir, check_output_file, pick_node, settings_from, state_dir_of
from gswarm.config.settings import check_node_name
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


def report(since: str, node: Optional[str], send: bool, json_out: bool, png: Optional[Path],
           state_dir: Optional[Path], config_file: Optional[Path]) -> None:
    """Build the digest of the last ``since`` from the store; print, save the chart, send."""
    from gswarm.logs.store import StoreReader
    from gswarm.notify.digest import build_digest
    from gswarm.config.durations import parse_moment, span_seconds

    if node is not None:
        check_node_name(node, "--node")
    settings = settings_from(state_dir=state_dir, config_file=config_file)
    until = time.time()
    span = span_seconds(since)  # 24h, 1h30m, 7d; or an ISO start time (one grammar, gswarm.config.durations)
    span = until - parse_moment(since, "--since", until) if span is None else span
    if span <= 0:
        raise ConfigError(f"--since {since!r} must reach back from now; use e.g. 24h, 7d or an earlier ISO time")
    if until - span < 0:
        raise ConfigError(f"--since {since!r} reaches back before 1970; use e.g. 24h, 7d or 30d")
    if png is not None:
        png = check_output_file(png, "--png", "digest.png")  # a reading command creates no folder (a typo left one behind)
    sdir = state_dir_of(settings, writable=False)
    reader = StoreReader(sdir / "gswarm.db")
    try:
        known: list[str] = reader.nodes()
        # several nodes (one host) and no --node: a digest for every node
        names = known if node is None and len(known) > 1 else [pick_node(reader, sdir, node, settings.node_name)]
    except BaseException:
        reader.close()
        raise
    tmp = None
    if png is None and send:
        tmp = tempfile.TemporaryDirectory(prefix="gswarm-report-")
        png = Path(tmp.name) / "digest.png"
    results = []
    try:
        for name in names:
            chart = png if png is None or len(names) == 1 else png.with_name(f"{png.stem}-{name}{png.suffix}")
            digest = build_digest(reader, name, until - span, until, chart)
            results.append((digest, chart, _send(settings, digest.message()) if send else {}))
    finally:
        reader.close()
        if tmp is not None:
            tmp.cleanup()
    _show(results, json_out, tmp is None)
    if any(not ok for _, _, sent in results for ok, _ in sent.values()):
        raise SystemExit(1)  # not typer.Exit: cli.main drops its code (standalone_mode=False)


def _show(results: list, json_out: bool, keep_png: bool) -> None:
    """Print (digest, chart path, sent) per node: one JSON object for one node, ``{"nodes": [...]}`` for several."""
    if json_out:
        out = [{"title": d.title, "text": d.text, "summary": d.summary.to_dict(),
                "png": str(chart) if chart and keep_png else None,
                "sent": {k: {"delivered": ok, "error": err} for k, (ok, err) in sent.items()}}
               for d, chart, sent in results]
        typer.echo(json.dumps(out[0] if len(out) == 1 else {"nodes": out}, indent=2))
        return
    for i, (digest, chart, sent) in enumerate(results):
        if i:
            typer.echo("")
        typer.echo(digest.title)
        typer.echo(digest.text)
        if chart is not None and keep_png:
            typer.echo(f"chart: {chart}")
        for url, (ok, err) in sent.items():
            typer.echo(f"sent to {url}: {'delivered' if ok else 'FAILED: ' + err}")


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""

    @app.command("report")
    def report_cmd(since: str = typer.Option("24h", "--since", help="Span back from now (24h, 7d, 1h30m) or an ISO start time."),
                   node: Optional[str] = typer.Option(None, "--node", help="Node name (default: every node of the state dir)."),
                   send: bool = typer.Option(False, "--send", help="Also send it through the configured channels."),
                   json_out: bool = JsonOut,
                   png: Optional[Path] = typer.Option(None, "--png", help="Write the chart to this PNG file."),
                   state_dir: Optional[Path] = StateDir, config_file: Optional[Path] = ConfigFile) -> None:
        """Uptime, restarts by cause, rounds, incidents and resource peaks (the digest, on demand)."""
        report(since, node, send, json_out, png, state_dir, config_file)
