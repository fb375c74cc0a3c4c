"""File following: new lines only, partial lines, rotation, truncation, late files, globs."""

from __future__ import annotations

import os
from pathlib import Path

from gswarm.monitor.follow import FileFollower, GlobFollower


def test_skips_history_then_reads_new_complete_lines(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_text("old 1\nold 2\n")
    f = FileFollower(p)
    assert f.read_lines() == []
    with p.open("a") as fh:
        fh.write("new 1\nnew 2 part")
    assert f.read_lines() == ["new 1"]
    with p.open("a") as fh:
        fh.write("ial\r\n")
    assert f.read_lines() == ["new 2 partial"]


def test_late_file_is_read_from_start_and_bad_utf8_replaced(tmp_path: Path) -> None:
    p = tmp_path / "late.log"
    f = FileFollower(p)
    assert f.read_lines() == []
    p.write_bytes(b"first\n\xff\xfe x\n")
    assert f.read_lines() == ["first", "\ufffd\ufffd x"]


def test_rotation_reads_rest_of_old_file_then_new(tmp_path: Path) -> None:
    p = tmp_path / "swarm.log"
    p.write_text("")
    f = FileFollower(p)
    with p.open("a") as fh:
        fh.write("a\n")
    assert f.read_lines() == ["a"]
    with p.open("a") as fh:
        fh.write("b\nc-no-newline")
    os.rename(p, tmp_path / "swarm.log.1")
    assert f.read_lines() == ["b"]  # new file not there yet: keep the old one
    p.write_text("d\n")
    assert f.read_lines() == ["c-no-newline", "d"]


def test_truncation_restarts_from_beginning(tmp_path: Path) -> None:
    p = tmp_path / "swarm.log"
    p.write_text("")
    f = FileFollower(p)
    p.write_text("one\ntwo\nthree\n")
    assert f.read_lines() == ["one", "two", "three"]
    with p.open("w") as fh:  # E2 truncates swarm.log at every start
        fh.write("x\n")
    assert f.read_lines() == ["x"]


def test_glob_follower_picks_up_new_files(tmp_path: Path) -> None:
    (tmp_path / "training_a.log").write_text("history\n")
    g = GlobFollower(str(tmp_path / "training_*.log"))
    assert g.read_lines() == []
    (tmp_path / "training_b.log").write_text("b1\n")
    with (tmp_path / "training_a.log").open("a") as fh:
        fh.write("a1\n")
    assert g.read_lines() == ["a1", "b1"]
    g.close()
