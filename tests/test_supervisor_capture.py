"""10 MB of mixed output through a real child: exact lines on the bus, in the capture file; rotation."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path

from gswarm.events import EventBus, OutputBatch
from gswarm.supervisor.capture import CaptureFile
from gswarm.supervisor.process import NodeProcess
from gswarm.supervisor.spec import LaunchSpec
from gswarm.supervisor.stream import DEFAULT_MAX_LINE, Batch
from tests.test_supervisor_stream import reference

CHILD = """import random, sys
data = open(sys.argv[1], 'rb').read()
rng = random.Random(7)
out = sys.stdout.buffer
i = 0
while i < len(data):
    n = rng.choice([1, 7, 100, 4096, 65536, 300000])
    out.write(data[i:i + n]); out.flush()
    i += n
"""


def mixed_output(size: int = 10 * 1024 * 1024) -> bytes:
    rng = random.Random(42)
    parts: list[bytes] = []
    total = 0
    big_done = 0
    while total < size:
        kind = rng.randrange(8)
        if kind == 0:
            p = f"INFO round {total} stage {rng.randrange(3)}\n".encode()
        elif kind == 1:
            p = b"\x1b[32m>> green\x1b[0m text \x1b]0;title\x07ok\r\n"
        elif kind == 2:
            p = b"bad utf8 \xff\xfe \xe2\x82 trunc \xc3\n"
        elif kind == 3:
            p = b"".join(b"\r %3d%%|" % pct + b"#" * (pct // 5) for pct in range(0, 101, 10)) + b"\n"
        elif kind == 4:
            p = "unicode \u20ac \U0001f41d ok\n".encode()
        elif kind == 5 and big_done < 2 and total > size // 3 * (big_done + 1):
            p = b"L" * (1536 * 1024) + b"\xe2\x82\xac" + b"\n"  # a 1.5 MiB line
            big_done += 1
        elif kind == 6:
            p = b"\n"
        else:
            p = b"x" * rng.randrange(200, 5000) + b"\n"
        parts.append(p)
        total += len(p)
    parts.append(b"tail without newline")
    assert big_done == 2
    return b"".join(parts)


async def test_ten_megabytes_exact(tmp_path: Path) -> None:
    data = mixed_output()
    (tmp_path / "data.bin").write_bytes(data)
    (tmp_path / "child.py").write_text(CHILD)
    expected = reference(data, DEFAULT_MAX_LINE)
    got: list[tuple[str, str, int]] = []

    def on_batch(b: Batch, ts: float) -> None:
        got.extend(zip(b.texts, b.raws, b.flags or [0] * len(b.texts)))

    bus = EventBus()
    on_bus: list[str] = []
    bus.subscribe(lambda e: on_bus.extend(e.texts) if isinstance(e, OutputBatch) else None)
    spec = LaunchSpec(argv=(sys.executable, str(tmp_path / "child.py"), str(tmp_path / "data.bin")), cwd=tmp_path,
                      env={}, mode="direct", generation="E6")
    cap = CaptureFile(tmp_path / "out.log", max_bytes=1 << 40)
    p = NodeProcess(spec, "n", bus, time.time, capture=cap, on_batch=on_batch, prompt_idle=60)
    await p.start()
    st = await asyncio.wait_for(p.wait(), 120)
    assert st.exit_code == 0
    assert len(got) == len(expected) and got == [tuple(x) for x in expected]
    assert on_bus == [x.text for x in expected]
    assert sum(1 for x in expected if len(x.text) >= 1536 * 1024) == 2
    assert any(x.flags == 1 for x in expected) and any("\ufffd" in x.text for x in expected)
    rows = (tmp_path / "out.log").read_bytes().split(b"\n")
    assert rows[-1] == b"" and len(rows) - 1 == len(expected)
    marks = {b">": 0, b"~": 1, b"?": 2}
    for row, exp in zip(rows, expected):
        head, _, text = row.partition(b" ")[2].partition(b" ")[2].partition(b" ")
        assert marks[head] == exp.flags and text.decode() == exp.text


def test_capture_rotation(tmp_path: Path) -> None:
    cap = CaptureFile(tmp_path / "output.log", max_bytes=200, backups=2)
    for i in range(20):
        cap.write_batch(Batch([f"line {i:02d} " + "x" * 40], [""]), 1_700_000_000.5, 42)
    cap.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["output.log", "output.log.1", "output.log.2"]
    assert all(p.stat().st_size <= 200 for p in tmp_path.iterdir())
    assert (tmp_path / "output.log").read_text().splitlines()[-1].endswith("42 > line 19 " + "x" * 40)
    assert (tmp_path / "output.log").read_text().startswith("2023-11-14T22:13:20.500000Z 42 > ")
