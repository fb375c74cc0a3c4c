"""JSON-log record shape of issue #18: compact records (no ``ts`` beside ``ts_unix``, no defaults), old files still
read, progress records hidden by ``gswarm logs`` unless asked for."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from gswarm import events as ev
from gswarm.api import logfile
from gswarm.cli import status as status_cli
from gswarm.logs._jsonread import LogFilter, iter_records, tail_records
from gswarm.logs.jsonlog import JsonLog, encoded_of

T0 = 1_700_000_000.0
LINE = "[2025-07-27 16:18:14,834][genrl.logging_utils.global_defs][INFO] - Starting round: 30512/1000000. ok"
OLD = [  # as written before issue #18
    {"ts": "2023-11-14T22:13:20.000000+00:00", "ts_unix": T0, "node": "n1", "level": "info", "category": "output",
     "message": "old line", "pid": 7, "kind": "output", "stream": "stdout"},
    {"ts": "2023-11-14T22:13:21.000000+00:00", "ts_unix": T0 + 1, "node": "n1", "level": "info", "category": "progress",
     "message": "round round=5 stage=None", "pid": None, "kind": "progress", "data": {"round": 5, "stage": None, "advanced": False}},
]


def test_record_of_a_line_is_less_than_twice_the_line() -> None:
    """Regression: ~3.2x the line (ISO ts beside ts_unix, category beside kind, spaces, level/stream defaults)."""
    assert len(LINE) == 100
    batch = ev.OutputBatch("default", T0 + 0.123456, 12345, (LINE,) * 10)
    size = sum(map(len, encoded_of(batch)[0][2])) / 10
    assert size / len(LINE) < 1.9, size
    rec = json.loads(b"".join(encoded_of(batch)[0][2]).splitlines()[0])
    assert rec == {"ts_unix": T0 + 0.123456, "node": "default", "kind": "output", "pid": 12345, "message": LINE}


def test_old_and_new_records_read_alike(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    with gzip.open(logs / "gswarm.jsonl.20231114T221330Z.gz", "wt") as fh:  # an old rotated file
        fh.write("".join(json.dumps(r) + "\n" for r in OLD))
    jl = JsonLog(logs)
    jl.write_encoded(encoded_of(ev.OutputBatch("n1", T0 + 2, 8, ("new line", "Traceback (most recent call last):"), stream="stderr")))
    recs = list(iter_records(logs))
    assert [(r["message"], r["category"], r["level"], r.get("stream")) for r in recs] == [
        ("old line", "output", "info", "stdout"), ("round round=5 stage=None", "progress", "info", None),
        ("new line", "output", "info", "stderr"), ("Traceback (most recent call last):", "output", "error", "stderr")]
    assert [r["message"] for r in recs if LogFilter(category="output").match(r)] == ["old line", "new line", "Traceback (most recent call last):"]
    assert [r["message"] for r in tail_records(logs, LogFilter(level="error").match, 5)] == ["Traceback (most recent call last):"]
    api = logfile.tail(tmp_path, 10)[0]
    assert [(r["message"], r["category"], r["level"]) for r in api][-2:] == [
        ("new line", "output", "info"), ("Traceback (most recent call last):", "output", "error")]


def test_gswarm_logs_hides_progress_unless_asked(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "gswarm.jsonl").write_text("".join(json.dumps(r) + "\n" for r in OLD))
    app = typer.Typer()
    status_cli.register(app)

    def messages(*extra: str) -> list[str]:
        res = CliRunner().invoke(app, ["logs", "--json", "--state-dir", str(tmp_path), *extra], catch_exceptions=False)
        assert res.exit_code == 0, res.stdout
        return [json.loads(x)["message"] for x in res.stdout.splitlines()]

    assert messages() == ["old line"]
    assert messages("--category", "progress") == ["round round=5 stage=None"]
    assert messages("--limit", "5") == ["old line"]


def test_rotation_names_stay_in_write_order_after_pruning_in_the_same_second(tmp_path: Path) -> None:
    """Regression: a rotation after the oldest file of the same second was pruned reused its name, so the
    newest file sorted first (``gswarm logs`` and the tail read them out of order)."""
    jl = JsonLog(tmp_path, max_bytes=10, backups=2)
    for i in range(6):
        jl.write_encoded(encoded_of(ev.OutputBatch("n1", T0, 1, (f"line {i}",))))
        jl.rotate(T0)
        jl.prune(T0)
    assert [json.loads(p.read_text())["message"] for p in jl.rotated()] == ["line 4", "line 5"]


def test_whole_chunk_escape_equals_json_dumps_per_record() -> None:
    """The one-escape path for chunks with quotes (tracebacks) gives exactly json.dumps of each record, and
    chunks holding a backslash or NUL (where "\\u0000" could be ambiguous) still do through the per-line path."""
    import random

    from gswarm.logs.jsonlog import records_of

    rnd = random.Random(18)
    alphabet = ['"', "\t", "\x01", "é", "🐝", "a", "File ", " ", "\\", "\x00", "\\u0000", "\udcff", "ERROR"]
    for i in range(400):
        texts = tuple("".join(rnd.choice(alphabet[: 9 if i % 2 else 13]) for _ in range(rnd.randint(0, 12)))
                      for _ in range(rnd.randint(1, 6)))
        batch = ev.OutputBatch("n1", T0 + i, 9, texts, stream="stderr")
        want = [json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace")
                for r in records_of(batch)]
        assert b"".join(encoded_of(batch)[0][2]).split(b"\n")[:-1] == want, texts
