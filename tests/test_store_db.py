"""Store: event mapping, reader queries, migrations, retention, bad files, the writer service."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gswarm import events as ev
from gswarm.clock import FakeClock
from gswarm.errors import StoreError
from gswarm.logs import _schema
from gswarm.logs.store import Store, StoreReader, StoreService

T0 = 1_700_000_000.0
C, R, S = ev.Category, ev.Recovery, ev.Severity


def history(node: str = "n1") -> list[ev.Event]:
    return [
        ev.StateChanged(node, T0, ev.NodeState.STOPPED, ev.NodeState.STARTING, "start"),
        ev.ProcessStarted(node, T0 + 1, 4242, 4242, ("python", "-m", "x"), "E4", "direct", 1),
        ev.ProgressUpdate(node, T0 + 5, "hello", animal="tall quick ant", peer_id="QmPeer"),
        ev.ProgressUpdate(node, T0 + 10, "round", round=7, stage=0, round_total=1000000, advanced=True),
        ev.ProgressUpdate(node, T0 + 20, "waiting", round=7, detail="next check in 5.0s"),
        ev.ResourceSample(node, T0 + 15, {"cpu_percent": 12.5, "rss_bytes": 1000, "threads": 3, "open_files": 4,
                                         "gpu": [{"index": 0, "temperature_celsius": 61}]}),
        ev.Incident(node, T0 + 30, C.CUDA_OOM, R.REDUCE_MODEL, S.ERROR, "cuda_oom.1", ("CUDA out of memory",), "use a smaller model"),
        ev.ProcessExited(node, T0 + 31, 4242, 1, None, 30.0, 1),
        ev.RestartScheduled(node, T0 + 32, 5.0, C.CUDA_OOM, R.REDUCE_MODEL, 1, "restart with 0.5B"),
        ev.RecoveryAction(node, T0 + 33, R.REDUCE_MODEL, "model step-down", {"model": "0.5"}),
        ev.Notice(node, T0 + 34, "restart", S.WARNING, "Node restarted", "body"),
        ev.OutputLine(node, T0 + 35, 4242, "not stored"),
    ]


def test_every_event_type_maps_to_rows_exactly(tmp_path: Path) -> None:
    db = tmp_path / "gswarm.db"
    store = Store(db)
    assert store.write(history()) == 11
    r = StoreReader(db)
    assert r.runs() == [{"id": 1, "node": "n1", "started_at": T0 + 1, "stopped_at": T0 + 31, "pid": 4242, "generation": "E4",
                         "mode": "direct", "exit_code": 1, "signal": None, "cause": "cuda_oom", "uptime": 30.0,
                         "requested": None}]
    kinds = [(e["kind"], e["state"]) for e in r.events()]
    assert kinds == [("state", "STARTING"), ("start", None), ("exit", None), ("restart", None), ("recovery", None), ("notice", None)]
    restart = r.events(kind="restart")[0]
    assert restart["data"] == {"delay": 5.0, "cause": "cuda_oom", "recovery": "reduce_model", "attempt": 1}
    assert restart["message"] == "restart with 0.5B"
    assert r.events(kind="recovery")[0]["data"] == {"recovery": "reduce_model", "model": "0.5"}
    inc = r.incidents()[0]
    assert (inc["category"], inc["evidence"], inc["advice"], inc["severity"]) == ("cuda_oom", ["CUDA out of memory"], "use a smaller model", "error")
    s = r.latest_sample("n1")
    assert (s["cpu_percent"], s["rss_bytes"], s["threads"], s["gpu"], s["host_cpu_percent"]) == (12.5, 1000, 3, [{"index": 0, "temperature_celsius": 61}], None)
    lp = r.latest_progress("n1")
    assert (lp["kind"], lp["round"], lp["stage"], lp["animal"], lp["peer_id"], lp["round_total"]) == ("waiting", 7, 0, "tall quick ant", "QmPeer", 1000000)
    assert r.last_advance("n1") == T0 + 10
    assert r.restarts_by_cause("n1", since=T0) == {"cuda_oom": 1}
    assert r.restarts_by_cause("n1", since=T0 + 40) == {}
    assert r.last_incident("n1")["rule_id"] == "cuda_oom.1"
    assert [p["kind"] for p in r.progress(advanced=True)] == ["round"]
    assert r.nodes() == ["n1"]
    store.close()


def test_filters_paging_and_order(tmp_path: Path) -> None:
    db = tmp_path / "gswarm.db"
    store = Store(db)
    store.write([ev.ProgressUpdate("a" if i % 2 else "b", T0 + i, "round", round=i, advanced=True) for i in range(10)])
    r = StoreReader(db)
    assert [p["round"] for p in r.progress("a", since=T0 + 3, until=T0 + 7)] == [3, 5, 7]
    assert [p["round"] for p in r.progress(limit=3, offset=2)] == [2, 3, 4]
    assert [p["round"] for p in r.progress("b", limit=2, desc=True)] == [8, 6]
    assert r.nodes() == ["a", "b"]
    with pytest.raises(StoreError, match="unknown filter 'colour'"):
        r.progress(colour="red")


def test_reader_of_missing_file_is_empty(tmp_path: Path) -> None:
    r = StoreReader(tmp_path / "none.db")
    assert r.runs() == [] and r.latest_progress("x") is None and r.last_advance("x") is None and r.nodes() == []


def test_reader_works_while_writer_open_and_after(tmp_path: Path) -> None:
    db = tmp_path / "gswarm.db"
    store = Store(db)
    store.write(history()[:2])
    r = StoreReader(db)
    assert len(r.runs()) == 1 and r.runs()[0]["stopped_at"] is None
    store.write(history()[7:8])
    assert r.runs()[0]["stopped_at"] == T0 + 31
    store.close()
    r2 = StoreReader(db)
    assert r2.runs()[0]["exit_code"] == 1


def test_migration_from_v1_keeps_rows(tmp_path: Path) -> None:
    db = tmp_path / "gswarm.db"
    conn = sqlite3.connect(db, isolation_level=None)
    assert _schema.migrate(conn, target=1) == 1
    conn.execute("INSERT INTO runs(node, started_at, pid) VALUES ('n1', ?, 7)", (T0,))
    conn.close()
    store = Store(db)
    assert _schema.version(store.conn) == _schema.LATEST == 3
    cols = [r[1] for r in store.conn.execute("PRAGMA table_info(runs)")]
    assert cols[-2:] == ["uptime", "requested"]
    store.close()
    row = StoreReader(db).runs()[0]
    # the orphan run of a dead supervisor is closed at its own start (no later facts)
    assert (row["pid"], row["started_at"], row["stopped_at"], row["uptime"]) == (7, T0, T0, None)


def test_retention_prunes_old_rows_only(tmp_path: Path) -> None:
    db = tmp_path / "gswarm.db"
    store = Store(db)
    old = [ev.ProcessStarted("n", T0, 1, 1, (), "E4", "direct"), ev.ProcessExited("n", T0 + 10, 1, 0, None, 10.0),
           ev.ResourceSample("n", T0, {"cpu_percent": 1.0})]
    new = [ev.ProcessStarted("n", T0 + 86400 * 3, 2, 2, (), "E4", "direct"), ev.ResourceSample("n", T0 + 86400 * 3, {"cpu_percent": 2.0})]
    store.write(old + new)
    deleted = store.prune(now=T0 + 86400 * 3, retention_s=2 * 86400)
    r = StoreReader(db)
    assert deleted == 4  # start+exit events, one sample, one run
    assert [x["pid"] for x in r.runs()] == [2]
    assert [x["cpu_percent"] for x in r.samples()] == [2.0]


@pytest.mark.parametrize("content,reason", [
    (b"this is not a database at all" * 100, "is not an SQLite database"),
    (b"SQLite format 3\x00" + b"\xff" * 4000, "corrupted"),
])
def test_garbage_file_is_set_aside_not_overwritten(tmp_path: Path, content: bytes, reason: str) -> None:
    db = tmp_path / "gswarm.db"
    db.write_bytes(content)
    with pytest.raises(StoreError, match="gswarm.db"):
        StoreReader(db).runs()
    store = Store(db, now=T0)
    assert reason in store.opened.reason
    assert store.opened.set_aside == tmp_path / "gswarm.db.corrupt-20231114T221320Z"
    assert store.opened.set_aside.read_bytes() == content
    store.write(history()[:2])
    assert len(StoreReader(db).runs()) == 1


def test_foreign_sqlite_and_newer_schema_are_set_aside(tmp_path: Path) -> None:
    db = tmp_path / "gswarm.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE customers(id INTEGER)")
    conn.commit()
    conn.close()
    s = Store(db, now=T0)
    assert "foreign tables ['customers']" in s.opened.reason
    s.close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    s2 = Store(db, now=T0 + 1)
    assert "schema version 99" in s2.opened.reason
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith("Z")) == [
        "gswarm.db.corrupt-20231114T221320Z", "gswarm.db.corrupt-20231114T221321Z"]


async def test_service_batches_prunes_and_flushes_on_cancel(tmp_path: Path) -> None:
    bus, clock = ev.EventBus(), FakeClock(start=T0)
    db = tmp_path / "gswarm.db"
    (tmp_path / "gswarm.db").write_bytes(b"junk" * 10)
    notices: list[ev.Notice] = []
    bus.subscribe(lambda e: notices.append(e) if isinstance(e, ev.Notice) else None)
    svc = StoreService(bus, clock, db, retention_days=1.0, node="n1", prune_interval=600.0)
    task = asyncio.create_task(svc.run())
    await asyncio.sleep(0)
    assert [n.kind for n in notices] == ["store_set_aside"]
    for e in history():
        bus.publish(e)
    for _ in range(5):
        await asyncio.sleep(0)
    assert svc.written == 12  # 11 history events + the Notice about the set-aside file
    assert StoreReader(db).events(kind="notice")[0]["data"]["kind"] == "store_set_aside"
    clock.advance(2 * 86400)
    for _ in range(5):
        await asyncio.sleep(0)
    assert StoreReader(db).samples() == []  # pruned by the periodic task
    bus.publish(ev.ResourceSample("n1", clock.time(), {"cpu_percent": 3.0}))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [s["cpu_percent"] for s in StoreReader(db).samples()] == [3.0]


def test_orphan_runs_closed_only_for_own_node(tmp_path: Path) -> None:
    db = tmp_path / "gswarm.db"
    s = Store(db)
    s.write([ev.ProcessStarted("a", T0, 1, 1, (), "E4", "direct"), ev.ProcessStarted("b", T0, 2, 2, (), "E4", "direct"),
             ev.ResourceSample("a", T0 + 50, {"cpu_percent": 1.0}), ev.StateChanged("a", T0 + 70, ev.NodeState.RUNNING, ev.NodeState.STALLED)])
    s.close()  # the supervisor "died": runs still open
    Store(db, node="a").close()
    assert [(r["node"], r["stopped_at"]) for r in StoreReader(db).runs()] == [("a", T0 + 70), ("b", None)]


async def test_service_survives_an_unusable_folder_and_retries(tmp_path: Path) -> None:
    bus, clock = ev.EventBus(), FakeClock(start=T0)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    svc = StoreService(bus, clock, blocker / "gswarm.db", node="n1")
    task = asyncio.create_task(svc.run())
    await asyncio.sleep(0)
    bus.publish(ev.ResourceSample("n1", T0, {"cpu_percent": 1.0}))
    for _ in range(3):
        await asyncio.sleep(0)
    assert (svc.written, svc.dropped, task.done()) == (0, 1, False)
    blocker.unlink()
    blocker.mkdir()
    clock.advance(61.0)
    bus.publish(ev.ResourceSample("n1", T0 + 61, {"cpu_percent": 2.0}))
    for _ in range(3):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert svc.written == 1 and [s["cpu_percent"] for s in StoreReader(blocker / "gswarm.db").samples()] == [2.0]


@pytest.mark.parametrize("damage,reason", [
    ("DROP TABLE events", "lacks the table events of schema version 3"),
    ("ALTER TABLE runs DROP COLUMN cause", "lacks columns ['cause'] of table runs (schema version 3)"),
])
def test_store_missing_tables_or_columns_of_its_version_is_set_aside(tmp_path: Path, damage: str, reason: str) -> None:
    """A file that claims the current schema version but lacks a table or column (dropped by hand, another
    tool's file) is set aside like a corrupted one, instead of failing every write for the whole run."""
    db = tmp_path / "gswarm.db"
    Store(db, now=T0).close()
    conn = sqlite3.connect(db)
    conn.execute(damage)
    conn.commit()
    conn.close()
    s = Store(db, now=T0 + 5)
    assert s.opened.reason == reason
    s.write([ev.StateChanged("n1", T0 + 5, ev.NodeState.STOPPED, ev.NodeState.STARTING)])
    s.close()
    assert (tmp_path / "gswarm.db.corrupt-20231114T221325Z").exists()
    assert StoreReader(db).events(kind="state")[0]["state"] == "STARTING"
