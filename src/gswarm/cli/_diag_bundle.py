"""Contents of ``gswarm bundle`` (private helper of ``cli/diagnose.py``): what a maintainer asks for.

Members of the tar.gz (all text scrubbed with ``_diag_scrub``): ``README.txt``; ``logs/…`` — the last
``minutes`` of every file under ``<state_dir>/logs/`` (lines filtered by their timestamp prefix; lines
without one follow the previous line); ``rl-swarm-logs/…`` — the same for the checkout's ``logs/*.log``
(swarm.log E2, swarm_launcher.log E3–E6, yarn.log; generations.md §13.7); ``history.json`` — runs, restart/exit/
recovery events and incidents from ``<state_dir>/gswarm.db`` (read-only, tolerated when absent);
``config.json`` — the redacted settings the recorded run started with (the bundling command's own when
no run recorded any); ``versions.json``; ``doctor.json``.
Longer than ~150 lines: one small function per member of the bundle.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tarfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

_TS = re.compile(r"^\[?(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,]\d+)?(Z|[+-]\d\d:?\d\d)?")
_TS_UNIX = re.compile(r'"ts_unix":\s*([\d.]+)')
MAX_LINES = 20000  # per file, newest kept
HISTORY_LIMIT = 500


def line_time(line: str) -> float | None:
    """Unix seconds of a line's timestamp prefix (capture file, E2 swarm.log, E3+ Hydra, JSON log) or None."""
    if line.startswith("{"):
        m = _TS_UNIX.search(line[:400])
        return float(m.group(1)) if m else None
    m = _TS.match(line)
    if not m:
        return None
    try:
        dt = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{'+00:00' if m.group(3) == 'Z' else (m.group(3) or '')}")
    except ValueError:
        return None
    return dt.timestamp()  # naive = local time, as RL Swarm's loggers write it


def recent_lines(text: str, since: float) -> str:
    """Lines at or after ``since``; untimed lines go with the previous timed one (kept if no timed line)."""
    keep = None
    out = []
    for line in text.splitlines():
        ts = line_time(line)
        if ts is not None:
            keep = ts >= since
        if keep is None or keep:
            out.append(line)
    return "\n".join(out[-MAX_LINES:]) + ("\n" if out else "")


def log_files(folder: Path, since: float, pattern: str = "**/*") -> dict[str, str]:
    """Relative name → recent text of the log files in ``folder`` changed since ``since``. A rotated ``.gz``
    changed since then (compressed after ``since``, so it may hold lines of the window: since issue #18 a
    node's output is only in its capture ``<node>/output.log`` and its rotated ``.gz`` files) is read
    decompressed, under its name without ``.gz``; ``.tmp`` files (a compression under way) are skipped."""
    import gzip

    out: dict[str, str] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob(pattern)):
        try:
            if not path.is_file() or path.suffix == ".tmp" or path.stat().st_mtime < since:
                continue
            if path.suffix == ".gz":
                with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
                    text = recent_lines(fh.read(), since)
                if text:
                    out[str(path.relative_to(folder))[:-3]] = text
                continue
            out[str(path.relative_to(folder))] = recent_lines(path.read_text(encoding="utf-8", errors="replace"), since)
        except (OSError, EOFError) as exc:  # EOFError: a truncated .gz
            out[str(path.relative_to(folder)) + ".error"] = f"could not read: {exc}\n"
    return out


def run_settings(db: Path, node: str) -> dict[str, Any] | None:
    """The redacted settings the latest run of ``node`` (any node when it has none) started with, as the
    store recorded them (``events`` kind ``settings``), or None when no run recorded any (read-only)."""
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT data FROM events WHERE kind = 'settings' ORDER BY (node = ?) DESC, ts DESC, id DESC "
                               "LIMIT 1", (node,)).fetchone()
        finally:
            conn.close()
        return json.loads(row[0]) if row and row[0] else None
    except (sqlite3.Error, ValueError):
        return None


def history(db: Path) -> dict[str, Any]:
    """Recent runs, restart/exit/recovery/state events and incidents from the store (read-only)."""
    if not db.exists():
        return {"note": f"{db} does not exist (no store yet)"}
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return {"note": f"cannot open {db}: {exc}"}
    conn.row_factory = sqlite3.Row
    out: dict[str, Any] = {}
    queries = {
        "runs": "SELECT * FROM runs ORDER BY started_at DESC LIMIT ?",
        "events": "SELECT * FROM events WHERE kind IN ('restart','exit','recovery','state','start','notice') ORDER BY ts DESC LIMIT ?",
        "incidents": "SELECT * FROM incidents ORDER BY ts DESC LIMIT ?",
    }
    for name, sql in queries.items():
        try:
            out[name] = [dict(r) for r in conn.execute(sql, (HISTORY_LIMIT,))]
        except sqlite3.Error as exc:
            out[name] = {"note": f"not readable: {exc}"}
    conn.close()
    return out


def _run(argv: list[str], timeout: float) -> str | None:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


_TORCH = ("import json, torch; print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, "
          "'cuda_available': torch.cuda.is_available(), 'mps': bool(getattr(torch.backends, 'mps', None) "
          "and torch.backends.mps.is_available())}))")


def versions(settings: Any, checkout: Path, timeout: float = 30.0) -> dict[str, Any]:
    """OS, Python, gswarm, torch (in the node's interpreter), NVIDIA driver/GPUs, RL Swarm commit and generation."""
    from gswarm import __version__

    out: dict[str, Any] = {"os": platform.platform(), "python": sys.version.split()[0], "gswarm": __version__}
    python = Path(settings.python) if settings.python else checkout / ".venv" / "bin" / "python"
    python = python if python.exists() else Path(sys.executable)
    raw = _run([str(python), "-c", _TORCH], timeout)
    out["node_python"] = str(python)
    out["torch"] = json.loads(raw) if raw and raw.startswith("{") else "not importable in the node's python"
    out["nvidia"] = _nvidia()
    out["rl_swarm_commit"] = _run(["git", "-C", str(checkout), "rev-parse", "HEAD"], 10.0) or "unknown (not a git checkout?)"
    try:
        from gswarm.rlswarm.generations import detect

        det = detect(checkout)
        out["generation"] = {"generation": det.generation, "evidence": list(det.evidence)}
    except Exception as exc:  # CheckoutError, or the module is missing
        out["generation"] = f"unknown: {exc}"
    return out


def _nvidia() -> Any:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:
        return f"no NVIDIA driver/NVML: {type(exc).__name__}"
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            gpus.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                         "memory_total": pynvml.nvmlDeviceGetMemoryInfo(h).total})
        drv = pynvml.nvmlSystemGetDriverVersion()
        return {"driver": drv.decode() if isinstance(drv, bytes) else drv, "gpus": gpus}
    except Exception as exc:
        return f"NVML error: {exc}"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def doctor(settings: Any) -> Any:
    """``gswarm doctor`` checks as JSON, or a note when they cannot run."""
    try:
        from gswarm.rlswarm.doctor import run_checks

        return [c.to_json() if hasattr(c, "to_json") else vars(c) for c in run_checks(settings)]
    except Exception as exc:
        return {"note": f"doctor checks not available: {type(exc).__name__}: {exc}"}


def tar_bytes(files: dict[str, str], now: float) -> bytes:
    """A gzip'd tar of ``files`` (name → text), members 0600 with mtime ``now``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(now)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def default_output(now: float) -> Path:
    return Path.cwd() / f"gswarm-bundle-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}.tar.gz"


def env_summary() -> dict[str, str]:
    """Non-secret environment facts that matter for RL Swarm (names only for secrets)."""
    keys = ("CUDA_VISIBLE_DEVICES", "PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_MPS_HIGH_WATERMARK_RATIO", "HF_HUB_ENABLE_HF_TRANSFER",
            "HF_HUB_DOWNLOAD_TIMEOUT", "MODEL_NAME", "CPU_ONLY", "OLLAMA_HOST", "NO_PROXY", "HTTPS_PROXY", "HTTP_PROXY")
    return {k: os.environ[k] for k in keys if k in os.environ}
