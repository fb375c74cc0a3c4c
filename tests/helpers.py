"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
from typing import Callable


async def until(pred: Callable[[], object], timeout: float = 30.0, step: float = 0.02) -> None:
    """Poll ``pred()`` every ``step`` real seconds until true; AssertionError after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(step)


def run_cli(capsys, *args: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Run ``gswarm.cli.main(args)`` in-process (its error mapping included) under pytest's ``capsys``;
    returns (exit code, stdout + stderr)."""
    from gswarm.cli import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return code, cap.out + cap.err
