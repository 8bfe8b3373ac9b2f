"""The workflow's decisions, on the time-skipping test server, with stage activities replaced by fakes
(tests/workflow/fakes.py) that stand in only for the stage logic: ARM and the engine are exercised by the
acceptance tests. What is under test here is the workflow: stage order, retries and their timers in history,
LOGIC halting on the first attempt, Retry-After, the confirmation flow and its timeout, plan re-checks after
approval, one deployment per resource group."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from client.deployments import (
    DeploymentAlreadyRunning,
    build_deploy_request,
    query_status,
    result_of,
    start_deployment,
)
from contract.models import (
    SIGNAL_APPROVE,
    SIGNAL_REJECT,
    ApprovalSignal,
    ConfirmationDecision,
    DeploymentStage,
    DeployOutcome,
    DeployRequest,
    DeployResult,
    FailureClass,
    ValidationReport,
)
from harness.fakes import DELETED, OTHER, FakeStages, classified_error, make_request, plan_of
from services.content_store import LocalBlobStore
from tests.support.history_text import history_text
from workflows.deployment import DeploymentWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


@asynccontextmanager
async def worker(env: WorkflowEnvironment, fakes: FakeStages, task_queue: str) -> AsyncIterator[Worker]:
    async with Worker(
        env.client, task_queue=task_queue, workflows=[DeploymentWorkflow], activities=fakes.activities()
    ) as w:
        yield w


async def start(env: WorkflowEnvironment, request: DeployRequest, task_queue: str) -> WorkflowHandle:
    return await start_deployment(env.client, request, task_queue=task_queue, workflow_id=f"deploy-test-{uuid.uuid4()}")


async def timers(handle: WorkflowHandle) -> list[float]:
    """Durations of the timers the workflow started, in order (retry backoffs and confirmation timeouts)."""
    history = await handle.fetch_history()
    return [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]


async def wait_for_stage(handle: WorkflowHandle, stage: DeploymentStage, *, timeout: float = 20) -> None:
    async def poll() -> None:
        while (await query_status(handle)).stage != stage:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_happy_path_walks_every_stage_in_order(time_skipping_env, task_queue, resource_group):
    fakes = FakeStages()
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, make_request(resource_group), task_queue)
        result = await result_of(handle)
        status = await query_status(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED
    assert [t.stage for t in result.transitions] == [
        DeploymentStage.INITIALIZED,
        DeploymentStage.VALIDATING_PARAMETERS,
        DeploymentStage.LINTING,
        DeploymentStage.PLANNING,
        DeploymentStage.DEPLOYING,
        DeploymentStage.VERIFYING_HEALTH,
        DeploymentStage.COMPLETED,
    ]
    assert result.resources == ["/r/1"] and result.has_changes
    assert status.stage is DeploymentStage.COMPLETED
    assert status.stages[DeploymentStage.DEPLOYING].attempts == 1
    assert result.deployment_name.startswith(f"orch-{resource_group}-") and len(result.deployment_name) <= 64


async def test_logic_failure_halts_on_first_attempt(time_skipping_env, task_queue, resource_group):
    def missing_parameter(n: int) -> ValidationReport:
        raise classified_error(FailureClass.LOGIC, "MissingParameter")

    fakes = FakeStages(validate=missing_parameter)
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, make_request(resource_group), task_queue)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        result = await result_of(handle)
    assert isinstance(info.value.cause, ApplicationError)
    assert info.value.cause.type == "LOGIC.MissingParameter"
    assert result.outcome is DeployOutcome.LOGIC_FAILURE
    assert result.failure is not None and result.failure.stage is DeploymentStage.VALIDATING_PARAMETERS
    assert fakes.calls == {"validate": 1}  # nothing after validation ran, no retry
    assert await timers(handle) == []


async def test_environmental_failure_retries_on_schedule_then_fails(time_skipping_env, task_queue, resource_group):
    def throttled(n: int) -> None:
        raise classified_error(FailureClass.ENVIRONMENTAL, "ServiceUnavailable")

    fakes = FakeStages(deploy=throttled)
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, make_request(resource_group), task_queue)
        result = await result_of(handle)
        status = await query_status(handle)
    assert result.outcome is DeployOutcome.ENVIRONMENTAL_FAILURE
    assert result.failure is not None and result.failure.failure_class is FailureClass.ENVIRONMENTAL
    assert result.failure.code == "ServiceUnavailable" and result.failure.attempts == 6
    assert fakes.calls["deploy"] == 6  # the first try and five retries
    assert await timers(handle) == [5, 10, 20, 40, 80]
    progress = status.stages[DeploymentStage.DEPLOYING]
    assert progress.attempts == 6 and progress.last_error_code == "ServiceUnavailable"


async def test_retry_after_is_honored_when_longer_than_backoff(time_skipping_env, task_queue, resource_group):
    def throttled_once(n: int) -> None:
        if n == 1:
            raise classified_error(FailureClass.ENVIRONMENTAL, "TooManyRequests", retry_after=42)
        return None

    def deploy(n: int):
        throttled_once(n)
        from contract.models import DeployOutcomeDetails

        return DeployOutcomeDetails(deployment_name="d", provisioning_state="Succeeded")

    fakes = FakeStages(deploy=deploy)
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, make_request(resource_group), task_queue)
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED
    assert await timers(handle) == [42]


async def test_deletions_wait_for_approval_and_record_who(time_skipping_env, task_queue, resource_group):
    fakes = FakeStages(plan=lambda n: plan_of(1, [DELETED]))
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, make_request(resource_group), task_queue)
        await wait_for_stage(handle, DeploymentStage.AWAITING_CONFIRMATION)
        status = await query_status(handle)
        assert status.pending_confirmation is not None
        assert [c.resource_id for c in status.pending_confirmation.destructive_changes] == [DELETED]
        assert "temporal workflow signal" in status.pending_confirmation.approve_command
        assert fakes.calls.get("deploy") is None  # nothing deployed while waiting
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="old account retired"))
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED
    assert [(c.decision, c.by, c.reason) for c in result.confirmations] == [
        (ConfirmationDecision.APPROVED, "ana", "old account retired")
    ]
    assert fakes.calls["plan"] == 2  # the fresh what-if before deploying
    stages = [t.stage for t in result.transitions]
    assert stages.index(DeploymentStage.AWAITING_CONFIRMATION) < stages.index(DeploymentStage.DEPLOYING)


async def test_reject_fails_with_the_reason(time_skipping_env, task_queue, resource_group):
    fakes = FakeStages(plan=lambda n: plan_of(0, [DELETED]))
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, make_request(resource_group), task_queue)
        await wait_for_stage(handle, DeploymentStage.AWAITING_CONFIRMATION)
        await handle.signal(SIGNAL_REJECT, ApprovalSignal(approver="bo", reason="that account still serves traffic"))
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.REJECTED
    assert result.failure is not None and "that account still serves traffic" in result.failure.message
    assert result.transitions[-1].stage is DeploymentStage.FAILED and result.transitions[-1].by == "bo"
    assert "deploy" not in fakes.calls


async def test_confirmation_timeout_fails_as_not_confirmed(time_skipping_env, task_queue, resource_group):
    fakes = FakeStages(plan=lambda n: plan_of(0, [DELETED]))
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(
            time_skipping_env, make_request(resource_group, confirmation_timeout_seconds=1800), task_queue
        )
        result = await result_of(handle)  # the test server skips the 30 minutes
    assert result.outcome is DeployOutcome.NOT_CONFIRMED
    assert result.failure is not None and result.failure.code == "NotConfirmed"
    assert result.confirmations[-1].decision is ConfirmationDecision.TIMED_OUT
    assert 1800 in await timers(handle)
    assert "deploy" not in fakes.calls


async def test_changed_plan_after_approval_asks_again(time_skipping_env, task_queue, resource_group):
    plans = {1: plan_of(0, [DELETED]), 2: plan_of(0, [DELETED, OTHER]), 3: plan_of(0, [DELETED, OTHER])}
    fakes = FakeStages(plan=lambda n: plans[n])
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, make_request(resource_group), task_queue)
        await wait_for_stage(handle, DeploymentStage.AWAITING_CONFIRMATION)
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="one deletion"))

        async def second_round() -> None:
            while True:
                s = await query_status(handle)
                if s.pending_confirmation is not None and s.pending_confirmation.round == 2:
                    return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(second_round(), 20)
        status = await query_status(handle)
        assert status.pending_confirmation is not None
        assert {c.resource_id for c in status.pending_confirmation.destructive_changes} == {DELETED, OTHER}
        assert "deploy" not in fakes.calls
        # Round 2: the plain form names no plan, so it is refused (recorded); a decision naming the plan counts.
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="both, checked"))
        for _ in range(200):
            if (await query_status(handle)).refused_total:
                break
            await asyncio.sleep(0.05)
        refused = (await query_status(handle)).refused_decisions
        assert [(r.kind, r.round) for r in refused] == [("unbound", 2)]
        plan_hash = status.pending_confirmation.plan_hash
        assert plan_hash and plan_hash.startswith("sha256:")
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="both, checked", plan_hash=plan_hash))
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED
    assert [c.round for c in result.confirmations] == [1, 2]
    assert [c.bound_by for c in result.confirmations] == ["unbound", "plan_hash"]


async def test_no_confirm_deletes_skips_and_records_who(time_skipping_env, task_queue, resource_group):
    fakes = FakeStages(plan=lambda n: plan_of(0, [DELETED]))
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, make_request(resource_group, no_confirm_deletes=True), task_queue)
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED
    assert [(c.decision, c.by) for c in result.confirmations] == [(ConfirmationDecision.SKIPPED, "tester@example.com")]
    assert DeploymentStage.AWAITING_CONFIRMATION not in [t.stage for t in result.transitions]


async def test_signal_when_nothing_is_pending_is_ignored(time_skipping_env, task_queue, resource_group):
    fakes = FakeStages(plan=lambda n: plan_of(0, [DELETED]))
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(
            time_skipping_env, make_request(resource_group, confirmation_timeout_seconds=60), task_queue
        )
        await wait_for_stage(handle, DeploymentStage.AWAITING_CONFIRMATION)
        # An approval for a different set of deletions does not count.
        await handle.signal(
            SIGNAL_APPROVE, ApprovalSignal(approver="eve", reason="wrong plan", destructive_set=[OTHER.lower()])
        )
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.NOT_CONFIRMED


async def test_second_start_on_the_same_resource_group_is_refused(time_skipping_env, task_queue, resource_group):
    fakes = FakeStages(plan=lambda n: plan_of(0, [DELETED]))
    request = make_request(resource_group)
    async with worker(time_skipping_env, fakes, task_queue):
        first = await start_deployment(time_skipping_env.client, request, task_queue=task_queue)
        with pytest.raises(DeploymentAlreadyRunning) as info:
            await start_deployment(time_skipping_env.client, request, task_queue=task_queue)
        assert info.value.workflow_id == first.id
        assert first.id in str(info.value)
        await first.signal(SIGNAL_REJECT, ApprovalSignal(approver="t", reason="cleanup"))
        await result_of(first)
        # Once it closed, the resource group is free again (same workflow id, new run).
        fakes.plan = None
        second = await start_deployment(time_skipping_env.client, request, task_queue=task_queue)
        assert second.id == first.id
        assert (await result_of(second)).outcome is DeployOutcome.SUCCEEDED


async def test_secure_parameter_values_never_enter_history(time_skipping_env, task_queue, resource_group, tmp_path):
    secret = f"s3cr3t-{uuid.uuid4()}"
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"adminPassword": {"type": "securestring"}, "name": {"type": "string"}},
        "resources": [],
    }
    store = LocalBlobStore(tmp_path)
    request = build_deploy_request(
        store=store,
        template=template,
        subscription_id="00000000-0000-0000-0000-000000000001",
        resource_group=resource_group,
        location="westeurope",
        parameters={"name": {"value": "app"}},
        overrides={"adminPassword": secret},
        initiator="tester",
    )
    assert request.secure_parameter_names == ["adminPassword"] and "adminPassword" not in request.parameters
    fakes = FakeStages()
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, request, task_queue)
        await result_of(handle)
        history = await handle.fetch_history()
    text = history_text(history)
    assert "adminPassword" in text and secret not in text
    assert "app" in json.dumps(request.parameters)
    # ...while the activities can still reassemble it from the store.
    from activities.parameters import deployment_parameters

    assert deployment_parameters(store, request)["adminPassword"] == {"value": secret}


async def test_result_is_readable_from_a_failed_workflow(time_skipping_env, task_queue, resource_group):
    def bad(n: int) -> None:
        raise classified_error(FailureClass.LOGIC, "InvalidTemplate")

    fakes = FakeStages(plan=bad)
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, make_request(resource_group), task_queue)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "LOGIC.InvalidTemplate"
    parsed = DeployResult.model_validate(cause.details[0])
    assert parsed.outcome is DeployOutcome.LOGIC_FAILURE and parsed.stage is DeploymentStage.FAILED


async def test_offline_stage_retries_environmental_failures_too(time_skipping_env, task_queue, resource_group):
    """Validation and lint run as local activities; their failures go through the same classification."""

    def flaky(n: int) -> ValidationReport:
        if n == 1:
            raise classified_error(FailureClass.ENVIRONMENTAL, "ContentStoreBusy")
        return ValidationReport(parameter_names=[], resource_count=1)

    fakes = FakeStages(validate=flaky)
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, make_request(resource_group), task_queue)
        result = await result_of(handle)
        status = await query_status(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED
    assert fakes.calls["validate"] == 2
    assert status.stages[DeploymentStage.VALIDATING_PARAMETERS].last_error_code == "ContentStoreBusy"
    assert await timers(handle) == [5]
