"""Read side of the store: :class:`StoreReader` (public via ``gswarm.logs.store``) and file checks."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from gswarm.errors import StoreError
from gswarm.logs import _schema

_MAGIC = b"SQLite format 3\x00"
_JSON_COLS = {"data", "evidence", "gpu"}
_FILTERS = {  # table -> extra equality filters allowed
    "runs": ("generation", "mode", "cause"),
    "events": ("kind", "state"),
    "incidents": ("category", "severity", "rule_id"),
    "samples": (),
    "progress": ("kind", "advanced"),
}
_TS = {"runs": "started_at"}


def _disk_trouble(exc: BaseException) -> bool:
    """True for ENOSPC/EDQUOT/EIO or SQLite's SQLITE_FULL/SQLITE_IOERR (issue #13 case 2): the disk, not
    the file, is the problem; the writer's own open then fails and is retried."""
    import errno

    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO)
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in (10, 13)  # SQLITE_IOERR, SQLITE_FULL


def check_file(path: Path) -> str:
    """Why ``path`` is not a usable GSwarm store ("" when it is usable or absent).

    Reasons: not an SQLite file, corrupted (quick_check fails), a newer schema
    (``user_version`` above this GSwarm's), an SQLite file with other tables, or one whose tables or
    columns are not those of the version it claims.
    """
    path = Path(path)
    try:
        if not path.exists() or path.stat().st_size == 0:
            return ""
        with open(path, "rb") as fh:
            if fh.read(16) != _MAGIC:
                return "is not an SQLite database"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
        try:
            ver = _schema.version(conn)
            tables = _schema.user_tables(conn)
            cols = _schema.columns(conn)
            ok = conn.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            conn.close()
    except (OSError, sqlite3.Error) as exc:
        if _disk_trouble(exc):  # a full or failing disk says nothing about the file: never set it aside for that
            return ""
        return f"is unreadable or corrupted ({exc})"
    if ok != "ok":
        return f"is corrupted (quick_check: {ok})"
    if ver > _schema.LATEST:
        return f"has schema version {ver}, newer than this GSwarm's {_schema.LATEST}"
    if (ver == 0 and tables) or not tables <= set(_schema.TABLES):
        return f"holds foreign tables {sorted(tables - set(_schema.TABLES)) or sorted(tables)}"
    if ver:  # says it is version N: it must have what version N has (a table dropped by hand, another app's file)
        for table, want in sorted(_schema.expected_columns(ver).items()):
            missing = sorted(want - cols.get(table, frozenset()))
            if table not in cols:
                return f"lacks the table {table} of schema version {ver}"
            if missing:
                return f"lacks columns {missing} of table {table} (schema version {ver})"
    return ""


class StoreReader:
    """Read-only access to ``gswarm.db``, safe while the writer runs and after it stopped.

    Every query returns a list of dicts (column → value; ``data``/``evidence``/``gpu``
    decoded from JSON, ``advanced`` as bool), oldest first unless ``desc=True``.
    A missing file reads as empty; a foreign or corrupted file raises StoreError
    naming it. Thread-safe (one connection behind a lock).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection (reopened on the next query)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None:
            if not self.path.exists():
                return None
            problem = check_file(self.path)
            if problem:
                raise StoreError(f"the store {self.path} {problem}; `gswarm run` sets it aside, or move it away yourself")
            try:
                self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10.0, check_same_thread=False)
                self._conn.row_factory = sqlite3.Row
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from None
        return self._conn

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        """Run a read-only ``sql`` and decode rows (raises StoreError on SQLite errors)."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return []
            try:
                rows = conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise StoreError(f"reading the store {self.path} failed: {exc}") from None
        return [_decode(dict(r)) for r in rows]

    def _select(self, table: str, node: str | None, since: float | None, until: float | None,
                limit: int, offset: int, desc: bool, filters: dict[str, Any]) -> list[dict[str, Any]]:
        ts = _TS.get(table, "ts")
        where, params = ["1=1"], []
        for col, val in (("node", node), *filters.items()):
            if val is not None:
                if col not in ("node", *_FILTERS[table]):
                    raise StoreError(f"unknown filter {col!r} for {table}; use one of {_FILTERS[table]}")
                where.append(f"{col} = ?")
                params.append(int(val) if isinstance(val, bool) else getattr(val, "value", val))
        if since is not None:
            where.append(f"{ts} >= ?")
            params.append(since)
        if until is not None:
            where.append(f"{ts} <= ?")
            params.append(until)
        order = "DESC" if desc else "ASC"
        sql = f"SELECT * FROM {table} WHERE {' AND '.join(where)} ORDER BY {ts} {order}, id {order} LIMIT ? OFFSET ?"
        return self.query(sql, (*params, int(limit), int(offset)))

    def runs(self, node=None, since=None, until=None, limit=1000, offset=0, desc=False, **filters):
        """Runs (``id, node, started_at, stopped_at, pid, generation, mode, exit_code, signal, cause, uptime``)."""
        return self._select("runs", node, since, until, limit, offset, desc, filters)

    def events(self, node=None, since=None, until=None, limit=1000, offset=0, desc=False, **filters):
        """Events (``id, node, ts, kind, state, message, data``); filters ``kind``, ``state``."""
        return self._select("events", node, since, until, limit, offset, desc, filters)

    def incidents(self, node=None, since=None, until=None, limit=1000, offset=0, desc=False, **filters):
        """Incidents (``…, category, recovery, severity, rule_id, evidence: list[str], advice``)."""
        return self._select("incidents", node, since, until, limit, offset, desc, filters)

    def samples(self, node=None, since=None, until=None, limit=1000, offset=0, desc=False):
        """Resource samples (columns of ``SAMPLE_COLUMNS``; ``gpu`` a list of dicts)."""
        return self._select("samples", node, since, until, limit, offset, desc, {})

    def progress(self, node=None, since=None, until=None, limit=1000, offset=0, desc=False, **filters):
        """Progress rows (``kind, round, stage, round_total, animal, peer_id, advanced: bool, detail``)."""
        return self._select("progress", node, since, until, limit, offset, desc, filters)

    def nodes(self) -> list[str]:
        """Every node name with a record, sorted."""
        sql = " UNION ".join(f"SELECT DISTINCT node FROM {t}" for t in _schema.TABLES)
        return sorted(r["node"] for r in self.query(sql))

    def latest_sample(self, node: str) -> dict[str, Any] | None:
        """The newest sample of ``node`` or None."""
        rows = self.samples(node, limit=1, desc=True)
        return rows[0] if rows else None

    def latest_progress(self, node: str) -> dict[str, Any] | None:
        """The newest progress row, with ``round/stage/round_total/animal/peer_id`` filled from the
        newest row where each is known (so a "waiting" row still carries the animal name); None if none."""
        rows = self.progress(node, limit=1, desc=True)
        if not rows:
            return None
        out = rows[0]
        for col in ("round", "stage", "round_total", "animal", "peer_id"):
            if out[col] is None:
                hit = self.query(f"SELECT {col} FROM progress WHERE node = ? AND {col} IS NOT NULL ORDER BY ts DESC, id DESC LIMIT 1", (node,))
                out[col] = hit[0][col] if hit else None
        return out

    def last_advance(self, node: str) -> float | None:
        """Unix seconds of the newest progress row with ``advanced`` true (stall detection input), or None."""
        rows = self.query("SELECT MAX(ts) AS ts FROM progress WHERE node = ? AND advanced = 1", (node,))
        return rows[0]["ts"] if rows else None

    def restarts_by_cause(self, node: str | None, since: float | None = None) -> dict[str, int]:
        """``{cause: count}`` of restart events (kind=restart) since ``since`` (Unix seconds)."""
        counts: dict[str, int] = {}
        for e in self.events(node, since=since, kind="restart", limit=1_000_000):
            cause = (e.get("data") or {}).get("cause") or "unknown"
            counts[cause] = counts.get(cause, 0) + 1
        return dict(sorted(counts.items()))

    def last_incident(self, node: str | None = None, with_advice: bool = True) -> dict[str, Any] | None:
        """The newest incident (with non-empty advice when ``with_advice``) or None."""
        cond = " AND advice IS NOT NULL AND advice != ''" if with_advice else ""
        sql = f"SELECT * FROM incidents WHERE (? IS NULL OR node = ?){cond} ORDER BY ts DESC, id DESC LIMIT 1"
        rows = self.query(sql, (node, node))
        return rows[0] if rows else None


    def gave_up(self, node: str) -> dict[str, Any] | None:
        """The supervisor's give-up record for ``node`` while no start followed it, else None.

        ``{"ts": Unix s, "state": "STOPPED"|"FATAL", "cause": Category value|None, "reason": str,
        "advice": str}`` from the newest ``recovery`` event with ``data.gave_up`` (written by the
        watcher when it stops for good: FATAL or a stop-and-alert decision; ``gswarm.supervisor._giveup``).
        """
        rows = self.query("SELECT id, ts, data FROM events WHERE node = ? AND kind = 'recovery'"
                          " AND json_extract(data, '$.gave_up') = 1 ORDER BY id DESC LIMIT 1", (node,))
        if not rows or self.query("SELECT 1 AS x FROM events WHERE node = ? AND kind = 'start' AND id > ? LIMIT 1",
                                  (node, rows[0]["id"])):
            return None
        data = rows[0]["data"] or {}
        return {"ts": rows[0]["ts"], **{k: data.get(k) for k in ("state", "cause", "reason", "advice")}}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for col in _JSON_COLS & row.keys():
        if row[col] is not None:
            row[col] = json.loads(row[col])
    if "advanced" in row:
        row["advanced"] = bool(row["advanced"])
    return row
