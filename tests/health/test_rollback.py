"""Acceptance (issue 6, rollback): --rollback-on-failure on a real Temporal dev server with the real worker and
activities, deploying to the local ARM over HTTPS. v1 completes healthy (and is recorded as the last good
deployment); v2 fails; the workflow redeploys v1 and ends ROLLED_BACK — or FAILED with both errors."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from client.cli import build_parser
from client.cli._common import OUTCOME_EXIT_CODES, CommandError, current_user
from client.cli.rollback_params import provide
from client.deployments import query_status, result_of, start_deployment
from client.exit_codes import ExitCode
from client.health.declare import load_health_spec
from contract.health import HealthSpec
from contract.models import (
    SIGNAL_APPROVE,
    ApprovalSignal,
    DeploymentMode,
    DeploymentStage,
    DeployOutcome,
)
from harness.localarm import real_worker, request_for, storage_template
from local_arm.admin import Fault
from local_arm.testing import FAST, LocalArm, running_local_arm
from services.audit.history import fetch_record
from services.codec import KEYS_ENV
from services.content_store import BLOB_DIR_ENV, LocalBlobStore
from services.last_good import LastGoodStore
from services.temporal_client import data_converter
from tests.support.temporal import temporal_cli
from workflows.deployment import DeploymentWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="module")

STORAGE_API = "2023-01-01"


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


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port that refuses connections (bound, never listening)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


class Scenario:
    """One resource group, one content store, one worker task queue: deployments run one after the other."""

    def __init__(self, temporal: WorkflowEnvironment, arm: LocalArm, tmp_path: Path) -> None:
        self.temporal, self.arm = temporal, arm
        self.blob_dir = tmp_path / "blobs"
        self.rg = f"rg-{uuid.uuid4().hex[:10]}"
        self.queue = f"tq-{uuid.uuid4()}"

    def resource_id(self, name: str) -> str:
        return (
            f"/subscriptions/{self.arm.subscription_id}/resourceGroups/{self.rg}"
            f"/providers/Microsoft.Storage/storageAccounts/{name}"
        )

    async def start(
        self, template: dict[str, Any], *, health: HealthSpec | None = None, **kw: Any
    ) -> WorkflowHandle[Any, Any]:
        rollback = kw.pop("rollback_on_failure", False)  # what `deploy --rollback-on-failure` sets
        request = request_for(self.arm, self.blob_dir, self.rg, template, **kw).model_copy(
            update={
                "health": health or HealthSpec(window_seconds=3, retry_interval_seconds=0.2),
                "rollback_on_failure": rollback,
            }
        )
        return await start_deployment(self.temporal.client, request, task_queue=self.queue)

    def tags(self, name: str) -> dict[str, str] | None:
        resource = self.arm.resource_client().resources.get_by_id(self.resource_id(name), api_version=STORAGE_API)
        return dict(resource.tags or {})

    def exists(self, name: str) -> bool:
        return bool(
            self.arm.resource_client().resources.check_existence_by_id(self.resource_id(name), api_version=STORAGE_API)
        )


def versioned(names: list[str], version: str, *, secure: bool = False) -> dict[str, Any]:
    template = storage_template(names)
    for resource in template["resources"]:
        resource["tags"] = {"version": version}
    if secure:
        template["parameters"]["adminKey"] = {"type": "securestring"}
        for resource in template["resources"]:
            resource["tags"]["keyLength"] = "[string(length(parameters('adminKey')))]"
    return template


def failing_checks(port: int) -> HealthSpec:
    return load_health_spec(
        template_path=None,
        flags=[f"tcp:127.0.0.1:{port} name=db"],
        declared_outputs=[],
        window="1s",
        timeout="0.5s",
        retry_interval="0.2s",
    )


async def wait_for(handle: WorkflowHandle[Any, Any], predicate: Any, timeout: float = 30) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            status = await query_status(handle)
            if predicate(status):
                return status
            await asyncio.sleep(0.1)


async def assert_replays(handle: WorkflowHandle[Any, Any]) -> None:
    """The rollback path is deterministic: its history replays on the current workflow code."""
    replayer = Replayer(workflows=[DeploymentWorkflow], data_converter=data_converter())
    result = await replayer.replay_workflow(await handle.fetch_history(), raise_on_replay_failure=True)
    assert result.replay_failure is None


@pytest.fixture
def scenario(temporal: WorkflowEnvironment, arm: LocalArm, tmp_path: Path) -> Scenario:
    return Scenario(temporal, arm, tmp_path)


async def test_failed_health_rolls_back_to_v1(scenario: Scenario, dead_port: int) -> None:
    s = scenario
    async with real_worker(s.temporal.client, s.arm, s.blob_dir, s.queue):
        v1 = await result_of(await s.start(versioned(["stv1a", "stv1b"], "v1")))
        assert v1.outcome is DeployOutcome.SUCCEEDED, v1.failure
        assert s.tags("stv1a") == {"version": "v1"}
        v2 = await result_of(
            await s.start(
                versioned(["stv1a", "stv1b"], "v2"), health=failing_checks(dead_port), rollback_on_failure=True
            )
        )
    assert v2.outcome is DeployOutcome.ROLLED_BACK, (v2.failure, v2.rollback)
    assert v2.stage is DeploymentStage.ROLLED_BACK
    assert OUTCOME_EXIT_CODES[v2.outcome] is ExitCode.ROLLED_BACK
    # The reason: v2's failed health check, kept as the deployment's failure and in the rollback report.
    assert v2.failure is not None and v2.failure.stage is DeploymentStage.VERIFYING_HEALTH
    assert v2.failure.code == "HealthCheckFailed" and f"127.0.0.1:{dead_port}" in v2.failure.message
    rollback = v2.rollback
    assert rollback is not None and rollback.state == "ROLLED_BACK" and rollback.reason == v2.failure
    # Both deployments: v2's own and v1's, which the rollback redeployed under a new ARM deployment.
    assert rollback.target_deployment_name == v1.deployment_name
    assert rollback.target_template_hash == v1.template_hash != v2.template_hash
    assert rollback.deployment_name not in (v1.deployment_name, v2.deployment_name)
    assert sorted(rollback.resources) == sorted(v1.resources)
    assert rollback.health is not None and not rollback.health.unhealthy
    assert v2.health_checks is not None and not v2.health_checks.healthy  # v2's failing report is kept
    # The local ARM holds v1's resources again.
    assert s.tags("stv1a") == {"version": "v1"} and s.tags("stv1b") == {"version": "v1"}
    arm_names = {d.name for d in s.arm.deployments_client().deployments.list_by_resource_group(s.rg)}
    assert {v1.deployment_name, v2.deployment_name, rollback.deployment_name} <= arm_names
    stages = [t.stage for t in v2.transitions]
    assert stages[-1] is DeploymentStage.ROLLED_BACK
    failed_at = stages.index(DeploymentStage.FAILED)
    assert stages[failed_at + 1 :] == [
        DeploymentStage.PLANNING,
        DeploymentStage.DEPLOYING,
        DeploymentStage.VERIFYING_HEALTH,
        DeploymentStage.ROLLED_BACK,
    ]
    assert "rolling back" in v2.transitions[failed_at].detail
    # The workflow's own history tells the same story: v2's deploy and the rollback's deploy activities.
    handle = s.temporal.client.get_workflow_handle(v2.workflow_id, run_id=None)
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        async for e in handle.fetch_history_events()
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled.count("deploy") == 2 and scheduled.count("plan_deployment") == 2
    # The audit record, rebuilt from history alone, holds both deployments and the reason.
    record = await fetch_record(s.temporal.client, v2.workflow_id)
    assert record.result.outcome == DeployOutcome.ROLLED_BACK.value and record.state == "ROLLED_BACK"
    assert record.deployment_name == v2.deployment_name
    assert record.rollback is not None
    assert record.rollback["target_deployment_name"] == v1.deployment_name
    assert record.rollback["deployment_name"] == rollback.deployment_name
    assert record.rollback["reason"]["code"] == "HealthCheckFailed"
    assert f"127.0.0.1:{dead_port}" in record.rollback["reason"]["message"]
    assert record.result.failure is not None and record.result.failure["code"] == "HealthCheckFailed"
    transitions = [e for e in record.events if e.event_type == "stage_transition"]
    assert "ROLLED_BACK" in transitions[-1].message + json.dumps(transitions[-1].details)
    await assert_replays(handle)


async def test_a_rollback_whose_plan_deletes_waits_for_approval(scenario: Scenario, dead_port: int) -> None:
    s = scenario
    complete = DeploymentMode.COMPLETE
    async with real_worker(s.temporal.client, s.arm, s.blob_dir, s.queue):
        v1 = await result_of(await s.start(versioned(["stkeep"], "v1"), mode=complete))
        assert v1.outcome is DeployOutcome.SUCCEEDED, v1.failure
        handle = await s.start(
            versioned(["stkeep", "stextra"], "v2"),
            health=failing_checks(dead_port),
            mode=complete,
            rollback_on_failure=True,
            no_confirm_deletes=True,  # the rollback asks anyway: the approver of v2 did not see its plan
        )
        status = await wait_for(handle, lambda st: st.pending_confirmation is not None)
        assert status.stage is DeploymentStage.AWAITING_CONFIRMATION
        assert status.rollback is not None and status.rollback.state == "AWAITING_CONFIRMATION"
        assert [c.resource_id for c in status.pending_confirmation.destructive_changes] == [s.resource_id("stextra")]
        assert s.exists("stextra")  # nothing deleted while waiting
        await handle.signal(
            SIGNAL_APPROVE,
            ApprovalSignal(approver="ana", reason="roll back", destructive_set=[s.resource_id("stextra").lower()]),
        )
        v2 = await result_of(handle)
    assert v2.outcome is DeployOutcome.ROLLED_BACK, (v2.failure, v2.rollback)
    assert not s.exists("stextra") and s.tags("stkeep") == {"version": "v1"}
    assert [(c.decision.value, c.by) for c in v2.confirmations] == [("APPROVED", "ana")]
    assert v2.rollback is not None and v2.rollback.plan is not None
    assert v2.rollback.plan.destructive_set == [s.resource_id("stextra").lower()]
    await assert_replays(handle)


async def test_a_rejected_rollback_fails_with_both_errors(scenario: Scenario, dead_port: int) -> None:
    s = scenario
    complete = DeploymentMode.COMPLETE
    async with real_worker(s.temporal.client, s.arm, s.blob_dir, s.queue):
        await result_of(await s.start(versioned(["stone"], "v1"), mode=complete))
        handle = await s.start(
            versioned(["stone", "sttwo"], "v2"),
            health=failing_checks(dead_port),
            mode=complete,
            rollback_on_failure=True,
        )
        await wait_for(handle, lambda st: st.pending_confirmation is not None)
        await handle.signal("reject", ApprovalSignal(approver="bo", reason="keep v2 for debugging"))
        v2 = await result_of(handle)
    assert v2.outcome is DeployOutcome.ENVIRONMENTAL_FAILURE and v2.stage is DeploymentStage.FAILED
    assert v2.failure is not None and v2.failure.code == "HealthCheckFailed"
    assert v2.rollback is not None and v2.rollback.state == "FAILED"
    assert v2.rollback.failure is not None and v2.rollback.failure.code == "Rejected"
    last = v2.transitions[-1].detail
    assert "HealthCheckFailed" in last and "rollback failed" in last and "keep v2 for debugging" in last
    assert s.exists("sttwo") and s.tags("stone") == {"version": "v2"}  # nothing rolled back


async def test_a_deploying_failure_rolls_back_too(scenario: Scenario, arm: LocalArm) -> None:
    s = scenario
    async with real_worker(s.temporal.client, s.arm, s.blob_dir, s.queue):
        await result_of(await s.start(versioned(["stdep1"], "v1")))
        arm.admin.add_faults(Fault.provision_failure("InvalidValue", resource_name="stdep2", count=1))
        v2 = await result_of(await s.start(versioned(["stdep1", "stdep2"], "v2"), rollback_on_failure=True))
    assert v2.outcome is DeployOutcome.ROLLED_BACK, (v2.failure, v2.rollback)
    assert v2.failure is not None and v2.failure.stage is DeploymentStage.DEPLOYING
    assert s.tags("stdep1") == {"version": "v1"}
    assert s.exists("stdep2")  # Incremental: the rollback leaves what v1 did not declare (the plan said Ignore)


async def test_nothing_to_roll_back_to_fails_saying_so(scenario: Scenario, dead_port: int) -> None:
    s = scenario
    async with real_worker(s.temporal.client, s.arm, s.blob_dir, s.queue):
        result = await result_of(
            await s.start(versioned(["stfirst"], "v1"), health=failing_checks(dead_port), rollback_on_failure=True)
        )
    assert result.outcome is DeployOutcome.ENVIRONMENTAL_FAILURE
    assert result.rollback is not None and result.rollback.state == "NOT_POSSIBLE"
    assert "nothing to roll back to" in (result.rollback.note or "")
    assert "rollback not possible" in result.transitions[-1].detail


async def test_without_the_flag_a_failure_does_not_roll_back(scenario: Scenario, dead_port: int) -> None:
    s = scenario
    async with real_worker(s.temporal.client, s.arm, s.blob_dir, s.queue):
        await result_of(await s.start(versioned(["stnoflag"], "v1")))
        v2 = await result_of(await s.start(versioned(["stnoflag"], "v2"), health=failing_checks(dead_port)))
    assert v2.outcome is DeployOutcome.ENVIRONMENTAL_FAILURE and v2.rollback is None
    assert s.tags("stnoflag") == {"version": "v2"}


async def test_unrecoverable_secure_values_are_asked_for(
    scenario: Scenario, dead_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without codec keys the last good record keeps only the names of secure parameters; the rollback waits
    for their values (signalled as a content-store reference) instead of deploying without them."""
    s = scenario
    secret = "v1-secret-" + uuid.uuid4().hex
    async with real_worker(s.temporal.client, s.arm, s.blob_dir, s.queue):
        v1 = await result_of(
            await s.start(versioned(["stsec"], "v1", secure=True), parameters={"adminKey": {"value": secret}})
        )
        assert v1.outcome is DeployOutcome.SUCCEEDED, v1.failure
        record = LastGoodStore(LocalBlobStore(s.blob_dir)).load(s.arm.subscription_id, s.rg)
        assert record is not None and record.unrecoverable_secure_parameters == ["adminKey"]
        assert record.secure_parameters is None
        assert secret not in record.model_dump_json()
        handle = await s.start(
            versioned(["stsec"], "v2", secure=True),
            parameters={"adminKey": {"value": "v2-other"}},
            health=failing_checks(dead_port),
            rollback_on_failure=True,
        )
        status = await wait_for(handle, lambda st: st.rollback is not None and st.rollback.missing_secure_parameters)
        assert status.stage is DeploymentStage.AWAITING_CONFIRMATION
        assert "adminKey" in status.transitions[-1].detail
        # Through the CLI (`starter.py rollback-params ID --param adminKey=...`): a refusal first, then the value.
        monkeypatch.setenv(BLOB_DIR_ENV, str(s.blob_dir))
        with pytest.raises(CommandError, match="missing: adminkey"):
            await provide(build_parser().parse_args(["rollback-params", handle.id]), client=s.temporal.client)
        args = build_parser().parse_args(["rollback-params", handle.id, "--param", f"adminKey={secret}"])
        assert await provide(args, client=s.temporal.client) == 0
        v2 = await result_of(handle)
    assert v2.outcome is DeployOutcome.ROLLED_BACK, (v2.failure, v2.rollback)
    assert v2.rollback is not None and v2.rollback.parameters_provided_by == current_user()
    assert s.tags("stsec") == {"version": "v1", "keyLength": str(len(secret))}
    assert secret not in v2.model_dump_json()
    await assert_replays(handle)


async def test_sealed_secure_values_are_recovered(
    scenario: Scenario, dead_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEYS_ENV, "k1=" + base64.b64encode(os.urandom(32)).decode())
    s = scenario
    secret = "sealed-" + uuid.uuid4().hex
    async with real_worker(s.temporal.client, s.arm, s.blob_dir, s.queue):
        await result_of(
            await s.start(versioned(["stseal"], "v1", secure=True), parameters={"adminKey": {"value": secret}})
        )
        record = LastGoodStore(LocalBlobStore(s.blob_dir)).load(s.arm.subscription_id, s.rg)
        assert record is not None and record.secure_parameters is not None
        assert record.unrecoverable_secure_parameters == []
        assert secret.encode() not in LocalBlobStore(s.blob_dir).get(record.secure_parameters)  # sealed
        v2 = await result_of(
            await s.start(
                versioned(["stseal"], "v2", secure=True),
                parameters={"adminKey": {"value": "x"}},
                health=failing_checks(dead_port),
                rollback_on_failure=True,
            )
        )
    assert v2.outcome is DeployOutcome.ROLLED_BACK, (v2.failure, v2.rollback)
    assert s.tags("stseal") == {"version": "v1", "keyLength": str(len(secret))}


async def test_cancelling_during_the_rollback_cancels_its_arm_deployment(
    scenario: Scenario, dead_port: int, arm: LocalArm
) -> None:
    from contract.naming import deployment_name_for

    s = scenario
    async with real_worker(s.temporal.client, s.arm, s.blob_dir, s.queue):
        await result_of(await s.start(versioned(["stcancel"], "v1")))
        handle = await s.start(
            versioned(["stcancel"], "v2"), health=failing_checks(dead_port), rollback_on_failure=True
        )
        description = await handle.describe()
        name = deployment_name_for(resource_group=s.rg, workflow_id=f"{handle.id}/rollback", run_id=description.run_id)
        arm.admin.add_faults(Fault.stuck_lro(deployment=name, operation="Deployments_CreateOrUpdate"))
        try:
            await wait_for(handle, lambda st: st.rollback is not None and st.rollback.state == "DEPLOYING", 15)
        except TimeoutError:
            st = await query_status(handle)
            raise AssertionError((st.stage, st.rollback, st.transitions[-3:])) from None
        await asyncio.sleep(0.5)  # the PUT is in
        await handle.cancel()
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.CANCELLED
    deployment = s.arm.deployments_client().deployments.get(s.rg, name)
    assert deployment.properties.provisioning_state == "Canceled"
