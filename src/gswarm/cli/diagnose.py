"""``gswarm diagnose FILE|-`` (classify a log, say what GSwarm would do) and ``gswarm bundle`` (bug-report tar.gz).

Thin: classification in ``gswarm.logs.classify``, the decision in ``gswarm.supervisor.policy``, bundle contents
in ``_diag_bundle`` and secret scrubbing in ``_diag_scrub``.
"""

from __future__ import annotations

import collections
import json
import os
import re
import stat
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from gswarm.ansi import strip_ansi
from gswarm.cli._common import ConfigFile, JsonOut, RlSwarmDir, StateDir, check_output_file, settings_from, state_dir_of
from gswarm.errors import ConfigError

_CAPTURE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z \d+ [>~?+#] ?")
GENERATIONS = ("E0", "E1", "E2", "E3", "E4", "E5", "E6")


MAX_BYTES = 32 * 1024 * 1024  # diagnose reads at most the last 32 MiB of a log ...
MAX_LINES = 200_000  # ... and of those at most the last 200,000 lines (a crash's evidence is at the end)


def read_log_tail(source: str, max_bytes: int = MAX_BYTES, max_lines: int = MAX_LINES) -> tuple[list[str], str | None]:
    """The last ``max_bytes`` bytes / ``max_lines`` lines of a log file (or stdin for ``-``), with memory bounded
    by ``max_bytes``: invalid UTF-8 replaced, ANSI escapes and GSwarm capture-file prefixes (``<ISO ts> <pid> > ``)
    removed, ``\r`` redraws split into lines. Returns ``(lines, note)``; ``note`` is None unless the input was
    cut ("read the last 32 MB of FILE"). Raises ConfigError for a missing/unreadable file, a folder or a device."""
    name = "stdin" if source == "-" else str(Path(source).expanduser())
    raw, cut = _read_tail(source, max_bytes)
    if cut:
        raw = raw[raw.find(b"\n") + 1:] if b"\n" in raw else raw  # drop the partial first line
    text = strip_ansi(raw.decode("utf-8", errors="replace")).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    note = f"read the last {max_bytes / 1024 / 1024:g} MB of {name} (the rest was skipped)" if cut else None
    if len(lines) > max_lines:
        lines = lines[-max_lines:]
        note = f"read the last {max_lines:,} lines of {name} (the rest was skipped)"
    if not cut and lines and lines[0].startswith("source:") and "---" in lines[:15]:
        lines = lines[lines.index("---") + 1:]  # a corpus excerpt (shared/failures/): skip its header
    return [_CAPTURE.sub("", line) for line in lines], note


def _read_tail(source: str, max_bytes: int) -> tuple[bytes, bool]:
    """``(last max_bytes of the source, whether anything before them was skipped)``."""
    if source == "-":
        return _stream_tail(sys.stdin.buffer, max_bytes)
    path = Path(source).expanduser()
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                raise ConfigError(f"{path} is a device, not a log file; pass a log file, or - to read stdin")
            if not stat.S_ISREG(st.st_mode):  # a FIFO: read it as a stream
                return _stream_tail(fh, max_bytes)
            if st.st_size > max_bytes:
                fh.seek(st.st_size - max_bytes)
            return fh.read(max_bytes), st.st_size > max_bytes
    except FileNotFoundError:
        raise ConfigError(f"log file {path} does not exist; pass the path of a log file, or - to read stdin") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder; pass a log file such as {path}/logs/swarm_launcher.log") from None
    except OSError as exc:
        raise ConfigError(f"cannot read log file {path}: {exc.strerror}; check the path and permissions") from None


def _stream_tail(fh: Any, max_bytes: int) -> tuple[bytes, bool]:
    """Read ``fh`` to its end in 1 MiB chunks keeping only the last ``max_bytes`` (memory stays bounded)."""
    chunks: collections.deque[bytes] = collections.deque()
    size, cut = 0, False
    while chunk := fh.read(1 << 20):
        chunks.append(chunk)
        size += len(chunk)
        while size - len(chunks[0]) >= max_bytes:
            size -= len(chunks.popleft())
            cut = True
    data = b"".join(chunks)
    if len(data) > max_bytes:
        data, cut = data[-max_bytes:], True
    return data, cut


def diagnosis(lines: list[str], generation: str | None) -> dict[str, Any]:
    """The JSON shape of ``gswarm diagnose --json`` (keys: category, recovery, severity, rule_id, evidence,
    advice, action — what the policy would do after a crash with this cause — and ``final_exception`` when the log
    holds a traceback's final exception, see :func:`final_exception`)."""
    from gswarm.config import Settings
    from gswarm.logs.classify import Classifier
    from gswarm.supervisor.policy import NON_FAILURE, ExitInfo, History, decide

    cls = Classifier.from_package().classify_lines(lines, generation)
    out: dict[str, Any] = {"category": cls.category.value, "recovery": cls.recovery.value, "severity": cls.severity.value,
                           "rule_id": cls.rule_id, "evidence": list(cls.evidence),
                           "advice": cls.advice or "No failure found in this log.", "action": {"action": "none"}}
    final = final_exception(lines)
    if final is not None:
        out["final_exception"] = final
    if cls.category not in NON_FAILURE:
        d = decide(ExitInfo(1, None, 60.0, generation=generation or ""), cls, History(), Settings(), time.time())
        out["action"] = {"action": d.action, "delay": round(d.delay, 1), "env": d.env, "cleanup": d.cleanup,
                         "reinstall": d.reinstall, "alert": d.alert, "reason": d.reason}
    return out


def final_exception(lines: list[str]) -> dict[str, Any] | None:
    """The final exception of the last traceback in ``lines`` (issue #17), as shown by ``gswarm diagnose``:
    ``{"type", "message", "frame": {"path", "line", "kind", "module"} | None}``, or None when there is none.
    ``kind`` is project | site-packages | stdlib | other (gswarm.logs._structure)."""
    from gswarm.logs._structure import parse
    from gswarm.logs.classify import STRUCT_TAIL

    exc = parse(list(enumerate(lines[-STRUCT_TAIL:]))).exception
    if exc is None:
        return None
    f = exc.frame
    frame = {"path": f.path, "line": f.line, "kind": f.kind, "module": f.module} if f else None
    return {"type": exc.type, "message": exc.message, "frame": frame}


def _print(d: dict[str, Any]) -> None:
    typer.echo(f"category: {d['category']}")
    typer.echo(f"severity: {d['severity']}   rule: {d['rule_id'] or '-'}")
    a = d["action"]
    what = a["action"] + (f" after {a['delay']:g} s" if a["action"] == "restart" else "")
    extras = [k for k in ("cleanup", "reinstall", "alert") if a.get(k)] + [f"{k}={v}" for k, v in a.get("env", {}).items()]
    typer.echo(f"recovery: {d['recovery']} (GSwarm would: {what}{'; ' + ', '.join(extras) if extras else ''})")
    fe = d.get("final_exception")
    if fe:
        f = fe["frame"]
        where = f"{f['path']}:{f['line']} ({f['kind']}{', ' + f['module'] if f['module'] else ''})" if f else "frame not shown"
        typer.echo(f"final exception: {fe['type']}{': ' + fe['message'] if fe['message'] else ''}  [raised at {where}]")
    if d["evidence"]:
        typer.echo("evidence:")
        for line in d["evidence"]:
            typer.echo(f"  | {line}")
    typer.echo(f"advice: {d['advice']}")


def register(app: typer.Typer) -> None:
    """Add ``diagnose`` and ``bundle`` to ``app``."""

    @app.command("diagnose")
    def diagnose_cmd(
        source: str = typer.Argument(..., metavar="FILE|-", help="Log file (console output, logs/swarm.log, logs/swarm_launcher.log) or - for stdin."),
        generation: Optional[str] = typer.Option(None, "--generation", help="RL Swarm generation E0..E6 (default: any)."),
        json_out: bool = JsonOut,
    ) -> None:
        """Classify a node log: category, evidence, the recovery GSwarm would take, and advice."""
        if generation is not None and generation.upper() not in GENERATIONS:
            raise ConfigError(f"option --generation: {generation!r} is not one of {', '.join(GENERATIONS)}")
        lines, note = read_log_tail(source)
        d = diagnosis(lines, generation.upper() if generation else None)
        if note:
            d["note"] = note
        if json_out:
            typer.echo(json.dumps(d, indent=2, ensure_ascii=False))
        else:
            if note:
                typer.echo(f"note: {note}")
            _print(d)

    @app.command("bundle")
    def bundle_cmd(
        minutes: float = typer.Option(60.0, "--minutes", min=1, help="Minutes of logs to include."),
        output: Optional[Path] = typer.Option(None, "--output", help="Bundle file (default: ./gswarm-bundle-<time>.tar.gz)."),
        rl_swarm_dir: Optional[Path] = RlSwarmDir,
        state_dir: Optional[Path] = StateDir,
        config_file: Optional[Path] = ConfigFile,
        node: Optional[str] = typer.Option(None, "--node", help="Only this node's captured output (default: every node)."),
    ) -> None:
        """Write one tar.gz for a bug report: recent logs, restart history, redacted config, versions, doctor."""
        settings = settings_from(rl_swarm_dir=rl_swarm_dir, state_dir=state_dir, config_file=config_file)
        path = write_bundle(settings, state_dir_of(settings, writable=False), minutes, output, time.time(), node)
        typer.echo(f"wrote {path} (mode 0600); check it before attaching it to a public issue")


def write_bundle(settings: Any, state: Path, minutes: float, output: Path | None, now: float,
                 node: str | None = None) -> Path:
    """Collect, scrub and write the bundle atomically with mode 0600; returns its path. ``node``: keep only
    that node's captured output (``logs/<node>/``; other nodes' folders dropped); ConfigError naming --node
    and the nodes there are when ``<state>/logs/<node>`` does not exist.

    ConfigError naming --output (before anything is collected) when ``output`` (default
    ``./gswarm-bundle-<time>.tar.gz``) is a folder or its folder is missing, a file or not writable."""
    from gswarm.cli import _diag_bundle as b
    from gswarm.cli._diag_scrub import scrub, secret_values
    from gswarm.config import redacted_dict
    from gswarm.paths import atomic_write

    path = check_output_file(Path(output) if output else b.default_output(now), "--output", "gswarm-bundle.tar.gz")
    since = now - minutes * 60
    checkout = Path(settings.rl_swarm_dir).expanduser().resolve()
    files: dict[str, str] = {"README.txt": f"GSwarm bug-report bundle, {time.strftime('%Y-%m-%d %H:%M:%S %z', time.localtime(now))}; "
                             f"last {minutes:g} minutes of logs. Secrets were scrubbed; check before sharing.\n"}
    logs = b.log_files(state / "logs", since)
    if node is not None:
        folders = sorted(p.name for p in (state / "logs").glob("*") if p.is_dir())
        if node not in folders:
            raise ConfigError(f"--node: no captured output of node {node!r} in {state / 'logs'}; "
                              f"nodes there: {', '.join(folders) or 'none'}")
        logs = {k: v for k, v in logs.items() if "/" not in k or k.split("/", 1)[0] == node}
    files |= {f"logs/{k}": v for k, v in logs.items()}
    files |= {f"rl-swarm-logs/{k}": v for k, v in b.log_files(checkout / "logs", since, "*.log").items()}
    files["history.json"] = json.dumps(b.history(state / "gswarm.db"), indent=1, default=str)
    recorded = b.run_settings(state / "gswarm.db", node or settings.node_name)
    files["config.json"] = json.dumps(
        {"source": "the run recorded in the store", "settings": recorded} if recorded is not None else
        {"source": "this bundle command (no run recorded its settings)", "settings": redacted_dict(settings)},
        indent=1, default=str)
    files["versions.json"] = json.dumps({**b.versions(settings, checkout), "env": b.env_summary()}, indent=1, default=str)
    files["doctor.json"] = json.dumps(b.doctor(settings), indent=1, default=str)
    secrets = secret_values(settings, state)
    clean = {name: scrub(text, secrets) for name, text in files.items()}
    atomic_write(path, b.tar_bytes(clean, now), mode=0o600)
    return path
