"""Acceptance (issue 6): VERIFYING_HEALTH reads provisioningState and Resource Health of every deployed resource —
the real workflow and activities on a real Temporal dev server, deploying to the local ARM, whose health fault
knobs make a resource stay Updating, turn Failed, or report Unavailable/Unknown in Resource Health."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from client.deployments import result_of, start_deployment
from contract.health import HealthSpec
from contract.models import DeploymentStage, DeployOutcome, DeployResult
from harness.localarm import real_worker, request_for, storage_template
from local_arm.admin import Fault
from local_arm.testing import FAST, LocalArm, running_local_arm
from services.temporal_client import data_converter
from tests.support.temporal import temporal_cli

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=data_converter(),
        ip="127.0.0.1",
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="module")
def arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm"), **FAST)


def names(n: int) -> list[str]:
    return [f"st{uuid.uuid4().hex[:12]}" for _ in range(n)]


async def deploy(
    temporal: WorkflowEnvironment, arm: LocalArm, tmp_path: Path, accounts: list[str], *, window: float = 3.0
) -> tuple[DeployResult, list[str]]:
    blob_dir = tmp_path / "blobs"
    rg = f"rg-{uuid.uuid4().hex[:10]}"
    request = request_for(arm, blob_dir, rg, storage_template(accounts)).model_copy(
        update={"health": HealthSpec(window_seconds=window, retry_interval_seconds=0.2)}
    )
    queue = f"tq-{uuid.uuid4()}"
    async with real_worker(temporal.client, arm, blob_dir, queue):
        result = await result_of(await start_deployment(temporal.client, request, task_queue=queue))
    ids = [
        f"/subscriptions/{arm.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{n}"
        for n in accounts
    ]
    return result, ids


def _failure(result: DeployResult) -> Any:
    assert result.outcome is DeployOutcome.ENVIRONMENTAL_FAILURE, result.failure
    assert result.failure is not None and result.failure.stage is DeploymentStage.VERIFYING_HEALTH
    return result.failure


async def test_healthy_resources_are_available(temporal, arm, tmp_path) -> None:
    arm.admin.reset_counters()
    result, _ids = await deploy(temporal, arm, tmp_path, names(2))
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert arm.admin.counters().count(operation="AvailabilityStatuses_GetByResource", status=200) == 2


async def test_a_resource_stuck_updating_fails_the_stage_naming_it(temporal, arm, tmp_path) -> None:
    accounts = names(2)
    arm.admin.add_faults(Fault.stays_updating(resource_name=accounts[1]))
    result, ids = await deploy(temporal, arm, tmp_path, accounts, window=1.5)
    failure = _failure(result)
    assert failure.code == "ResourceUnhealthy"
    assert ids[1] in failure.message and "Updating" in failure.message
    assert result.unhealthy == [ids[1]]  # the healthy one is not blamed


async def test_a_resource_that_turned_failed_fails_at_once(temporal, arm, tmp_path) -> None:
    accounts = names(1)
    arm.admin.add_faults(Fault.turns_failed(resource_name=accounts[0]))
    arm.admin.reset_counters()
    result, ids = await deploy(temporal, arm, tmp_path, accounts, window=30)
    failure = _failure(result)
    assert f"{ids[0]}: Failed" in failure.message
    # Failed is final: no waiting out the 30 s window (one read of the resource after the deployment).
    assert arm.admin.counters().count(method="GET", path_contains=accounts[0], operation="Resources_GetById") == 1


async def test_unavailable_for_a_while_is_retried_within_the_window(temporal, arm, tmp_path) -> None:
    accounts = names(1)
    arm.admin.add_faults(Fault.unavailable(resource_name=accounts[0], count=3))
    result, _ids = await deploy(temporal, arm, tmp_path, accounts, window=10)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    faults = arm.admin.faults()["rules"]
    assert [r["fired"] for r in faults if r.get("resource_name") == accounts[0]] == [3]


async def test_degraded_past_the_window_fails_naming_resource_health(temporal, arm, tmp_path) -> None:
    accounts = names(1)
    arm.admin.add_faults(Fault.degraded(resource_name=accounts[0]))
    result, ids = await deploy(temporal, arm, tmp_path, accounts, window=1)
    failure = _failure(result)
    assert f"{ids[0]}: Degraded in Resource Health" in failure.message


async def test_unknown_is_tolerated_with_a_note(temporal, arm, tmp_path) -> None:
    accounts = names(1)
    arm.admin.add_faults(Fault.availability("Unknown", resource_name=accounts[0]))
    result, ids = await deploy(temporal, arm, tmp_path, accounts)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    history = temporal.client.get_workflow_handle(result.workflow_id).fetch_history_events()
    notes = [
        e.activity_task_completed_event_attributes.result.payloads[0].data
        async for e in history
        if e.HasField("activity_task_completed_event_attributes")
    ]
    assert any(b"Resource Health reports Unknown (tolerated)" in n and ids[0].encode() in n for n in notes)
