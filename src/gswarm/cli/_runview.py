"""What ``gswarm run`` shows: the node's output as it comes, GSwarm's own events in Rich style.

Node lines are written as they are (colours kept on a terminal, stripped
otherwise; ``\\r`` redraws drawn in place on a terminal). Events are one line
each, prefixed ``gswarm``. Secrets never reach this view: the plan shows the
masked env only, and answers to secret prompts are masked by script mode.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from gswarm.ansi import terminal_safe
from gswarm.events import (Event, Incident, Notice, ProcessExited, ProcessStarted, Recovery, RecoveryAction,
                           RestartScheduled, Severity, StateChanged)
from gswarm.supervisor.stream import REDRAW, Batch

_SEV_STYLE = {Severity.DEBUG: "dim", Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.ERROR: "red",
              Severity.CRITICAL: "bold red"}


class RunView:
    """Console for one ``gswarm run``: ``lines(batch, ts)`` for node output, ``event(ev)`` for the bus."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.console = Console(file=self.out, highlight=False, soft_wrap=True)
        self._in_redraw = False
        self._restarts = 0  # RestartScheduled seen: tells a streak reset (#1 again) from the first restart
        self.broken = False  # the terminal went away (SSH drop: EIO/EPIPE); output is dropped from then on
        self.multi = False  # several nodes (one host): every line names its node

    def _guard(self, write: Any) -> None:
        """Run ``write()``; an OSError (hung-up terminal, closed pipe) turns the view off instead of
        raising into the supervisor's output pump or bus while ``gswarm run`` stops gracefully."""
        if self.broken:
            return
        try:
            write()
        except OSError:
            self.broken = True

    def lines(self, batch: Batch, ts: float) -> None:
        """Write one batch of node output (``ts`` unused: the node's lines carry their own times)."""
        self._guard(lambda: self._lines(batch))

    def _lines(self, batch: Batch) -> None:
        data, buf = getattr(batch, "data", None), getattr(self.out, "buffer", None)
        if data is not None and buf is not None and not self.tty and not self._in_redraw:
            # not a terminal (a file, a pipe, /dev/null): the chunk's own bytes, no join + encode (issue #18)
            self.out.flush()
            buf.write(data)
            buf.write(b"\n")
            buf.flush()
            return
        rows = batch.texts
        if self.tty and batch.raws is not batch.texts:  # colours for a terminal; nothing else from the node
            rows = [terminal_safe(r) for r in batch.raws]
        flags = batch.flags
        if not self.tty or not flags:
            text = "\n".join(rows) + "\n"
            if self._in_redraw:
                text, self._in_redraw = "\n" + text, False
            self.out.write(text)
        else:
            for row, flag in zip(rows, flags):
                if flag & REDRAW:
                    self.out.write(f"\r{row}\x1b[K")
                    self._in_redraw = True
                else:
                    self.out.write(("\n" if self._in_redraw else "") + row + "\n")
                    self._in_redraw = False
        self.out.flush()

    def node_lines(self, node: str) -> Any:
        """With several nodes: a ``lines(batch, ts)`` callback that writes ``<node>| <line>`` per row
        (text without colours or redraws, so interleaved nodes stay readable)."""
        def write(batch: Batch, ts: float) -> None:
            self._guard(lambda: (self.out.write("".join(f"{node}| {row}\n" for row in batch.texts)), self.out.flush()))
        return write

    def say(self, text: str, style: str = "bold cyan") -> None:
        """One ``gswarm`` line (Rich markup in ``text``)."""
        self._guard(lambda: self._say(text, style))

    def _say(self, text: str, style: str) -> None:
        if self._in_redraw:
            self.out.write("\n")
            self._in_redraw = False
        self.console.print(f"[{style}]gswarm[/] {text}")

    def plan(self, spec: Any, node: str | None = None) -> None:
        """The generation, the mode, the argv and the notes (no secrets: argv carries none); ``node``
        prefixes every line with ``[node]`` (several nodes)."""
        tag = f"[bold]\\[{escape(node)}][/] " if node else ""
        self.say(f"{tag}generation [bold]{spec.generation}[/] ({escape(', '.join(spec.evidence[:3]))})")
        self.say(f"{tag}mode {spec.mode}: {escape(shlex.join(spec.argv))}  (cwd {escape(str(spec.cwd))})")
        for note in spec.notes:
            self.say(f"{tag}note: {escape(note)}", "yellow")

    def event(self, ev: Event) -> None:
        """One bus event as a ``gswarm`` line (with several nodes, prefixed by ``[node]``)."""
        if not self.multi:
            self._event(ev)
            return
        say = self.say
        self.say = lambda text, style="bold cyan": say(f"[bold]\\[{escape(ev.node)}][/] {text}", style)  # type: ignore[method-assign]
        try:
            self._event(ev)
        finally:
            self.say = say  # type: ignore[method-assign]

    def _event(self, ev: Event) -> None:  # noqa: C901 - a flat dispatch table
        if isinstance(ev, ProcessStarted):
            self.say(f"started node pid {ev.pid} (run {ev.run_id}, {ev.generation}, {ev.mode} mode)", "bold green")
        elif isinstance(ev, ProcessExited):
            self.say(f"node pid {ev.pid} {ev.words} after {ev.uptime:.1f}s", "bold green" if ev.requested else "bold yellow")
        elif isinstance(ev, Incident):
            self.say(f"cause: [bold]{ev.category.value}[/] (rule {escape(ev.rule_id)}, {ev.severity.value}) "
                     f"→ {ev.recovery.value}", _SEV_STYLE.get(ev.severity, "red"))
            for line in ev.evidence[-3:]:
                self.say(f"  evidence: {escape(line[:300])}", "dim")
            if ev.advice:
                self.say(f"  advice: {escape(ev.advice)}", "italic")
        elif isinstance(ev, RestartScheduled):
            self._restarts += 1
            self.say(restart_line(ev, self._restarts), "bold magenta")
        elif isinstance(ev, StateChanged):
            self.say(f"state {ev.old.value} → {ev.new.value}" + (f" ({escape(ev.reason)})" if ev.reason else ""), "dim")
        elif isinstance(ev, Notice):
            self.say(f"{escape(ev.title)}" + (f": {escape(ev.body)}" if ev.body else ""), _SEV_STYLE.get(ev.severity, "cyan"))
        elif isinstance(ev, RecoveryAction) and not ev.data.get("gave_up"):  # a give-up is told by its Notice
            if ev.recovery == Recovery.NONE:  # housekeeping (login files restored/backed up), not a recovery step
                self.say(f"note: {escape(ev.detail)}", "dim")
            else:
                self.say(f"recovery {ev.recovery.value}: {escape(ev.detail)}", "cyan")


def restart_line(ev: RestartScheduled, total: int) -> str:
    """The console line (Rich markup) for a scheduled restart: ``restart #N`` is the attempt within the
    current backoff streak (``ev.attempt``, ≥ 1); when it is #1 again after earlier restarts (``total``
    restarts seen by this view, this one included) the line says the streak was reset and how many
    restarts there were in all."""
    detail = ev.detail if ev.detail and not ev.detail.startswith(ev.cause.value) else ""
    reset = (f"; streak reset after a healthy run or a new kind of failure, {total} restarts in total"
             if ev.attempt <= 1 and total > 1 else "")
    return (f"restart #{ev.attempt} in [bold]{ev.delay:.1f}s[/] (cause {ev.cause.value}, recovery {ev.recovery.value}"
            f"{'; ' + escape(detail) if detail else ''}{reset})")
