"""No line kind costs much more than a plain line on the output path (issue #18), and the per-chunk fast paths
give exactly the per-line results.

Cost is checked without a stopwatch (the machine is shared): the number of Python trace events (lines and calls
executed) while one chunk of 5,000 outputs of each kind goes through the splitter, the capture, progress parsing
and the live classifier (the JSON log no longer takes node output). Before issue #18 a progress line cost ~90 of them, an error
line ~57 and a redraw ~16; a plain line costs ~0.1.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from gswarm import events as ev
from gswarm.logs import _levels
from gswarm.logs._levels import TracebackTracker, chunk_levels, line_level
from gswarm.logs.classify import Classifier
from gswarm.monitor.progress import ProgressTracker
from gswarm.supervisor.capture import CaptureFile
from gswarm.supervisor.stream import LineSplitter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from _flood import KINDS, line_kind  # noqa: E402


def _events_per_line(kind: str, tmp: Path, n: int = 5000) -> float:
    data = "".join(line_kind(kind, i) for i in range(n)).encode()
    split, cap = LineSplitter(), CaptureFile(tmp / f"{kind}.log")
    progress = ProgressTracker("n", "E4")
    live = Classifier.from_package().stream("E4", live_only=True)
    count = [0]

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        count[0] += 1
        return tracer

    sys.settrace(tracer)
    try:
        b = split.feed(data)
        cap.write_batch(b, 1.0, 1)
        e = ev.OutputBatch("n", 1.0, 1, tuple(b.texts), None if b.raws is b.texts else tuple(b.raws),
                           tuple(b.flags) if b.flags and any(b.flags) else None, data=b.data)
        progress.feed_chunk(e.joined, 1.0)
        live.on_lines(e.texts, 1.0, e.joined)
    finally:
        sys.settrace(None)
        cap.close()
    return count[0] / len(b.texts)


@pytest.mark.parametrize("kind", KINDS)
def test_python_work_per_line_does_not_depend_on_the_line_kind(kind: str, tmp_path: Path) -> None:
    budget = {"plain": 0.5, "progress": 0.5, "ansi": 0.5, "error": 4.0, "redraw": 0.5, "crlf": 0.5}[kind]
    assert _events_per_line(kind, tmp_path) < budget


def _split_all(chunks: list[bytes], long: bool) -> list[tuple]:
    s = LineSplitter(max_line=1 << 20)
    out = []
    for c in chunks:
        b = s._split_long(s._pending + c) if long else s.feed(c)  # long: the line-by-line reference
        out += list(zip(b.texts, b.raws, b.flags or [0] * len(b.texts)))
    b = s.close()
    return out + list(zip(b.texts, b.raws, b.flags or [0] * len(b.texts)))


def test_redraw_chunks_split_like_line_by_line() -> None:
    rnd = random.Random(18)
    tokens = [b"a", b"bc ", b"\r", b"\n", b"\r\n", b"\x1b[1m", b"\x1b]0;t\x07", "é🐝".encode(), b"\xff", b"\r\r", b"\n\r"]
    crlf = [b"a", b"bc ", b"\r\n", b"\r\n", b"\x1b[1m", "é🐝".encode(), b"\xff", b"\r"]  # mostly pty output: the fast path
    for i in range(3000):
        pool = crlf if i % 2 else tokens
        data = b"".join(rnd.choice(pool) for _ in range(rnd.randint(1, 60)))
        cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randint(0, 6)))) if len(data) > 1 else []
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        assert _split_all(chunks, False) == _split_all(chunks, True), data


def test_traceback_levels_per_chunk_equal_line_by_line(monkeypatch: pytest.MonkeyPatch) -> None:
    vocab = ["Traceback (most recent call last):", '  File "/x.py", line 3, in f', "    foo()", "\tbar", 'File "y"',
             "ValueError: x 12", "During handling of the above exception, another exception occurred:",
             "The above exception was the direct cause of the following exception:", "[t][x][ERROR] - boom 7",
             "[t][x][INFO] - ok 9", "", "WARNING:a:b", "plain 5", " Traceback (most recent call last):"]
    rnd = random.Random(7)
    for cap in (2000, 3, 5):
        monkeypatch.setattr(_levels, "_TB_MAX", cap)
        for _ in range(600):
            lines = [rnd.choice(vocab) for _ in range(rnd.randint(1, 40))]
            fast, ref, i, got, want = TracebackTracker(), TracebackTracker(), 0, [], []
            while i < len(lines):
                chunk = lines[i:i + rnd.randint(1, 8)]
                i += len(chunk)
                got += fast.levels("n", "s", chunk, "\n".join(chunk))
                want += ref.levels("n", "s", chunk)  # without the joined text: line by line
            assert got == want, (cap, lines)


def test_dense_levels_equal_line_level_also_with_other_digits() -> None:
    lines = [f"[2025-07-27 1{i % 10}:18:14,834][genrl][{lvl}] - step {i}" for i in range(300)
             for lvl in ("ERROR", "INFO", "WARNING")] + [f"[name] 2025-06-2{i} 10:00:33,020 DEBUG: x{i}" for i in range(9)]
    assert chunk_levels(lines, "\n".join(lines)) == [line_level(t) for t in lines]
    assert {line_level(t) for t in lines} == {"error", "info", "warning", "debug"}


def test_live_only_stream_in_an_error_flood_finds_the_same_incidents() -> None:
    clf = Classifier.from_package()
    hit = "HTTPError: 500 Server Error: Internal Server Error for url: http://localhost:3000/api/submit-reward"
    burst = [hit, "a", "b", "c", "d"] * 3  # three hits, further apart than the rule's live_gap
    filler = [line_kind("error", i).rstrip("\n") for i in range(400)]
    flood = [x for chunk in filler for x in chunk.split("\n")]
    full, live = clf.stream("E4"), clf.stream("E4", live_only=True)
    seen_full, seen_live = [], []
    for chunk in (flood, flood[:50] + burst + flood, burst, flood):
        seen_full += [(c.rule_id, c.evidence) for c in full.on_lines(tuple(chunk), 10.0)]
        seen_live += [(c.rule_id, c.evidence) for c in live.on_lines(tuple(chunk), 10.0)]
    assert seen_live == seen_full and [r for r, _ in seen_full] == ["chain_submit_upstream"] * 2  # one per burst
    assert live.lines_seen == full.lines_seen


def test_a_pty_chunk_takes_the_plain_path_and_keeps_its_bytes() -> None:
    """Script mode reads a pty: every line ends in ``\\r\\n``. Such a chunk gives the lines of its ``\\n`` twin and
    keeps its bytes for the capture (the fast path; before, every pty chunk went through the terminator split)."""
    data = "".join(line_kind("crlf", i) for i in range(300)).encode()
    b = LineSplitter().feed(data)
    want = LineSplitter().feed(data.replace(b"\r\n", b"\n"))
    assert (b.texts, b.flags, b.data) == (want.texts, None, want.data) and len(b.texts) == 300
    s = LineSplitter()
    assert s.feed(b"one\r") is not None and s.pending == 4  # maybe half of \r\n: kept
    assert s.feed(b"\ntwo\r\n").texts == ["one", "two"] and s.pending == 0
    assert (s.feed(b"50%\rdone\r\n").texts, s.pending) == (["50%", "done"], 0)  # a lone \r: a redraw
