"""The chunk-level fast paths (one search over ``OutputBatch.joined``) give exactly the per-line results.

Progress (``ProgressTracker.feed_chunk``) on the recorded output of every generation, and the live
classifier (``StreamClassifier.on_lines``) on every failure-corpus log, cut into chunks of several
sizes: same updates, same live incidents, same classification at exit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gswarm import events as ev
from gswarm.ansi import strip_ansi
from gswarm.logs.classify import Classifier
from gswarm.monitor.progress import ProgressTracker

DATA = Path(__file__).resolve().parent / "data"
PROGRESS = [("E0", "e0_stdout.txt"), ("E1", "e1_stdout.txt"), ("E2", "e2_swarm.log"), ("E3", "e3_swarm_launcher.log"),
            ("E3", "e3_training_fierce_silent_owl.log"), ("E4", "e4_swarm_launcher.log"),
            ("E5", "e5_swarm_launcher.log"), ("E6", "e6_stdout.txt")]
CORPUS = sorted((DATA / "failures").glob("*.txt")) + sorted((DATA / "failures_extra").glob("*.txt"))


def chunks(lines: list[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(lines[i:i + size]) for i in range(0, len(lines), size)]


def key(u: ev.ProgressUpdate) -> tuple:
    return (u.kind, u.round, u.stage, u.round_total, u.animal, u.peer_id, u.detail, u.advanced)


@pytest.mark.parametrize("gen,name", PROGRESS, ids=[n for _, n in PROGRESS])
@pytest.mark.parametrize("size", [1, 7, 500])
def test_progress_chunks_keep_the_state_of_lines(gen: str, name: str, size: int) -> None:
    """Chunks of one line give exactly the per-line updates; bigger chunks keep only the last fact of each
    rule per chunk (progress is state, issue #18) and end in exactly the same state."""
    lines = [strip_ansi(x) for x in (DATA / "progress" / name).read_text(encoding="utf-8", errors="replace").splitlines()]
    one, many = ProgressTracker("n", gen), ProgressTracker("n", gen)
    want = [key(u) for i, t in enumerate(lines) if (u := one.feed(t, 1000.0 + i)) is not None]
    got = []
    for i, chunk in enumerate(chunks(lines, size)):
        got += [key(u) for u in many.feed_chunk(ev.OutputBatch("n", 0.0, 1, chunk).joined, 1000.0 + i * size)]
    assert len(want) >= 3
    if size == 1:
        assert got == want
    else:
        assert {k[0] for k in got} <= {k[0] for k in want} and len(got) <= len(want)
        positional = [k for k in want if k[0] in ("join", "round", "stage", "stage_done")]
        assert [k for k in got if k[0] in ("join", "round", "stage", "stage_done")][-1][:7] == positional[-1][:7]
    assert (many.round, many.stage, many.animal, many.peer_id, many.best) == (one.round, one.stage, one.animal, one.peer_id, one.best)


def test_progress_chunk_keeps_the_last_round_per_rule() -> None:
    t = ProgressTracker("n", "E6")
    joined = "\n".join(["", "noise", "Starting round: 7/100. Starting round: 8/100.", "", "Starting round: 9/100.",
                        "Joining round: 9", "Starting round: nine/100.", "x"])
    assert [(u.kind, u.round, u.advanced) for u in t.feed_chunk(joined, 5.0)] == [("round", 9, True), ("join", 9, False)]
    assert (t.round, t.round_total) == (9, 100)


def _case_lines(path: Path) -> list[str]:
    raw = path.read_text(encoding="utf-8", errors="replace")
    return [strip_ansi(x) for x in raw.partition("\n---\n")[2].splitlines()]


@pytest.mark.parametrize("path", CORPUS, ids=[p.parent.name[-5:] + p.name[:3] for p in CORPUS])
def test_live_classifier_chunks_equal_lines(path: Path) -> None:
    lines = _case_lines(path)
    clf = Classifier.from_package()
    for size in (3, 64, 4096):
        one, many, live = clf.stream(None), clf.stream(None), clf.stream(None, live_only=True)
        want = [(c.category, c.rule_id, c.evidence) for i, t in enumerate(lines)
                if (c := one.on_line(t, 100.0 + i)) is not None]
        got, got_live = [], []
        for i, chunk in enumerate(chunks(lines, size)):
            got += [(c.category, c.rule_id, c.evidence) for c in many.on_lines(chunk, 100.0 + i * size)]
            got_live += [(c.category, c.rule_id, c.evidence) for c in live.on_lines(chunk, 100.0 + i * size)]
        # live rules with a time window see one timestamp per chunk: compare incidents only when none has a window
        if not any(r.live_window for r in one._live):
            assert got == want
        assert got_live == got  # the health service's live_only stream skips chunks, never an incident
        assert many.lines_seen == one.lines_seen == live.lines_seen == len(lines)
        a, b = one.result(), many.result()
        assert (a.category, a.rule_id, a.evidence) == (b.category, b.rule_id, b.evidence)


def test_live_incident_found_in_a_chunk_of_ordinary_lines() -> None:
    """A chunk of 10,000 ordinary lines with one chain rejection burst in the middle: the live rule fires."""
    clf = Classifier.from_package()
    filler = [f"[2025-11-07 12:00:00,123][genrl.logging_utils.global_defs][INFO] - Training round: {i} stage: 0"
              for i in range(5000)]
    burst = [line for line in _case_lines(next((DATA / "failures").glob("029-*.txt"))) if line.strip()]
    s, live = clf.stream("E6"), clf.stream("E6", live_only=True)
    found, found_live = [], []
    for _ in range(4):
        found += s.on_lines(tuple(filler + burst + filler), 10.0)
        found_live += live.on_lines(tuple(filler + burst + filler), 10.0)
        assert live.on_lines(tuple(filler), 11.0) == []
    assert s.lines_seen == 4 * (10000 + len(burst))
    assert [(c.category, c.evidence) for c in found_live] == [(c.category, c.evidence) for c in found]
    with pytest.raises(RuntimeError, match="live_only"):
        live.result()
    per_line = clf.stream("E6")
    want = [c for _ in range(4) for t in filler + burst + filler if (c := per_line.on_line(t, 10.0)) is not None]
    assert [c.category for c in found] == [c.category for c in want] == [ev.Category.CHAIN_SUBMIT_REJECTED]


def test_live_only_stream_fires_on_a_regex_anchor_through_its_gate_words() -> None:
    """chain_submit_upstream's anchor is a regex (5xx on /api/submit-reward): the live_only stream must look
    at a chunk holding it through the regex's gate words, or the incident is never seen (review finding)."""
    clf = Classifier.from_package()
    line = ("requests.exceptions.HTTPError: 500 Server Error: Internal Server Error for url: "
            "http://localhost:3000/api/submit-reward")
    got = {}
    for live_only in (False, True):
        s = clf.stream("E6", live_only=live_only)
        got[live_only] = [c.rule_id for i in range(3) for c in s.on_lines((f"[INFO] filler {i}",) * 5 + (line,), float(i))]
    assert got[True] == got[False] == ["chain_submit_upstream"]


def test_live_words_are_the_live_anchors_minimised() -> None:
    """A word holding another is dropped: the shorter one already lets every such chunk through. A regex anchor
    gives its literal prefix when it has one of 6+ characters ("HTTPError: 5"), not the weak gate word "Error"
    that every Python exception line holds (issue #18). Exact set for E6 and for E0 (no login/chain-registration rules)."""
    clf = Classifier.from_package()
    assert clf.stream("E6", live_only=True)._live_words.words == (
        "AA24 signature error", "Error occurred during evaluation, continuing", "Error occurred during training, continuing",
        "Failed to call submitReward: InvalidRoundNumber", "Failed to submit to chain.", "HTTPError: 5",
        "This is most likely transient and will recover.", "Unknown error calling submit", "Waiting for API key to be activated...")
    assert clf.stream("E0", live_only=True)._live_words.words == (
        "Failed to submit to chain.", "HTTPError: 5", "This is most likely transient and will recover.", "Unknown error calling submit")


def test_exit_classifier_tail_keeps_exactly_the_last_lines_of_a_big_batch() -> None:
    from gswarm.supervisor._classify import TAIL_LINES, ExitClassifier

    ec = ExitClassifier("E6")
    ec.feed([f"old {i}" for i in range(10)])
    texts = [f"line {i}" for i in range(TAIL_LINES + 1000)]
    ec.feed(texts)
    assert list(ec.tail) == texts[-TAIL_LINES:]
    ec.feed(["one more"])
    assert list(ec.tail) == texts[-TAIL_LINES + 1:] + ["one more"]
