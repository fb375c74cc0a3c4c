"""Reading the JSON log (rotated, gzipped and current files, oldest first), filters and time parsing.

Since issue #18 the JSON log holds GSwarm's own events; node output is read from the capture files
(:mod:`gswarm.logs._captureread`) and ``gswarm logs`` merges both (:mod:`gswarm.logs._merged`). Files written
earlier also hold output records (``kind`` ``output``): :func:`iter_records`/:func:`tail_records` still return
them; the merged view leaves out those a capture covers. :class:`LogFilter` applies to both kinds of records.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from gswarm.config.durations import span_seconds
from gswarm.errors import ConfigError
from gswarm.logs.jsonlog import LOG_NAME, rotated_files

LEVELS = ("debug", "info", "warning", "error", "critical")
_LAST_TS = 253402300799.0  # 9999-12-31 23:59:59 UTC, the last time datetime can show


def parse_time(value: str | None, now: float, option: str = "--since") -> float | None:
    """``2h``/``30m``/``7d``/``90s``/``1w`` before ``now``, or an ISO-8601 time (naive = local), → Unix s.

    Raises ConfigError naming ``option`` for anything else, and for times before 1970 or after 9999.
    """
    if value is None or value == "":
        return None
    hint = "use a duration like 30m, 2h, 7d or an ISO time like 2025-07-27T16:00:00"
    span = span_seconds(value)  # one grammar everywhere (gswarm.config.durations): 1h30m, 2d, …
    if span is not None:
        ts = now - span
    else:
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{option} {value!r}: {hint}") from None
        try:
            ts = (dt.astimezone() if dt.tzinfo is None else dt).timestamp()
        except (ValueError, OverflowError, OSError):  # year 1 in a zone east of UTC, …
            ts = float("nan")
    if not 0 <= ts <= _LAST_TS:  # also NaN
        raise ConfigError(f"{option} {value!r} is out of range (it must fall between 1970-01-01 and 9999-12-31); {hint}")
    return ts


def compile_grep(pattern: str | None, option: str = "--grep", plain: bool = False) -> re.Pattern[str] | None:
    """Compile a message filter: ``plain`` = the text itself, any case (``gswarm logs --grep``, the same rule as
    the API's ``grep``, so ``(((`` is just text); else a regular expression (``--regex``), ConfigError naming
    ``option`` when invalid."""
    if not pattern:
        return None
    if plain:
        return re.compile(re.escape(pattern), re.IGNORECASE)
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{option} {pattern!r} is not a valid regular expression: {exc}") from None


def log_files(directory: Path) -> list[Path]:
    """Rotated files (oldest first) then the current ``gswarm.jsonl`` (if present).

    A rotated file being compressed right now (``X`` and ``X.gz`` both present for a moment, see
    ``JsonLog.compress``) is listed once, as ``X``; :func:`read_lines` falls back to ``X.gz`` when
    ``X`` is gone by the time it is read."""
    out = rotated_files(directory)
    plain = {p.name for p in out if not p.name.endswith(".gz")}
    out = [p for p in out if not (p.name.endswith(".gz") and p.name[:-3] in plain)]
    cur = Path(directory) / LOG_NAME
    return out + ([cur] if cur.exists() else [])


def compressed_twin(path: Path) -> Path | None:
    """Where a listed rotated plain file went when it is gone at reading time (``X`` → ``X.gz``, see
    ``JsonLog.compress``); None for a ``.gz`` or the current file (nothing replaces those)."""
    return None if path.name.endswith(".gz") or path.name == LOG_NAME else path.with_name(path.name + ".gz")


def read_lines(path: Path, twin_of: Callable[[Path], Path | None] = compressed_twin) -> Iterator[str]:
    """Text lines (each with its ``\\n``; only ``\\n`` ends a line) of a plain or gzipped log file; a missing
    file or a truncated ``.gz`` ends quietly. A rotated plain file compressed since it was listed is read
    from ``twin_of(path)`` (its ``.gz``; None: nothing replaces it). The JSON log's and the capture's reader."""
    gz = path.name.endswith(".gz")
    try:
        fh = (gzip.open if gz else open)(path, "rt", encoding="utf-8", errors="replace", newline="\n")  # type: ignore[operator]
    except FileNotFoundError:
        twin = twin_of(path)
        if twin is not None:
            yield from read_lines(twin, twin_of)
        return
    except OSError:
        return
    try:
        with fh:
            yield from fh
    except (EOFError, OSError):
        return


def normalized(rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` in the one shape readers see, whichever writer made it (changed in place, returned).

    Records written since issue #18 carry no ``category`` on output records (``kind`` ``output``
    says it), no ``level`` when it is ``info`` and no ``stream`` when it is ``stdout``: they are filled in. Older records also hold ``ts`` (ISO text, the same time as ``ts_unix``);
    it is kept as it is — readers use ``ts_unix``."""
    if "category" not in rec:
        rec["category"] = "output" if rec.get("kind") == "output" else "supervisor"
    if "level" not in rec:
        rec["level"] = "info"
    if "stream" not in rec and rec.get("kind") == "output":
        rec["stream"] = "stdout"
    return rec


def parse_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """JSON objects of ``lines`` (old and new record shapes, :func:`normalized`); malformed lines are skipped."""
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            yield normalized(rec)


def iter_records(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record of every file, oldest file first."""
    for path in log_files(directory):
        yield from parse_records(read_lines(path))


def tail_records(directory: Path, match: Any, n: int) -> list[dict[str, Any]]:
    """The last ``n`` records passing ``match(record) -> bool``, oldest first.

    Reads files newest first and stops as soon as ``n`` records are found, so a short tail
    of a long history only reads the current file.
    """
    found: list[dict[str, Any]] = []
    for path in reversed(log_files(directory)):
        last = deque((r for r in parse_records(read_lines(path)) if match(r)), maxlen=n - len(found))
        found[:0] = last
        if len(found) >= n:
            break
    return found


SOURCES = ("output", "supervisor", "progress", "notice")  # the ``category`` of records that are not incidents


def categories() -> set[str]:
    """Every ``category`` a JSON-log record can have: the sources and the failure categories (gswarm.events.Category)."""
    from gswarm.events import Category

    return set(SOURCES) | {c.value for c in Category}


def in_category(rec: dict[str, Any], category: str | None) -> bool:
    """Whether ``rec`` belongs to ``category``; None: any record but progress ones (state changes kept for
    ``category`` ``progress``, issue #18) — the rule of ``gswarm logs`` and the API tail alike."""
    return rec.get("category") == category if category else rec.get("category") != "progress"


@dataclass
class LogFilter:
    """``gswarm logs`` filters: minimum ``level``, exact ``category``/``node``, time range (Unix s), regex on message.

    Without a ``category``, progress records (``category`` ``progress``) are hidden: they are state
    changes kept for ``--category progress`` (issue #18), not what an operator reads in the log."""

    level: str | None = None
    category: str | None = None
    node: str | None = None
    since: float | None = None
    until: float | None = None
    grep: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        if self.level is not None and self.level.lower() not in LEVELS:
            raise ConfigError(f"--level {self.level!r}: use one of {', '.join(LEVELS)}")
        if self.category is not None and self.category not in categories():
            raise ConfigError(f"--category {self.category!r}: not a category of the JSON log; use a source "
                              f"({', '.join(SOURCES)}) or a failure category ({', '.join(sorted(categories() - set(SOURCES)))})")

    def match(self, rec: dict[str, Any]) -> bool:
        """True when ``rec`` passes every filter."""
        lvl = rec.get("level", "info")
        if self.level and (LEVELS.index(lvl) if lvl in LEVELS else 1) < LEVELS.index(self.level.lower()):
            return False
        if not in_category(rec, self.category):
            return False
        if self.node and rec.get("node") != self.node:
            return False
        ts = rec.get("ts_unix") or 0.0
        if (self.since is not None and ts < self.since) or (self.until is not None and ts > self.until):
            return False
        return not self.grep or bool(self.grep.search(str(rec.get("message", ""))))
