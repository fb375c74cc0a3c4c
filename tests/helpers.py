"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any, Callable


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


def wait_for(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition", step: float = 0.02) -> Any:
    """Poll ``pred()`` every ``step`` real seconds until it returns something true and return that value;
    AssertionError naming ``what`` after ``timeout`` seconds (for tests outside an event loop)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(step)


def stop_gracefully(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM the process this test started (its graceful stop), SIGKILL it after ``timeout`` s; reaped."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def reap_leftover(proc: subprocess.Popen) -> None:
    """SIGKILL and reap the process this test started if it is still running (the ``finally`` of a test whose
    own body stops it gracefully and checks its exit code)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
