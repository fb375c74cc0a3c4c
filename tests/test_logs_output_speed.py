"""`gswarm logs` on a flood's history (issue #18: since node output lives in the capture, a million lines is
one flood away): records go straight to a buffered stdout, not through Rich per line (78 µs a line before,
minutes for 1M lines), and a reader that stops early (`| head`) ends it quietly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _capture(state: Path, n: int) -> None:
    folder = state / "logs" / "n1"
    folder.mkdir(parents=True)
    body = "".join(f"2026-12-07T05:00:{i // 10000 % 60:02d}.{i % 1000000:06d}Z 42 > [t][genrl][INFO] - step {i} "
                   f"{'x' * 40}\n" for i in range(n))
    (folder / "output.log").write_text(body)


def test_a_reader_that_stops_early_ends_logs_quietly(tmp_path: Path) -> None:
    _capture(tmp_path, 60_000)  # ~6 MB of records: far more than a pipe holds
    proc = subprocess.Popen([sys.executable, "-m", "gswarm", "logs", "--state-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    err = proc.stderr.read()  # type: ignore[union-attr]
    assert proc.wait(timeout=60) == 0 and err == b""
    assert first.endswith(b" n1 INFO     [output] [t][genrl][INFO] - step 0 " + b"x" * 40 + b"\n")


def test_every_line_once_and_in_order_through_the_buffered_writer(tmp_path: Path) -> None:
    _capture(tmp_path, 60_000)
    out = subprocess.run([sys.executable, "-m", "gswarm", "logs", "--state-dir", str(tmp_path), "--category", "output"],
                         capture_output=True, timeout=120, check=True).stdout.decode().splitlines()
    assert len(out) == 60_000 and [int(x.split(" step ")[1].split()[0]) for x in out[:3] + out[-2:]] == [0, 1, 2, 59998, 59999]
