"""The retry schedule: 5, 10, 20, 40, 80 s by default, capped at 5 minutes, Retry-After honored, configurable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contract.models import RetrySchedule
from contract.retry import as_temporal_retry_policy, full_schedule, next_delay, schedule_from_env


def test_default_schedule() -> None:
    assert [d.total_seconds() for d in full_schedule(RetrySchedule())] == [5, 10, 20, 40, 80]


def test_maximum_interval_caps_the_backoff() -> None:
    schedule = RetrySchedule(maximum_retries=9)
    assert [d.total_seconds() for d in full_schedule(schedule)][-3:] == [300, 300, 300]


def test_retry_after_wins_only_when_longer() -> None:
    schedule = RetrySchedule()
    assert next_delay(schedule, 1, 30) == timedelta(seconds=30)
    assert next_delay(schedule, 3, 2) == timedelta(seconds=20)
    assert next_delay(schedule, 2, None) == timedelta(seconds=10)


def test_configurable_per_worker_from_environment() -> None:
    env = {"ORCHESTRATOR_RETRY_INITIAL_SECONDS": "1", "ORCHESTRATOR_RETRY_MAXIMUM_RETRIES": "3"}
    schedule = schedule_from_env(env)
    assert [d.total_seconds() for d in full_schedule(schedule)] == [1, 2, 4]
    assert schedule_from_env(env, maximum_retries=1).maximum_retries == 1


@pytest.mark.parametrize(
    "env",
    [{"ORCHESTRATOR_RETRY_INITIAL_SECONDS": "soon"}, {"ORCHESTRATOR_RETRY_BACKOFF_COEFFICIENT": "0.5"}],
)
def test_bad_configuration_names_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"ORCHESTRATOR_RETRY|coefficient"):
        schedule_from_env(env)


def test_same_schedule_as_a_temporal_retry_policy() -> None:
    policy = as_temporal_retry_policy(RetrySchedule())
    assert policy.initial_interval == timedelta(seconds=5)
    assert policy.backoff_coefficient == 2
    assert policy.maximum_interval == timedelta(minutes=5)
    assert policy.maximum_attempts == 6
