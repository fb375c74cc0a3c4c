"""The flood child of the benches: ``N`` lines of one kind on stdout, then its own elapsed time in a file.

Stdlib only: it runs as a script (``python _flood.py CONFIG.json``, bare / supervisord / PM2) and as
the ``emu_node`` module of an emulated checkout (``main(gen, argv, root)``, reading
``<root>/.gswarm-emulator/flood.json``; how ``gswarm run`` starts it in direct mode). CONFIG:
``{"kind": str, "lines": int, "result": path, "cpu": int | null, "write": "line" | "block"}`` (``cpu``:
pin the flood to that CPU, ``bench/peers.py --pin``; ``write``, default ``line``, see below). The result file (written temp + rename) holds
``{"elapsed": s, "cpu": s, "lines": n, "user": s, "system": s, "waits": n, "preempted": n}``: the child's own wall time from its first
write to its last flush and its own CPU time (also split into user and system: a supervisor that slows the
child's own code shows in ``user``, one that makes its writes dearer in ``system``; ``waits``: times it
blocked, e.g. on a full pipe, ``preempted``: times it was switched out while runnable) — the figure the ratios of ``bench/peers.py`` compare (issue #18), so the
supervisor's start-up and shutdown are not in it. Outputs are ~70-110 bytes each.

How they are written does not depend on the environment: ``line`` (the default) writes every output with
one ``write(2)``, as the node does: it logs through genrl's ``get_logger()`` (``logging``; e.g. E6
``code_gen_exp/src/manager.py``), whose ``StreamHandler`` flushes after each record. ``block`` fills an
8 KiB buffer of its own first. Before, the flood used ``sys.stdout`` as it came, so ``PYTHONUNBUFFERED``
in the caller's environment (set on some machines; ``gswarm run`` sets it for the node) decided between
one system call per line and one per 8 KiB: a 3x difference in the child's own time that made runners
incomparable.

Kinds: ``plain`` (genrl-style INFO line), ``progress`` (``Starting round: N/1000000.``, E3-E6,
generations.md §6.6/§7.6), ``error`` (ERROR lines, every 7th a 6-line Python traceback), ``redraw``
(tqdm ``\\r`` bars), ``ansi`` (coloured INFO lines), ``crlf`` (plain lines ended by ``\\r\\n``, as a pty
gives them in script mode).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

KINDS = ("plain", "progress", "error", "redraw", "ansi", "crlf")
_HEAD = "[2025-11-07 12:00:00,123][genrl.logging_utils.global_defs]"
_TB = ('Traceback (most recent call last):\n  File "/app/rgym_exp/runner/swarm_launcher.py", line 112, in main\n'
       "    game_manager.run_game()\n  File \"/app/genrl/game/game_manager.py\", line 146, in run_game\n"
       "    self.run_game_round()\nRuntimeError: CUDA error: an illegal memory access was encountered ({i})\n")


def line_kind(kind: str, i: int) -> str:
    """Output number ``i`` of ``kind`` (one line, or a traceback of several, ending in ``\\n``; a
    redraw ends in ``\\r`` except every 1000th). Raises ValueError naming the kind when unknown."""
    if kind == "plain":
        return f"{_HEAD}[INFO] - step {i}: loss=0.4312 lr=0.0001 tokens=512 grad_norm=1.25\n"
    if kind == "progress":
        return f"{_HEAD}[INFO] - Starting round: {i}/1000000.\n"
    if kind == "error":
        return f"{_HEAD}[ERROR] - Exception occurred during game run ({i}).\n" if i % 7 else _TB.format(i=i)
    if kind == "redraw":
        done = i % 1000
        bar = "\u2588" * (done // 100) + " " * (10 - done // 100)
        return f"\r{done // 10:3d}%|{bar}| {done}/1000 [00:{done % 60:02d}<00:12, 44.1it/s]" + ("\n" if done == 999 else "")
    if kind == "crlf":  # what a pty gives (ONLCR): the output of script mode
        return f"{_HEAD}[INFO] - step {i}: loss=0.4312 lr=0.0001 tokens=512 grad_norm=1.25\r\n"
    if kind == "ansi":
        return f"\x1b[32m{_HEAD}\x1b[0m[\x1b[1mINFO\x1b[0m] - step {i}: loss=0.4312 lr=0.0001 tokens=512\n"
    raise ValueError(f"unknown line kind {kind!r}; use one of {', '.join(KINDS)}")


WRITES = ("line", "block")


def flood(kind: str, lines: int, result: str, cpu: int | None = None, write: str = "line") -> None:
    """Write ``lines`` outputs of ``kind`` to fd 1 (``write``: ``line``, one ``write(2)`` per output, or
    ``block``, 8 KiB buffered), flush, and record the elapsed time in ``result``. ``cpu``: run on that CPU
    only (``sched_setaffinity``, Linux; ignored elsewhere), set before the clock starts. Raises
    ValueError naming a bad ``kind`` or ``write``."""
    if write not in WRITES:
        raise ValueError(f"unknown write mode {write!r}; use one of {', '.join(WRITES)}")
    make = line_kind
    make(kind, 0)  # bad kind: fail before the clock starts
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    sys.stdout.flush()
    out_fh = open(1, "w", encoding="utf-8", buffering=8192, closefd=False)  # not sys.stdout: its buffering
    # follows PYTHONUNBUFFERED
    w, flush = out_fh.write, out_fh.flush
    t0, c0, u0, r0 = time.perf_counter(), time.process_time(), os.times(), resource.getrusage(resource.RUSAGE_SELF)
    if write == "line":
        for i in range(lines):
            w(make(kind, i))
            flush()  # logging.StreamHandler.emit: stream.write(msg + terminator); self.flush()
    else:
        for i in range(lines):
            w(make(kind, i))
    flush()
    u1, r1 = os.times(), resource.getrusage(resource.RUSAGE_SELF)
    out = {"elapsed": time.perf_counter() - t0, "cpu": time.process_time() - c0, "lines": lines,
           "user": u1.user - u0.user, "system": u1.system - u0.system,
           "waits": r1.ru_nvcsw - r0.ru_nvcsw, "preempted": r1.ru_nivcsw - r0.ru_nivcsw}
    tmp = f"{result}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(out, fh)
    os.replace(tmp, result)


def _run(config: str) -> int:
    with open(config, encoding="utf-8") as fh:
        cfg = json.load(fh)
    flood(cfg["kind"], int(cfg["lines"]), cfg["result"], cfg.get("cpu"), cfg.get("write", "line"))
    return 0


def main(gen: str = "", argv: list[str] | None = None, root: str = ".") -> int:
    """The emulated checkout's entry (``emu_node.main``): the flood of ``<root>/.gswarm-emulator/flood.json``."""
    return _run(os.path.join(root, ".gswarm-emulator", "flood.json"))


if __name__ == "__main__":
    sys.exit(_run(sys.argv[1]))
