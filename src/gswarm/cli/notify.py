"""``gswarm notify test|url …`` and ``gswarm maintenance 30m|off|status`` (thin; logic in gswarm.notify)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
from typing import Optional

import typer

from gswarm.cli._common import ConfigFile, JsonOut, StateDir, settings_from, state_dir_of
from gswarm.errors import ConfigError

url_app = typer.Typer(help="Print the Apprise URL for a service (put it in GSWARM_NOTIFY_URLS).", no_args_is_help=True)


@url_app.command("telegram")
def url_telegram(token: str = typer.Option(..., "--token", help="Bot token from @BotFather (123456:AA…)."),
                 chat: str = typer.Option(..., "--chat", help="Chat id (a number; negative for groups).")) -> None:
    """Telegram: bot token + chat id → tgram://TOKEN/CHAT."""
    from gswarm.notify.urls import telegram_url

    typer.echo(telegram_url(token, chat))


@url_app.command("discord")
def url_discord(webhook: str = typer.Argument(..., help="https://discord.com/api/webhooks/ID/TOKEN")) -> None:
    """Discord: webhook URL → discord://ID/TOKEN."""
    from gswarm.notify.urls import discord_url

    typer.echo(discord_url(webhook))


@url_app.command("email")
def url_email(host: str = typer.Option(..., "--host", help="SMTP server, e.g. smtp.gmail.com."),
              to: str = typer.Option(..., "--to", help="Recipient address."),
              port: Optional[int] = typer.Option(None, "--port", help="SMTP port (default 587 starttls, 465 ssl, 25 none)."),
              user: Optional[str] = typer.Option(None, "--user", help="SMTP login."),
              password: Optional[str] = typer.Option(None, "--password", help="SMTP password (app password).",
                                                     envvar="GSWARM_SMTP_PASSWORD"),
              tls: str = typer.Option("starttls", "--tls", help="starttls, ssl or none."),
              sender: Optional[str] = typer.Option(None, "--from", help="Sender address (default: --user).")) -> None:
    """E-mail: SMTP settings → mailtos://…?mode=starttls|ssl (or mailto:// without TLS)."""
    from gswarm.notify.urls import email_url

    typer.echo(email_url(host, to, port=port, user=user, password=password, tls=tls, sender=sender))  # type: ignore[arg-type]


def _notify_test(tag: Optional[str], timeout: float, state_dir: Optional[Path], config_file: Optional[Path],
                 json_out: bool) -> None:
    """Send a test message to every configured channel (with ``tag``) and report each."""
    from gswarm.events import Severity
    from gswarm.notify.channels import load_channels
    from gswarm.notify.dispatch import Dispatcher
    from gswarm.notify.rules import Kind, Message

    settings = settings_from(state_dir=state_dir, config_file=config_file)
    problems: list[str] = []
    channels = load_channels(settings.notify_urls, getattr(settings, "notify_channels", None) or [],
                             settings.notify_min_severity, problems)
    if not channels and not problems:
        raise ConfigError("no notification channel configured; set GSWARM_NOTIFY_URLS (see `gswarm notify url --help`)")
    msg = Message(Kind.TEST.value, Severity.INFO, f"[{settings.node_name}] GSwarm test message",
                  f"If you read this, notifications from GSwarm on node {settings.node_name} reach you.",
                  settings.node_name, time.time(), force=True)

    async def go() -> dict[str, tuple[bool, str]]:
        d = Dispatcher(channels, timeout=timeout, retries=0)
        try:
            return await d.send_now(msg, tag=tag)
        finally:
            await d.aclose()

    results = asyncio.run(go())
    rows = [{"channel": c.redacted, "tags": c.config.tags, "delivered": results[c.name][0], "error": results[c.name][1]}
            for c in channels if c.name in results]
    rows += [{"channel": "(not loaded)", "tags": [], "delivered": False, "error": p} for p in problems]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
    else:
        for r in rows:
            mark = "delivered" if r["delivered"] else f"FAILED: {r['error']}"
            typer.echo(f"{r['channel']}  [{','.join(r['tags']) or '-'}]  {mark}")
        if not rows:
            typer.echo(f"no channel has the tag {tag!r}")
    if not rows or not all(r["delivered"] for r in rows):
        raise SystemExit(1)  # not typer.Exit: cli.main drops its code (standalone_mode=False)


def _maintenance(arg: str, reason: str, state_dir: Optional[Path], config_file: Optional[Path]) -> None:
    from gswarm import maintenance
    from gswarm.config.durations import parse_until

    settings = settings_from(state_dir=state_dir, config_file=config_file)
    sd = state_dir_of(settings, writable=arg != "status")
    now = time.time()
    if arg == "off":
        was = maintenance.active_until(sd, now)
        maintenance.clear(sd)
        typer.echo("maintenance window ended: alerts and restarts are back on" if was is not None
                   else "no maintenance window was active: alerts and restarts are on")
        return
    if arg != "status":
        seconds = parse_until(arg, "maintenance", now) - now  # 30m, 1h30m or an ISO end time (one grammar)
        if seconds > maintenance.MAX_SECONDS:
            raise ConfigError(f"maintenance: {arg!r} is longer than the limit of {maintenance.MAX_SECONDS / 86400:.0f} days; "
                              "use e.g. 30m, 2h or 7d (end it early with `gswarm maintenance off`)")
        maintenance.set_window(sd, now + seconds, reason)
    broken = maintenance.problem(sd)
    if broken:
        typer.echo(f"warning: {broken}", err=True)
    from gswarm.monitor.status import maintenance as active_window

    window = active_window(sd, now)  # {"until", "reason"} or None
    if window is None:
        typer.echo("no maintenance window")
    else:
        until, why = window["until"], window["reason"]
        typer.echo(f"maintenance until {local_time(until)} ({_left(until - now)} left){f' ({why})' if why else ''}: "
                   "no alerts, no restarts")


def local_time(ts: float) -> str:
    """``ts`` (Unix s) as local time with its UTC offset, ``2026-12-07 14:30:05 +0100``: the one format the
    reading commands use, so a time never reads as UTC in one line and local in the next."""
    from datetime import datetime

    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def _left(seconds: float) -> str:
    """Time left of a window: ``"40 s"`` under a minute (it showed "0 min"), else ``"12 min"``, ``"5 h 50 min"``,
    ``"7 d 0 h"`` (:func:`gswarm.notify.digest.fmt_duration`)."""
    from gswarm.notify.digest import fmt_duration

    return f"{max(1, math.ceil(seconds))} s" if seconds < 59.5 else fmt_duration(seconds)


def register(app: typer.Typer) -> None:
    """Add ``notify`` (test, url) and ``maintenance`` to ``app``."""
    notify_app = typer.Typer(help="Notification channels (Apprise URLs): test them, build URLs.", no_args_is_help=True)
    notify_app.add_typer(url_app, name="url")

    @notify_app.command("test")
    def notify_test(tag: Optional[str] = typer.Option(None, "--tag", help="Only channels with this tag."),
                    timeout: str = typer.Option("10", "--timeout", help="Per channel: seconds or e.g. 10s, 1m."),
                    state_dir: Optional[Path] = StateDir, config_file: Optional[Path] = ConfigFile,
                    json_out: bool = JsonOut) -> None:
        """Send a test message and report per channel (redacted URL) whether it was delivered."""
        from gswarm.config.durations import parse_duration

        _notify_test(tag, parse_duration(timeout, "option --timeout"), state_dir, config_file, json_out)

    app.add_typer(notify_app, name="notify")

    @app.command("maintenance")
    def maintenance_cmd(when: str = typer.Argument("status", help="A duration (30m, 1h30m, 2d) or an ISO end time, 'off' or 'status'."),
                        reason: str = typer.Option("", "--reason", help="Shown in status."),
                        state_dir: Optional[Path] = StateDir, config_file: Optional[Path] = ConfigFile) -> None:
        """Pause alerts and restarts for a while (gswarm maintenance 30m), end it (off) or show it."""
        _maintenance(when, reason, state_dir, config_file)
