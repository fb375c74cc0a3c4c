"""Micro bench: GSwarm's output path per line kind, in µs per line, in this process (no child).

Usage::

    python bench/kinds.py [--lines 200000] [--chunk 262144] [--repeat 3] [--kinds plain,progress,...]

Each kind's lines are cut into reads of ``--chunk`` bytes (a busy pipe gives reads of 64 KiB-1 MiB)
and pushed through what ``gswarm run`` does with every read: the line splitter (ANSI stripping,
``\\r`` redraws), the capture file, one ``OutputBatch`` on the bus with the services that subscribe
to output (progress parsing, health with the live classifier; the JSON log service is subscribed too but
takes no node output since issue #18) and the watcher's ``on_batch`` (exit-classifier tail; ``gswarm run``'s
console, :class:`~gswarm.cli._runview.RunView` with its writer thread, to /dev/null: not a terminal).
Rotated files are not gzipped here (``bench/peers.py`` counts that). The store
sees the progress events through its queue and writes them (as in ``gswarm run``).

Kinds: ``plain`` (genrl-style INFO lines), ``progress`` (every line ``Starting round: N/1000000.``,
E3-E6, generations.md §6.6), ``error`` (ERROR lines and Python tracebacks), ``redraw`` (tqdm ``\\r``
bars), ``ansi`` (coloured lines, four escapes each), ``crlf`` (plain lines ended by ``\\r\\n``, a pty's output). Prints µs/line (best of ``--repeat``) and the
ratio to ``plain``; issue #18 asks for every kind ≤ ~2× plain.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from gswarm.cli._runview import RunView
from gswarm.clock import SystemClock
from gswarm.config import Settings
from gswarm.events import EventBus, ProcessStarted
from gswarm.logs.jsonlog import EARLY_FLUSH_LINES, JsonLog, JsonLogService
from gswarm.logs.store import StoreService
from gswarm.monitor.health import HealthService
from gswarm.monitor.progress import ProgressService
from gswarm.supervisor._classify import ExitClassifier
from gswarm.supervisor.capture import CaptureFile
from gswarm.supervisor.process import publish_batch
from gswarm.supervisor.spec import LaunchSpec
from gswarm.supervisor.stream import LineSplitter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _flood import KINDS, line_kind  # noqa: E402  (the same lines as bench/peers.py)


def flood(kind: str, lines: int) -> bytes:
    """``lines`` lines of ``kind`` as the bytes a node would write."""
    return "".join(line_kind(kind, i) for i in range(lines)).encode()


async def run_once(data: bytes, chunk: int, folder: Path) -> tuple[float, int]:
    """(seconds, lines) to push ``data`` through the output path in reads of ``chunk`` bytes."""
    bus, clock = EventBus(), SystemClock()
    spec = LaunchSpec(argv=("python",), cwd=folder, env={}, mode="direct", generation="E4")
    jsonlog = JsonLogService(bus, clock, JsonLog(folder / "logs"))
    store = StoreService(bus, clock, folder / "gswarm.db", node="bench")
    ProgressService(bus, clock, "bench", None, "E4")
    HealthService(SimpleNamespace(bus=bus, clock=clock, settings=Settings(), node="bench", spec=spec, watcher=None))
    cap, split, exitc = CaptureFile(folder / "output.log"), LineSplitter(), ExitClassifier("E4")
    null = open("/dev/null", "w")
    view = RunView(null)  # gswarm run's console (its writer thread included), not a terminal
    bus.publish(ProcessStarted("bench", time.time(), 4242, 4242, spec.argv, "E4", "direct"))
    store.flush()
    n = 0
    t0 = time.perf_counter()
    for pos in range(0, len(data), chunk):
        batch = split.feed(data[pos:pos + chunk])
        if not batch.texts:
            continue
        ts = time.time()
        cap.write_batch(batch, ts, 4242)
        publish_batch(bus, "bench", 4242, batch, ts)
        exitc.feed(batch.texts)
        view.lines(batch, ts)
        n += len(batch.texts)
        store.flush()
        if len(jsonlog._buf) >= EARLY_FLUSH_LINES:  # what the service's early flush does on the loop
            jsonlog.flush()
    jsonlog.flush()
    assert jsonlog.dropped == 0, f"JSON log dropped {jsonlog.dropped} records"
    store.flush()
    view.close()
    elapsed = time.perf_counter() - t0
    cap.close()
    null.close()
    if store.store is not None:
        store.store.close()
    return elapsed, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--lines", type=int, default=200_000,
                    help="outputs per kind (an error traceback counts as one output of 6 lines)")
    ap.add_argument("--chunk", type=int, default=256 * 1024,
                    help="bytes per simulated read of the node's pipe (gswarm run's batches are at most 256 KiB)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per kind; the best is shown")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma list of {', '.join(KINDS)}")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds or args.lines < 1 or args.repeat < 1 or args.chunk < 1:
        ap.error(f"--kinds must be among {', '.join(KINDS)} (got {', '.join(bad) or 'none'}); "
                 "--lines, --repeat and --chunk at least 1")
    datas = {k: flood(k, args.lines) for k in kinds}
    best: dict[str, float] = {}
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="gswarm-kinds-") as tmp:
        for r in range(args.repeat):
            for k in kinds:  # alternating kinds within a round
                folder = Path(tmp) / f"{k}{r}"
                folder.mkdir()
                secs, n = asyncio.run(run_once(datas[k], args.chunk, folder))
                counts[k] = n
                best[k] = min(best.get(k, secs), secs)
    base = best.get("plain")
    print(f"best of {args.repeat}, reads of {args.chunk // 1024} KiB, console not a terminal (a shared VM varies by "
          "±10-30 % from run to run: compare kinds within one run)")
    print(f"{'kind':10s}{'lines':>10s}{'MiB':>7s}{'µs/line':>9s}{'× plain':>9s}")
    for k in kinds:
        us = best[k] / max(counts[k], 1) * 1e6
        ratio = f"{best[k] / counts[k] / (base / counts['plain']):9.2f}" if base else f"{'—':>9s}"
        print(f"{k:10s}{counts[k]:10d}{len(datas[k]) / 2**20:7.1f}{us:9.3f}{ratio}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
