"""Heartbeating around an await that has no natural progress points (an SDK poller's ``result()``), so a lost
worker is noticed within the heartbeat timeout instead of the start-to-close timeout, and cancellation reaches
the activity."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from temporalio import activity


@contextlib.asynccontextmanager
async def heartbeating(*details: Any, first_after: float = 0.0) -> AsyncIterator[None]:
    """``first_after``: seconds before the first beat. The SDK sends the first heartbeat at once and later ones at
    most every 0.8 × the heartbeat timeout, so details that are only known after a moment (what a wait waits for)
    should go out with the first one."""
    timeout = activity.info().heartbeat_timeout
    interval = max(timeout.total_seconds() / 3, 0.05) if timeout else 10.0
    first_after = min(first_after, interval)

    async def beat() -> None:
        await asyncio.sleep(first_after)
        while True:
            activity.heartbeat(*details)
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
