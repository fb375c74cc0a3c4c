"""ANSI escape sequences in node output: one pattern for everything that strips them.

Covers CSI (``ESC [ params intermediates final``: colours, cursor moves), OSC
(``ESC ] … BEL`` or ``ESC \\``: titles) and other two-byte ``ESC x`` sequences.
None of them may contain ``\\r`` or ``\\n``, so stripped and raw text split into
the same lines. The official script colours its prompts and ``>>`` messages
(generations.md §2.1), so every matcher works on stripped text.
"""

from __future__ import annotations

import re

ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\r\n]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (cheap when there are none)."""
    return ANSI_RE.sub("", text) if "\x1b" in text else text
