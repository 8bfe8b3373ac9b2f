"""One ARM request budget per subscription, shared by every deployment a worker runs (docs/FLEET.md, "ARM request
budget").

ARM throttles per subscription (and principal and region) with token buckets — writes and deletes 200 with 10/s
refill, reads 250 with 25/s — and answers every request with what is left (``x-ms-ratelimit-remaining-subscription-
reads|writes|deletes``) and a 429 with ``Retry-After`` once a bucket is empty. That header *is* the shared budget:
ARM counts every caller's requests, so each worker reading it sees what all workers together have left. This policy
(an azure-core per-retry policy on every ARM client of the worker) follows it:

- before a request, it waits while the subscription's bucket of that kind is known to be at or below ``reserve``
  (the time the bucket needs to refill to above it), so a fleet slows down before ARM has to refuse anyone;
- a 429 pauses every request of that kind on that subscription, for every deployment of this worker, until
  ``Retry-After`` has passed;
- every wait gets a jitter derived from the request (a hash of its method and path), never from a random source:
  the same request waits the same, different requests spread, and a fleet does not retry in lockstep.

Why on the worker and not in Temporal (an entity workflow per subscription): every ARM request would then cost a
Temporal round trip (a signal or update and a wait), on the hot path of thousands of polls; ARM already keeps the
authoritative count and tells it to every caller. The limit of this design: between two responses, workers spend
from the same remaining count without knowing of each other, so with W workers the reserve should be at least W
times the requests one worker sends in a response's round trip (``ORCHESTRATOR_ARM_RESERVE``, default 20).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy

REFILL_PER_SECOND = {"reads": 25.0, "writes": 10.0, "deletes": 10.0}  # ARM's documented refill rates
MAX_JITTER_SECONDS = 0.5
PROBE_WAIT_SECONDS = 0.05
# A wait longer than this is not spent inside the activity (it would outlast the heartbeat timeout): the request
# fails as throttled with the time to wait, and the workflow waits it out as a durable timer.
MAX_IN_PROCESS_WAIT_SECONDS = 2.0


class BudgetPaused(Exception):
    """The subscription's budget asks for a longer wait than an activity should sleep: classified like ARM's 429
    (ENVIRONMENTAL, TooManyRequests) with ``retry_after_seconds``."""

    code = "TooManyRequests"

    def __init__(self, subscription: str, kind: str, seconds: float) -> None:
        super().__init__(
            f"the shared ARM request budget of subscription {subscription} pauses {kind} for {seconds:.0f} s more "
            "(ARM throttled it, or its bucket is nearly empty)"
        )
        self.retry_after_seconds = max(1.0, round(seconds))


_SUBSCRIPTION = re.compile(r"/subscriptions/([^/?]+)", re.IGNORECASE)


def request_kind(method: str) -> str:
    method = method.upper()
    return "reads" if method in ("GET", "HEAD") else "deletes" if method == "DELETE" else "writes"


def deterministic_jitter(method: str, path: str, *, ceiling: float = MAX_JITTER_SECONDS) -> float:
    """0 .. ``ceiling`` seconds, the same for the same request, spread across requests."""
    digest = hashlib.sha256(f"{method.upper()} {path}".encode()).digest()
    return ceiling * int.from_bytes(digest[:4], "big") / 0xFFFFFFFF


@dataclass
class _Bucket:
    remaining: float | None = None  # what ARM last said is left (None: not told yet)
    seen_at: float = 0.0
    paused_until: float = 0.0
    probing: bool = False  # the first request is out: the others wait for what its answer says is left


@dataclass
class ArmBudget:
    reserve: int = 20
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Any] = asyncio.sleep
    buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)
    waits: int = 0  # requests that waited (for the benchmark and the logs)
    throttled: int = 0  # 429s seen

    def _bucket(self, subscription: str, kind: str) -> _Bucket:
        return self.buckets.setdefault((subscription.lower(), kind), _Bucket())

    def delay(self, subscription: str, kind: str) -> float:
        """Seconds to wait before sending a request of ``kind`` now (0: send)."""
        b = self._bucket(subscription, kind)
        now = self.clock()
        wait = max(0.0, b.paused_until - now)
        if b.remaining is not None:
            refilled = b.remaining + (now - b.seen_at) * REFILL_PER_SECOND[kind]
            if refilled <= self.reserve:
                wait = max(wait, (self.reserve + 1 - refilled) / REFILL_PER_SECOND[kind])
        return wait

    async def acquire(self, subscription: str, method: str, path: str) -> None:
        kind = request_kind(method)
        b = self._bucket(subscription, kind)
        while True:
            wait = self.delay(subscription, kind)
            if wait <= 0 and b.remaining is None and b.probing:
                wait = PROBE_WAIT_SECONDS  # nothing known yet: one request asks, the others wait for its answer
            if wait <= 0:
                break
            if wait > MAX_IN_PROCESS_WAIT_SECONDS:
                raise BudgetPaused(subscription, kind, wait)
            self.waits += 1
            await self.sleep(wait + deterministic_jitter(method, path))
        if b.remaining is None:
            b.probing = True
        else:  # spend one until ARM says otherwise
            b.remaining -= 1

    def release(self, subscription: str, method: str) -> None:
        """A request ended without an answer (a dropped connection): let another one ask."""
        self._bucket(subscription, request_kind(method)).probing = False

    def observe(self, subscription: str, method: str, status: int, headers: Any) -> None:
        kind = request_kind(method)
        b = self._bucket(subscription, kind)
        now = self.clock()
        value = headers.get(f"x-ms-ratelimit-remaining-subscription-{kind}")
        b.probing = False
        if value is not None:
            with contextlib.suppress(ValueError):
                told = float(value)
                if b.remaining is not None:  # answers of earlier requests may arrive late: keep the lower
                    told = min(told, b.remaining + (now - b.seen_at) * REFILL_PER_SECOND[kind])
                b.remaining, b.seen_at = told, now
        if status == 429:
            self.throttled += 1
            retry_after = headers.get("Retry-After") or headers.get("retry-after") or "1"
            try:
                seconds = float(retry_after)
            except ValueError:
                seconds = 1.0
            b.paused_until = max(b.paused_until, now + seconds)


class ArmBudgetPolicy(AsyncHTTPPolicy):
    """The budget as an azure-core policy: wait before sending, learn from every response."""

    def __init__(self, budget: ArmBudget) -> None:
        super().__init__()
        self._budget = budget

    async def send(self, request: PipelineRequest) -> PipelineResponse:
        http = request.http_request
        match = _SUBSCRIPTION.search(http.url)
        if match is None:
            return await self.next.send(request)
        subscription = match.group(1)
        path = http.url.split("?", 1)[0]
        await self._budget.acquire(subscription, http.method, path)
        try:
            response = await self.next.send(request)
        except BaseException:
            self._budget.release(subscription, http.method)
            raise
        self._budget.observe(subscription, http.method, response.http_response.status_code,
                             response.http_response.headers)  # fmt: skip
        return response
