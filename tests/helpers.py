"""Small helpers shared by the asynchronous end-to-end tests."""

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
