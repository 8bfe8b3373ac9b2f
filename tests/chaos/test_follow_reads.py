"""Requests that change nothing are made again in place when they meet a transient failure (429/503 or a dropped
connection) instead of ending the attempt (activities/transient.py). The chaos suite's 20%-faults run lost
deployments to that: every attempt ended at its first failed request until all six were used up — in DEPLOYING
while following the deployment (R1), in PLANNING (R2). The PUT's failures still end the attempt."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from client.deployments import query_status, result_of, start_deployment
from contract.models import DeploymentStage, DeploymentStatus, DeployOutcome, DeployResult
from harness.localarm import real_worker, request_for, storage_template
from local_arm.admin import Counters, Fault
from local_arm.testing import FAST, LocalArm, running_local_arm
from services.audit.history import fetch_record
from services.audit.record import AuditRecord

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-follow"), **FAST)


@dataclass
class Run:
    result: DeployResult
    status: DeploymentStatus
    counters: Counters
    record: AuditRecord

    def retried_in_place(self, activity: str) -> list[str]:
        """What the audit lists as made again in place by the completed ``activity``."""
        (event,) = [
            e for e in self.record.events if e.event_type == "activity_completed" and e.details["activity"] == activity
        ]
        return list(event.details.get("requests_retried_in_place", []))


async def deploy_under_faults(
    dev_env: Any, local_arm: LocalArm, tmp_path: Any, task_queue: str, rg: str, account: str, *faults: dict
) -> Run:
    """One storage-account deployment through the workflow with ``faults`` set on the local ARM; it must succeed."""
    local_arm.admin.set_faults(*faults)
    try:
        request = request_for(local_arm, tmp_path, rg, storage_template([account]))
        async with real_worker(dev_env.client, local_arm, tmp_path, task_queue):
            handle = await start_deployment(dev_env.client, request, task_queue=task_queue)
            result = await result_of(handle)
            status = await query_status(handle)
        counters = local_arm.admin.counters()
    finally:
        local_arm.admin.clear_faults()
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    return Run(result, status, counters, await fetch_record(dev_env.client, result.workflow_id))


async def test_failed_reads_while_following_do_not_end_the_attempt(
    dev_env, local_arm, tmp_path, task_queue, resource_group
) -> None:
    # The deployment runs 1.5 s; its first four GETs fail: 429, 503, two dropped connections.
    run = await deploy_under_faults(
        dev_env, local_arm, tmp_path, task_queue, resource_group, "stfollow0001",
        Fault.slow_lro(1.5, method="PUT", path=resource_group),
        Fault.throttle(retry_after=1, operation="Deployments_Get", path=resource_group, count=1),
        Fault.error(503, operation="Deployments_Get", path=resource_group, count=1),
        Fault.drop(operation="Deployments_Get", path=resource_group, count=2),
    )  # fmt: skip
    assert run.status.stages[DeploymentStage.DEPLOYING].attempts == 1
    name = run.result.deployment_name
    assert run.counters.count(operation="Deployments_Get", deployment=name, status=429) == 1
    assert run.counters.count(operation="Deployments_Get", deployment=name, status=503) == 1
    assert run.counters.count(method="PUT", deployment=name) == 1
    assert len(run.retried_in_place("deploy")) == 4


async def test_reads_that_keep_failing_still_end_the_attempt(
    dev_env, local_arm, tmp_path, task_queue, resource_group
) -> None:
    """Six failed reads in a row (more than MAX_FOLLOW_READ_RETRIES): the attempt ends as environmental and the
    workflow's next attempt resumes following the same ARM deployment — still one PUT."""
    run = await deploy_under_faults(
        dev_env, local_arm, tmp_path, task_queue, resource_group, "stfollow0002",
        Fault.slow_lro(1.0, method="PUT", path=resource_group),
        Fault.error(503, operation="Deployments_Get", path=resource_group, count=6),
    )  # fmt: skip
    deploying = run.status.stages[DeploymentStage.DEPLOYING]
    assert deploying.attempts == 2 and deploying.last_error_code == "ServiceUnavailable"
    assert run.counters.count(method="PUT", deployment=run.result.deployment_name) == 1


async def test_failed_requests_while_planning_and_verifying_do_not_end_the_attempt(
    dev_env, local_arm, tmp_path, task_queue, resource_group
) -> None:
    """R2: the resource group check, the what-if and the health reads each fail once or twice; PLANNING and
    VERIFYING_HEALTH still take one attempt each."""
    run = await deploy_under_faults(
        dev_env, local_arm, tmp_path, task_queue, resource_group, "stplanread001",
        Fault.throttle(retry_after=1, operation="ResourceGroups_CheckExistence", path=resource_group, count=1),
        Fault.error(503, operation="Deployments_WhatIf", path=resource_group, count=1),
        Fault.drop(operation="Deployments_WhatIf", path=resource_group, count=1),
        Fault.error(503, operation="Resources_GetById", path=resource_group, count=2),
        Fault.throttle(retry_after=1, operation="AvailabilityStatuses_GetByResource", path=resource_group, count=1),
    )  # fmt: skip
    assert run.status.stages[DeploymentStage.PLANNING].attempts == 1
    assert run.status.stages[DeploymentStage.VERIFYING_HEALTH].attempts == 1
    assert run.counters.count(operation="Deployments_WhatIf", path_contains=resource_group, status=503) == 1
    assert run.counters.count(operation="Resources_GetById", path_contains=resource_group, status=503) == 2
    assert run.counters.count(operation="ResourceGroups_CheckExistence", path_contains=resource_group, status=429) == 1
    # The retries are not attempts, but they are in history: in the activities' results, and so in the audit.
    plan = run.status.plan
    assert plan is not None
    assert sorted(r.what.split(" ")[0] for r in plan.request_retries) == ["ensuring", "what-if", "what-if"]
    assert "ServiceUnavailable" in {r.code for r in plan.request_retries}
    assert len(run.retried_in_place("plan_deployment")) == 3
    health = run.retried_in_place("verify_health")
    assert len(health) == 3 and any("ServiceUnavailable" in line for line in health)


async def test_a_what_if_that_keeps_failing_still_ends_the_attempt(
    dev_env, local_arm, tmp_path, task_queue, resource_group
) -> None:
    """Six failed what-ifs in a row: the first attempt ends as environmental (in history), the next succeeds."""
    run = await deploy_under_faults(
        dev_env, local_arm, tmp_path, task_queue, resource_group, "stplanread002",
        Fault.error(503, operation="Deployments_WhatIf", path=resource_group, count=6),
    )  # fmt: skip
    planning = run.status.stages[DeploymentStage.PLANNING]
    assert planning.attempts == 2 and planning.last_error_code == "ServiceUnavailable"
