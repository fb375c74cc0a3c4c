"""Daily/weekly digest and on-demand report: plain text plus a PNG chart.

The chart is drawn with matplotlib's Agg canvas directly (``matplotlib.figure.Figure``,
no pyplot, no global backend switch), three panels sharing the time axis: CPU %
(node and host), memory (node RSS GiB, host %), training round; restarts are red
vertical lines. Numbers come from :func:`gswarm.notify.history.summarize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from gswarm.events import Severity
from gswarm.notify.history import Summary, summarize
from gswarm.notify.rules import Kind, Message

GIB = 1024**3


@dataclass
class Digest:
    """A built digest: ``title``, ``text``, chart file ``png`` (or None), the ``summary`` numbers."""

    title: str
    text: str
    png: Path | None
    summary: Summary

    def message(self) -> Message:
        """The digest as a notification (kind ``digest``, sent whatever the minimum severity)."""
        return Message(Kind.DIGEST.value, Severity.INFO, self.title, self.text, self.summary.node,
                       self.summary.until, key=f"digest:{self.summary.until:.0f}", attach=self.png, force=True)


def period_name(since: float, until: float) -> str:
    """``daily`` (≈24 h), ``weekly`` (≈7 d) or ``report`` for any other span (seconds)."""
    span = until - since
    if abs(span - 86400) <= 3600:
        return "daily"
    if abs(span - 7 * 86400) <= 3600:
        return "weekly"
    return "report"


def fmt_duration(seconds: float | None) -> str:
    """``"3 d 4 h"``, ``"5 h 50 min"``, ``"12 min"`` or ``"-"`` for None."""
    if seconds is None:
        return "-"
    m = int(round(seconds / 60))
    d, h, mi = m // 1440, (m % 1440) // 60, m % 60
    if d:
        return f"{d} d {h} h"
    return f"{h} h {mi} min" if h else f"{mi} min"


def fmt_bytes(n: float) -> str:
    """``"4.3 GiB"`` from 1 GiB up, else ``"512 MiB"``."""
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / 1024**2:.0f} MiB"


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} ×{v}" for k, v in d.items()) or "none"


def _peaks(p: dict[str, Any]) -> str:
    parts = []
    if p.get("cpu_percent") is not None:
        parts.append(f"CPU {p['cpu_percent']:.0f} %")
    if p.get("rss_bytes") is not None:
        parts.append(f"RSS {fmt_bytes(p['rss_bytes'])}")
    if p.get("host_mem_percent") is not None:
        parts.append(f"host RAM {p['host_mem_percent']:.0f} %")
    if p.get("disk_free_bytes_min") is not None:
        parts.append(f"disk free min {fmt_bytes(p['disk_free_bytes_min'])}")
    if p.get("gpu_temp_c") is not None:
        parts.append(f"GPU {p['gpu_temp_c']:.0f} °C")
    return " · ".join(parts) or "no samples"


def _stopped_for_a_while(s: Summary) -> bool:
    """True when the node was stopped on purpose (or GSwarm not running) for part of the period, so the
    availability while supervised differs from the plain uptime and is worth a mention."""
    return s.availability_pct is not None and s.uptime_pct is not None and s.availability_pct - s.uptime_pct >= 0.1


def render_text(s: Summary, tz: tzinfo | None = None) -> str:
    """The digest body (lines of ``Label: value``); times in ``tz`` (None = local)."""
    def when(ts: float) -> str:
        return datetime.fromtimestamp(ts, tz).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")

    up = "-" if s.uptime_pct is None else f"{s.uptime_pct:.1f} %"
    rounds = "no rounds seen"
    if s.first_round is not None:
        rate = f", {s.rounds_per_hour:g}/h" if s.rounds_per_hour is not None else ""
        rounds = f"{s.rounds} taken part ({s.first_round} → {s.last_round}{rate})"
    lines = [
        f"Period:    {when(s.since)} → {when(s.until)}",
        f"Uptime:    {up} ({fmt_duration(s.running_s)} running of {fmt_duration(s.observed_s)} observed)"
        + (f"; {s.availability_pct:.1f} % while GSwarm kept it up" if _stopped_for_a_while(s) else ""),
        f"Restarts:  {s.restarts} — {_counts(s.restarts_by_cause)} (MTBF {fmt_duration(s.mtbf_s)})",
        f"Rounds:    {rounds}",
        f"Incidents: {_counts(s.incidents_by_category)}",
        f"Peaks:     {_peaks(s.peaks)}",
    ]
    if s.until - s.since > 36 * 3600 and s.restarts_by_day:
        lines.append("Per day:   " + ", ".join(f"{d} ×{n}" for d, n in s.restarts_by_day.items()))
    return "\n".join(lines)


def render_png(s: Summary, path: Path, tz: tzinfo | None = None) -> Path:
    """Draw the chart of ``s`` into ``path`` (PNG, ~900×600 px); returns ``path``. Raises OSError on write."""
    from matplotlib import dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 6), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1, sharex=True)
    ser = s.series

    def dt(values: list[float]) -> list[datetime]:
        return [datetime.fromtimestamp(v, tz) for v in values]

    def plot(ax: Any, key: str, label: str, scale: float = 1.0) -> None:
        pts = [(t, v / scale) for t, v in zip(ser.get("ts", []), ser.get(key, [])) if v is not None]
        if pts:
            ax.plot(dt([p[0] for p in pts]), [p[1] for p in pts], label=label, linewidth=1)

    plot(axes[0], "cpu_percent", "node CPU %")
    plot(axes[0], "host_cpu_percent", "host CPU %")
    plot(axes[1], "rss_bytes", "node RSS GiB", GIB)
    plot(axes[1], "host_mem_percent", "host RAM %")
    if ser.get("round"):
        axes[2].step(dt(ser["round_ts"]), ser["round"], where="post", label="round", linewidth=1)
    for ax, ylabel in zip(axes, ("CPU %", "memory", "round")):
        for t in dt(ser.get("restart_ts", [])):
            ax.axvline(t, color="red", linewidth=0.8, alpha=0.7)
        ax.set_ylabel(ylabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=7)
    axes[0].set_title(f"GSwarm {s.node}: {period_name(s.since, s.until)} (red = restart)")
    locator = mdates.AutoDateLocator(tz=tz)
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tz))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def build_digest(reader: Any, node: str, since: float, until: float, png_path: Path | None = None,
                 tz: tzinfo | None = None) -> Digest:
    """Summarize ``node`` over ``[since, until]`` from ``reader`` (a StoreReader); chart to ``png_path``."""
    s = summarize(reader, node, since, until)
    title = f"[{node}] GSwarm {period_name(since, until)} digest"
    png = render_png(s, png_path, tz) if png_path is not None else None
    return Digest(title, render_text(s, tz), png, s)
