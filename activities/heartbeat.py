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
async def heartbeating(*details: Any) -> AsyncIterator[None]:
    timeout = activity.info().heartbeat_timeout
    interval = max(timeout.total_seconds() / 3, 0.05) if timeout else 10.0

    async def beat() -> None:
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
