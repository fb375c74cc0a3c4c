"""The flood child of the benches: ``N`` lines of one kind on stdout, then its own elapsed time in a file.

Stdlib only: it runs as a script (``python _flood.py CONFIG.json``, bare / supervisord / PM2) and as
the ``emu_node`` module of an emulated checkout (``main(gen, argv, root)``, reading
``<root>/.gswarm-emulator/flood.json``; how ``gswarm run`` starts it in direct mode). CONFIG:
``{"kind": str, "lines": int, "result": path}``. The result file (written temp + rename) holds
``{"elapsed": s, "cpu": s, "lines": n, "user": s, "system": s}``: the child's own wall time from its first
write to its last flush and its own CPU time (also split into user and system: a supervisor that slows the
child's own code shows in ``user``, one that makes its writes dearer in ``system``) — the figure the ratios of ``bench/peers.py`` compare (issue #18), so the
supervisor's start-up and shutdown are not in it. Lines are written with ``sys.stdout.write`` in a
loop (Python's block buffering to a pipe or file), ~70-110 bytes each.

Kinds: ``plain`` (genrl-style INFO line), ``progress`` (``Starting round: N/1000000.``, E3-E6,
generations.md §6.6/§7.6), ``error`` (ERROR lines, every 7th a 6-line Python traceback), ``redraw``
(tqdm ``\\r`` bars), ``ansi`` (coloured INFO lines), ``crlf`` (plain lines ended by ``\\r\\n``, as a pty
gives them in script mode).
"""

from __future__ import annotations

import json
import os
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


def flood(kind: str, lines: int, result: str) -> None:
    """Write ``lines`` outputs of ``kind``, flush, and record the elapsed time in ``result``."""
    w, make = sys.stdout.write, line_kind
    make(kind, 0)  # bad kind: fail before the clock starts
    t0, c0, u0 = time.perf_counter(), time.process_time(), os.times()
    for i in range(lines):
        w(make(kind, i))
    sys.stdout.flush()
    u1 = os.times()
    out = {"elapsed": time.perf_counter() - t0, "cpu": time.process_time() - c0, "lines": lines,
           "user": u1.user - u0.user, "system": u1.system - u0.system}
    tmp = f"{result}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(out, fh)
    os.replace(tmp, result)


def _run(config: str) -> int:
    with open(config, encoding="utf-8") as fh:
        cfg = json.load(fh)
    flood(cfg["kind"], int(cfg["lines"]), cfg["result"])
    return 0


def main(gen: str = "", argv: list[str] | None = None, root: str = ".") -> int:
    """The emulated checkout's entry (``emu_node.main``): the flood of ``<root>/.gswarm-emulator/flood.json``."""
    return _run(os.path.join(root, ".gswarm-emulator", "flood.json"))


if __name__ == "__main__":
    sys.exit(_run(sys.argv[1]))
