"""Plain-SQL schema of the store, versioned by ``PRAGMA user_version``.

``MIGRATIONS[i]`` upgrades a database from version ``i`` to ``i + 1``; a new
database runs them all. Append, never edit a released step. Contract (column
names) in ``docs/architecture.md`` "Store"; all ``ts``/``*_at`` are Unix seconds.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache

TABLES = ("runs", "events", "incidents", "samples", "progress")

_V1 = """
CREATE TABLE runs (
  id INTEGER PRIMARY KEY, node TEXT NOT NULL, started_at REAL NOT NULL, stopped_at REAL,
  pid INTEGER, generation TEXT, mode TEXT, exit_code INTEGER, signal INTEGER, cause TEXT);
CREATE TABLE events (
  id INTEGER PRIMARY KEY, node TEXT NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL,
  state TEXT, message TEXT, data TEXT);
CREATE TABLE incidents (
  id INTEGER PRIMARY KEY, node TEXT NOT NULL, ts REAL NOT NULL, category TEXT NOT NULL,
  recovery TEXT, severity TEXT, rule_id TEXT, evidence TEXT, advice TEXT);
CREATE TABLE samples (
  id INTEGER PRIMARY KEY, node TEXT NOT NULL, ts REAL NOT NULL, cpu_percent REAL, rss_bytes INTEGER,
  threads INTEGER, open_files INTEGER, host_cpu_percent REAL, host_mem_percent REAL, swap_percent REAL,
  load1 REAL, disk_free_bytes INTEGER, net_sent_bytes INTEGER, net_recv_bytes INTEGER, gpu TEXT);
CREATE TABLE progress (
  id INTEGER PRIMARY KEY, node TEXT NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL, round INTEGER,
  stage INTEGER, round_total INTEGER, animal TEXT, peer_id TEXT, advanced INTEGER NOT NULL DEFAULT 0,
  detail TEXT);
CREATE INDEX runs_node_ts ON runs(node, started_at);
CREATE INDEX events_node_ts ON events(node, ts);
CREATE INDEX incidents_node_ts ON incidents(node, ts);
CREATE INDEX samples_node_ts ON samples(node, ts);
CREATE INDEX progress_node_ts ON progress(node, ts);
"""

# v2: run duration and disk free of the state dir separately; faster "last advance" and cause queries.
_V2 = """
ALTER TABLE runs ADD COLUMN uptime REAL;
ALTER TABLE samples ADD COLUMN state_disk_free_bytes INTEGER;
CREATE INDEX progress_node_adv_ts ON progress(node, advanced, ts);
CREATE INDEX events_node_kind_ts ON events(node, kind, ts);
"""

# v3: who asked for a run's end (an operator's stop/restart is not a failure: dashboard, reports).
_V3 = """
ALTER TABLE runs ADD COLUMN requested TEXT;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
LATEST = len(MIGRATIONS)


def version(conn: sqlite3.Connection) -> int:
    """The schema version stored in the file (0 = empty/new)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def user_tables(conn: sqlite3.Connection) -> set[str]:
    """Names of the non-internal tables in the file."""
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
    return {r[0] for r in rows}


def migrate(conn: sqlite3.Connection, target: int = LATEST) -> int:
    """Apply the missing steps up to ``target`` in one transaction each; returns the new version.

    The connection must be in autocommit mode (``isolation_level=None``).
    """
    current = version(conn)
    for step in range(current, target):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in MIGRATIONS[step].split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {step + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version(conn)


@lru_cache(maxsize=None)
def expected_columns(ver: int) -> dict[str, frozenset[str]]:
    """Table → column names of a store at schema version ``ver`` (built by migrating an in-memory database)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(conn, ver)
        return {t: frozenset(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in user_tables(conn)}
    finally:
        conn.close()


def columns(conn: sqlite3.Connection) -> dict[str, frozenset[str]]:
    """Table → column names found in the file."""
    return {t: frozenset(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in user_tables(conn)}
