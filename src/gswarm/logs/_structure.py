"""Structural reading of a failure: the last traceback, its final exception and raising frame, the launcher's lines.

Runs once per classification on the exit tail (``Classifier.classify_lines`` / ``StreamClassifier.result``), never
per live line. Input: ``lines`` as ``[(index, text)]`` in order (consecutive indexes where the text is known).

Shapes:

* :class:`Frame` — one ``File "<path>", line <n>, in <func>`` line of a Python traceback; ``kind`` is
  ``site-packages`` (path under ``site-packages/`` or ``dist-packages/``; ``module`` = the top-level package),
  ``stdlib`` (``<frozen …>``, ``…/lib/pythonX.Y/…`` outside site-packages), ``other`` (``<string>`` and similar) or
  ``project`` (anything else: the RL Swarm checkout — ``hivemind_exp/`` E0-E2, ``rgym_exp/`` E3-E5,
  ``code_gen_exp/`` E6 per generations.md §2 — or the operator's own files; ``module`` = the first path part
  after the checkout folder when recognisable).
* :class:`FinalException` — the exception that ended the LAST traceback in the text: dotted ``type``, short
  ``name``, ``message``, the line index of the exception line, the raising frame (the last frame printed before it)
  and ``start`` = index of the ``Traceback (most recent call last):`` line (or of the first frame / the exception
  line when the header was cut from the paste). Python prints chained exceptions oldest first, so the last
  traceback's exception is the one that ended the process.
* :class:`Structure` — ``exception`` (or None), ``launcher`` = indexes of lines written by bash about the launcher
  script (``./run_rl_swarm.sh: line N: …``, ``bash: …``, the zh_CN ``第 N 行``), ``core_dumped`` (a "(core dumped)"
  line) and the process exit passed in (``exit_code``, ``signal``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

_TB = "Traceback (most recent call last)"
_FRAME = re.compile(r'^\s*(?:\[rank\d+\]:\s*)?File "([^"]+)", line (\d+)(?:, in (\S+))?')
# an exception line: dotted name, then ": message" or the end of the line; the name must look like an exception
_EXC = re.compile(r"^\s*(?:\[rank\d+\]:\s*)?((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)(?::[ \t]+(.*\S)|:?\s*)$")
_EXC_NAME = re.compile(r"(?:Error|Exception|Interrupt|Exit|Timeout|Failure|Fault|error|Iteration|Warning)$")
_LAUNCHER = re.compile(r"^\S*run_rl_swarm\.sh: (?:line \d+|第 \d+ 行)|^(?:bash|zsh|sh): ")
_CORE = "(core dumped)"
_STACK = "Stack (most recent call last)"
_PROJECT_DIRS = ("hivemind_exp", "rgym_exp", "code_gen_exp", "genrl-swarm", "genrl_swarm", "web")
_STDLIB = re.compile(r"^<frozen |/lib/python\d+(?:\.\d+)?/(?!.*(?:site|dist)-packages/)|/Python\.framework/")
_SITE = re.compile(r"/(?:site|dist)-packages/([^/]+)")


@dataclass(frozen=True)
class Frame:
    path: str
    line: int
    func: str
    kind: str  # "project" | "site-packages" | "stdlib" | "other"
    module: str
    index: int  # line index of the File line


@dataclass(frozen=True)
class FinalException:
    type: str
    name: str
    message: str
    index: int
    start: int
    frame: Frame | None

    @property
    def text(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(frozen=True)
class Structure:
    exception: FinalException | None
    launcher: tuple[int, ...]
    core_dumped: bool
    exit_code: int | None = None
    signal: int | None = None


def frame_of(path: str, line: int, func: str, index: int) -> Frame:
    """Classify one traceback frame (kinds in the module docstring)."""
    p = path.replace("\\", "/")
    m = _SITE.search(p)
    if m:
        return Frame(path, line, func, "site-packages", m.group(1).removesuffix(".py"), index)
    if _STDLIB.search(p):
        return Frame(path, line, func, "stdlib", p.rsplit("/", 1)[-1].removesuffix(".py"), index)
    if p.startswith("<"):
        return Frame(path, line, func, "other", p, index)
    parts = p.split("/")
    module = next((x for x in parts if x in _PROJECT_DIRS), parts[-1].removesuffix(".py"))
    return Frame(path, line, func, "project", module, index)


def is_exception_line(text: str) -> re.Match[str] | None:
    """The match of an exception line (``Type: message`` / bare ``Type``) or None."""
    m = _EXC.match(text)
    if m is None or not _EXC_NAME.search(m.group(1)):
        return None
    return m


# line prefixes added by the way the output was captured: docker compose ("swarm_node-1  | ") and `docker logs`
# with timestamps as pasted in reports ("[rl-swarm] 2025-05-23T16:49:12.290114123Z ")
_PREFIX = re.compile(r"^(?:[\w.-]+ +\| ?|\[[\w.-]+\] \S*?\d{4}-\d\d-\d\dT[\d:.]+Z ?)")


def parse(lines: Sequence[tuple[int, str]], exit_code: int | None = None, signal: int | None = None) -> Structure:
    """Parse ``lines`` (see module docstring). Never raises; unknown shapes give ``exception=None``."""
    if any(_PREFIX.match(t) for _, t in lines[-50:]):
        lines = [(i, _PREFIX.sub("", t, count=1)) for i, t in lines]
    launcher = tuple(i for i, t in lines if _LAUNCHER.search(t))
    core = any(_CORE in t for _, t in lines[-200:])
    return Structure(_final_exception(lines), launcher, core, exit_code, signal)


def _final_exception(lines: Sequence[tuple[int, str]]) -> FinalException | None:
    stack = next((k for k in range(len(lines) - 1, -1, -1) if _STACK in lines[k][1]), None)
    if stack is not None and not any(_TB in t for _, t in lines[stack:]):
        lines = lines[:stack]  # logging's stack_info block after the exception: frames without an exception
    n = len(lines)
    tb = next((k for k in range(n - 1, -1, -1) if _TB in lines[k][1]), None)
    last = next((k for k in range(n - 1, -1, -1) if _FRAME.match(lines[k][1])), None)
    if tb is None and last is None:
        return _bare_exception(lines)
    frame: Frame | None = None
    if last is not None and (tb is None or last > tb):
        idx, text = lines[last]
        fm = _FRAME.match(text)
        frame = frame_of(fm.group(1), int(fm.group(2)), fm.group(3) or "", idx)  # type: ignore[union-attr]
        k = last
        while k > 0 and (tb is None or k > tb) and not _closes(lines[k - 1][1]):
            k -= 1  # back to the header, or to the first frame of a paste whose header was cut
        start, after = k, last + 1
    else:
        start, after = tb, tb + 1  # type: ignore[operator]
    for k in range(after, n):
        idx, text = lines[k]
        if text.startswith((" ", "\t")):
            continue  # source lines and carets under a frame
        m = is_exception_line(text.strip())
        if m is None:
            continue
        if any(t.strip().startswith("[...") for _, t in lines[after:k]):
            frame = None  # the paste cut frames between the last one shown and the exception: the raiser is unknown
        else:
            # the raising frame: the last one outside the standard library (concurrent.futures, runpy only re-raise)
            for i, t in reversed(lines[start:k]):
                fm = _FRAME.match(t)
                f = frame_of(fm.group(1), int(fm.group(2)), fm.group(3) or "", i) if fm else None
                if f is not None and f.kind != "stdlib":
                    frame = f
                    break
        return FinalException(m.group(1), m.group(1).rsplit(".", 1)[-1], (m.group(2) or "").strip(),
                              idx, lines[start][0], frame)
    return None


def _closes(text: str) -> bool:
    """A line that ends an earlier traceback (its exception line) and so cannot precede a frame of the same one."""
    return not text.startswith((" ", "\t")) and is_exception_line(text.strip()) is not None


_BARE_NAME = re.compile(r"^(?:[a-z_]\w*\.)*[A-Z][a-z]+[A-Za-z]*(?:Error|Exception)$")


def _bare_exception(lines: Sequence[tuple[int, str]]) -> FinalException | None:
    """No traceback at all: the last line of the text that is an exception line with a message, or a bare
    CamelCase ``…Error``/``…Exception`` name on its own line (a pasted title such as ``ModuleNotFoundError``)."""
    for idx, text in reversed(lines[-400:]):
        m = is_exception_line(text.strip())
        name = m.group(1) if m else ""
        # "socket.gaierror: ..." counts (a dotted lower-case *error); pip's "error: subprocess-exited-..." does not
        if m and (re.search(r"(?:Error|Exception)$", name) or re.search(r"\.\w*error$", name)) and (
                m.group(2) or _BARE_NAME.match(name)):
            return FinalException(m.group(1), m.group(1).rsplit(".", 1)[-1], (m.group(2) or "").strip(), idx, idx, None)
    return None
