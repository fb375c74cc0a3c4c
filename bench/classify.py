"""Classifier accuracy on a folder of corpus files and throughput on a synthetic 1,000,000-line log.

Usage::

    .venv/bin/python bench/classify.py [DIR] [--lines 1000000] [--json] [--wild DIR] [--split seen|unseen]

DIR defaults to ``tests/data/failures`` (a copy of ``shared/failures/``). Each ``*.txt`` file has a header
(``category:``, ``recovery:`` …), a ``---`` line, then the log. Accuracy = classified category equals the
header's; recovery agreement = the classification's recovery equals the FIRST word of the header's free-text
recovery (e.g. "reduce_model / restart" → reduce_model). Throughput: a deterministic synthetic log of normal
E4/E6 lines (Hydra-format genrl lines, progress bars, TRL metric dicts, httpx, hivemind INFO) with 0.1 %
failure lines from the corpus mixed in, fed line by line to ``StreamClassifier.on_line`` (the live path;
target ≥ 200,000 lines/s) and, separately, to ``Classifier.classify_lines`` (batch path of ``gswarm diagnose``).

Wild accuracy (issue #17): ``tests/data/failures_wild`` holds public reports labelled by hand before the classifier
ran on them, split by the hash rule of its SPLIT.md; accuracy is printed for the ``seen`` split (rules were written
and tuned from it) and, separately, for the ``unseen`` split (never looked at while writing rules). A case counts
as right when its category matches and its recovery is one the header names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import random
import sys
import time
from pathlib import Path

from gswarm.logs.classify import Classifier

H = "[2025-11-20 10:{m:02d}:{s:02d},{ms:03d}][genrl.logging_utils.global_defs][INFO] - "
NORMAL = [
    H + "Starting round: {r}/1000000.",
    H + "🐝 Joining round: {r}",
    H + "Already finished round: {r}. Next check in {w}.0s.",
    H + "Using Model: Qwen/Qwen2.5-Coder-0.5B-Instruct",
    "Map: 100%|██████████████████████████| {n}/{n} [00:00<00:00, {f}.69 examples/s]",
    "  {p}%|████▌     | {n}/20 [00:{s:02d}<00:{m:02d}, 1.{ms}s/it]",
    "{{'loss': 0.0{ms}, 'grad_norm': 4.01322{n}, 'learning_rate': 1.88e-07, 'rewards/xmlcount_reward_func': -0.016{ms}, "
    "'reward': 0.139{n}, 'reward_std': 0.204, 'completion_length': 245.06, 'kl': 0.0055, 'epoch': 0.01}}",
    "[2025-11-20 10:{m:02d}:{s:02d},{ms:03d}][httpx][INFO] - HTTP Request: POST http://localhost:11434/api/generate \"HTTP/1.1 200 OK\"",
    H + "🐝 Hello [quick fuzzy otter] [QmUserPeer000000000000000000000000000000000001]!",
    "Jul 28 22:{m:02d}:{s:02d}.{ms:03d} [INFO] Checking that identity from `/home/user/rl-swarm/swarm.pem` is not used by other peers",
    H + "Dataset weights: propositional_logic: 1.0, calendar_arithmetic: 1.0, decimal_arithmetic: {n}.0",
    "[2025-07-27 16:{m:02d}:{s:02d},{ms:03d}][genrl.logging_utils.global_defs][DEBUG] - pushing model to huggingface",
]


def parse_case(path: Path) -> tuple[str, str, list[str]]:
    """(category, first recovery word, log lines) of one corpus file."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    head, _, log = raw.partition("\n---\n")
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in head.splitlines())}
    recovery = fields.get("recovery", "").replace(",", " ").replace("/", " ").split()
    return fields.get("category", ""), recovery[0] if recovery else "", log.splitlines()


def accuracy(clf: Classifier, folder: Path) -> dict:
    files = sorted(folder.glob("*.txt"))
    right, rec_ok, misses = 0, 0, []
    for path in files:
        cat, rec, lines = parse_case(path)
        got = clf.classify_lines(lines)
        right += got.category.value == cat
        rec_ok += got.recovery.value == rec
        if got.category.value != cat or got.recovery.value != rec:
            misses.append(f"{path.name}: got {got.category.value}/{got.recovery.value}, header {cat}/{rec}")
    return {"files": len(files), "category_right": right, "recovery_agree": rec_ok, "mismatches": misses}


SPLIT_DIGITS = "0123456789ab"  # tests/data/failures_wild/SPLIT.md: first sha256 hex digit of the source URL
RECOVERIES = {"none", "wait", "restart", "backoff", "cleanup_then_restart", "stop_and_alert", "reinstall_deps", "reduce_model"}


def split_of(url: str) -> str:
    """``unseen`` (held out from rule writing) or ``seen``, by the rule written in SPLIT.md before collecting."""
    return "unseen" if hashlib.sha256(url.encode("utf-8")).hexdigest()[0] in SPLIT_DIGITS else "seen"


def wild_case(path: Path) -> dict:
    """Header fields of a wild case plus ``url``, ``split`` (recomputed), ``named`` (acceptable recoveries: the
    vocabulary words of the header's recovery before its parenthesised note) and ``lines``.
    Raises ValueError naming the file when the header lacks a field or its split disagrees with the rule."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    head, sep, log = raw.partition("\n---\n")
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in head.splitlines())}
    missing = {"source", "category", "recovery", "split"} - set(fields)
    if not sep or missing:
        raise ValueError(f"{path}: header lacks {sorted(missing) or ['---']}; see SPLIT.md for the format")
    m = re.search(r"\((https?://[^)\s]+)\)", fields["source"])
    if not m:
        raise ValueError(f"{path}: source has no (URL); write 'owner/repo#N (https://...)'")
    url = m.group(1)
    split = split_of(url)
    if fields["split"] != split and not fields.get("moved"):
        raise ValueError(f"{path}: header says split {fields['split']!r}, the hash rule says {split!r}")
    named = [w for w in dict.fromkeys(re.findall(r"[a-z_]+", fields["recovery"].split("(", 1)[0])) if w in RECOVERIES]
    return {**fields, "url": url, "split": fields["split"], "named": named, "lines": log.splitlines()}


def wild_accuracy(clf: Classifier, folder: Path, only: str | None = None) -> dict:
    """Per split (``seen``/``unseen``): cases, categories right, recoveries acceptable (the classification's
    recovery is one the header names), both right, and the misses."""
    out: dict = {}
    for path in sorted(folder.glob("*.txt")):
        case = wild_case(path)
        if only and case["split"] != only:
            continue
        got = clf.classify_lines(case["lines"])
        s = out.setdefault(case["split"], {"cases": 0, "category_right": 0, "recovery_ok": 0, "both": 0, "misses": []})
        cat_ok = got.category.value == case["category"]
        rec_ok = got.recovery.value in case["named"]
        s["cases"] += 1
        s["category_right"] += cat_ok
        s["recovery_ok"] += rec_ok
        s["both"] += cat_ok and rec_ok
        if not (cat_ok and rec_ok):
            s["misses"].append(f"{path.name}: got {got.category.value}/{got.recovery.value} ({got.rule_id}), "
                               f"label {case['category']}/{'|'.join(case['named'])}")
    return out


def synthetic(n: int, failures: list[str], seed: int = 4) -> list[str]:
    """``n`` deterministic lines: normal E4/E6 output plus 0.1 % corpus failure lines."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if failures and rng.random() < 0.001:
            out.append(rng.choice(failures))
            continue
        t = rng.choice(NORMAL)
        out.append(t.format(r=13000 + i // 500, w=5 * (1 + i % 4), n=i % 97, f=i % 900, p=i % 100,
                            m=(i // 60) % 60, s=i % 60, ms=i % 1000))
    return out


def throughput(clf: Classifier, lines_total: int, failures: list[str], chunk: int = 100_000) -> dict:
    """Lines/s of the stream and batch paths; CPU time of this process (what the classifier costs, robust on a
    busy machine) and wall-clock time. Generating the synthetic lines is not timed."""
    stream = clf.stream("E4")
    on_line = stream.on_line
    cpu = {"stream": 0.0, "batch": 0.0}
    wall = {"stream": 0.0, "batch": 0.0}
    fired = 0
    for start in range(0, lines_total, chunk):
        lines = synthetic(min(chunk, lines_total - start), failures, seed=start)
        c0, w0 = time.process_time(), time.perf_counter()
        for line in lines:
            if on_line(line, 0.0) is not None:
                fired += 1
        cpu["stream"] += time.process_time() - c0
        wall["stream"] += time.perf_counter() - w0
        c0, w0 = time.process_time(), time.perf_counter()
        clf.classify_lines(lines)
        cpu["batch"] += time.process_time() - c0
        wall["batch"] += time.perf_counter() - w0
    t0 = time.perf_counter()
    res = stream.result()
    t_result = time.perf_counter() - t0
    return {"lines": lines_total,
            "stream_lines_per_cpu_s": lines_total / cpu["stream"], "stream_lines_per_wall_s": lines_total / wall["stream"],
            "batch_lines_per_cpu_s": lines_total / cpu["batch"], "batch_lines_per_wall_s": lines_total / wall["batch"],
            "result_ms": t_result * 1000, "live_incidents": fired, "final_category": res.category.value}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", default=str(Path(__file__).resolve().parents[1] / "tests" / "data" / "failures"))
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--wild", default=str(Path(__file__).resolve().parents[1] / "tests" / "data" / "failures_wild"),
                    help="folder of public reports with a seen/unseen split (SPLIT.md); '' to skip")
    ap.add_argument("--split", choices=("seen", "unseen"), help="report only this split of --wild")
    ap.add_argument("--accuracy-only", action="store_true", help="skip the throughput run")
    args = ap.parse_args(argv)
    folder = Path(args.dir)
    if not folder.is_dir():
        print(f"error: {folder} is not a folder of corpus files", file=sys.stderr)
        return 2
    clf = Classifier.from_package()
    acc = accuracy(clf, folder)
    failures = [x for p in sorted(folder.glob("*.txt")) for x in parse_case(p)[2] if x.strip()][:2000]
    try:
        wild = wild_accuracy(clf, Path(args.wild), args.split) if args.wild else {}
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    thr = None if args.accuracy_only else throughput(clf, args.lines, failures)
    if args.json:
        print(json.dumps({"accuracy": acc, "wild": wild, "throughput": thr}, indent=2))
        return 0
    n = acc["files"] or 1
    print(f"accuracy: {acc['category_right']}/{acc['files']} categories right ({100 * acc['category_right'] / n:.1f} %), "
          f"recovery agrees with the header's first word for {acc['recovery_agree']}/{acc['files']}")
    for miss in acc["mismatches"]:
        print(f"  - {miss}")
    for name in ("seen", "unseen"):
        w = wild.get(name)
        if not w:
            continue
        k = w["cases"]
        what = "cases the rules were written from" if name == "seen" else "held-out cases never used to write rules"
        print(f"wild {name} ({what}): category {w['category_right']}/{k} ({100 * w['category_right'] / k:.1f} %), "
              f"acceptable recovery {w['recovery_ok']}/{k} ({100 * w['recovery_ok'] / k:.1f} %), "
              f"both {w['both']}/{k} ({100 * w['both'] / k:.1f} %)")
        for miss in w["misses"]:
            print(f"  - {miss}")
    if thr is None:
        return 0
    print(f"throughput on {thr['lines']:,} synthetic lines (target 200,000 lines/s for the live path):")
    print(f"  StreamClassifier.on_line: {thr['stream_lines_per_cpu_s']:,.0f} lines per CPU-second "
          f"({thr['stream_lines_per_wall_s']:,.0f} lines/s wall clock)")
    print(f"  Classifier.classify_lines: {thr['batch_lines_per_cpu_s']:,.0f} lines per CPU-second "
          f"({thr['batch_lines_per_wall_s']:,.0f} lines/s wall clock)")
    print(f"  result() at exit: {thr['result_ms']:.1f} ms; {thr['live_incidents']} live incidents; "
          f"final category {thr['final_category']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
