"""``gswarm status`` and ``gswarm logs`` against a real state dir (store, JSON log files, lock files)."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gswarm import events as ev
from gswarm.cli import status as status_cli
from gswarm.logs._jsonread import LogFilter, compile_grep
from gswarm.logs.jsonlog import JsonLog, record_of
from gswarm.logs.store import Store

C, R, S = ev.Category, ev.Recovery, ev.Severity


def app() -> typer.Typer:
    a = typer.Typer()
    status_cli.register(a)
    return a


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app(), list(args), catch_exceptions=False)
    return res.exit_code, res.stdout


@pytest.fixture
def recorded(state_dir: Path) -> float:
    now = time.time()
    hist = [
        ev.StateChanged("n1", now - 90_000, ev.NodeState.STOPPED, ev.NodeState.STARTING),
        ev.RestartScheduled("n1", now - 90_000, 5.0, C.UNKNOWN_CRASH, R.BACKOFF, 1),  # older than 24 h
        ev.ProcessStarted("n1", now - 3600, 321, 321, ("python",), "E4", "direct"),
        ev.ProgressUpdate("n1", now - 3000, "hello", animal="nimble prowling tapir", peer_id="QmBc4KJMmu6mAEfKhAYEjZLg6KMZ2WH3cSBc4KJMmu6mAE"),
        ev.ProgressUpdate("n1", now - 2000, "round", round=13176, round_total=1000000, advanced=True),
        ev.ProgressUpdate("n1", now - 1000, "waiting", round=13176, detail="next check in 5.0s"),
        ev.ResourceSample("n1", now - 10, {"cpu_percent": 88.5, "rss_bytes": 3 * 2**30, "threads": 40, "host_cpu_percent": 51.0,
                                          "host_mem_percent": 63.2, "gpu": [{"index": 0, "temperature_celsius": 66}]}),
        ev.Incident("n1", now - 500, C.CHAIN_SUBMIT_REJECTED, R.RESTART, S.WARNING, "chain.400", ("400 Client Error",), "restart if it repeats"),
        ev.ProcessExited("n1", now - 400, 321, 1, None, 3200.0),
        ev.RestartScheduled("n1", now - 399, 5.0, C.CHAIN_SUBMIT_REJECTED, R.RESTART, 1),
        ev.StateChanged("n1", now - 399, ev.NodeState.RUNNING, ev.NodeState.BACKOFF, "restart"),
    ]
    Store(state_dir / "gswarm.db").write(hist)
    jl = JsonLog(state_dir / "logs", max_bytes=400)
    jl.write([r for r in map(record_of, hist + [ev.OutputLine("n1", now - 450, 321, "[x][genrl][ERROR] - Failed to submit to chain.")]) if r])
    jl.compress()
    return now


def test_status_json_after_the_supervisor_stopped(recorded: float, state_dir: Path) -> None:
    code, out = run("status", "--json", "--state-dir", str(state_dir), "--node", "n1")
    assert code == 0
    d = json.loads(out)
    assert d["supervisor"] == {"alive": False, "pid": None}
    assert (d["state"], d["state_since"], d["generation"], d["mode"]) == ("BACKOFF", recorded - 399, "E4", "direct")
    assert (d["pid"], d["uptime"]) == (None, None)
    assert d["restarts_24h"] == {"total": 1, "by_cause": {"chain_submit_rejected": 1}}
    p = d["progress"]
    assert (p["round"], p["stage"], p["round_total"], p["kind"], p["animal"], p["last_advance"]) == (
        13176, None, 1000000, "waiting", "nimble prowling tapir", recorded - 2000)
    assert d["resources"]["cpu_percent"] == 88.5 and d["resources"]["gpu"] == [{"index": 0, "temperature_celsius": 66}]
    assert d["last_incident"] == {"ts": recorded - 500, "category": "chain_submit_rejected", "severity": "warning", "recovery": "restart",
                                  "rule_id": "chain.400", "advice": "restart if it repeats", "evidence": ["400 Client Error"]}


def test_status_sees_a_live_supervisor_lock_and_open_run(state_dir: Path) -> None:
    now = time.time()
    Store(state_dir / "gswarm.db").write([ev.StateChanged("default", now - 60, ev.NodeState.STARTING, ev.NodeState.RUNNING),
                                         ev.ProcessStarted("default", now - 60, 777, 777, (), "E6", "script")])
    (state_dir / "run").mkdir()
    lock = state_dir / "run" / "abc.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"4242")
        d = json.loads(run("status", "--json", "--state-dir", str(state_dir))[1])
        assert d["supervisor"] == {"alive": True, "pid": 4242}
        assert (d["state"], d["pid"], d["generation"]) == ("RUNNING", 777, "E6") and 59 < d["uptime"] < 120
    finally:
        os.close(fd)
    d = json.loads(run("status", "--json", "--state-dir", str(state_dir))[1])
    assert d["supervisor"] == {"alive": False, "pid": None} and d["uptime"] is None


def test_status_human_output_and_empty_state(recorded: float, state_dir: Path, tmp_path: Path) -> None:
    code, out = run("status", "--state-dir", str(state_dir), "--node", "n1")
    assert code == 0 and "BACKOFF" in out and "round 13176" in out and "restart if it repeats" in out
    # newcomer trial: the total of rounds is shown, and the record kind only when it says more than "round"
    assert "round 13176/1000000 (last: waiting)" in out
    empty = tmp_path / "empty"
    code, out = run("status", "--json", "--state-dir", str(empty))
    assert code == 0 and json.loads(out)["state"] is None and json.loads(out)["progress"] is None


def test_logs_json_since_category_reads_rotated_gz(recorded: float, state_dir: Path) -> None:
    assert any(p.name.endswith(".gz") for p in (state_dir / "logs").iterdir())
    code, out = run("logs", "--json", "--since", "2h", "--category", "supervisor", "--state-dir", str(state_dir))
    recs = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and [(r["kind"], r["ts_unix"]) for r in recs] == [
        ("start", round(recorded - 3600, 6)), ("exit", round(recorded - 400, 6)), ("restart", round(recorded - 399, 6)),
        ("state", round(recorded - 399, 6))]
    code, out = run("logs", "--json", "--category", "chain_submit_rejected", "--state-dir", str(state_dir))
    assert [json.loads(x)["message"] for x in out.splitlines()] == ["restart if it repeats"]
    code, out = run("logs", "--json", "--level", "error", "--grep", "submit", "--state-dir", str(state_dir))
    assert [json.loads(x)["kind"] for x in out.splitlines()] == ["output"]
    code, out = run("logs", "--json", "--limit", "2", "--state-dir", str(state_dir))
    assert [json.loads(x)["kind"] for x in out.splitlines()] == ["state", "output"]  # file (write) order
    code, out = run("logs", "--since", "26h", "--until", "24h", "--state-dir", str(state_dir))
    assert code == 0 and len(out.splitlines()) == 2 and "STOPPED -> STARTING" in out


def test_logs_bad_options_are_clear_errors(state_dir: Path) -> None:
    from gswarm.errors import ConfigError

    with pytest.raises(ConfigError, match="--since 'last tuesday'"):
        run("logs", "--since", "last tuesday", "--state-dir", str(state_dir))
    with pytest.raises(ConfigError, match="--regex '\\[unclosed' is not a valid regular expression"):
        run("logs", "--regex", "[unclosed", "--state-dir", str(state_dir))


def test_follow_yields_new_records_across_rotation(state_dir: Path) -> None:
    logs = state_dir / "logs"
    rec = lambda i, msg: record_of(ev.OutputLine("n1", 1.0 + i, 1, msg))  # noqa: E731
    size = len(json.dumps(rec(0, "after 0")) + "\n")
    jl = JsonLog(logs, max_bytes=int(size * 2.5))
    jl.write([rec(0, "before 0")])
    batches = iter([[rec(1, "after 1"), rec(2, "after 2"), rec(3, "after 3")]])
    got = [r["message"] for r in status_cli.follow_records(logs, LogFilter(grep=compile_grep("after|before")), polls=2,
                                                           interval=0.0, sleep=lambda _: jl.write(next(batches)))]
    assert got == ["after 1", "after 2", "after 3"]  # history is not repeated; the rotation is followed
    assert len(jl.rotated()) == 1


def run_all(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app(), list(args), catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def test_status_shows_the_maintenance_window(recorded: float, state_dir: Path) -> None:
    from datetime import datetime

    from gswarm.maintenance import set_window

    set_window(state_dir, recorded + 1800, "driver update")
    code, out = run("status", "--json", "--state-dir", str(state_dir), "--node", "n1")
    assert code == 0 and json.loads(out)["maintenance"] == {"until": recorded + 1800, "reason": "driver update"}
    code, out = run("status", "--state-dir", str(state_dir), "--node", "n1")
    end = datetime.fromtimestamp(recorded + 1800)
    when = f"{end:%H:%M}" if end.date() == datetime.fromtimestamp(time.time()).date() else f"{end:%Y-%m-%d %H:%M}"
    assert code == 0 and out.splitlines()[0] == f"maintenance until {when} (driver update) — restarts and alerts paused"
    set_window(state_dir, recorded - 1, "over")
    code, out = run("status", "--json", "--state-dir", str(state_dir), "--node", "n1")
    assert json.loads(out)["maintenance"] is None
    assert "maintenance" not in run("status", "--state-dir", str(state_dir), "--node", "n1")[1]


@pytest.mark.parametrize("make", [False, True])
def test_status_on_an_empty_state_dir_says_so(tmp_path: Path, make: bool) -> None:
    sd = tmp_path / "fresh"
    if make:
        (sd / "logs").mkdir(parents=True)
    code, out, err = run_all("status", "--state-dir", str(sd))
    assert (code, err) == (0, "")
    assert out == f"no gswarm run has recorded anything in {sd} yet (start one with `gswarm run`, or pass --state-dir)\n"


def test_status_unknown_node_lists_the_known_ones(recorded: float, state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers import run_cli

    Store(state_dir / "gswarm.db").write([ev.StateChanged("n2", recorded, ev.NodeState.STOPPED, ev.NodeState.STARTING)])
    for extra in ((), ("--json",)):
        code, out = run_cli(capsys, "status", "--state-dir", str(state_dir), "--node", "nosuch", *extra)
        # bad input: exit 2 and the same form as `gswarm report --node` (it was exit 1 without "error:")
        assert (code, out) == (2, f"error: unknown node 'nosuch' in {state_dir}; known nodes: n1, n2 (pass one with --node)\n")


def test_logs_follow_starts_with_the_last_10_records(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    jl = JsonLog(state_dir / "logs", max_bytes=800)  # several rotated files: the tail spans them
    jl.write([record_of(ev.OutputLine("n1", now - 100 + i, 1, f"line {i:02d}")) for i in range(25)])
    jl.compress()
    assert len(jl.rotated()) >= 2
    followed: list[Any] = []
    monkeypatch.setattr(status_cli, "follow_records", lambda d, flt: followed.append(flt) or iter(()))
    msgs = lambda out: [json.loads(x)["message"] for x in out.splitlines()]  # noqa: E731
    code, out = run("logs", "-f", "--json", "--state-dir", str(state_dir))
    assert code == 0 and msgs(out) == [f"line {i:02d}" for i in range(15, 25)] and len(followed) == 1
    assert msgs(run("logs", "-f", "--json", "--limit", "3", "--state-dir", str(state_dir))[1]) == ["line 22", "line 23", "line 24"]
    from datetime import datetime, timezone

    start = datetime.fromtimestamp(now - 90.5, timezone.utc).isoformat()
    since = run("logs", "-f", "--json", "--since", start, "--state-dir", str(state_dir))[1]
    assert msgs(since) == [f"line {i:02d}" for i in range(10, 25)]
    assert len(msgs(run("logs", "--json", "--state-dir", str(state_dir))[1])) == 25  # without -f: everything
    assert "last 10" in " ".join(CliRunner().invoke(app(), ["logs", "--help"]).stdout.split())


def test_logs_level_error_shows_a_crash(state_dir: Path) -> None:
    """A node crash: traceback lines and the exit record are errors (``gswarm logs --since 1h --level error``)."""
    from gswarm.clock import FakeClock
    from gswarm.logs.jsonlog import JsonLogService

    now = time.time()
    bus = ev.EventBus()
    svc = JsonLogService(bus, FakeClock(start=now), JsonLog(state_dir / "logs"))
    from gswarm.supervisor.capture import CaptureFile, capture_path
    from gswarm.supervisor.stream import Batch

    bus.publish(ev.ProcessStarted("n1", now - 60, 321, 321, ("python",), "E4", "direct"))
    cap = CaptureFile(capture_path(state_dir, "n1"))  # node output is kept in the capture file (issue #18)
    cap.note("gswarm: started python", now - 60, 321)
    for ts, texts in ((now - 30, ["INFO:x:training", "Traceback (most recent call last):",
                                  '  File "/app/train.py", line 3, in <module>']),
                      (now - 29, ["    main()", "RuntimeError: DHT daemon died", "cleanup done"])):
        cap.write_batch(Batch(texts, texts), ts, 321)
    cap.close()
    bus.publish(ev.ProcessExited("n1", now - 28, 321, 1, None, 32.0))
    bus.publish(ev.ProcessExited("n1", now - 20, 322, None, 15, 5.0))  # SIGTERM: a stop, not an error
    svc.flush()
    code, out = run("logs", "--json", "--since", "1h", "--level", "error", "--state-dir", str(state_dir))
    assert code == 0 and [(r["kind"], r["message"]) for r in map(json.loads, out.splitlines())] == [
        ("output", "Traceback (most recent call last):"), ("output", '  File "/app/train.py", line 3, in <module>'),
        ("output", "    main()"), ("output", "RuntimeError: DHT daemon died"),
        ("exit", "pid 321 exited with code 1 after 32.0 s")]  # in words (#19), not "code=1 signal=None"


def test_status_without_node_uses_the_only_recorded_node(recorded: float, state_dir: Path) -> None:
    """A run with --node-name emu: plain `gswarm status` shows emu instead of refusing "default"."""
    code, out = run("status", "--json", "--state-dir", str(state_dir))
    assert code == 0 and json.loads(out)["node"] == "n1"


def test_a_long_error_is_one_line_so_its_path_copies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Rich wrapped error messages at 80 columns, cutting state-dir paths in two: printed soft-wrapped now."""
    from tests.helpers import run_cli

    long_dir = tmp_path / ("a-rather-long-folder-name-" * 4) / "state"
    long_dir.parent.mkdir(parents=True)
    long_dir.write_text("a file, not a folder")
    code, out = run_cli(capsys, "status", "--state-dir", str(long_dir))
    assert code == 2 and out.count("\n") == 1 and str(long_dir) in out, out


def test_status_says_a_running_node_s_first_sample_is_pending(state_dir: Path) -> None:
    """Newcomer trial: in a node's first seconds `gswarm status` showed "resources CPU - RSS -", which read like
    a fault; it now says the first sample is pending. A node that rounds with a known total shows "round N/T"."""
    now = time.time()
    Store(state_dir / "gswarm.db").write([
        ev.StateChanged("default", now - 3, ev.NodeState.STARTING, ev.NodeState.RUNNING),
        ev.ProcessStarted("default", now - 3, 777, 777, (), "E6", "direct"),
        ev.ProgressUpdate("default", now - 2, "round", round=30, round_total=100, advanced=True),
        ev.ResourceSample("default", now - 1, {"host_cpu_percent": 12.0, "host_mem_percent": 40.0})])
    (state_dir / "run").mkdir()
    fd = os.open(state_dir / "run" / "abc.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"4242")
        code, out = run("status", "--state-dir", str(state_dir))
    finally:
        os.close(fd)
    flat = " ".join(out.split())
    assert code == 0 and "the node's first sample is pending" in flat and "CPU - RSS -" not in flat
    assert "round 30/100" in flat and "(last:" not in flat
