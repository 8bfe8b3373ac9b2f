"""The environmental retry policy, one place: first try, then retries after 5, 10, 20, 40, 80 s (initial 5 s,
coefficient 2, capped at 5 min), honoring ARM's Retry-After when it asks for longer.

The workflow drives the retries itself (each activity execution is one attempt, ``maximum_attempts=1``) and waits
with a durable timer between attempts. That way every attempt, its classified failure and the chosen delay are
events in history (Temporal's server-side activity retries record only the last attempt), the ``status`` query can
report attempts and the last error per stage, and a LOGIC failure halts after exactly one call. ARM's Retry-After
travels from the activity to the workflow as the ApplicationError's ``next_retry_delay``.

Each worker may configure the schedule (``ORCHESTRATOR_RETRY_*`` variables or worker flags); the workflow reads
the worker's settings once through a local activity, so the schedule a deployment used is in its history.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

from temporalio.common import RetryPolicy

from orchestrator.models import RetrySchedule

ENV_INITIAL = "ORCHESTRATOR_RETRY_INITIAL_SECONDS"
ENV_COEFFICIENT = "ORCHESTRATOR_RETRY_BACKOFF_COEFFICIENT"
ENV_MAXIMUM_INTERVAL = "ORCHESTRATOR_RETRY_MAXIMUM_INTERVAL_SECONDS"
ENV_MAXIMUM_RETRIES = "ORCHESTRATOR_RETRY_MAXIMUM_RETRIES"

DEFAULT_SCHEDULE = RetrySchedule()

# One attempt per activity execution: the workflow owns retries (see the module docstring).
SINGLE_ATTEMPT = RetryPolicy(maximum_attempts=1)


def backoff_delay(schedule: RetrySchedule, retry_number: int) -> timedelta:
    """Delay before retry ``retry_number`` (1 = the first retry): 5, 10, 20, 40, 80 s by default."""
    if retry_number < 1:
        raise ValueError("retry_number starts at 1")
    seconds = schedule.initial_interval_seconds * schedule.backoff_coefficient ** (retry_number - 1)
    return timedelta(seconds=min(seconds, schedule.maximum_interval_seconds))


def next_delay(schedule: RetrySchedule, retry_number: int, retry_after_seconds: float | None) -> timedelta:
    """The backoff delay, or ARM's Retry-After when that is longer (retrying earlier only earns a new 429)."""
    delay = backoff_delay(schedule, retry_number)
    if retry_after_seconds is not None and retry_after_seconds > delay.total_seconds():
        return timedelta(seconds=retry_after_seconds)
    return delay


def full_schedule(schedule: RetrySchedule) -> list[timedelta]:
    return [backoff_delay(schedule, n) for n in range(1, schedule.maximum_retries + 1)]


def as_temporal_retry_policy(schedule: RetrySchedule) -> RetryPolicy:
    """The same schedule as a Temporal RetryPolicy, for callers that let the server retry."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=schedule.initial_interval_seconds),
        backoff_coefficient=schedule.backoff_coefficient,
        maximum_interval=timedelta(seconds=schedule.maximum_interval_seconds),
        maximum_attempts=schedule.maximum_retries + 1,
    )


def schedule_from_env(environ: Mapping[str, str] | None = None, **overrides: float | int | None) -> RetrySchedule:
    """The worker's schedule: defaults, then ``ORCHESTRATOR_RETRY_*`` variables, then explicit overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, float | int] = {}
    for field, var, kind in (
        ("initial_interval_seconds", ENV_INITIAL, float),
        ("backoff_coefficient", ENV_COEFFICIENT, float),
        ("maximum_interval_seconds", ENV_MAXIMUM_INTERVAL, float),
        ("maximum_retries", ENV_MAXIMUM_RETRIES, int),
    ):
        raw = env.get(var)
        if raw:
            try:
                values[field] = kind(raw)
            except ValueError:
                raise ValueError(f"{var}={raw!r} is not a number; unset it or give e.g. {var}=5") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    schedule = RetrySchedule.model_validate(values)
    if schedule.initial_interval_seconds <= 0 or schedule.backoff_coefficient < 1 or schedule.maximum_retries < 0:
        raise ValueError(
            "the retry schedule needs initial interval > 0, backoff coefficient >= 1 and retries >= 0; "
            f"got {schedule.model_dump()}"
        )
    return schedule
