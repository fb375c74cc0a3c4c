"""LineSplitter: chunking-invariant, lossless line splitting (checked against a slow reference)."""

from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st

from gswarm.supervisor.stream import CONTINUED, PARTIAL, REDRAW, LineSplitter, Line, strip_ansi

_TERM = re.compile(rb"\r\n|\n|\r")


def reference(data: bytes, max_line: int) -> list[Line]:
    """Obvious, slow implementation of the documented rules (whole stream at once)."""
    out: list[Line] = []
    pos = 0
    for m in _TERM.finditer(data):
        out.extend(_pieces(data[pos : m.start()], REDRAW if m.group() == b"\r" else 0, max_line))
        pos = m.end()
    out.extend(_pieces(data[pos:], PARTIAL, max_line))
    return out


def _pieces(body: bytes, flag: int, max_line: int) -> list[Line]:
    res = []
    while len(body) > max_line:
        cut = max_line
        while (body[cut] & 0xC0) == 0x80:
            cut -= 1
        res.append(body[:cut])
        body = body[cut:]
    lines = [Line(strip_ansi(b.decode("utf-8", "replace")), b.decode("utf-8", "replace"), CONTINUED) for b in res]
    if body or (flag == 0 and not res):
        raw = body.decode("utf-8", "replace")
        lines.append(Line(strip_ansi(raw), raw, flag))
    return lines


def run(chunks: list[bytes], max_line: int = 64) -> list[Line]:
    sp = LineSplitter(max_line=max_line)
    out: list[Line] = []
    for c in chunks:
        out.extend(sp.feed(c).lines())
    out.extend(sp.close().lines())
    return out


ALPHABET = st.sampled_from([b"a", b"b", b"\n", b"\r", b"\r\n", b"\x1b[31m", b"\xe2\x82\xac", b"\xe2", b"\xff", b" "])


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=200), st.lists(st.integers(1, 40), max_size=20), st.integers(8, 30))
def test_any_chunking_matches_reference(parts: list[bytes], cuts: list[int], max_line: int) -> None:
    data = b"".join(parts)
    chunks, pos = [], 0
    for c in cuts:
        chunks.append(data[pos : pos + c])
        pos += c
    chunks.append(data[pos:])
    assert run(chunks, max_line) == reference(data, max_line)


def test_crlf_redraw_and_ansi() -> None:
    lines = run([b"\x1b[32mgreen\x1b[0m\r\n 10%\r 20%\rdone\n"])
    assert [(l.text, l.flags) for l in lines] == [("green", 0), (" 10%", REDRAW), (" 20%", REDRAW), ("done", 0)]
    assert lines[0].raw == "\x1b[32mgreen\x1b[0m"


def test_prompt_flushed_only_on_request() -> None:
    sp = LineSplitter()
    assert len(sp.feed(b"Would you like to push models? [y/N] ")) == 0
    assert sp.pending > 0
    (line,) = list(sp.flush_partial().lines())
    assert line.text.endswith("[y/N] ") and line.partial
    assert len(sp.flush_partial()) == 0


def test_split_utf8_char_across_chunks() -> None:
    assert [l.text for l in run([b"\xe2\x82", b"\xac\n"])] == ["\u20ac"]


def test_long_line_kept_whole_up_to_cap() -> None:
    big = b"x" * (1536 * 1024)
    sp = LineSplitter()  # 8 MiB cap
    out = []
    for i in range(0, len(big), 65536):
        out.extend(sp.feed(big[i : i + 65536]).lines())
    out.extend(sp.feed(b"\n").lines())
    assert len(out) == 1 and len(out[0].text) == len(big) and out[0].flags == 0


def test_over_cap_is_cut_into_continuations() -> None:
    lines = run([b"y" * 20 + b"\n"], max_line=8)
    assert [(len(l.text), l.flags) for l in lines] == [(8, CONTINUED), (8, CONTINUED), (4, 0)]


def test_every_escape_sequence_is_stripped_and_the_terminal_gets_colours_only() -> None:
    """A node printing a full terminal reset (ESC c), cursor moves, screen clears, a title, charset switches,
    a bell or a backspace must not reach the operator's terminal or `gswarm logs` (the stripped text)."""
    from gswarm.ansi import strip_ansi, terminal_safe

    text = "C\x1bcD \x1b[31mred\x1b[0m \x1b[2J\x1b[H \x1b]0;title\x07 \x1b(B x\x07y\x08z \x1b7\x1b8 end\x1b"
    assert strip_ansi(text) == "CD red    x\x07y\x08z  end"
    assert terminal_safe(text) == "CD \x1b[31mred\x1b[0m    xyz  end"
    assert terminal_safe("\x1b[1;32mok\x1b[m \x1b[") == "\x1b[1;32mok\x1b[m "
    assert LineSplitter().feed(b"a\x1bcb\n").texts == ["ab"]


ESCAPE_SOUP = st.sampled_from(["\x1b", "[", "]", "0", "1", "3", ";", "m", "A", "K", "x", " ", "\x07", "\\", "?", "(",
                               "\x1b[0m", "\x1b[1;32m", "\x1b[2K", "\x1b]0;t\x07"])


@settings(max_examples=500, deadline=None)
@given(st.lists(ESCAPE_SOUP, max_size=40))
def test_strip_ansi_equals_the_full_pattern(parts: list[str]) -> None:
    """strip_ansi removes colours with a simpler pattern first (issue #18: ~17 % less per escape); the result
    must be exactly what the full pattern gives, whatever else surrounds the escapes."""
    from gswarm.ansi import ANSI_RE

    text = "".join(parts)
    assert strip_ansi(text) == ANSI_RE.sub("", text)


def test_strip_ansi_does_not_join_a_lone_escape_to_the_text_after_a_colour() -> None:
    """A lone ESC before a colour: removing the colour first would make ``ESC [1m`` a sequence of its own and
    eat the literal ``[1m`` text; the full pattern keeps it (the fallback runs on the original text)."""
    assert strip_ansi("\x1b\x1b[0m[1m") == "[1m"
    assert strip_ansi("a\x1b[31mred\x1b[0m") == "ared"


def test_a_coloured_chunk_carries_the_bytes_of_its_stripped_lines() -> None:
    """Issue #18: a chunk with ANSI colours gets ``data`` (its stripped text encoded once), so the capture file
    and a console that is no terminal write it as they write a plain chunk instead of joining and encoding
    every line (the node's ratio under a coloured flood went from 0.94 to 0.83, supervisord's 0.81-0.83)."""
    b = LineSplitter().feed(b"\x1b[32mgreen\x1b[0m one\n\x1b[1mbold\x1b[0m two\nrest")
    assert b.texts == ["green one", "bold two"]
    assert b.raws == ["\x1b[32mgreen\x1b[0m one", "\x1b[1mbold\x1b[0m two"]
    assert b.data == b"green one\nbold two"
    bad = LineSplitter().feed(b"\x1b[1m\xff\x1b[0m\n")  # invalid UTF-8: the decode was lossy, no bytes kept
    assert bad.texts == ["\ufffd"] and bad.data is None


def test_a_coloured_chunk_splits_its_raw_lines_only_when_asked() -> None:
    """Issue #18: the raw lines of a coloured chunk are wanted by a terminal console only; the splitter keeps
    their joined text and ``raws`` splits it on first use. The published event carries it the same way
    (``raws`` None, ``raw_text`` set, :attr:`OutputBatch.raw_lines` split on demand) and ``joined`` is the
    splitter's own text for coloured and plain chunks alike (no join per chunk)."""
    from gswarm.events import EventBus, OutputBatch
    from gswarm.supervisor.process import publish_batch

    b = LineSplitter().feed(b"\x1b[32mgreen\x1b[0m one\n\x1b[1mbold\x1b[0m two\n")
    assert b.raw_text == "\x1b[32mgreen\x1b[0m one\n\x1b[1mbold\x1b[0m two" and b._raws is None
    assert b.joined == "green one\nbold two"
    got: list[OutputBatch] = []
    bus = EventBus()
    bus.subscribe(lambda e: got.append(e) if isinstance(e, OutputBatch) else None)
    publish_batch(bus, "n", 7, b, 1.0)
    assert b._raws is None  # publishing did not split them
    e = got[0]
    assert e.raws is None and e.raw_text == b.raw_text and e.joined is b.joined
    assert e.raw_lines == ("\x1b[32mgreen\x1b[0m one", "\x1b[1mbold\x1b[0m two")
    assert [(line.text, line.raw) for line in e.lines()] == [("green one", "\x1b[32mgreen\x1b[0m one"),
                                                             ("bold two", "\x1b[1mbold\x1b[0m two")]
    assert b.raws == ["\x1b[32mgreen\x1b[0m one", "\x1b[1mbold\x1b[0m two"]  # split on first use
    plain = LineSplitter().feed(b"one\ntwo\n")
    publish_batch(bus, "n", 7, plain, 2.0)
    assert got[1].raws is None and got[1].raw_text is None and got[1].joined is plain.joined == "one\ntwo"
    assert got[1].raw_lines == ("one", "two")
