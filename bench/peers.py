"""GSwarm beside its peers: the same flood child bare, under supervisord, under PM2 and under ``gswarm run``.

Usage::

    python bench/peers.py [--lines 1000000] [--rounds 3] [--kinds plain,progress,error] [--only ...]
                          [--write line|block] [--pin] [--no-install] [--json]

For each line kind (``bench/_flood.py``, one ``write(2)`` per output as the node's ``logging`` does, or
8 KiB blocks with ``--write block``, never dependent on ``PYTHONUNBUFFERED``: ``plain`` genrl INFO
lines, ``progress`` every line ``Starting round: N/1000000.``, ``error`` ERROR lines with a Python traceback every 7th, also
``redraw`` and ``ansi``) and each round, in an order rotated every round, the child prints
``--lines`` outputs:

* **bare**, twice (A and B): ``child | cat > /dev/null``. Their mean is the baseline of the round;
  B / A is the A/A test: 1 in truth, so its spread is this machine's noise.
* **supervisord** (PyPI ``supervisor``, installed into ``bench/out/venv-supervisord``, never into the
  project): ``supervisord -n`` with one program, ``autorestart=false``, output to a log file.
* **pm2** (npm ``pm2`` installed with ``npm install --prefix bench/out/pm2`` when ``npm`` exists, else
  skipped with a note): its own ``PM2_HOME`` under ``bench/out``, ``--no-autorestart``, log files.
* **gswarm**: ``gswarm run`` in direct mode with its default services (store, JSON log, capture,
  progress, health, notifications, API on a free 127.0.0.1 port) on an emulated E4 checkout
  (``gswarm emulate init``) whose entry point is the flood; ``--no-restart-on-clean-exit``.

Figures. **ratio** = the median over rounds of the child's own elapsed time (first write to last flush,
measured by the child, so start-up and shutdown of the supervisor are not in it; issue #18) / the median
of every bare run of the kind (A and B of all rounds: on a shared VM one bare run is sometimes 2x slower,
and a per-round baseline carried that outlier into every ratio of its round). **A/A** = median B / median
A (1 in truth), with the range of the per-round B/A beside it (this machine's noise). **CPU s/M** = the supervisor's CPU from start to exit (user + system), minus the
same for an *empty* child (0 lines: the supervisor's start-up and shutdown), per million lines, median
over rounds. For supervisord and gswarm (children of this bench) it is their reaped rusage, background
threads and shutdown work (gzip of rotated logs) included, less the flood's own CPU (from its result
file); PM2's daemon is not our child: its CPU (psutil, children excluded) is read once the flood has
finished and the daemon has gone idle.
Run state lives in ``bench/out/run-*`` and is deleted after each run. Issue #18's targets, per kind:
gswarm ratio ≤ supervisord ratio + 0.05 and gswarm CPU ≤ 1.5 × supervisord's; a median A/A beyond
±10 % means the machine was too noisy: rerun at a quieter moment. **gap gs-sd** pairs the two in each
round (gswarm's time minus supervisord's, over the baseline): a slow phase of a shared VM moves both runs
of a round, so its median is steadier than the difference of the two medians. ``--pin`` (Linux, 2+ CPUs)
puts the flood on the last CPU and everything else on the others.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any, Callable

import psutil

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
FLOOD = HERE / "_flood.py"
PY = sys.executable


def _quiet(argv: list[str], **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False, **kw)


def setup_supervisord(install: bool) -> tuple[Path | None, str]:
    """``(supervisord path, note)``: from ``bench/out/venv-supervisord`` (created with pip from PyPI
    when ``install``); None with the reason when unavailable."""
    venv = OUT / "venv-supervisord"
    exe = venv / "bin" / "supervisord"
    if not exe.exists() and install:
        print(f"installing supervisord from PyPI into {venv} (first use) …", file=sys.stderr, flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        _quiet([PY, "-m", "venv", str(venv)])
        res = _quiet([str(venv / "bin" / "pip"), "install", "-q", "supervisor>=4,<5"])
        if res.returncode:
            return None, f"supervisord skipped: pip install supervisor failed: {res.stdout.strip()[-200:]}"
    if not exe.exists():
        return None, "supervisord skipped: not installed in bench/out/venv-supervisord (run without --no-install)"
    version = _quiet([str(exe), "--version"]).stdout.strip()
    return exe, f"supervisord {version} ({exe})"


def setup_pm2(install: bool) -> tuple[Path | None, str]:
    """``(pm2 path, note)``: ``bench/out/pm2`` (``npm install --prefix`` when ``install`` and npm exists)."""
    exe = OUT / "pm2" / "node_modules" / ".bin" / "pm2"
    if not exe.exists() and install:
        if shutil.which("npm") is None:
            return None, "pm2 skipped: npm is not installed"
        print(f"installing pm2 from npm into {OUT / 'pm2'} (first use) …", file=sys.stderr, flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        res = _quiet(["npm", "install", "--prefix", str(OUT / "pm2"), "pm2@>=5", "--no-audit", "--no-fund"])
        if res.returncode:
            return None, f"pm2 skipped: npm install pm2 failed: {res.stdout.strip()[-200:]}"
    if not exe.exists():
        return None, "pm2 skipped: not installed in bench/out/pm2 (run without --no-install)"
    version = _quiet([str(exe), "--version"], env=_pm2_env(OUT / "pm2-version")).stdout.strip().splitlines()
    _quiet([str(exe), "kill"], env=_pm2_env(OUT / "pm2-version"))  # --version may have started a daemon there
    return exe, f"pm2 {version[-1] if version else '?'} ({exe})"


def _pm2_env(home: Path) -> dict[str, str]:
    return {**os.environ, "PM2_HOME": str(home)}


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def settled_cpu(pid: int, done: Callable[[], bool], timeout: float = 120.0) -> float:
    """CPU seconds of ``pid`` (itself, not its children) once ``done()`` and the process has gone idle
    (two 0.1 s samples apart by < 5 ms) or exited (the last sample)."""
    proc, last, deadline = psutil.Process(pid), 0.0, time.monotonic() + timeout
    while time.monotonic() < deadline and not done():
        try:
            last = _cpu(proc)
        except psutil.Error:
            break
        time.sleep(0.02)
    quiet = 0
    while time.monotonic() < deadline:
        try:
            now = _cpu(proc)
        except psutil.Error:
            return last
        quiet = quiet + 1 if now - last < 0.005 else 0
        last = now
        if quiet >= 2:
            return last
        time.sleep(0.1)
    return last


def _result(path: Path) -> float:
    return float(json.loads(path.read_text())["elapsed"])


def _children_cpu() -> float:
    """CPU s (user + system) of this process's reaped children so far, their own reaped children included."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def reaped_cpu(before: float, result: Path) -> float:
    """The CPU of a supervisor this bench started and has reaped, from start to exit (shutdown and
    background work such as gzip included): the growth of :func:`_children_cpu` since ``before`` (the
    supervisor plus the flood child it reaped) minus the flood's own CPU from its result file. The flood's
    interpreter start-up stays in; the empty child's run has it too, so the start-up subtraction cancels it."""
    child = float(json.loads(result.read_text())["cpu"]) if result.exists() else 0.0
    return _children_cpu() - before - child


def run_bare(cfg: Path, work: Path, result: Path) -> tuple[float, float | None]:
    """``child | cat > /dev/null``: (child elapsed s, None)."""
    with open(os.devnull, "wb") as null:
        child = subprocess.Popen([PY, str(FLOOD), str(cfg)], stdout=subprocess.PIPE)
        cat = subprocess.Popen(["cat"], stdin=child.stdout, stdout=null)
        child.stdout.close()  # type: ignore[union-attr]
        child.wait()
        cat.wait()
    return _result(result), None


def run_supervisord(exe: Path, cfg: Path, work: Path, result: Path) -> tuple[float, float | None]:
    conf = work / "supervisord.conf"
    conf.write_text(
        f"[supervisord]\nnodaemon=true\nlogfile={work}/supervisord.log\npidfile={work}/supervisord.pid\n"
        f"childlogdir={work}\n\n[program:flood]\ncommand={PY} {FLOOD} {cfg}\nautostart=true\nautorestart=false\n"
        f"startsecs=0\nstdout_logfile={work}/flood.log\nstderr_logfile={work}/flood.err\n")
    before = _children_cpu()
    with open(os.devnull, "wb") as null:
        sup = subprocess.Popen([str(exe), "-n", "-c", str(conf)], stdout=null, stderr=null, start_new_session=True)
        try:
            settled_cpu(sup.pid, result.exists)  # the flood is over and supervisord idle: stop it
        finally:
            sup.send_signal(signal.SIGTERM)  # the supervisord this bench started
            sup.wait(timeout=60)
    return _result(result), reaped_cpu(before, result)


def run_pm2(exe: Path, cfg: Path, work: Path, result: Path) -> tuple[float, float | None]:
    env = _pm2_env(work / "pm2-home")
    _quiet([str(exe), "ping"], env=env)  # starts this home's daemon
    pid = int((work / "pm2-home" / "pm2.pid").read_text().strip())
    try:
        _quiet([str(exe), "start", str(FLOOD), "--name", "flood", "--interpreter", PY, "--no-autorestart",
                "-o", str(work / "flood.log"), "-e", str(work / "flood.err"), "--", str(cfg)], env=env)
        cpu = settled_cpu(pid, result.exists)
    finally:
        _quiet([str(exe), "kill"], env=env)  # this home's daemon only
    return _result(result), cpu


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gswarm_checkout(work: Path) -> Path:
    """An emulated E4 checkout whose entry point (``emu_node``) is the flood."""
    co = work / "co"
    res = _quiet([PY, "-m", "gswarm", "emulate", "init", str(co), "--generation", "E4", "--logged-in"])
    if res.returncode:
        raise SystemExit(f"gswarm emulate init failed: {res.stdout}")
    shutil.copy(FLOOD, co / ".gswarm-emulator" / "emu_node.py")
    return co


def run_gswarm(co: Path, cfg: Path, work: Path, result: Path) -> tuple[float, float | None]:
    shutil.copy(cfg, co / ".gswarm-emulator" / "flood.json")
    state = work / "state"
    argv = [PY, "-m", "gswarm", "run", "--rl-swarm-dir", str(co), "--state-dir", str(state), "--no-auto-setup",
            "--no-restart-on-clean-exit", "--api-port", str(_free_port())]
    before = _children_cpu()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(argv, stdout=null, stderr=null, start_new_session=True)
        try:
            settled_cpu(proc.pid, lambda: result.exists() or proc.poll() is not None)
            try:  # the flood exits 0 and --no-restart-on-clean-exit ends gswarm run by itself: let it finish
                proc.wait(timeout=60)  # writing what it read (a SIGTERM here raced its last output on a loaded box)
            except subprocess.TimeoutExpired:
                pass
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # the gswarm run this bench started
            proc.wait(timeout=60)
    if not result.exists():
        raise SystemExit(f"gswarm run ended without running the flood (exit {proc.returncode}); try it by hand: {argv}")
    cpu = reaped_cpu(before, result)
    if VERIFY:
        VERIFIED.append(_count_lines(state))
    shutil.rmtree(state, ignore_errors=True)
    return _result(result), cpu


VERIFY = False  # --verify: count what gswarm run kept (the smoke test)
VERIFIED: list[dict[str, int]] = []


def _count_lines(state: Path) -> dict[str, int]:
    """Output records and all records in the JSON log, lines in the capture (rotated gzipped files included)."""
    import gzip

    def lines(paths: list[Path], needle: bytes | None) -> int:
        n = 0
        for p in paths:
            with (gzip.open(p, "rb") if p.name.endswith(".gz") else open(p, "rb")) as fh:
                n += sum(1 for row in fh if needle is None or needle in row)
        return n

    logs = state / "logs"
    return {"jsonlog_output": lines(sorted(logs.glob("gswarm.jsonl*")), b'"kind":"output"'),
            "jsonlog_records": lines(sorted(logs.glob("gswarm.jsonl*")), None),
            "capture": lines(sorted((logs / "default").glob("output.log*")), b" > ")}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run every (round, kind, runner) and summarise; see the module docstring."""
    notes: list[str] = []
    runners: dict[str, Callable[..., tuple[float, float | None]]] = {}
    sd, note = setup_supervisord(not args.no_install) if "supervisord" in args.only else (None, "supervisord not asked")
    notes.append(note)
    if sd:
        runners["supervisord"] = lambda cfg, work, res: run_supervisord(sd, cfg, work, res)
    pm2, note = setup_pm2(not args.no_install) if "pm2" in args.only else (None, "pm2 not asked")
    notes.append(note)
    if pm2:
        runners["pm2"] = lambda cfg, work, res: run_pm2(pm2, cfg, work, res)
    OUT.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="run-", dir=OUT))
    co = gswarm_checkout(base) if "gswarm" in args.only else None
    if co is not None:
        runners["gswarm"] = lambda cfg, work, res: run_gswarm(co, cfg, work, res)
    order = ["bare_a"] + list(runners) + ["bare_b"]
    runners["bare_a"] = runners["bare_b"] = run_bare
    elapsed: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    runs: dict[str, dict[str, list[Any]]] = {}
    try:
        for r in range(args.rounds):
            for kind in args.kinds + ["empty"]:
                names = order[r % len(order):] + order[:r % len(order)]  # alternating order per round
                for name in names:
                    if kind == "empty" and name.startswith("bare"):
                        continue
                    work = base / f"r{r}-{kind}-{name}"
                    work.mkdir()
                    cfg, res = work / "flood.json", work / "result.json"
                    cfg.write_text(json.dumps({"kind": "plain" if kind == "empty" else kind,
                                               "lines": 0 if kind == "empty" else args.lines, "result": str(res),
                                               "cpu": args.child_cpu, "write": args.write}))
                    e, c = runners[name](cfg, work, res)
                    elapsed.setdefault((kind, name), []).append(e)
                    if res.exists() and kind != "empty":  # the child's own account of the run, for --json readers
                        child = json.loads(res.read_text())
                        for key in ("elapsed", "user", "system", "waits", "preempted"):
                            v = child.get(key)
                            runs.setdefault(f"{kind}/{name}", {}).setdefault(key, []).append(
                                round(v, 4) if isinstance(v, float) else v)
                    if c is not None:
                        cpu.setdefault((kind, name), []).append(c)
                    shutil.rmtree(work, ignore_errors=True)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    res = summarise(args, elapsed, cpu, [n for n in order if not n.startswith("bare")], notes)
    res["runs"] = runs  # every run in round order
    return res


AA_BAND = 0.10  # a bare B/A ratio further from 1 than this: the machine was not steady (issue #18)


def steady(aa: float) -> bool:
    """The A/A ratio ``aa`` (bare run B / bare run A) is within ±:data:`AA_BAND`."""
    return 1 - AA_BAND <= aa <= 1 + AA_BAND


def summarise(args: argparse.Namespace, elapsed: dict, cpu: dict, sups: list[str], notes: list[str]) -> dict[str, Any]:
    """Per kind: bare seconds, the A/A spread, and per supervisor the ratio and CPU s per million lines."""
    out: dict[str, Any] = {"lines": args.lines, "rounds": args.rounds, "cpus": os.cpu_count(), "pin": args.pin_note,
                           "write": args.write,
                           "load1_after": round(os.getloadavg()[0], 2), "notes": notes, "supervisors": sups, "kinds": {}}
    for kind in args.kinds:
        a, b = elapsed[(kind, "bare_a")], elapsed[(kind, "bare_b")]
        baseline = median(a + b)  # every bare run of the kind: one slow outlier moves it little
        aa = [y / x for x, y in zip(a, b)]
        row: dict[str, Any] = {"bare_s": round(baseline, 3), "aa": round(median(b) / median(a), 3),
                               "aa_range": [round(min(aa), 3), round(max(aa), 3)]}
        row["noisy"] = not steady(row["aa"])  # the median A/A beyond ±10 %: rerun before reading the verdicts
        for sup in sups:
            ratio = median(elapsed[(kind, sup)]) / baseline
            per_m = 1e6 / max(args.lines, 1)
            startup = median(cpu[("empty", sup)])
            row[sup] = {"ratio": round(ratio, 3), "cpu_s_per_m": round((median(cpu[(kind, sup)]) - startup) * per_m, 2),
                        "startup_cpu_s": round(startup, 2)}
        if "gswarm" in row and "supervisord" in row:
            g, s = row["gswarm"], row["supervisord"]
            gs_t, sd_t = elapsed[(kind, "gswarm")], elapsed[(kind, "supervisord")]
            # the same gap paired per round (both runs of a round are minutes apart at most, so a slow phase
            # of the machine moves both): median and range of (gswarm − supervisord) / baseline
            gaps = sorted((x - y) / baseline for x, y in zip(gs_t, sd_t))
            row["paired_gap"] = {"median": round(median(gaps), 3), "range": [round(gaps[0], 3), round(gaps[-1], 3)],
                                 "rounds_within": sum(1 for d in gaps if d <= 0.05)}
            # the rounds whose own A/A stayed within ±10 % (the machine was steady then), each over its own bare mean
            calm = [(gs_t[i] - sd_t[i]) / ((a[i] + b[i]) / 2) for i, r in enumerate(aa) if steady(r)]
            row["steady_rounds"] = {"rounds": len(calm), "gap_median": round(median(calm), 3) if calm else None}
            row["targets"] = {"ratio": g["ratio"] <= s["ratio"] + 0.05, "cpu": g["cpu_s_per_m"] <= 1.5 * max(s["cpu_s_per_m"], 0.01)}
        out["kinds"][kind] = row
    return out


def print_table(res: dict[str, Any]) -> None:
    """The compact table for the closing note of issue #18."""
    rounds = f"{res['rounds']} round" + ("s" if res["rounds"] != 1 else "")
    print(f"{res['lines']:,} lines per kind, {rounds}, {res['cpus']} CPUs, load1 {res['load1_after']}; {res['pin']}; "
          f"{res['write']} writes")
    for note in res["notes"]:
        print(f"  {note}")
    print("  ratio: the child's own time under the supervisor / bare (child | cat > /dev/null); below 1 means the\n"
          "  child ran faster than with cat reading it (cat wakes up for every write). CPU s/M: the supervisor's\n"
          "  CPU seconds per million lines, start-up subtracted (~0 or below: less than start-up noise; use more --lines).\n"
          "  start-up s: the supervisor's CPU for an empty child. A/A: median of bare run B / bare run A (1 in truth:\n"
          "  this machine's noise), [per-round range]. gap gs-sd: in each round gswarm's time minus supervisord's,\n"
          "  over the bare time (ratio units); its median is the steadier estimate of gswarm's ratio - supervisord's;\n"
          "  A/A ±10 %: that median over the rounds the machine was steady in (their own A/A within ±10 %).")
    print(f"{'kind':10s}{'runner':13s}{'ratio':>7s}{'CPU s/M':>9s}{'start-up s':>11s}   notes")
    for kind, row in res["kinds"].items():
        lo, hi = row["aa_range"]
        noisy = " NOISY (median A/A beyond ±10 %): rerun" if not steady(row["aa"]) else (
            " (a round beyond ±10 %)" if not (steady(lo) and steady(hi)) else "")
        print(f"{kind:10s}{'bare':13s}{1:7.2f}{'':9s}{'':11s}   {row['bare_s']:.3f} s; A/A {row['aa']:.3f} [{lo:.3f}…{hi:.3f}]{noisy}")
        for sup in res["supervisors"]:
            v, verdict = row[sup], ""
            if sup == "gswarm" and "targets" in row:
                t = row["targets"]
                verdict = f"ratio ≤ sd+0.05: {'met' if t['ratio'] else 'NOT met'}; CPU ≤ 1.5×sd: {'met' if t['cpu'] else 'NOT met'}"
                if row.get("noisy"):
                    verdict += " (noisy machine: not a verdict, rerun)"
            print(f"{'':10s}{sup:13s}{v['ratio']:7.2f}{v['cpu_s_per_m']:9.2f}{v['startup_cpu_s']:11.2f}   {verdict}")
        if "paired_gap" in row:
            p = row["paired_gap"]
            print(f"{'':10s}{'gap gs-sd':13s}{p['median']:+7.3f}{'':20s}   paired per round: range [{p['range'][0]:+.3f}…"
                  f"{p['range'][1]:+.3f}], {p['rounds_within']}/{res['rounds']} rounds ≤ +0.05")
        if "steady_rounds" in row:
            c, n = row["steady_rounds"], row["steady_rounds"]["rounds"]
            value = f"{c['gap_median']:+7.3f}" if c["gap_median"] is not None else f"{'n/a':>7s}"
            few = "; under half of the rounds: rerun" if 2 * n < res["rounds"] else ""
            print(f"{'':10s}{'  A/A ±10 %':13s}{value}{'':20s}   the gap over the {n} round{'' if n == 1 else 's'} whose "
                  f"own A/A stayed within ±10 %{few}")


def main() -> None:
    sys.path.insert(0, str(HERE))
    from _flood import KINDS, WRITES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000,
                    help="outputs per kind and run (a line; an error traceback counts as one output of 6 lines)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (each runs every runner once per kind, order rotated)")
    ap.add_argument("--kinds", default="plain,progress,error",
                    help=f"comma list of {', '.join(KINDS)} (default plain,progress,error)")
    ap.add_argument("--only", default="supervisord,pm2,gswarm", help="comma list of the supervisors to run (bare always runs)")
    ap.add_argument("--no-install", action="store_true", help="do not install supervisord/pm2; skip those missing")
    ap.add_argument("--verify", action="store_true", help="count the lines gswarm run kept (JSON log, capture)")
    ap.add_argument("--write", choices=WRITES, default="line",
                    help="how the flood writes: one write(2) per line, as the node's logging does (default), or 8 KiB blocks")
    ap.add_argument("--pin", action="store_true",
                    help="Linux, 2+ CPUs: the flood child on the last CPU, everything else (this bench, cat, the "
                         "supervisors and their threads) on the others, so where the scheduler puts them is no noise")
    ap.add_argument("--json", action="store_true",
                    help="print the results as JSON instead of the table; runs.<kind>/<runner> lists every run: elapsed "
                         "s, the child's user and system CPU s, waits (voluntary context switches: it blocked, e.g. "
                         "on a full pipe) and preempted (involuntary ones)")
    args = ap.parse_args()
    args.child_cpu, args.pin_note = None, "not pinned"
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if len(cpus) < 2:
            ap.error("--pin needs Linux and at least 2 CPUs this process may use")
        args.child_cpu = cpus[-1]
        os.sched_setaffinity(0, set(cpus[:-1]))  # inherited by cat and the supervisors (the flood re-pins itself)
        args.pin_note = f"flood pinned to CPU {cpus[-1]}, the rest to CPU {','.join(map(str, cpus[:-1]))}"
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = [k for k in args.kinds if k not in KINDS]
    if bad or args.lines < 1 or args.rounds < 1:
        ap.error(f"--kinds must be among {', '.join(KINDS)} (got {bad}); --lines and --rounds at least 1")
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    global VERIFY
    VERIFY = args.verify
    res = measure(args)
    if args.verify:
        res["verified"] = VERIFIED
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_table(res)


if __name__ == "__main__":
    main()
