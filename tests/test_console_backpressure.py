"""The console never stalls the supervisor (issue #18 follow-up): ``RunView`` hands its bytes to a
bounded writer thread; node output is dropped (counted, told in one line where the gap is) when stdout
does not keep up; GSwarm's own lines get through; exit drains with a bounded wait."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gswarm.cli._runview import ConsoleWriter, RunView, notice_line
from gswarm.events import NodeState, StateChanged
from gswarm.supervisor.stream import LineSplitter

from tests.helpers import stop_gracefully, wait_for


class SlowSink:
    """A sink that blocks in its first call until ``gate`` is set, then records what it is given."""

    def __init__(self) -> None:
        self.gate, self.entered = threading.Event(), threading.Event()
        self.data = bytearray()
        self.calls = 0

    def __call__(self, parts: list[bytes]) -> None:
        self.calls += 1
        self.entered.set()
        self.gate.wait(30)
        self.data += b"".join(parts)


def _stuck_writer(limit: int = 100, allowance: int = 300) -> tuple[ConsoleWriter, SlowSink]:
    sink = SlowSink()
    w = ConsoleWriter(sink, limit=limit, allowance=allowance)
    assert w.put([b"a\n"]) is True
    assert sink.entered.wait(10)  # the writer thread is now blocked inside the sink with "a\n" (2 bytes pending)
    return w, sink


def test_drops_are_counted_exactly_and_the_notice_stands_where_the_gap_is() -> None:
    w, sink = _stuck_writer()
    shown = [w.put([f"n{i:07d}\n".encode()]) for i in range(20)]  # 9 bytes each: 2 + 9*10 = 92 ≤ 100 < 101
    assert shown == [True] * 10 + [False] * 10
    assert w.put([b"E1\n"], own=True) is True  # GSwarm's own line: within limit + allowance, after the notice
    assert w.put([b"n-late\n"]) is False  # still above limit // 2 after the drop: dropped (one more gap)
    sink.gate.set()
    assert w.close(5.0) is True
    expected = (b"a\n" + b"".join(f"n{i:07d}\n".encode() for i in range(10)) + notice_line(10, 0).encode()
                + b"E1\n" + notice_line(1, 0).encode())
    assert bytes(sink.data) == expected
    assert (w.dropped_lines, w.dropped_own, w.pending) == (11, 0, 0)
    assert notice_line(12345, 0) == ("gswarm: 12,345 lines of node output not shown here (stdout was not keeping "
                                     "up); every line is in the capture: gswarm logs --category output\n")


def test_after_a_drop_node_output_waits_for_half_the_queue_to_drain() -> None:
    """Hysteresis: a reader that barely keeps up gets one notice per half queue, not one per chunk."""
    sink = SlowSink()
    w = ConsoleWriter(sink, limit=100, allowance=0)
    w.put([b"a" * 59 + b"\n"])
    assert sink.entered.wait(10)  # 60 bytes pending, being written
    line = b"b" * 29 + b"\n"
    assert w.put([line]) is True  # 90
    assert w.put([line]) is False  # 120 > 100: dropped
    assert w.put([b"c\n"]) is False  # 92 would fit, but 90 > 100 // 2: still dropping
    sink.gate.set()
    wait_for(lambda: w.pending == 0, 10, "the writer to catch up")
    assert w.put([b"d\n"]) is True
    assert w.close(5.0) is True
    assert bytes(sink.data) == b"a" * 59 + b"\n" + line + notice_line(2, 0).encode() + b"d\n"


def test_own_lines_beyond_the_allowance_are_counted_too() -> None:
    w, sink = _stuck_writer(limit=10, allowance=10)
    assert [w.put([b"E%d\n" % i], own=True) for i in range(8)] == [True] * 6 + [False] * 2  # 2 + 3*6 = 20
    sink.gate.set()
    assert w.close(5.0) is True
    assert sink.data.endswith(b"E5\n" + notice_line(0, 2).encode()) and w.dropped_own == 2


def test_the_notice_closes_a_redraw_row_in_progress() -> None:
    """A terminal showing a ``\\r`` progress row: the notice starts on a new line, and the next item (drawn
    by the view as "close the redraw row, then the line") does not add a blank line."""
    sink2 = SlowSink()
    w3 = ConsoleWriter(sink2, limit=100, allowance=0)
    w3.put([b"\r 50%\x1b[K"])
    assert sink2.entered.wait(10)
    assert w3.put([b"x" * 200]) is False
    assert w3.put([b"\nnext line\n"]) is True  # pending 9 + 11 ≤ 100: taken, after the notice
    sink2.gate.set()
    assert w3.close(5.0) is True
    assert bytes(sink2.data) == b"\r 50%\x1b[K\n" + notice_line(1, 0).encode() + b"next line\n"


def test_an_empty_node_line_after_a_notice_is_kept() -> None:
    """Only a newline that closes a redraw row is taken off after the notice, never an empty line."""
    w, sink = _stuck_writer(limit=10, allowance=0)
    assert w.put([b"x" * 20]) is False
    sink.gate.set()
    wait_for(lambda: w.pending == 0, 10, "the writer to catch up")
    assert w.put([b"\n", b"after an empty line\n"]) is True
    assert w.close(5.0) is True
    assert bytes(sink.data) == b"a\n" + notice_line(1, 0).encode() + b"\nafter an empty line\n"


def test_a_broken_pipe_turns_the_writer_off_and_close_returns_at_once() -> None:
    calls = []

    def sink(parts: list[bytes]) -> None:
        calls.append(b"".join(parts))
        raise BrokenPipeError(32, "Broken pipe")

    w = ConsoleWriter(sink)
    w.put([b"one\n"])
    wait_for(lambda: w.broken, 10, "broken")
    assert w.put([b"two\n"]) is False and w.close(5.0) is False and calls == [b"one\n"]


def test_close_is_bounded_when_stdout_is_stuck() -> None:
    w, sink = _stuck_writer()
    w.put([b"last line\n"], own=True)
    t0 = time.monotonic()
    assert w.close(0.2) is False
    assert 0.15 < time.monotonic() - t0 < 2.0
    assert w.put([b"after close\n"], own=True) is False
    sink.gate.set()


def test_runview_on_a_full_pipe_returns_at_once_and_keeps_order() -> None:
    """A real pipe nobody reads: the view's calls return (the loop is never blocked), node lines beyond the
    bound are dropped and counted, the event line written during the stall comes through in order."""
    r, wfd = os.pipe()
    out = os.fdopen(wfd, "w", encoding="utf-8")
    view = RunView(out, limit=64 << 10, allowance=4 << 10)
    assert view.writer is not None and view.tty is False
    split = LineSplitter()
    total, t0 = 0, time.monotonic()
    for chunk in range(40):  # 40 × 1000 lines × 16 bytes = 640 KB: far beyond pipe (64 KiB) + queue (64 KiB)
        batch = split.feed(b"".join(b"node line %06d\n" % (chunk * 1000 + i) for i in range(1000)))
        view.lines(batch, 0.0)
        total += len(batch)
    view.event(StateChanged("n", 0.0, NodeState.RUNNING, NodeState.STOPPING, "stop (signal)"))
    assert time.monotonic() - t0 < 5.0 and total == 40_000  # it did not wait for a reader
    got = bytearray()
    reader = threading.Thread(target=lambda: got.extend(_read_all(r)))
    reader.start()
    assert view.close(10.0) is True
    out.close()
    reader.join(10)
    text = got.decode()
    assert _walk(text, r"node line (\d{6})") == (total, total - text.count("\nnode line ") - 1)
    assert text.endswith("gswarm state RUNNING → STOPPING (stop (signal))\n")


def _walk(text: str, node_line: str) -> tuple[int, int]:
    """Check that every gap in the numbered node lines of ``text`` is told by a notice right there with
    its exact size; returns (lines accounted for, lines the notices say were not shown)."""
    expect = untold = 0
    for line in text.splitlines():
        m = re.fullmatch(node_line, line) or re.search(node_line, line)
        if m:
            assert int(m.group(1)) == expect, f"line {m.group(1)} where {expect} was expected (a gap nobody told)"
            expect += 1
            continue
        n = re.fullmatch(r"gswarm: ([\d,]+) lines of node output not shown here \(stdout was not keeping up\); "
                         r"every line is in the capture: gswarm logs --category output(?: --state-dir \S+)?", line)
        if n:
            count = int(n.group(1).replace(",", ""))
            assert count > 0
            expect, untold = expect + count, untold + count
    return expect, untold


def _read_all(fd: int) -> bytes:
    parts = []
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            os.close(fd)
            return b"".join(parts)
        parts.append(data)


FLOOD_LINES = 200_000
_EMU_NODE = '''"""Test node: {n} plain lines, then waits to be stopped."""
import sys, time


def main(gen="", argv=None, root="."):
    w = sys.stdout.write
    for i in range({n}):
        w(f"[2025-11-07 12:00:00,123][genrl.logging_utils.global_defs][INFO] - step {{i}}: loss=0.4312 lr=0.0001\\n")
    sys.stdout.flush()
    while True:
        time.sleep(3600)
'''


def _capture_lines(state: Path) -> int:
    path = state / "logs" / "default" / "output.log"
    try:
        return path.read_bytes().count(b"] - step ")
    except FileNotFoundError:
        return 0


@pytest.mark.timeout(120)
def test_gswarm_run_with_a_stdout_nobody_reads_keeps_supervising(tmp_path: Path) -> None:
    """The acceptance test: ``gswarm run`` whose stdout pipe is full while the node floods 200,000 lines.
    The capture gets every line, ``gswarm status`` answers and ``gswarm stop`` (the control socket, served
    by the loop) stops the node; then the pipe is read: the notice counts exactly the lines not shown."""
    co, state = tmp_path / "co", tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")}
    init = subprocess.run([sys.executable, "-m", "gswarm", "emulate", "init", str(co), "--generation", "E4",
                           "--logged-in"], capture_output=True, text=True, timeout=60, env=env)
    assert init.returncode == 0, init.stdout + init.stderr
    (co / ".gswarm-emulator" / "emu_node.py").write_text(_EMU_NODE.format(n=FLOOD_LINES))
    base = ["--state-dir", str(state)]
    with open(tmp_path / "err.txt", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gswarm", "run", "--rl-swarm-dir", str(co), *base,
                                 "--no-auto-setup", "--no-api"], stdout=subprocess.PIPE, stderr=err, env=env,
                                start_new_session=True)
    try:
        try:
            wait_for(lambda: _capture_lines(state) == FLOOD_LINES, 90, "every flood line in the capture", step=0.1)
        except AssertionError:
            raise AssertionError(f"{_capture_lines(state)} lines in the capture; gswarm run said: "
                                 f"{(tmp_path / 'err.txt').read_text()[-2000:]}") from None
        st = subprocess.run([sys.executable, "-m", "gswarm", "status", *base, "--json"], capture_output=True,
                            text=True, timeout=60, env=env)
        assert st.returncode == 0 and '"state": "RUNNING"' in st.stdout, st.stdout + st.stderr
        stop = subprocess.run([sys.executable, "-m", "gswarm", "stop", *base], capture_output=True, text=True,
                              timeout=60, env=env)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert proc.poll() is None  # still supervising, stdout still unread
        got = bytearray()
        reader = threading.Thread(target=lambda: got.extend(proc.stdout.read()))  # type: ignore[union-attr]
        reader.start()
        stop_gracefully(proc)
        reader.join(30)
    finally:
        stop_gracefully(proc)
    text = got.decode("utf-8", "replace")
    shown = len(re.findall(r"\] - step \d+: loss", text))
    assert _walk(text, r"\] - step (\d+): loss") == (FLOOD_LINES, FLOOD_LINES - shown) and shown > 0, text[-2000:]
    assert "gswarm state STOPPING → STOPPED" in text[text.rindex("not shown here"):]


def test_a_terminal_gets_the_same_bytes_as_before_through_the_writer() -> None:
    """Through the writer thread on a real pty (raw mode), a terminal receives exactly what the synchronous
    view writes: colours, ``\\r`` redraws drawn in place, Rich-styled ``gswarm`` lines, ``node| `` prefixes."""
    import io
    import tty

    class MemTty(io.StringIO):
        def isatty(self) -> bool:
            return True

    chunks = [b"\x1b[32mgreen\x1b[0m line\n", b" 10%|#  |\r 50%|#####|\r", b"100%|##########|\ndone\n",
              b"plain \xc3\xa9t\xc3\xa9\n", b"\r 20%|##|\r"]

    def drive(view: RunView) -> None:
        split = LineSplitter()
        for i, chunk in enumerate(chunks):
            view.lines(split.feed(chunk), 0.0)
            if i == 1:
                view.event(StateChanged("n", 0.0, NodeState.RUNNING, NodeState.STOPPING, "stop (signal)"))
        view.say("after a redraw")
        view.multi = True
        view.node_lines("n2")(split.feed(b"from two\n"), 0.0)

    master, slave = os.openpty()
    tty.setraw(slave)
    out = os.fdopen(slave, "w", encoding="utf-8")
    threaded = RunView(out)
    assert threaded.writer is not None and threaded.tty is True
    drive(threaded)
    assert threaded.close(10.0) is True
    got = bytearray()
    while not got.endswith(b"n2| from two\n"):
        got += os.read(master, 1 << 16)
    out.close()
    os.close(master)
    mem = MemTty()
    drive(RunView(mem))
    assert got.decode() == mem.getvalue()
    assert "\r 10%|#  |\x1b[K\n\x1b[2mgswarm\x1b[0m state RUNNING → STOPPING" in got.decode()  # redraw, then closed


def test_gswarm_run_exits_on_sigterm_although_nobody_ever_reads_its_stdout(tmp_path: Path) -> None:
    """A stuck stdout must not keep ``gswarm run`` from exiting: the drain waits its 2 s, then gives up."""
    co, state = tmp_path / "co", tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSWARM_")}
    init = subprocess.run([sys.executable, "-m", "gswarm", "emulate", "init", str(co), "--generation", "E4",
                           "--logged-in"], capture_output=True, text=True, timeout=60, env=env)
    assert init.returncode == 0, init.stdout + init.stderr
    lines = 60_000  # ~6 MB: more than the pipe (64 KiB) and the queue (4 MiB) hold
    (co / ".gswarm-emulator" / "emu_node.py").write_text(_EMU_NODE.format(n=lines))
    with open(tmp_path / "err.txt", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gswarm", "run", "--rl-swarm-dir", str(co), "--state-dir",
                                 str(state), "--no-auto-setup", "--no-api"], stdout=subprocess.PIPE, stderr=err,
                                env=env, start_new_session=True)
    try:
        wait_for(lambda: _capture_lines(state) == lines, 90, "every flood line in the capture", step=0.1)
        proc.terminate()  # the gswarm run this test started
        t0 = time.monotonic()
        code = proc.wait(30)
        took = time.monotonic() - t0
    finally:
        stop_gracefully(proc)
        proc.stdout.close()  # type: ignore[union-attr]
    assert code == 0 and 2.0 <= took < 20.0, (code, took, (tmp_path / "err.txt").read_text()[-2000:])


def test_the_notice_names_the_state_dir_so_its_command_can_be_pasted() -> None:
    """A newcomer ran the notice's `gswarm logs --category output` as printed and got "no JSON log in
    ~/.local/state/gswarm/logs": the run had used --state-dir (issue #18, newcomer trial)."""
    assert notice_line(3, 0, "--state-dir '/tmp/my state'") == (
        "gswarm: 3 lines of node output not shown here (stdout was not keeping up); every line is in the capture: "
        "gswarm logs --category output --state-dir '/tmp/my state'\n")
    r, w = os.pipe()
    try:
        view = RunView(os.fdopen(w, "w", closefd=False))
        view.state_dir_is("/tmp/my state")
        assert view.writer is not None and view.writer.logs_args == "--state-dir '/tmp/my state'"
        view.close()
    finally:
        os.close(r)
        os.close(w)


def test_log_records_to_a_stderr_nobody_reads_never_block_and_the_gap_is_told() -> None:
    """GSwarm's own ``logging`` went to stderr with a synchronous StreamHandler: with stderr stuck (journald
    as a service) the event loop stopped at its next warning. Through StderrLogHandler 3,000 records
    return at once although the pipe is full; what was dropped is told by count where the gap is, and every
    record is either written or counted."""
    import logging

    from gswarm.cli._runview import StderrLogHandler

    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)  # like a journald stream socket: writes block
    handler = StderrLogHandler(w, limit=4096)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("gswarm.test_stderr")
    log.propagate = False
    log.addHandler(handler)
    done = threading.Event()

    def flood() -> None:
        for i in range(3000):
            log.warning("health check %d is late", i)
        done.set()

    threading.Thread(target=flood, daemon=True).start()
    try:
        assert done.wait(30), "logging blocked on a stderr nobody reads"
    finally:
        log.removeHandler(handler)
    dropped = handler.writer.dropped_own
    assert 0 < dropped < 3000
    reader = threading.Thread(target=lambda: out.append(_read_all(r)), daemon=True)
    out: list[bytes] = []
    reader.start()
    handler.finish(10)
    os.close(w)
    reader.join(10)
    text = out[0].lstrip(b"x").decode()
    written = [line for line in text.splitlines() if line.startswith("WARNING gswarm.test_stderr: health check ")]
    assert len(written) + dropped == 3000
    notice = f"gswarm: {dropped:,} of GSwarm's log messages dropped here (stderr was not keeping up)"
    assert text.splitlines()[-1] == notice


def test_gswarm_run_logs_to_stderr_through_the_queue() -> None:
    """What ``gswarm run`` installs (``_runmain.run_main``): the root logger writes to stderr through
    StderrLogHandler, WARNING and up, in the old format; removing it writes what was queued. Starting the
    API (uvicorn's dictConfig closes every handler) must not silence it (newcomer trial: every warning of
    a run with the API on was lost)."""
    code = ("import logging\n"
            "from gswarm.cli._runview import StderrLogHandler, install_stderr_log, remove_stderr_log\n"
            "h = install_stderr_log()\n"
            "assert isinstance(h, StderrLogHandler) and logging.getLogger().handlers == [h]\n"
            "logging.getLogger('gswarm.x').info('not shown')\n"
            "logging.getLogger('gswarm.x').warning('disk %s is full', '/srv')\n"
            "import uvicorn.config, logging.config\n"
            "logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)\n"  # what starting the API does
            "logging.getLogger('gswarm.y').warning('after the API started')\n"
            "remove_stderr_log(h)\n"
            "assert logging.getLogger().handlers == []\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stderr == "WARNING gswarm.x: disk /srv is full\nWARNING gswarm.y: after the API started\n"
