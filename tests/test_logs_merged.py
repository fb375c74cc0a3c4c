"""Node output kept once, in the capture files (issue #18), shown by every reader as before: ``gswarm logs``
(history, filters, ``-f``) and the API tail merge each node's ``logs/<node>/output.log`` with the JSON log."""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gswarm import events as ev
from gswarm.api import logfile
from gswarm.cli import status as status_cli
from gswarm.logs import _captureread as cap
from gswarm.logs._jsonread import LogFilter
from gswarm.logs._merged import merged_records
from gswarm.logs.jsonlog import JsonLog, record_of, records_of
from gswarm.supervisor.capture import CaptureFile, capture_path
from gswarm.supervisor.stream import Batch

T = float(int(time.time()) - 3600)  # an hour ago, whole second (captures keep microseconds)
TB = ["Traceback (most recent call last):", '  File "/app/x.py", line 1, in <module>']
EXIT = ev.ProcessExited("n1", T + 10, 101, 1, None, 10.0)
EVENTS = [ev.ProcessStarted("n1", T, 101, 101, ("python",), "E4", "direct"),
          ev.ProcessStarted("n2", T + 1, 202, 202, ("python",), "E2", "direct"), EXIT]
EXIT_MSG = record_of(EXIT)["message"]


def app() -> typer.Typer:
    a = typer.Typer()
    status_cli.register(a)
    return a


def logs(state_dir: Path, *args: str) -> list[tuple[float, str, str, str, str]]:
    res = CliRunner().invoke(app(), ["logs", "--json", "--state-dir", str(state_dir), *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return [(r["ts_unix"], r["node"], r["kind"], r["level"], r["message"]) for r in map(json.loads, res.stdout.splitlines())]


def write(c: CaptureFile, ts: float, pid: int, *texts: str) -> None:
    c.write_batch(Batch(list(texts), list(texts)), ts, pid)


@pytest.fixture
def two_nodes(state_dir: Path) -> Path:
    """JSON log with GSwarm's events of two nodes, and each node's capture (what a run writes since #18)."""
    JsonLog(state_dir / "logs").write([r for e in EVENTS for r in records_of(e)])
    c1, c2 = CaptureFile(capture_path(state_dir, "n1")), CaptureFile(capture_path(state_dir, "n2"))
    c1.note("gswarm: started python", T, 101)
    write(c1, T + 2.25, 101, "[12:00:00][genrl][INFO] - Starting round: 5/100.", "[12:00:01][genrl][WARNING] - slow peer")
    write(c2, T + 3, 202, "hello from n2")
    write(c1, T + 5, 101, *TB)
    write(c2, T + 5.5, 202, "ERROR:hivemind:lost peer")
    write(c1, T + 6, 101, "RuntimeError: boom", "after")
    c1.note("gswarm: node exited with code 1 after 10.0 s", T + 10, 101)
    c1.close()
    c2.close()
    return state_dir


ALL = [(T, "n1", "start", "info", "started pid 101 (E4, direct)"), (T + 1, "n2", "start", "info", "started pid 202 (E2, direct)"),
       (T + 2.25, "n1", "output", "info", "[12:00:00][genrl][INFO] - Starting round: 5/100."),
       (T + 2.25, "n1", "output", "warning", "[12:00:01][genrl][WARNING] - slow peer"),
       (T + 3, "n2", "output", "info", "hello from n2"),
       (T + 5, "n1", "output", "error", TB[0]), (T + 5, "n1", "output", "error", TB[1]),
       (T + 5.5, "n2", "output", "error", "ERROR:hivemind:lost peer"),
       (T + 6, "n1", "output", "error", "RuntimeError: boom"), (T + 6, "n1", "output", "info", "after"),
       (T + 10, "n1", "exit", "error", EXIT_MSG)]


def test_gswarm_logs_merges_captures_and_json_log_in_time_order(two_nodes: Path) -> None:
    assert logs(two_nodes) == ALL
    res = CliRunner().invoke(app(), ["logs", "--json", "--grep", "slow", "--state-dir", str(two_nodes)])
    assert json.loads(res.stdout) == {"ts_unix": T + 2.25, "node": "n1", "level": "warning", "kind": "output", "pid": 101,
                                      "category": "output", "stream": "stdout",
                                      "message": "[12:00:01][genrl][WARNING] - slow peer"}  # the shape readers saw before
    assert logs(two_nodes, "--category", "output") == [r for r in ALL if r[2] == "output"]
    assert logs(two_nodes, "--category", "supervisor") == [r for r in ALL if r[2] != "output"]
    assert logs(two_nodes, "--level", "error") == [r for r in ALL if r[3] == "error"]
    assert logs(two_nodes, "--grep", "PEER") == [ALL[3], ALL[7]]
    assert logs(two_nodes, "--regex", "^(hello|after)") == [ALL[4], ALL[9]]
    since = datetime.fromtimestamp(T + 5, timezone.utc).isoformat()
    assert logs(two_nodes, "--since", since) == ALL[5:]
    assert logs(two_nodes, "--until", datetime.fromtimestamp(T + 3, timezone.utc).isoformat()) == ALL[:5]
    assert logs(two_nodes, "--limit", "3") == ALL[-3:]
    assert logs(two_nodes, "--tail", "3") == logs(two_nodes, "-n", "3") == ALL[-3:]  # tail's and the API's names
    assert logs(two_nodes, "--limit", "2", "--category", "output", "--level", "error") == [ALL[7], ALL[8]]
    assert logs(two_nodes, "--node", "n2") == [r for r in ALL if r[1] == "n2"]


def test_text_output_and_no_log_message(two_nodes: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app(), ["logs", "--grep", "lost peer", "--state-dir", str(two_nodes)])
    shown = datetime.fromtimestamp(T + 5.5).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    assert res.stdout == f"{shown} n2 ERROR    [output] ERROR:hivemind:lost peer\n"
    only_capture = tmp_path / "only"  # a capture but no JSON log yet: shown, no "no JSON log" message
    c = CaptureFile(capture_path(only_capture, "n1"))
    write(c, T, 7, "first line")
    c.close()
    assert logs(only_capture) == [(T, "n1", "output", "info", "first line")]
    res = CliRunner().invoke(app(), ["logs", "--state-dir", str(tmp_path / "empty")])
    assert res.stdout == "" and "no JSON log in" in res.stderr


def test_follow_picks_up_new_capture_lines_a_rotation_and_a_new_node(two_nodes: Path) -> None:
    logs_dir = two_nodes / "logs"
    c1 = CaptureFile(capture_path(two_nodes, "n1"), max_bytes=400, backups=3)
    steps = iter([
        lambda: write(c1, T + 20, 101, *TB),  # a traceback split across polls keeps its level
        lambda: [write(c1, T + 21, 101, f"ValueError: x{'y' * 300}", "line after rotation"),
                 JsonLog(logs_dir).write(records_of(ev.ProcessStarted("n3", T + 22, 303, 303, ("python",), "E6", "direct"))),
                 write(CaptureFile(capture_path(two_nodes, "n3")), T + 23, 303, "[t][genrl][ERROR] - n3 appears")],
    ])
    got = [(r["node"], r["level"], r["message"][:12]) for r in
           status_cli.follow_records(logs_dir, LogFilter(), polls=3, interval=0.0, sleep=lambda _: next(steps)())]
    assert got == [("n1", "error", TB[0][:12]), ("n1", "error", TB[1][:12]), ("n1", "error", "ValueError: "),
                   ("n1", "info", "line after r"), ("n3", "info", "started pid "), ("n3", "error", "[t][genrl][E")]
    assert len(cap.capture_files(capture_path(two_nodes, "n1"))) == 3  # rotated before each write: followed twice
    c1.close()
    c1.wait_tidy(5)


def test_old_json_log_with_output_records_shows_each_line_once(state_dir: Path) -> None:
    """A JSON log written before #18 holds output records too: those the capture covers are shown once (from
    the capture); older ones only the JSON log still holds are kept."""
    old = [ev.OutputLine("n1", T - 100, 101, "only in the old JSON log"), ev.OutputLine("n1", T + 2, 101, "in both")]
    JsonLog(state_dir / "logs").write([record_of(e) for e in old] + [record_of(EVENTS[0])])
    c = CaptureFile(capture_path(state_dir, "n1"))
    c.note("gswarm: started python", T, 101)
    write(c, T + 2, 101, "in both")
    c.close()
    want = [(T - 100, "n1", "output", "info", "only in the old JSON log"), (T, "n1", "start", "info", "started pid 101 (E4, direct)"),
            (T + 2, "n1", "output", "info", "in both")]
    assert logs(state_dir) == want
    assert logs(state_dir, "--limit", "2") == want[1:]
    api = [(r["ts_unix"], r["node"], r["kind"], r["level"], r["message"]) for r in logfile.tail(state_dir, 10)[0]]
    assert api == want


def test_api_tail_newest_first_with_levels_bounds_and_files(two_nodes: Path) -> None:
    short = lambda recs: [(r["node"], r["level"], r["message"]) for r in recs]  # noqa: E731
    lines, scanned, limited = logfile.tail(two_nodes, 4)
    assert short(lines) == [(r[1], r[3], r[4]) for r in ALL[-4:]] and (scanned, limited) == (4, False)
    lines, scanned, _ = logfile.tail(two_nodes, 100, max_scan=3)  # the 3 newest records are looked at
    assert short(lines) == [(r[1], r[3], r[4]) for r in ALL[-3:]] and scanned == 3
    assert short(logfile.tail(two_nodes, 100, level="error", node="n1")[0]) == [("n1", "error", r[4]) for r in ALL
                                                                                 if r[1] == "n1" and r[3] == "error"]
    assert short(logfile.tail(two_nodes, 100, grep="PEER", since=T + 3)[0]) == [("n2", "error", "ERROR:hivemind:lost peer")]
    assert logfile.file_names(two_nodes) == ["gswarm.jsonl", "n1/output.log", "n2/output.log"]


async def test_api_route_answers_the_merged_tail(two_nodes: Path) -> None:
    from gswarm.api.source import DataSource
    from gswarm.clock import FakeClock
    from tests.test_api_support import running_api, settings

    async with running_api(DataSource(two_nodes, settings(), clock=FakeClock(T + 100))) as (_, c):
        body = (await c.get("/api/v1/logs", params={"tail": 3, "level": "error"})).json()
    assert [(r["node"], r["kind"], r["message"]) for r in body["lines"]] == [
        ("n2", "output", "ERROR:hivemind:lost peer"), ("n1", "output", "RuntimeError: boom"), ("n1", "exit", EXIT_MSG)]
    assert body["files"] == ["gswarm.jsonl", "n1/output.log", "n2/output.log"] and body["limited"] is False


def test_rotated_gz_captures_are_read(state_dir: Path) -> None:
    c = CaptureFile(capture_path(state_dir, "n1"), max_bytes=300, backups=20)
    for i in range(12):
        write(c, T + i, 7, f"line {i:02d} " + "x" * 40, f"WARNING:x:w{i:02d}")
    c.close()
    c.wait_tidy(10)
    files = cap.capture_files(capture_path(state_dir, "n1"))
    assert len(files) >= 5 and all(p.name.endswith(".gz") for p in files[:-1])
    want = [m for i in range(12) for m in (f"line {i:02d} " + "x" * 40, f"WARNING:x:w{i:02d}")]
    assert [r["message"] for r in merged_records(state_dir / "logs", LogFilter())] == want
    assert [r["message"] for r in merged_records(state_dir / "logs", LogFilter(level="warning"))] == want[1::2]
    assert [r["message"] for r in logfile.tail(state_dir, 24)[0]] == want  # newest first, across the .gz files
    assert [r["message"] for r in logs_tail(state_dir, 3)] == want[-3:]


def logs_tail(state_dir: Path, n: int) -> list[dict]:
    from gswarm.logs._merged import tail_merged

    return tail_merged(state_dir / "logs", LogFilter(), n)


def test_newest_first_levels_equal_a_forward_read(state_dir: Path) -> None:
    """Read backwards in windows, a traceback cut by a window boundary keeps its levels (exactly those of
    reading forward), also across a restart (pid change) in the middle of one."""
    rng = random.Random(18)
    c = CaptureFile(capture_path(state_dir, "n1"))
    pid = 100
    for b in range(400):
        texts = []
        for _ in range(rng.randint(1, 12)):
            pick = rng.random()
            if pick < 0.08:
                texts += TB + ["  inner"] * rng.randint(0, 300) + [f"KeyError: {b}"]
            elif pick < 0.12:
                texts.append("    indented info")
            else:
                texts.append(rng.choice(["plain", "[x][genrl][WARNING] - w", "ERROR:h:e", "DEBUG:h:d"]))
        pid += rng.random() < 0.02
        write(c, T + b, pid, *texts)
    c.close()
    path = capture_path(state_dir, "n1")
    forward = list(cap.node_records("n1", path))
    backward = list(cap.newest_first("n1", path))[::-1]
    assert len(forward) > 3000 and sum(r["level"] == "error" for r in forward) > 1000
    assert backward == forward
    assert [r["level"] for r in logfile.tail(state_dir, 700)[0]] == [r["level"] for r in forward[-700:]]


def test_malformed_capture_lines_are_skipped_never_raised(state_dir: Path) -> None:
    folder = state_dir / "logs" / "n1"
    folder.mkdir(parents=True)
    (folder / "output.log").write_bytes(
        b"no timestamp prefix at all\n"
        b"2026-13-45T99:99:99.000000Z 7 > a bad date\n"
        b"2026-11-29T15:33:17.123456Z x > a bad pid\n"
        b"2026-11-29T15:33:17.123456Z 7 > bad utf-8 \xff\xfe here\n"
        b"2026-11-29T15:33:17.500000Z 7 # gswarm: a note\n"
        b"2026-11-29T15:33:18.000001Z 7 ~ redraw 50%\n"
        b"2026-11-29T15:33:18.000002Z 7 ? Enter your choice: \n"
        b"2026-11-29T15:33:18.000003Z 7 > \n"
        b"2026-11-29T15:33:19.000000Z 7 > torn last line without newline")
    base = datetime(2026, 11, 29, 15, 33, 17, tzinfo=timezone.utc).timestamp()
    got = [(r["ts_unix"], r["message"]) for r in merged_records(state_dir / "logs", LogFilter())]
    assert got == [(base + 0.123456, "bad utf-8 \ufffd\ufffd here"), (round(base + 1.000001, 6), "redraw 50%"),
                   (round(base + 1.000002, 6), "Enter your choice: "), (round(base + 1.000003, 6), ""),
                   (base + 2, "torn last line without newline")]
    assert [r["message"] for r in logfile.tail(state_dir, 10)[0]] == [m for _, m in got]


async def test_read_only_event_stream_carries_new_capture_lines(state_dir: Path) -> None:
    """``gswarm serve`` (no live bus) polls the files: new node output comes from the captures since #18."""
    from gswarm.api.source import DataSource
    from gswarm.clock import FakeClock
    from tests.test_api_stream import _frames
    from tests.test_api_support import running_api, settings

    c = CaptureFile(capture_path(state_dir, "n1"))
    write(c, T, 7, "before")  # history: not replayed

    async def on_open() -> None:
        write(c, T + 1.5, 7, "ERROR:x:after")

    async with running_api(DataSource(state_dir, settings(), clock=FakeClock(T + 100)), poll=0.05) as (_, client):
        frames = await _frames(client, 1, on_open)
    c.close()
    assert frames == [("log", {"type": "log", "ts_unix": T + 1.5, "node": "n1", "level": "error", "kind": "output", "pid": 7,
                               "category": "output", "stream": "stdout", "message": "ERROR:x:after"})]


def test_since_skips_rotated_captures_older_than_it(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``gswarm logs --since 10m`` on a long history does not decompress files rotated before it."""
    folder = state_dir / "logs" / "n1"
    folder.mkdir(parents=True)
    old = datetime.fromtimestamp(T - 7200, timezone.utc)
    stamp = old.strftime("%Y%m%dT%H%M%SZ")
    import gzip

    (folder / f"output.log.{stamp}.gz").write_bytes(gzip.compress(f"{old:%Y-%m-%dT%H:%M:%S}.000000Z 7 > two hours ago\n".encode()))
    c = CaptureFile(capture_path(state_dir, "n1"))
    write(c, T, 7, "now")
    c.close()
    assert [m for *_, m in logs(state_dir)] == ["two hours ago", "now"]
    opened: list[str] = []
    real = cap.read_lines
    monkeypatch.setattr(cap, "read_lines", lambda p: opened.append(p.name) or real(p))
    assert [m for *_, m in logs(state_dir, "--since", "70m")] == ["now"]
    assert opened == ["output.log"]


CRASH = ["ERROR:hivemind_exp.trainer.hivemind_grpo_trainer:quick fuzzy otter:Encountered error during training!",
         "Traceback (most recent call last):",
         '  File "/home/user/.venv/lib/python3.11/site-packages/accelerate/data_loader.py", line 575, in __iter__',
         "    current_batch = send_to_device(current_batch, self.device, non_blocking=self._non_blocking)",
         "UnboundLocalError: cannot access local variable 'current_batch' where it is not associated with a value"]


def test_real_run_then_gswarm_logs_shows_the_node_output_once_with_levels(tmp_path: Path) -> None:
    """``gswarm run --emulated`` (E0 emulated node crashing) then ``gswarm logs`` in real subprocesses: the
    crash's lines come from the capture with their levels, merged in time order with the exit records."""
    import os
    import subprocess
    import sys

    st = tmp_path / "st"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")}
    gswarm = [sys.executable, "-m", "gswarm"]
    run = subprocess.run([*gswarm, "run", "--emulated", "--no-api", "--state-dir", str(st), "--emu-pace", "0.05",
                          "--emu-faults", "crash:trainer_bug_current_batch@0.3", "--backoff-initial", "0.1",
                          "--backoff-max", "0.2", "--crash-loop-max", "50", "--duration", "3"],
                         env=env, capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    shown = lambda *a: [json.loads(x) for x in subprocess.run([*gswarm, "logs", "--json", "--state-dir", str(st), *a], env=env,  # noqa: E731
                                                             capture_output=True, text=True, timeout=60, cwd=tmp_path).stdout.splitlines()]
    errors = shown("--category", "output", "--level", "error", "--limit", "5")
    assert [(r["kind"], r["level"], r["message"]) for r in errors] == [("output", "error", m) for m in CRASH]
    every = shown()
    capture = (st / "logs" / "default" / "output.log").read_text().splitlines()
    assert sum(r["kind"] == "output" for r in every) == sum(line.split(" ", 3)[2] != "#" for line in capture)
    assert [r["ts_unix"] for r in every] == sorted(r["ts_unix"] for r in every)
    assert {"start", "exit", "output"} <= {r["kind"] for r in every}


def test_bundle_holds_the_window_of_a_capture_rotated_into_gz(state_dir: Path, tmp_path: Path) -> None:
    """Node output is only in the capture (#18) and a flood rotates it into ``.gz`` files: ``gswarm bundle``
    keeps the window's lines from them (it skipped every ``.gz``), and skips a compression's ``.tmp``."""
    import tarfile

    from gswarm.cli import diagnose
    from gswarm.config import Settings

    now = time.time()
    c = CaptureFile(capture_path(state_dir, "n1"), max_bytes=200, backups=5)
    write(c, now - 3600, 7, "an hour ago " + "x" * 100)
    write(c, now - 60, 7, "a minute ago " + "x" * 100)  # rotates the hour-old line away
    write(c, now - 30, 7, "half a minute ago " + "x" * 100)  # and this one's predecessor
    c.close()
    c.wait_tidy(10)
    folder = state_dir / "logs" / "n1"
    (folder / "output.log.20000101T000000Z.gz.tmp").write_bytes(b"\x1f\x8b half written")
    gz = [p.name for p in cap.capture_files(folder / "output.log")[:-1]]  # rotated, oldest first
    assert len(gz) == 2 and all(name.endswith(".gz") for name in gz)
    out = diagnose.write_bundle(Settings(rl_swarm_dir=tmp_path), state_dir, 5, tmp_path / "b.tar.gz", now)
    with tarfile.open(out) as tar:
        texts = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.name.startswith("logs/")}
    shown = {k: [line.split(" > ")[1][:20] for line in v.splitlines()] for k, v in texts.items()}
    assert shown == {f"logs/n1/{gz[1][:-3]}": ["a minute ago xxxxxxx"], "logs/n1/output.log": ["half a minute ago xx"]}


def test_limit_with_since_reads_captures_back_to_since_only(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = CaptureFile(capture_path(state_dir, "n1"), max_bytes=150, backups=5)
    for i, ago in enumerate((7200, 7100, 60, 30)):
        write(c, T - ago, 7, f"line {i} " + "x" * 80)
    c.close()
    c.wait_tidy(10)
    assert len(cap.capture_files(capture_path(state_dir, "n1"))) == 4
    opened: list[str] = []
    real = cap.lines_newest_first
    monkeypatch.setattr(cap, "lines_newest_first", lambda p, *a: opened.append(p.name) or real(p, *a))
    since = datetime.fromtimestamp(T - 90, timezone.utc).isoformat()
    assert logs(state_dir, "--since", since, "--limit", "5", "--grep", "no such text") == []
    files = [p.name for p in cap.capture_files(capture_path(state_dir, "n1"))]
    assert opened == files[:0:-1]  # stops at the first file holding a line older than since: the oldest is not read
    assert [m[:6] for *_, m in logs(state_dir, "--since", since, "--limit", "5")] == ["line 2", "line 3"]


def test_api_node_filter_never_reads_outside_the_logs_folder(two_nodes: Path) -> None:
    outside = two_nodes / "secret"  # <state>/logs/../secret/output.log
    outside.mkdir()
    (outside / "output.log").write_text("2026-11-29T15:33:17.123456Z 7 > private\n")
    assert logfile.tail(two_nodes, 10, node="../secret") == ([], 0, False)
    assert [r["message"] for r in logfile.tail(two_nodes, 10, node="n2")[0]] == ["started pid 202 (E2, direct)", "hello from n2",
                                                                                "ERROR:hivemind:lost peer"]


def test_api_tail_leaves_progress_out_unless_asked_as_gswarm_logs_does(two_nodes: Path) -> None:
    """The dashboard's log view interleaved `round round=5` records between node lines that `gswarm logs` hides
    (newcomer trial of #18): the API tail now hides them too, and `category` asks for one category."""
    JsonLog(two_nodes / "logs").write(records_of(ev.ProgressUpdate("n1", T + 2.25, "round", round=5, advanced=True)))
    kinds = [(r["kind"], r["category"]) for r in logfile.tail(two_nodes, 100)[0]]
    assert ("progress", "progress") not in kinds and len(kinds) == len(ALL)
    assert [(r["kind"], r["data"]["round"]) for r in logfile.tail(two_nodes, 100, category="progress")[0]] == [("progress", 5)]
    assert [r["message"] for r in logfile.tail(two_nodes, 100, category="output")[0]] == [a[4] for a in ALL if a[2] == "output"]
    assert [r["kind"] for r in logfile.tail(two_nodes, 100, category="supervisor")[0]] == ["start", "start", "exit"]



async def test_api_route_takes_a_category_and_names_the_field_when_bad(two_nodes: Path) -> None:
    from gswarm.api.source import DataSource
    from gswarm.clock import FakeClock
    from tests.test_api_support import running_api, settings

    JsonLog(two_nodes / "logs").write(records_of(ev.ProgressUpdate("n1", T + 2.25, "round", round=5, advanced=True)))
    async with running_api(DataSource(two_nodes, settings(), clock=FakeClock(T + 60))) as (_, c):
        asked = (await c.get("/api/v1/logs", params={"category": "progress"})).json()["lines"]
        plain = (await c.get("/api/v1/logs")).json()["lines"]
        bad = await c.get("/api/v1/logs", params={"category": "nonsense"})
    assert [r["category"] for r in asked] == ["progress"] and "progress" not in [r["category"] for r in plain]
    assert bad.status_code == 422 and "category" in bad.text
