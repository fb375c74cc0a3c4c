""""Deadline or command": wait for the next command, a future, or a timeout on a clock."""

from __future__ import annotations

import asyncio
from typing import Any


async def next_command(queue: asyncio.Queue, other: asyncio.Future | None = None,
                       clock: Any = None, timeout: float | None = None) -> Any:
    """The next command from ``queue``, or None when ``other`` finished first or
    ``timeout`` seconds passed on ``clock`` (never loses a command: the getter is
    cancelled only while it has not taken one)."""
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    waits: set[asyncio.Future] = {getter}
    sleeper = None
    if other is not None:
        waits.add(other)
    if clock is not None and timeout is not None:
        sleeper = asyncio.ensure_future(clock.sleep(timeout))
        waits.add(sleeper)
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if sleeper is not None and not sleeper.done():
            sleeper.cancel()
        if not getter.done():
            getter.cancel()
            try:
                await getter
            except asyncio.CancelledError:
                pass
    if getter.done() and not getter.cancelled():
        return getter.result()
    return None
