"""Transient failures of requests that are safe to repeat, tried again in place.

The SDK's own retries are off (``ArmConfig.sdk_retries = 0``): a failure that costs an attempt goes through the
workflow's retry schedule and is in history. But a stage that makes several requests which change nothing — reading
a deployment it follows, the resource group check, the what-if (side-effect free) and its polls, the health reads —
would lose whole attempts to single lost requests: at 20% faulty ARM requests about half the PLANNING attempts
failed and ~1.5% of deployments used up all six (docs/RELIABILITY.md, R1 and R2). So such a request, when it meets
an ENVIRONMENTAL failure (429, 5xx, a dropped connection), is made again in place, up to ``MAX_IN_PLACE_RETRIES``
times in a row, after ARM's Retry-After or the caller's pause, whichever is longer; each one is logged and listed in
the activity's result (``request_retries``), so history and the audit show it. Requests
with effects (the deployment PUT) and failures that are not environmental never come through here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from temporalio import activity

from contract.models import MAX_RECORDED_REQUEST_RETRIES, FailureClass, RequestRetry
from services.classification import classify_failure

T = TypeVar("T")

MAX_IN_PLACE_RETRIES = 5
TRANSIENT_PAUSE_SECONDS = 5.0  # the longest pause callers choose (ARM's Retry-After may ask for more)
TRANSIENT_CANDIDATES = (HttpResponseError, ServiceRequestError, ServiceResponseError, ConnectionError, TimeoutError)


async def retry_in_place(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    pause: float,
    beat: Callable[[], None] | None = None,
    beat_every: float = 1.0,
    retries: int = MAX_IN_PLACE_RETRIES,
    record: list[RequestRetry] | None = None,
) -> T:
    """``await call()``; on an environmental failure wait ``max(pause, Retry-After)`` and call again, at most
    ``retries`` times in a row. ``beat`` (an ``activity.heartbeat`` call) runs every ``beat_every`` seconds while
    waiting, so a long Retry-After never outlasts the heartbeat timeout. Each retry is appended to ``record`` (the
    activity returns it, so it is in history), up to ``MAX_RECORDED_REQUEST_RETRIES``."""
    failures = 0
    while True:
        try:
            return await call()
        except TRANSIENT_CANDIDATES as exc:
            why = classify_failure(exc)
            if why.failure_class is not FailureClass.ENVIRONMENTAL or failures >= retries:
                raise
            failures += 1
            delay = max(pause, why.retry_after_seconds or 0.0)
            if record is not None and len(record) < MAX_RECORDED_REQUEST_RETRIES:
                record.append(RequestRetry(what=what, code=why.code, delay_seconds=round(delay, 3)))
            activity.logger.warning(
                "%s failed (%s); trying again in place (%d of %d) in %.1f s", what, why.code, failures, retries, delay
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + delay
            while (left := deadline - loop.time()) > 0:
                if beat is not None:
                    beat()
                await asyncio.sleep(min(left, max(beat_every, 0.01)))
