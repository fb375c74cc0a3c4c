"""JSON log: records, levels, rotation by size and day, gzip, retention, reading back, filters."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
from pathlib import Path

import pytest

from gswarm import events as ev
from gswarm.clock import FakeClock
from gswarm.errors import ConfigError
from gswarm.logs._jsonread import LogFilter, compile_grep, iter_records, log_files, parse_time
from gswarm.logs.jsonlog import JsonLog, JsonLogService, line_level, record_of, records_of

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize("text,level", [
    ("INFO:hivemind_exp.trainer.hivemind_grpo_trainer:x:🐝 Joining round: 3", "info"),
    ("WARNING:hivemind_exp.runner:DHT IPC error", "warning"),
    ("2025-05-25 12:00:00,101 - ERROR - root:61 - boom", "error"),
    ("[2025-07-27 16:18:14,834][genrl.logging_utils.global_defs][ERROR] - Failed to submit to chain.", "error"),
    ("[fierce_silent_owl] 2025-06-26 10:00:33,020 DEBUG: x", "debug"),
    ("Jul 28 22:09:27.108 [CRITICAL] p2pd died", "critical"),
    ("Map: 100%|████| 2/2", "info"),
    ("this line mentions ERROR in passing", "info"),
])
def test_levels_from_node_markers(text: str, level: str) -> None:
    assert line_level(text) == level


def test_records_of_output_and_events() -> None:
    out = record_of(ev.OutputLine("n1", T0 + 0.5, 42, "WARNING:x:y", "stderr"))
    assert out == {"ts_unix": T0 + 0.5, "node": "n1", "level": "warning", "kind": "output", "pid": 42, "stream": "stderr",
                   "message": "WARNING:x:y"}  # issue #18: no ISO "ts" (ts_unix says it), no category "output" (kind says it)
    inc = record_of(ev.Incident("n1", T0, ev.Category.CUDA_OOM, ev.Recovery.REDUCE_MODEL, ev.Severity.ERROR, "r1", ("e1",), "smaller model"))
    assert (inc["level"], inc["category"], inc["message"], inc["kind"], inc["data"]["evidence"]) == ("error", "cuda_oom", "smaller model", "incident", ["e1"])
    rs = record_of(ev.RestartScheduled("n1", T0, 5.0, ev.Category.UNKNOWN_CRASH, ev.Recovery.BACKOFF, 2))
    assert (rs["kind"], rs["level"], rs["category"], rs["data"]["cause"]) == ("restart", "warning", "supervisor", "unknown_crash")
    assert record_of(ev.ResourceSample("n1", T0, {})) is None
    batch = ev.OutputBatch("n1", T0 + 0.25, 42, ("INFO:x:a", "ERROR:x:b", "plain"), ("\x1b[1mINFO:x:a", "ERROR:x:b", "plain"), None, "stderr")
    assert records_of(batch) == [record_of(line) for line in batch.lines()] and len(records_of(batch)) == 3
    assert [r.get("level", "info") for r in records_of(batch)] == ["info", "error", "info"]
    assert records_of(ev.ResourceSample("n1", T0, {})) == [] and records_of(ev.OutputLine("n1", T0, 1, "x")) == [record_of(ev.OutputLine("n1", T0, 1, "x"))]


def test_service_buffer_limit_counts_lines(tmp_path: Path) -> None:
    bus = ev.EventBus()
    svc = JsonLogService(bus, FakeClock(start=T0), JsonLog(tmp_path / "logs"), max_buffer=5)
    bus.publish(ev.OutputBatch("n1", T0, 7, ("out 1", "out 2")))  # node output: the capture file holds it (issue #18)
    for title in "abcdefgh":
        bus.publish(notice(title))
    assert svc.dropped == 3 and svc.flush() == 5
    assert [r["message"] for r in iter_records(tmp_path / "logs")] == ["a", "b", "c", "d", "e"]


def notice(title: str, ts: float = T0) -> ev.Notice:
    return ev.Notice("n1", ts, "test", ev.Severity.INFO, title)


def rec(i: int, ts: float, msg: str = "") -> dict:
    return record_of(ev.OutputLine("n1", ts, 1, msg or f"line {i:04d} " + "x" * 60))


def test_size_rotation_gzip_and_reading_back_oldest_first(tmp_path: Path) -> None:
    jl = JsonLog(tmp_path, max_bytes=2000, backups=100)
    written = [rec(i, T0 + i) for i in range(100)]
    for i in range(0, 100, 10):
        jl.write(written[i:i + 10])
    rotated = jl.rotated()
    assert len(rotated) >= 4 and all(p.stat().st_size <= 2000 for p in rotated)
    assert jl.compress() == len(rotated)
    assert all(p.name.endswith(".gz") for p in jl.rotated())
    assert [r["message"] for r in iter_records(tmp_path)] == [r["message"] for r in written]
    with gzip.open(jl.rotated()[0], "rt") as fh:
        assert json.loads(fh.readline())["message"].startswith("line 0000")


def test_day_rotation_and_retention(tmp_path: Path) -> None:
    jl = JsonLog(tmp_path, max_bytes=10**9, backups=2, retention_days=3)
    days = [T0 + d * 86400 for d in range(5)]
    for d, ts in enumerate(days):
        jl.write([rec(d, ts)])
    names = [p.name for p in jl.rotated()]
    assert names == ["gswarm.jsonl.20231115T221320Z", "gswarm.jsonl.20231116T221320Z", "gswarm.jsonl.20231117T221320Z",
                     "gswarm.jsonl.20231118T221320Z"]
    deleted = jl.prune(now=days[-1])
    assert [p.name for p in deleted] == names[:2]
    assert [r["ts_unix"] for r in iter_records(tmp_path)] == days[2:]
    jl.retention_s = 0.5 * 86400  # a rotated file's stamp is its rotation time (its newest record is older)
    assert jl.prune(now=days[-1] + 0.4 * 86400) == [tmp_path / names[2]]
    jl.prune(now=days[-1] + 0.6 * 86400)
    assert [p.name for p in log_files(tmp_path)] == ["gswarm.jsonl"]


async def test_service_buffers_and_flushes_on_interval_and_shutdown(tmp_path: Path) -> None:
    bus, clock = ev.EventBus(), FakeClock(start=T0)
    # 400 bytes: two notices (151 bytes each) per file; the final state record (181) fits beside the last one
    svc = JsonLogService(bus, clock, JsonLog(tmp_path / "logs", max_bytes=400, backups=5), flush_interval=1.0)
    task = asyncio.create_task(svc.run())
    await asyncio.sleep(0)
    for i in range(5):
        bus.publish(notice(f"line {i}", clock.time()))
    bus.publish(ev.OutputLine("n1", clock.time(), 7, "WARNING:x:not here"))  # node output: in the capture file
    assert list(iter_records(tmp_path / "logs")) == []  # buffered
    await clock.run_for(1.0)
    assert len(list(iter_records(tmp_path / "logs"))) == 5
    bus.publish(ev.StateChanged("n1", clock.time(), ev.NodeState.RUNNING, ev.NodeState.STOPPING, "stop"))
    bus.publish(ev.ResourceSample("n1", clock.time(), {}))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    recs = list(iter_records(tmp_path / "logs"))
    assert [r["kind"] for r in recs] == ["notice"] * 5 + ["state"]
    assert recs[-1]["message"] == "RUNNING -> STOPPING stop"
    from tests.helpers import wait_for

    # rotated at 400 bytes and compressed (by a worker thread the cancelled run() may leave running a moment)
    wait_for(lambda: any(p.name.endswith(".gz") for p in (tmp_path / "logs").iterdir()), timeout=10)


def test_time_and_grep_parsing_errors_name_the_option() -> None:
    assert parse_time("2h", now=T0) == T0 - 7200
    assert parse_time("30m", now=T0) == T0 - 1800
    assert parse_time("2023-11-14T22:13:20+00:00", now=0) == T0
    assert parse_time("2023-11-14T22:13:20Z", now=0) == T0
    with pytest.raises(ConfigError, match="--since 'yesterday'"):
        parse_time("yesterday", now=T0)
    with pytest.raises(ConfigError, match="--until"):
        parse_time("5 parsecs", now=T0, option="--until")
    with pytest.raises(ConfigError, match="--grep '\\(' is not a valid regular expression"):
        compile_grep("(")
    with pytest.raises(ConfigError, match="--level 'loud'"):
        LogFilter(level="loud")


def test_filter_level_category_node_time_grep() -> None:
    recs = [record_of(ev.OutputLine("a", T0, 1, "INFO:x:hello")), record_of(ev.OutputLine("b", T0 + 10, 1, "ERROR:x:boom")),
            record_of(ev.Incident("a", T0 + 20, ev.Category.CUDA_OOM, ev.Recovery.RESTART, ev.Severity.ERROR, "r", (), "advice"))]
    pick = lambda **kw: [r["ts_unix"] for r in recs if LogFilter(**kw).match(r)]  # noqa: E731
    assert pick(level="warning") == [T0 + 10, T0 + 20]
    assert pick(category="cuda_oom") == [T0 + 20]
    assert pick(node="a") == [T0, T0 + 20]
    assert pick(since=T0 + 5, until=T0 + 15) == [T0 + 10]
    assert pick(grep=compile_grep("bo+m")) == [T0 + 10]


@pytest.mark.parametrize("code, sig, level", [
    (0, None, "info"), (None, 15, "info"), (None, None, "info"), (1, None, "error"), (137, None, "error"),
    (None, 9, "error"), (None, 2, "error"), (None, 11, "error"), (-9, None, "error"),
])
def test_exit_levels(code, sig, level) -> None:
    assert record_of(ev.ProcessExited("n1", T0, 5, code, sig, 1.0))["level"] == level


@pytest.mark.parametrize("severity", list(ev.Severity))
def test_incident_level_is_its_severity(severity) -> None:
    inc = ev.Incident("n1", T0, ev.Category.CUDA_OOM, ev.Recovery.RESTART, severity, "r", (), "a")
    assert record_of(inc)["level"] == severity.value


TB = ["Traceback (most recent call last):", '  File "/app/rgym_exp/runner.py", line 42, in <module>',
      "    main()", "    ~~~~^^", "\tat frame", 'File "<string>", line 1', "torch.OutOfMemoryError: CUDA out of memory."]


def test_traceback_lines_are_errors_across_batches_and_streams() -> None:
    from gswarm.logs.jsonlog import TracebackTracker

    t = TracebackTracker()
    lv = lambda texts, stream="stderr", node="n1": t.levels(node, stream, texts)  # noqa: E731
    assert lv(["INFO:x:ok", "plain", *TB[:2]]) == ["info", "info", "error", "error"]
    assert lv(["progress 5%"], stream="stdout") == ["info"]  # stdout does not close stderr's traceback
    assert lv(["  indented on another node"], node="n2") == ["info"]
    assert lv([*TB[2:], "after", "  indented after"]) == ["error"] * 5 + ["info", "info"]
    chained = ["", "During handling of the above exception, another exception occurred:", "", *TB, "WARNING:x:w"]
    assert lv(chained) == ["info", "error", "info"] + ["error"] * 7 + ["warning"]
    assert lv(["The above exception was the direct cause of the following exception:"]) == ["error"]
    assert lv(["[ERROR] x", "Traceback (most recent call last): "]) == ["error", "error"]
    t.reset("n1")  # a new process: the open traceback is forgotten
    assert lv(["plain"]) == ["info"]
    from gswarm.logs import _levels

    assert lv(["Traceback (most recent call last):"] + ["  x"] * (_levels._TB_MAX - 1) + ["  y", "z"]) == \
        ["error"] * _levels._TB_MAX + ["info", "info"]  # an unterminated traceback stops marking at the cap


def test_levels_of_tracebacks_across_batches_and_restarts(tmp_path: Path) -> None:
    """Output is levelled when read from the capture file (issue #18), with the traceback state the JSON log's
    writer kept across flushes: a traceback spans batches, a new process (pid) closes it."""
    from gswarm.logs._merged import merged_records
    from gswarm.supervisor.capture import CaptureFile, capture_path
    from gswarm.supervisor.stream import Batch

    bus = ev.EventBus()
    svc = JsonLogService(bus, FakeClock(start=T0), JsonLog(tmp_path / "logs"))
    cap = CaptureFile(capture_path(tmp_path, "n1"))
    for ts, pid, texts in ((T0, 7, TB[:3]), (T0 + 1, 7, TB[3:] + ["next"]), (T0 + 2, 7, TB[:1])):
        cap.write_batch(Batch(list(texts), list(texts)), ts, pid)
    bus.publish(ev.ProcessStarted("n1", T0 + 3, 8, 8, ("python",), "E4", "direct"))
    cap.note("gswarm: started python", T0 + 3, 8)
    cap.write_batch(Batch(["  starting again"], ["  starting again"]), T0 + 4, 8)
    cap.close()
    svc.flush()
    assert [(r["kind"], r["level"]) for r in merged_records(tmp_path / "logs", LogFilter())] == \
        [("output", "error")] * 7 + [("output", "info"), ("output", "error"), ("start", "info"), ("output", "info")]


def test_tail_records_reads_newest_files_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gswarm.logs import _jsonread
    from gswarm.logs._jsonread import tail_records

    jl = JsonLog(tmp_path, max_bytes=1000, backups=100)
    jl.write([rec(i, T0 + i, f"m{i:02d} " + "x" * 100) for i in range(40)])
    jl.compress()
    files = log_files(tmp_path)
    assert len(files) >= 4
    msgs = lambda recs: [r["message"][:3] for r in recs]  # noqa: E731
    assert msgs(tail_records(tmp_path, lambda r: True, 10)) == [f"m{i:02d}" for i in range(30, 40)]
    assert msgs(tail_records(tmp_path, lambda r: r["ts_unix"] % 2 == 0, 3)) == ["m34", "m36", "m38"]
    assert len(tail_records(tmp_path, lambda r: True, 100)) == 40 and tail_records(tmp_path / "none", lambda r: True, 5) == []
    opened: list[str] = []
    real = _jsonread.read_lines
    monkeypatch.setattr(_jsonread, "read_lines", lambda path: opened.append(path.name) or real(path))
    current = sum(1 for _ in _jsonread.parse_records(real(files[-1])))  # records in gswarm.jsonl
    assert msgs(tail_records(tmp_path, lambda r: True, current)) == [f"m{i:02d}" for i in range(40 - current, 40)]
    assert opened == ["gswarm.jsonl"]  # a tail that the current file holds reads nothing else
    opened.clear()
    assert msgs(tail_records(tmp_path, lambda r: True, current + 1))[0] == f"m{39 - current:02d}"
    assert opened == ["gswarm.jsonl", files[-2].name]


@pytest.mark.parametrize("texts", [
    ("INFO:x:a", "ERROR:x:b", "plain"),
    ('quote " backslash \\ tab \t ctrl \x01 \x7f', "unicode 🐝 已杀死 \ufffd", ""),
    ("Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: boom", "after"),
    ("[INFO] plain ascii ~ {} []", "", "x"),  # the one-replace path
    ("plain", "with \x7f del"), ("plain", "tab\there"), ("plain", "back\\slash"), ("a", "q\"uote"),
])
def test_encoded_output_is_exactly_json_dumps_of_the_records(texts: tuple[str, ...]) -> None:
    from gswarm.logs.jsonlog import encoded_of

    batch = ev.OutputBatch("nöde\"1", T0 + 0.123457, 4242, texts, None, None, "stderr")
    groups = encoded_of(batch)
    assert len(groups) == 1 and groups[0][:2] == ("2023-11-14T22:13:20.123457+00:00", round(T0 + 0.123457, 6))
    assert b"".join(groups[0][2]).decode().split("\n")[:-1] == [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records_of(batch)]
    assert [json.loads(x)["message"] for x in b"".join(groups[0][2]).decode().split("\n")[:-1]] == list(texts)
    assert groups[0][3] == len(texts)


def test_grouped_write_rotates_inside_a_batch_exactly_like_per_record(tmp_path: Path) -> None:
    """A batch crossing max_bytes (and a day change) rotates at the same record as writing record by record."""
    from gswarm.logs.jsonlog import encoded_of

    batches = [ev.OutputBatch("n1", T0 + i * 20_000, 1, tuple(f"b{i} line {j:03d} " + "y" * 40 for j in range(30)))
               for i in range(6)]  # 20,000 s apart: some batches start a new UTC day
    a, b = JsonLog(tmp_path / "a", max_bytes=1500, backups=1000), JsonLog(tmp_path / "b", max_bytes=1500, backups=1000)
    for batch in batches:
        a.write(records_of(batch))
        b.write_encoded(encoded_of(batch))
    sizes = lambda jl: [p.stat().st_size for p in jl.rotated()] + [jl.path.stat().st_size]
    assert sizes(a) == sizes(b) and len(sizes(a)) > 10
    assert [r["message"] for r in iter_records(tmp_path / "a")] == [r["message"] for r in iter_records(tmp_path / "b")]
    assert len(list(iter_records(tmp_path / "b"))) == 180


def test_chunk_levels_equal_line_levels_on_every_recorded_output() -> None:
    """One regex scan of a chunk gives each line the level line_level() gives it (all generations' logs,
    the failure corpus, lines with two markers and lines with none)."""
    from gswarm.logs.jsonlog import chunk_levels

    data = Path(__file__).resolve().parent / "data"
    lines = ["ERROR:x:y [INFO] z", "plain", "", " - WARNING - a [DEBUG]", "[r] 2025-06-26 10:00:33,020 CRITICAL: c"]
    for f in sorted((data / "progress").glob("*.*")) + sorted((data / "failures").glob("*.txt")):
        lines += f.read_text(encoding="utf-8", errors="replace").splitlines()
    want = [line_level(t) for t in lines]
    assert [line_level(t) for t in lines] == [_slow_level(t) for t in lines]  # the bounded search is exact
    assert chunk_levels(lines, "\n".join(lines)) == want
    assert {"debug", "info", "warning", "error", "critical"} <= set(want)
    assert chunk_levels(["a", "b"], "a\nb") == ["info", "info"]
    # only the lines holding a non-INFO level word are looked at: first/last line, a word twice on a line,
    # adjacent lines, empty lines, and random mixes agree with line_level exactly
    edge = ["[ERROR] a ERROR", "[WARNING] w", "", "x [DEBUG]", "ok [INFO]", "CRITICAL: c", "[CRITICAL]"]
    assert chunk_levels(edge, "\n".join(edge)) == [line_level(t) for t in edge]
    rnd = random.Random(7)
    words = ["[INFO]", "[ERROR]", "ERROR:", " - WARNING - ", "[WARN]", "WARN:", "[DEBUG]", "CRITICAL", "x", ""]
    for _ in range(300):
        chunk = ["".join(rnd.choice(words) for _ in range(rnd.randint(0, 3))) for _ in range(rnd.randint(1, 12))]
        assert chunk_levels(chunk, "\n".join(chunk)) == [line_level(t) for t in chunk], chunk


def _slow_level(text: str) -> str:
    """The definition: the leftmost match of the full marker pattern anywhere in the line."""
    from gswarm.logs._levels import _LEVEL

    m = _LEVEL.search(text)
    lvl = next(g for g in m.groups() if g).lower() if m else "info"
    return "warning" if lvl == "warn" else lvl


async def test_flood_is_written_early_instead_of_dropped(tmp_path: Path) -> None:
    """30 batches of 1,000 lines in one loop turn (a flood) with max_buffer 5,000: the half-full buffer is
    flushed between them, so every line reaches the file and nothing is dropped."""
    bus = ev.EventBus()
    svc = JsonLogService(bus, FakeClock(start=T0), JsonLog(tmp_path / "logs"), max_buffer=5000)
    for b in range(30):
        for i in range(1000):
            bus.publish(notice(f"b{b} l{i}", T0 + b))
        await asyncio.sleep(0)  # the reader yields to the loop between reads, as NodeProcess does
    svc.flush()
    assert svc.dropped == 0
    msgs = [r["message"] for r in iter_records(tmp_path / "logs")]
    assert len(msgs) == 30_000 and msgs[0] == "b0 l0" and msgs[-1] == "b29 l999"


def test_log_files_and_store_are_private(tmp_path: Path) -> None:
    """The JSON log (current, rotated, gzipped), its folder and the SQLite store are 0600/0700: they hold the node's output."""
    import os
    import stat

    from gswarm.logs.store import Store

    (tmp_path / "logs").mkdir(mode=0o755)
    os.chmod(tmp_path / "logs", 0o755)
    jl = JsonLog(tmp_path / "logs", max_bytes=500, backups=10)
    jl.write([rec(i, T0 + i) for i in range(20)])
    jl.compress()
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)
    assert mode(tmp_path / "logs") == 0o700
    files = [jl.path] + jl.rotated()
    assert len(files) > 3 and {mode(p) for p in files} == {0o600}
    assert any(p.name.endswith(".gz") for p in files)
    store = Store(tmp_path / "gswarm.db")
    store.write([ev.StateChanged("n1", T0, ev.NodeState.STOPPED, ev.NodeState.STARTING)])
    assert {mode(p) for p in tmp_path.glob("gswarm.db*")} == {0o600}
    store.close()


def test_unknown_category_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"--category 'bogus': not a category of the JSON log; use a source \(output, "
                                          r"supervisor, progress, notice\) or a failure category \(api_key_pending, .*cuda_oom"):
        LogFilter(category="bogus")
    assert LogFilter(category="cuda_oom").category == "cuda_oom" and LogFilter(category="output").category == "output"


def test_reading_while_a_rotated_file_is_compressed_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """Regression: `gswarm logs` (or the API) listing the files just before the service's tidy() gzipped a
    rotated file read 2 of 5 records (the plain file was gone when opened); listed during the moment both
    X and X.gz exist, it would read the records twice."""
    from gswarm.logs._jsonread import read_lines

    jl = JsonLog(tmp_path, max_bytes=400, backups=5)
    jl.write(records_of(ev.OutputBatch("n1", T0, 7, tuple(f"INFO:x:line {i}" for i in range(5)))))
    assert len(jl.rotated()) == 1 and not jl.rotated()[0].name.endswith(".gz")
    listed = log_files(tmp_path)
    assert jl.compress() == 1  # between the listing and the reading
    assert [json.loads(x)["message"] for p in listed for x in read_lines(p)] == [f"INFO:x:line {i}" for i in range(5)]
    rotated = jl.rotated()[0]
    plain = rotated.with_name(rotated.name[:-3])
    with gzip.open(rotated, "rb") as src:
        plain.write_bytes(src.read())  # the moment inside compress(): both present
    assert [r["message"] for r in iter_records(tmp_path)] == [f"INFO:x:line {i}" for i in range(5)]


def test_encoded_chunks_equal_json_dumps_on_random_ascii() -> None:
    """The whole-chunk replace path (printable ASCII without quote or backslash) and the per-line path
    agree with json.dumps on random chunks mixing the characters JSON escapes and those it does not."""
    from gswarm.logs.jsonlog import encoded_of

    rnd = random.Random(11)
    alphabet = ['a', ' ', '[INFO]', '~', '"', '\\', '\t', '\x01', '\x7f', '{', 'é', '\ufffd', '']
    for i in range(400):
        texts = tuple("".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 6))) for _ in range(rnd.randint(1, 5)))
        batch = ev.OutputBatch("n1", T0 + i, 9, texts)
        want = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records_of(batch)]
        assert b"".join(encoded_of(batch)[0][2]).decode().split("\n")[:-1] == want, texts
        with_bytes = ev.OutputBatch("n1", T0 + i, 9, texts, data="\n".join(texts).encode())  # as NodeProcess sends it
        assert b"".join(encoded_of(with_bytes)[0][2]).decode().split("\n")[:-1] == want, texts


def test_output_batches_from_the_splitter_carry_their_bytes_and_encode_the_same() -> None:
    from gswarm.logs.jsonlog import encoded_of
    from gswarm.supervisor.process import publish_batch
    from gswarm.supervisor.stream import LineSplitter

    bus, seen = ev.EventBus(), []
    bus.subscribe(seen.append)
    for chunk in (b"[INFO] a\n[INFO] b\npartial", b" rest\n", b"caf\xc3\xa9 \"q\"\n", b"bad \xff\n"):
        batch = LineSplitter().feed(chunk)
        publish_batch(bus, "n1", 5, batch, T0)
    assert [e.data for e in seen] == [b"[INFO] a\n[INFO] b", b" rest", "café \"q\"".encode(), None]
    for e in seen:
        assert b"".join(encoded_of(e)[0][2]).decode().split("\n")[:-1] == [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records_of(e)]


def test_a_line_holding_a_newline_is_still_one_record_with_its_own_level() -> None:
    """The splitter never puts "\\n" in a line, but an OutputBatch built elsewhere might: the chunk-level paths
    (level by newline count, records by one replace) must not shift levels or split records (review finding)."""
    from gswarm.logs.jsonlog import chunk_levels, encoded_of

    texts = ("x\n[ERROR] y", "ok", "z")
    assert chunk_levels(texts, "\n".join(texts)) == ["error", "info", "info"]
    for batch in (ev.OutputBatch("n1", T0, 1, ("a\nb",)), ev.OutputBatch("n1", T0, 1, ("a\nb", "c"), data=b"a\nb\nc"),
                  ev.OutputBatch("n1", T0, 1, texts)):
        groups = encoded_of(batch)
        want = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records_of(batch)]
        assert b"".join(groups[0][2]).decode().split("\n")[:-1] == want and groups[0][3] == len(batch.texts)


def test_a_lone_surrogate_in_a_notice_does_not_lose_the_buffer(tmp_path: Path) -> None:
    """A notice naming a path decoded with surrogateescape: written as a JSON \\u escape, it reads back the same,
    and the output buffered with it is written too (before: UnicodeEncodeError, the whole flush lost)."""
    bus, clock = ev.EventBus(), FakeClock(start=T0)
    svc = JsonLogService(bus, clock, JsonLog(tmp_path / "logs"))
    bus.publish(notice("INFO:x:before"))
    bus.publish(ev.Notice("n1", T0, "disk", ev.Severity.WARNING, "cannot write /tmp/\udcff.log"))
    bus.publish(notice("INFO:x:after"))
    assert svc.flush() == 3
    assert [r["message"] for r in iter_records(tmp_path / "logs")] == ["INFO:x:before", "cannot write /tmp/\udcff.log",
                                                                       "INFO:x:after"]


def test_api_log_tail_while_a_rotated_file_is_compressed(tmp_path: Path) -> None:
    """The API's newest-first reader (api/logfile.py) had its own listing: it read both X and X.gz during a
    compression (records twice), and a plain file gone since the listing was an uncaught FileNotFoundError."""
    from gswarm.api import logfile
    from gswarm.logs._reverse import lines_newest_first
    from gswarm.logs._jsonread import compressed_twin

    jl = JsonLog(tmp_path / "logs", max_bytes=400, backups=5)
    jl.write(records_of(ev.OutputBatch("n1", T0, 7, tuple(f"INFO:x:line {i}" for i in range(5)))))
    rotated = jl.rotated()[0]
    with gzip.open(rotated.with_name(rotated.name + ".gz"), "wb") as dst:
        dst.write(rotated.read_bytes())  # the moment inside compress(): X and X.gz both present
    want = [f"INFO:x:line {i}" for i in range(5)]
    assert [r["message"] for r in logfile.tail(tmp_path, 100)[0]] == want
    listed = logfile.log_files(tmp_path)
    rotated.unlink()  # compress() finished after the listing
    assert [r["message"] for p in reversed(listed) for r in map(json.loads, reversed(list(lines_newest_first(p, 100, compressed_twin))))] == want
