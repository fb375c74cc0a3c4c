"""``gswarm status [--json]`` and ``gswarm logs [filters] [-f] [--json]`` (thin: logic in monitor/logs)."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Optional, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gswarm.cli import visible
from gswarm.cli._common import ConfigFile, JsonOut, StateDir, pick_node, settings_from
from gswarm.config.settings import check_node_name
from gswarm.daemon.client import running_state_dir
from gswarm.errors import ConfigError

FOLLOW_TAIL = 10  # records shown before following when `logs -f` has no --since/--limit (like tail -f)
NodeOpt = typer.Option(None, "--node", help="Node name (default: settings node_name).")


def _fmt_bytes(n: Any) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)


def _val(v: Any, unit: str = "") -> str:
    """``v`` with ``unit``, or "-" for a missing value (never a literal "None" on screen)."""
    return "-" if v is None else f"{v}{unit}"


def _resources_line(s: dict[str, Any]) -> str:
    """``CPU 12.5% RSS 1.0 GiB | host CPU 40% RAM 55% GPU0 90% 70°C``; "-" for each missing figure."""
    gpus = "; ".join(f"GPU{_val(g.get('index'))} {_val(g.get('utilization_percent'), '%')} "
                     f"{_val(g.get('temperature_celsius'), '°C')}" for g in s.get("gpu") or [] if isinstance(g, dict))
    return (f"CPU {_val(s.get('cpu_percent'), '%')} RSS {_fmt_bytes(s.get('rss_bytes'))} | "
            f"host CPU {_val(s.get('host_cpu_percent'), '%')} RAM {_val(s.get('host_mem_percent'), '%')}"
            + (f" {gpus}" if gpus else ""))


def _has_node_figures(s: dict[str, Any] | None) -> bool:
    """``s`` (the status' ``resources``) holds a figure of the node itself, or is an earlier run's last sample."""
    return bool(s) and (not s.get("current", True) or s.get("cpu_percent") is not None  # type: ignore[union-attr]
                        or s.get("rss_bytes") is not None)  # type: ignore[union-attr]


def _ago(ts: Any, now: float) -> str:
    return "-" if ts is None else f"{datetime.fromtimestamp(ts):%Y-%m-%d %H:%M:%S} ({now - ts:.0f} s ago)"


def maintenance_line(m: dict[str, Any] | None, now: float) -> str | None:
    """``maintenance until HH:MM (reason) — restarts and alerts paused`` (local time; the date too
    when the window ends on another day than ``now``), or None without a window."""
    if not m:
        return None
    end = datetime.fromtimestamp(m["until"])
    when = f"{end:%H:%M}" if end.date() == datetime.fromtimestamp(now).date() else f"{end:%Y-%m-%d %H:%M}"
    reason = f" ({m['reason']})" if m.get("reason") else ""
    return f"maintenance until {when}{reason} — restarts and alerts paused"


def _print_status(d: dict[str, Any], now: float) -> None:
    t = Table(show_header=False, box=None)
    sup = d["supervisor"]
    t.add_row("node", d["node"])
    line = maintenance_line(d.get("maintenance"), now)
    if line:  # first, on its own line: it explains why nothing restarts (plain echo: no rich markup in the reason)
        typer.echo(line)
    t.add_row("supervisor", f"running (pid {sup['pid']})" if sup["alive"] else "not running")
    stale = "" if sup["alive"] or d["state"] in (None, "STOPPED", "FATAL") else " (last recorded)"
    t.add_row("state", f"{d['state'] or '-'}{stale} since {_ago(d['state_since'], now)}")
    g = d.get("gave_up")
    if g:  # GSwarm stopped for good (FATAL or stop-and-alert): say why, and that nothing restarts it
        t.add_row("gave up", escape(f"{g['reason']} (cause {g['cause'] or '-'}); GSwarm will not restart the node"))
    t.add_row("generation", f"{d['generation'] or '-'} ({d['mode'] or '-'})")
    t.add_row("uptime", f"{d['uptime']:.0f} s (pid {d['pid']})" if d["uptime"] is not None else "-")
    r = d["restarts_24h"]
    causes = ", ".join(f"{k}: {v}" for k, v in r["by_cause"].items())
    t.add_row("restarts 24h", f"{r['total']}" + (f" ({causes})" if causes else ""))
    p = d["progress"]
    if p:
        stage = f" stage {p['stage']}" if p["stage"] is not None else ""
        who = " ".join(x for x in (p["animal"], p["peer_id"]) if x)
        total = f"/{p['round_total']}" if p.get("round_total") and p["round"] is not None else ""
        kind = f" (last: {p['kind']})" if p["kind"] and p["kind"] != "round" else ""  # "round 30 (round)" said nothing
        t.add_row("progress", f"round {_val(p['round'])}{total}{stage}{kind}" + (f"; {who}" if who else ""))
        t.add_row("last advance", _ago(p["last_advance"], now))
    s = d["resources"]
    if d.get("pid") and not _has_node_figures(s):  # a node in its first seconds: "CPU - RSS -" read like a fault
        t.add_row("resources", "the node's first sample is pending (one every sample_interval, 10 s by default)")
    elif s and s.get("current", True):
        t.add_row("resources", escape(_resources_line(s)))
    elif s:  # the node is not running: these figures are its last sample, not the present
        t.add_row("last sample", escape(f"{_resources_line(s)} at {_ago(s.get('ts'), now)}; node not running"))
    i = d["last_incident"]
    if i:
        t.add_row("last incident", f"{i['category']} ({i['severity']}) {_ago(i['ts'], now)}")
        if not g:  # the incident's advice describes the recovery GSwarm would try next
            t.add_row("advice", i["advice"] or "-")
    if g:
        t.add_row("advice", escape(g["advice"] or "-"))
    Console(highlight=False).print(t)


def _print_record(rec: dict[str, Any], as_json: bool, out: TextIO) -> None:
    """One record on ``out`` (buffered; the caller flushes): a JSON line, or ``<local time> <node> <LEVEL>
    [<category>] <message>`` with control characters escaped (:func:`gswarm.cli.visible`). Written straight
    to the stream: Rich's per-call rendering and terminal queries cost ~78 µs a line, minutes for the
    million lines a node flood leaves in the capture (issue #18)."""
    if as_json:
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return
    ts = datetime.fromtimestamp(rec.get("ts_unix", 0.0)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    out.write(visible(f"{ts} {rec.get('node')} {str(rec.get('level', '')).upper():8} [{rec.get('category')}] "
                      f"{rec.get('message')}") + "\n")


def _print_every(every: list[dict[str, Any]], now: float, as_json: bool) -> None:
    """Several nodes (``gswarm status`` without ``--node``): JSON ``{"nodes": [<one node's status>, …]}``,
    or a one-line-per-node table followed by each node's details."""
    if as_json:
        typer.echo(json.dumps({"nodes": every}, indent=2))
        return
    out = Console(highlight=False, soft_wrap=True)
    t = Table(title=f"{len(every)} nodes (details below; --node NAME shows one)")
    for col in ("node", "state", "uptime", "restarts 24h", "round/stage", "GPU", "last cause"):
        t.add_column(col)
    for d in every:
        t.add_row(*(escape(str(v)) for v in _overview_row(d, now)))
    out.print(t)
    for d in every:
        out.print()
        _print_status(d, now)


def _overview_row(d: dict[str, Any], now: float) -> tuple[Any, ...]:
    prog = d.get("progress") or {}
    gpus = (d.get("resources") or {}).get("gpu") or []
    gpu = ",".join(str(g.get("index")) for g in gpus if isinstance(g, dict)) or "-"
    last = d.get("last_incident") or {}
    uptime = d.get("uptime")
    return (d["node"], d.get("state") or "-", f"{uptime:.0f} s" if isinstance(uptime, (int, float)) else "-",
            (d.get("restarts_24h") or {}).get("total", "-"),
            f"{prog['round']}/{_val(prog.get('stage'))}" if prog.get("round") is not None else "-", gpu,
            last.get("category") or "-")


def register(app: typer.Typer) -> None:
    """Add ``gswarm status`` and ``gswarm logs`` to ``app``."""

    @app.command()
    def status(node: Optional[str] = NodeOpt, state_dir: Optional[Path] = StateDir,
               config_file: Optional[Path] = ConfigFile, json_out: bool = JsonOut) -> None:
        """State, uptime, restarts (24 h) by cause, round/stage and last advance, CPU/RAM/GPU, last incident,
        and the active maintenance window (restarts and alerts paused)."""
        from gswarm.logs.store import DB_NAME, StoreReader
        from gswarm.monitor.status import status as build

        if node is not None:
            check_node_name(node, "--node")
        settings = settings_from(state_dir=state_dir, config_file=config_file)
        now = time.time()
        sdir = running_state_dir(settings)  # reading only
        reader = StoreReader(sdir / DB_NAME)
        try:
            name = node or settings.node_name
            data = build(reader, sdir, name, now)
            if node is None and len(data["known_nodes"]) > 1:  # one host, several nodes: list every one
                every = [build(reader, sdir, n, now) for n in data["known_nodes"]]
            elif node is None and data["known_nodes"] and not data["recorded"]:
                name = data["known_nodes"][0]  # the only node this state dir knows (e.g. run with --node-name)
                data = build(reader, sdir, name, now)
        finally:
            reader.close()
        if node is None and len(data["known_nodes"]) > 1:
            _print_every(every, now, json_out)
            return
        if data["known_nodes"] and not data["recorded"]:  # bad input, like `gswarm report --node`: exit 2
            raise ConfigError(f"unknown node {name!r} in {sdir}; known nodes: {', '.join(data['known_nodes'])} "
                              "(pass one with --node)")
        if json_out:
            typer.echo(json.dumps(data, indent=2))
        elif not data["known_nodes"]:
            typer.echo(f"no gswarm run has recorded anything in {sdir} yet "
                       "(start one with `gswarm run`, or pass --state-dir)")
            line = maintenance_line(data["maintenance"], now)
            if line:
                typer.echo(line)
        else:
            _print_status(data, now)

    @app.command()
    def logs(
        level: Optional[str] = typer.Option(None, "--level", help="Minimum level: debug, info, warning, error, critical."),
        category: Optional[str] = typer.Option(None, "--category", help="output, supervisor, progress, notice or a failure category "
                                        "(progress records are shown only with --category progress)."),
        node: Optional[str] = typer.Option(None, "--node", help="Only this node."),
        since: Optional[str] = typer.Option(None, "--since", help="Start: 2h, 30m, 7d or an ISO time."),
        until: Optional[str] = typer.Option(None, "--until", help="End: 2h, 30m, 7d (ago) or an ISO time."),
        grep: Optional[str] = typer.Option(None, "--grep", help="Text searched in the message (plain, any case; as the API's grep)."),
        regex: Optional[str] = typer.Option(None, "--regex", help="Regular expression searched in the message."),
        follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing new records (like tail -f: without "
                                    "--since or --limit, starts with the last 10 matching records)."),
        limit: Optional[int] = typer.Option(None, "--limit", "--tail", "-n", min=1,
                                            help="Only the last N matching records (--tail N / -n N as tail's, and "
                                                 "the API's tail=N)."),
        json_out: bool = JsonOut, state_dir: Optional[Path] = StateDir, config_file: Optional[Path] = ConfigFile,
    ) -> None:
        """Node output (each node's capture file) and GSwarm's events (the JSON log) merged in time order,
        rotated and compressed files included, oldest first.

        With -f and neither --since nor --limit, only the last 10 records are printed before following.
        """
        from gswarm.logs._jsonread import LogFilter, compile_grep, parse_time
        from gswarm.logs._merged import has_any, merged_records, tail_merged

        if node is not None:
            check_node_name(node, "--node")
        settings = settings_from(state_dir=state_dir, config_file=config_file)
        now = time.time()
        start, end = parse_time(since, now, "--since"), parse_time(until, now, "--until")
        if start is not None and end is not None and start > end:  # nothing could match: say so, not an empty answer
            raise ConfigError(f"--since {since!r} is later than --until {until!r}: nothing can match; "
                              "--since is the start (e.g. --since 10m --until 1m)")
        if grep and regex:
            raise ConfigError("--grep and --regex both given: use one (--grep TEXT is plain, --regex PATTERN a regular expression)")
        flt = LogFilter(level, category, node, start, end, compile_grep(regex, "--regex") if regex else compile_grep(grep, plain=True))
        directory = running_state_dir(settings) / "logs"  # reading only
        if node is not None and not follow and (directory.parent / "gswarm.db").exists():
            from gswarm.logs.store import StoreReader

            reader = StoreReader(directory.parent / "gswarm.db")  # an unknown node is bad input, as in status/report
            try:
                pick_node(reader, directory.parent, node, node)
            finally:
                reader.close()
        out = sys.stdout
        if follow and since is None and limit is None:
            limit = FOLLOW_TAIL
        if not follow and not has_any(directory):  # an empty answer would look like "nothing matched"
            typer.echo(f"no JSON log in {directory} yet (start a node with `gswarm run`, or pass --state-dir)", err=True)
            return
        history = tail_merged(directory, flt, limit) if limit else merged_records(directory, flt)
        try:
            for rec in history:
                _print_record(rec, json_out, out)
            out.flush()
            if follow:
                try:
                    for rec in follow_records(directory, flt):
                        _print_record(rec, json_out, out)
                        out.flush()
                except KeyboardInterrupt:
                    pass
        except BrokenPipeError:  # `gswarm logs | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush


def follow_records(directory: Path, flt: Any, polls: int | None = None, interval: float = 0.5,
                   sleep: Any = time.sleep) -> Any:
    """Yield new matching records of the JSON log ``directory/gswarm.jsonl`` and of every node's capture
    ``directory/<node>/output.log`` (rotation handled, a node folder appearing later included) every
    ``interval`` s, in time order per poll; ``polls`` bounds the number of polls (None = until interrupted);
    ``sleep`` is injectable for tests (:func:`gswarm.logs._merged.follow_merged`)."""
    from gswarm.logs._merged import follow_merged

    return follow_merged(directory, flt, polls, interval, sleep)
