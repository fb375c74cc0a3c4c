"""ANSI escape sequences in node output: one pattern for everything that strips them.

Covers CSI (``ESC [ params intermediates final``: colours, cursor moves), OSC
(``ESC ] … BEL`` or ``ESC \\``: titles) and the other ``ESC [intermediates] final`` sequences
(``ESC c`` full reset, ``ESC 7``/``ESC 8`` cursor save/restore, ``ESC ( B`` charset…).
None of them may contain ``\\r`` or ``\\n``, so stripped and raw text split into
the same lines. The official script colours its prompts and ``>>`` messages
(generations.md §2.1), so every matcher works on stripped text.
"""

from __future__ import annotations

import re

ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\r\n]*(?:\x07|\x1b\\)?|[ -/]*[0-~]|)")  # |): a lone ESC
# what a terminal may receive from the node: colours (SGR, ``ESC [ … m``) and nothing else
_NOT_SGR = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-ln-~]|\][^\x07\x1b\r\n]*(?:\x07|\x1b\\)?|[ -/]*[0-Z\\^-~]|\[(?![0-?]*[ -/]*[@-~])|(?![\[\]]))"
                      r"|[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f]")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (cheap when there are none)."""
    return ANSI_RE.sub("", text) if "\x1b" in text else text


def terminal_safe(text: str) -> str:
    """``text`` for GSwarm's own terminal: colours kept; every other escape sequence (cursor moves,
    screen clears, ``ESC c`` full reset, titles) and C0 control character (bell, backspace…) removed, so a
    node cannot reset or scribble over the operator's terminal."""
    return _NOT_SGR.sub("", text)
