"""Rotated logs are gzipped off the node's CPU (issue #18): in a thread of their own at SCHED_IDLE, with ISA-L.

Before, the JSON log's gzip ran in a shared worker thread at normal priority and the capture's in its own, both
with zlib level 1: on a flood they took a third of GSwarm's CPU and competed with the node for the 2 cores."""

from __future__ import annotations

import gzip
import os
import sys
import threading
from pathlib import Path

import pytest

from gswarm import paths


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE is Linux's")
def test_gzip_runs_at_idle_priority_in_its_own_thread_and_the_caller_keeps_its_own(tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int]] = []
    real = paths._gzip

    def spy(path: Path, level: int) -> Path:
        seen.append((threading.current_thread().name, os.sched_getscheduler(0)))
        return real(path, level)

    monkeypatch.setattr(paths, "_gzip", spy)
    src = tmp_path / "output.log.20261207T000000Z"
    body = b"".join(b"2026-12-07T00:00:00.000000Z 7 > line %d\n" % i for i in range(20000))
    src.write_bytes(body)
    done = paths.gzip_file(src, 1)
    assert seen == [("gswarm-gzip", os.SCHED_IDLE)]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the calling thread (maybe a shared worker) is untouched
    assert done == tmp_path / "output.log.20261207T000000Z.gz" and not src.exists()
    assert gzip.decompress(done.read_bytes()) == body and (done.stat().st_mode & 0o777) == 0o600


def test_gzip_uses_isal_and_a_failure_reaches_the_caller_and_leaves_no_temp(tmp_path: Path) -> None:
    import isal  # noqa: F401  (a declared dependency: the fast compressor is installed)

    with pytest.raises(FileNotFoundError):
        paths.gzip_file(tmp_path / "gone.log", 1)
    assert list(tmp_path.iterdir()) == []
