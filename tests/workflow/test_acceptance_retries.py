"""Acceptance, environmental failures: the real activities against the local ARM with injected faults, on the
time-skipping test server so that the real schedule (5, 10, 20, 40, 80 s) runs in moments. The backoff timers are
read from history; the local ARM's counters show each retry really reached ARM once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from temporalio.api.enums.v1 import EventType

from client.deployments import query_status, result_of, start_deployment
from contract.models import DeploymentStage, DeployOutcome, FailureClass, RetrySchedule
from harness.localarm import fast_settings, real_worker, request_for, storage_template
from local_arm.admin import Fault
from local_arm.testing import FAST, LocalArm, running_local_arm

pytestmark = pytest.mark.asyncio(loop_scope="session")

SEED_SCHEDULE = fast_settings(retry=RetrySchedule())  # the real 5/10/20/40/80 s schedule


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-retries"), **FAST)


@pytest.fixture(autouse=True)
def no_faults_left(local_arm):
    yield
    local_arm.admin.clear_faults()


async def timers(handle) -> list[float]:
    history = await handle.fetch_history()
    return [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]


async def test_service_unavailable_retried_on_schedule_then_fails_environmental(
    time_skipping_env, local_arm, tmp_path, task_queue, resource_group
):
    local_arm.admin.add_faults(Fault.error(503, operation="Deployments_CreateOrUpdate", path=resource_group))
    request = request_for(local_arm, tmp_path, resource_group, storage_template(["stenv00001"]))
    async with real_worker(time_skipping_env.client, local_arm, tmp_path, task_queue, SEED_SCHEDULE):
        handle = await start_deployment(time_skipping_env.client, request, task_queue=task_queue)
        result = await result_of(handle)
        status = await query_status(handle)
    assert result.outcome is DeployOutcome.ENVIRONMENTAL_FAILURE  # the CLI's exit code 3
    assert result.failure is not None and result.failure.failure_class is FailureClass.ENVIRONMENTAL
    assert result.failure.code == "ServiceUnavailable" and result.failure.stage is DeploymentStage.DEPLOYING
    assert await timers(handle) == [5, 10, 20, 40, 80]
    assert status.stages[DeploymentStage.DEPLOYING].attempts == 6
    puts = local_arm.admin.counters().count(method="PUT", deployment=result.deployment_name)
    assert puts == 6  # one PUT per attempt: the SDK's own retries are off, the workflow's schedule is the policy


async def test_throttling_honors_retry_after(time_skipping_env, local_arm, tmp_path, task_queue, resource_group):
    local_arm.admin.add_faults(
        Fault.throttle(retry_after=45, operation="Deployments_CreateOrUpdate", path=resource_group, count=2)
    )
    request = request_for(local_arm, tmp_path, resource_group, storage_template(["stenv00002"]))
    async with real_worker(time_skipping_env.client, local_arm, tmp_path, task_queue, SEED_SCHEDULE):
        handle = await start_deployment(time_skipping_env.client, request, task_queue=task_queue)
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    # ARM asked for 45 s twice: longer than the 5 s and 10 s backoffs, so it wins both times. (The PUT: requests
    # that change nothing are made again inside the attempt, activities/transient.py.)
    assert await timers(handle) == [45, 45]
    assert local_arm.admin.counters().count(operation="Deployments_CreateOrUpdate", path_contains=resource_group) == 3


async def test_retry_after_shorter_than_backoff_keeps_the_schedule(
    time_skipping_env, local_arm, tmp_path, task_queue, resource_group
):
    local_arm.admin.add_faults(Fault.throttle(retry_after=1, operation="Deployments_CreateOrUpdate", count=1,
                                              path=resource_group))  # fmt: skip
    request = request_for(local_arm, tmp_path, resource_group, storage_template(["stenv00003"]))
    async with real_worker(time_skipping_env.client, local_arm, tmp_path, task_queue, SEED_SCHEDULE):
        handle = await start_deployment(time_skipping_env.client, request, task_queue=task_queue)
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert await timers(handle) == [5]
