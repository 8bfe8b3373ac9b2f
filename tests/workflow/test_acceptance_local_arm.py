"""Acceptance: the real workflow and activities on a real Temporal dev server, against the local ARM over HTTPS
(TLS verified with its CA, the orchestrator's own static-token credential). Request counters of the local ARM
prove what reached "Azure": logic failures make no retry, a resumed deployment makes no second PUT."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator

import pytest
from azure.mgmt.resource.deployments import DeploymentsMgmtClient

from client.deployments import DeploymentAlreadyRunning, query_status, result_of, start_deployment
from contract.models import (
    SIGNAL_APPROVE,
    SIGNAL_REJECT,
    ApprovalSignal,
    ChangeType,
    ConfirmationDecision,
    DeploymentMode,
    DeploymentStage,
    DeployOutcome,
    FailureClass,
)
from harness.localarm import example_parameters, example_template, real_worker, request_for, storage_template
from local_arm.admin import Fault
from local_arm.testing import FAST, LocalArm, running_local_arm
from tests.support.workflow_env import find_binary

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm"), **FAST)


@pytest.fixture
def blob_dir(tmp_path):
    return tmp_path / "blobs"


async def wait_for_stage(handle, stage: DeploymentStage, *, round_number: int = 1, timeout: float = 60) -> None:
    async def poll() -> None:
        while True:
            s = await query_status(handle)
            if s.stage == stage and (s.pending_confirmation is None or s.pending_confirmation.round == round_number):
                return
            if s.stage.terminal:
                raise AssertionError(f"workflow ended in {s.stage} ({s.failure}) while waiting for {stage}")
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


def deployments_client(local_arm: LocalArm) -> DeploymentsMgmtClient:
    return local_arm.deployments_client()


async def test_happy_path_then_no_change(dev_env, local_arm, blob_dir, task_queue, resource_group):
    client = dev_env.client
    request = request_for(local_arm, blob_dir, resource_group, example_template(), parameters=example_parameters())
    async with real_worker(client, local_arm, blob_dir, task_queue):
        first = await result_of(await start_deployment(client, request, task_queue=task_queue))
        assert first.outcome is DeployOutcome.SUCCEEDED, first.failure
        assert first.stage is DeploymentStage.COMPLETED
        assert first.plan is not None and first.plan.counts.get(ChangeType.CREATE.value, 0) >= 3
        assert first.has_changes
        # The resources exist in the local ARM, healthy.
        resources = local_arm.resource_client().resources.list_by_resource_group(resource_group)
        ids = {r.id.lower() for r in resources}
        assert ids and {i.lower() for i in first.resources} <= ids
        assert not first.unhealthy

        loop = asyncio.get_running_loop()
        started = loop.time()
        second = await result_of(await start_deployment(client, request, task_queue=task_queue))
        elapsed = loop.time() - started
    assert second.outcome is DeployOutcome.SUCCEEDED
    assert second.plan is not None and not second.has_changes
    assert set(second.plan.counts) <= {ChangeType.NO_CHANGE.value, ChangeType.IGNORE.value}
    assert second.deployment_name != first.deployment_name  # a new ARM deployment per run
    assert elapsed < 30


@pytest.fixture(autouse=True)
def no_faults_left(local_arm):
    yield
    local_arm.admin.clear_faults()


async def deploy_example_then_remove_web(client, local_arm, blob_dir, task_queue, resource_group, **kw):
    """Deploy the full example, then start a Complete-mode deployment of the example without its web app."""
    full = request_for(local_arm, blob_dir, resource_group, example_template(), parameters=example_parameters())
    assert (await result_of(await start_deployment(client, full, task_queue=task_queue))).succeeded
    smaller = request_for(
        local_arm,
        blob_dir,
        resource_group,
        example_template("azuredeploy.without-web.json"),
        parameters=example_parameters(),
        mode=DeploymentMode.COMPLETE,
        **kw,
    )
    handle = await start_deployment(client, smaller, task_queue=task_queue)
    await wait_for_stage(handle, DeploymentStage.AWAITING_CONFIRMATION)
    return handle


async def test_complete_mode_removal_waits_then_approve_by_client_signal(
    dev_env, local_arm, blob_dir, task_queue, resource_group
):
    client = dev_env.client
    async with real_worker(client, local_arm, blob_dir, task_queue):
        handle = await deploy_example_then_remove_web(client, local_arm, blob_dir, task_queue, resource_group)
        status = await query_status(handle)
        assert status.pending_confirmation is not None
        doomed = [c.resource_id for c in status.pending_confirmation.destructive_changes]
        assert any("microsoft.web/sites" in d.lower() for d in doomed)
        puts_before = local_arm.admin.counters().count(method="PUT", deployment=status.deployment_name)
        assert puts_before == 0  # nothing deployed while waiting
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="web app retired"))
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert [(c.decision, c.by) for c in result.confirmations] == [(ConfirmationDecision.APPROVED, "ana")]
    remaining = {r.id.lower() for r in local_arm.resource_client().resources.list_by_resource_group(resource_group)}
    assert not any(d.lower() in remaining for d in doomed)


async def test_approve_through_the_temporal_cli(dev_env, local_arm, blob_dir, task_queue, resource_group):
    temporal = find_binary("temporal")
    assert temporal is not None
    client = dev_env.client
    async with real_worker(client, local_arm, blob_dir, task_queue):
        handle = await deploy_example_then_remove_web(client, local_arm, blob_dir, task_queue, resource_group)
        # The status query, through a client we did not write.
        query = await asyncio.to_thread(
            subprocess.run,
            [
                temporal, "workflow", "query",
                "--address", client.service_client.config.target_host,
                "--namespace", client.namespace,
                "--workflow-id", handle.id,
                "--name", "status",
                "--output", "json",
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert query.returncode == 0, query.stderr
        assert '"AWAITING_CONFIRMATION"' in query.stdout and "microsoft.web/sites" in query.stdout.lower()
        proc = await asyncio.to_thread(
            subprocess.run,
            [
                temporal, "workflow", "signal",
                "--address", client.service_client.config.target_host,
                "--namespace", client.namespace,
                "--workflow-id", handle.id,
                "--name", SIGNAL_APPROVE,
                "--input", json.dumps({"approver": "cli-user", "reason": "approved from the Temporal CLI"}),
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert result.confirmations[-1].by == "cli-user"
    assert result.confirmations[-1].reason == "approved from the Temporal CLI"


async def test_reject_fails_with_the_approvers_reason(dev_env, local_arm, blob_dir, task_queue, resource_group):
    client = dev_env.client
    async with real_worker(client, local_arm, blob_dir, task_queue):
        handle = await deploy_example_then_remove_web(client, local_arm, blob_dir, task_queue, resource_group)
        name = (await query_status(handle)).deployment_name
        await handle.signal(SIGNAL_REJECT, ApprovalSignal(approver="bo", reason="the web app still serves users"))
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.REJECTED
    assert result.stage is DeploymentStage.FAILED
    assert result.failure is not None and "the web app still serves users" in result.failure.message
    assert local_arm.admin.counters().count(method="PUT", deployment=name) == 0


async def test_confirmation_timeout_fails_as_not_confirmed(dev_env, local_arm, blob_dir, task_queue, resource_group):
    client = dev_env.client
    async with real_worker(client, local_arm, blob_dir, task_queue):
        handle = await deploy_example_then_remove_web(
            client, local_arm, blob_dir, task_queue, resource_group, confirmation_timeout_seconds=1.5
        )
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.NOT_CONFIRMED
    assert result.failure is not None and result.failure.code == "NotConfirmed"


async def test_plan_changed_after_approval_asks_again(dev_env, local_arm, blob_dir, task_queue, resource_group):
    client = dev_env.client
    async with real_worker(client, local_arm, blob_dir, task_queue):
        handle = await deploy_example_then_remove_web(client, local_arm, blob_dir, task_queue, resource_group)
        # Someone adds a resource to the group meanwhile: Complete mode would now delete it too.
        sneaky = (
            f"/subscriptions/{local_arm.subscription_id}/resourceGroups/{resource_group}"
            "/providers/Microsoft.Storage/storageAccounts/sneaky0001"
        )
        local_arm.resource_client().resources.begin_create_or_update_by_id(
            sneaky, {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "properties": {}},
            api_version="2023-01-01",
        ).result()  # fmt: skip
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="only the web app"))
        await wait_for_stage(handle, DeploymentStage.AWAITING_CONFIRMATION, round_number=2)
        status = await query_status(handle)
        assert status.pending_confirmation is not None
        assert sneaky.lower() in {c.resource_id.lower() for c in status.pending_confirmation.destructive_changes}
        assert local_arm.admin.counters().count(method="PUT", deployment=status.deployment_name) == 0
        await handle.signal(SIGNAL_REJECT, ApprovalSignal(approver="ana", reason="not the new account"))
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.REJECTED
    assert [c.round for c in result.confirmations] == [1, 2]


LOGIC_INPUTS = {
    "missing parameter": (storage_template(["stlogic0001"], extra={"parameters": {"p": {"type": "string"}}}), {}),
    "unknown parameter": (storage_template(["stlogic0002"]), {"nosuch": {"value": 1}}),
    "wrong type": (
        storage_template(["stlogic0003"], extra={"parameters": {"n": {"type": "int"}}}),
        {"n": {"value": "three"}},
    ),
    "invalid template expression": (storage_template(["[concat('st', ]"]), {}),
    "circular dependency": (
        {
            **storage_template([]),
            "resources": [
                {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": a,
                 "location": "westeurope", "dependsOn": [b], "properties": {}}
                for a, b in (("stcyclea", "stcycleb"), ("stcycleb", "stcyclea"))
            ],
        },
        {},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(LOGIC_INPUTS))
async def test_logic_failures_halt_before_any_azure_call(
    case, dev_env, local_arm, blob_dir, task_queue, resource_group
):
    template, parameters = LOGIC_INPUTS[case]
    request = request_for(local_arm, blob_dir, resource_group, template, parameters=parameters)
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        handle = await start_deployment(dev_env.client, request, task_queue=task_queue)
        result = await result_of(handle)
        status = await query_status(handle)
    assert result.outcome is DeployOutcome.LOGIC_FAILURE
    assert result.failure is not None and result.failure.failure_class is FailureClass.LOGIC
    # A template error the lint gate lists (expression syntax) halts at LINTING with every one listed; the engine's
    # parameter and dependency findings at VALIDATING_PARAMETERS. Either way: one attempt, no Azure call.
    stage = DeploymentStage.LINTING if case == "invalid template expression" else DeploymentStage.VALIDATING_PARAMETERS
    assert result.failure.stage is stage
    assert status.stages[stage].attempts == 1
    assert local_arm.admin.counters().count(path_contains=resource_group) == 0


async def test_arm_side_logic_failure_halts_after_one_call(dev_env, local_arm, blob_dir, task_queue, resource_group):
    # ARM's preflight rejects a property value: InvalidTemplateDeployment wrapping InvalidParameter (a logic error).
    local_arm.admin.add_faults(Fault.preflight_failure("InvalidParameter", resource_name="starmlogic01"))
    request = request_for(local_arm, blob_dir, resource_group, storage_template(["starmlogic01"]))
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        handle = await start_deployment(dev_env.client, request, task_queue=task_queue)
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.LOGIC_FAILURE
    assert result.failure is not None and result.failure.code == "InvalidParameter"
    assert result.failure.stage is DeploymentStage.PLANNING and result.failure.attempts == 1
    counters = local_arm.admin.counters()
    assert counters.count(operation="Deployments_WhatIf", deployment=result.deployment_name) == 1
    assert counters.count(method="PUT", deployment=result.deployment_name) == 0


async def test_provisioning_capacity_failure_is_retried_and_resubmitted(
    dev_env, local_arm, blob_dir, task_queue, resource_group
):
    local_arm.admin.add_faults(
        Fault.provision_failure("AllocationFailed", resource_name="stcapacity01", count=1, path=resource_group)
    )
    request = request_for(local_arm, blob_dir, resource_group, storage_template(["stcapacity01"]))
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        handle = await start_deployment(dev_env.client, request, task_queue=task_queue)
        result = await result_of(handle)
        status = await query_status(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    deploying = status.stages[DeploymentStage.DEPLOYING]
    assert deploying.attempts == 2 and deploying.last_error_code == "AllocationFailed"
    assert local_arm.admin.counters().count(method="PUT", deployment=result.deployment_name) == 2


async def test_concurrent_starts_on_one_resource_group(dev_env, local_arm, blob_dir, task_queue, resource_group):
    client = dev_env.client
    request = request_for(local_arm, blob_dir, resource_group, storage_template(["stconc0001"]))
    local_arm.admin.add_faults(Fault.slow_lro(1.0, path=resource_group, count=1))
    async with real_worker(client, local_arm, blob_dir, task_queue):
        outcomes = await asyncio.gather(
            start_deployment(client, request, task_queue=task_queue),
            start_deployment(client, request, task_queue=task_queue),
            return_exceptions=True,
        )
        started = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, DeploymentAlreadyRunning)]
        assert len(started) == 1 and len(refused) == 1
        assert refused[0].workflow_id == started[0].id and started[0].id in str(refused[0])
        # --wait queues behind the running one: the second run starts only after the first has finished.
        queued = await start_deployment(client, request, task_queue=task_queue, wait=True)
        first = await result_of(started[0])
        second = await result_of(queued)
    assert first.succeeded and second.succeeded
    assert second.transitions[0].at >= first.transitions[-1].at
