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
    """Rotated like the JSON log (issue #18): stamped names, gzipped in the background, ``backups`` kept."""
    import gzip

    from gswarm.supervisor.capture import rotated_captures

    cap = CaptureFile(tmp_path / "output.log", max_bytes=200, backups=2)
    for i in range(20):
        cap.write_batch(Batch([f"line {i:02d} " + "x" * 40], [""]), 1_700_000_000.5, 42)
        cap.wait_tidy()
    cap.close()
    rotated = rotated_captures(tmp_path / "output.log")
    assert len(rotated) == 2 and all(p.name.endswith(".gz") for p in rotated)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output.log"] + [p.name for p in rotated]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in rotated)
    assert (tmp_path / "output.log").stat().st_size <= 200
    assert (tmp_path / "output.log").read_text().splitlines()[-1].endswith("42 > line 19 " + "x" * 40)
    assert (tmp_path / "output.log").read_text().startswith("2023-11-14T22:13:20.500000Z 42 > ")
    kept = [gzip.decompress(p.read_bytes()).decode().splitlines() for p in rotated] + [(tmp_path / "output.log").read_text().splitlines()]
    assert [r.split(" > ")[1][:7] for rows in kept for r in rows] == [f"line {i:02d}" for i in range(20 - sum(len(rows) for rows in kept), 20)]


def test_capture_writes_plain_chunks_from_their_bytes_identically(tmp_path: Path) -> None:
    from gswarm.supervisor.stream import LineSplitter

    chunks = [b"plain one\nplain two\n\nlast", b" line\n", "unicode \u20ac \U0001f41d \ufffd ok\n".encode(),
              b"bad \xff utf8\n", b"\x1b[1mbold\x1b[0m\n", b"redraw\r50%\rdone\n"]
    fast, slow = CaptureFile(tmp_path / "fast.log", max_bytes=120, backups=50), CaptureFile(tmp_path / "slow.log", max_bytes=120, backups=50)
    splitter, used = LineSplitter(), []
    for i, chunk in enumerate(chunks):
        b = splitter.feed(chunk)
        used.append(b.data is not None)
        fast.write_batch(b, 1_700_000_000.25 + i, 42)
        slow.write_batch(Batch(b.texts, b.raws, b.flags), 1_700_000_000.25 + i, 42)  # no bytes: the per-line path
    fast.close()
    slow.close()
    # plain and valid UTF-8 chunks use their bytes, a coloured one its stripped text's bytes (issue #18: it
    # took the per-line path before); U+FFFD (real or replaced) or \r take the per-line path
    assert used == [True, True, False, False, True, False]
    import gzip

    from gswarm.supervisor.capture import rotated_captures

    fast.wait_tidy()
    slow.wait_tidy()
    read = lambda stem: [gzip.decompress(p.read_bytes()) for p in rotated_captures(tmp_path / f"{stem}.log")] + [  # noqa: E731
        (tmp_path / f"{stem}.log").read_bytes()]
    assert read("fast") == read("slow") and len(read("fast")) > 2  # rotated alike
    rows = b"".join(read("fast")).decode().splitlines()
    assert [r.split(" ", 2)[2] for r in rows] == ["> plain one", "> plain two", "> ", "> last line", "> unicode \u20ac \U0001f41d \ufffd ok",
                                                  "> bad \ufffd utf8", "> bold", "~ redraw", "~ 50%", "> done"]
