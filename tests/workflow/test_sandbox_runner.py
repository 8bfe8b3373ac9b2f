"""The worker's sandbox runner (``worker.LeanSandboxedWorkflowRunner``): workflow code stays isolated from the host
(no clock, no files), every payload gets the serialization context temporalio's own runner gives it, and a deployment
enters the sandbox's import guard only to build its run and for each activation, never once per payload conversion
(those per-payload ``exec``s were most of the worker's CPU per deployment: docs/BENCHMARKS.md)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.worker import Worker, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._importer import Importer
from temporalio.worker.workflow_sandbox._in_sandbox import InSandbox
from temporalio.worker.workflow_sandbox._runner import _fake_info
from temporalio.workflow import _Definition

from client.deployments import result_of, start_deployment
from contract.models import DeployOutcome
from harness.localarm import real_worker, request_for, storage_template
from local_arm.testing import FAST, LocalArm, running_local_arm
from tests.support.sandbox_probe import PROBE_ACTIVITY, ActivityProbeWorkflow, HostAccessProbeWorkflow, echo
from worker import LeanSandboxedWorkflowRunner, lean_runner_active
from workflows.deployment import DeploymentWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-sandbox"), **FAST)


async def test_the_installed_temporalio_has_what_the_lean_runner_builds_on():
    # A temporalio that renamed the sandbox's internals would silently bring back the per-payload cost: say so.
    assert lean_runner_active(), "temporalio's sandbox instance changed: worker.LeanSandboxedWorkflowRunner falls back"


async def test_workflow_code_still_cannot_reach_the_host(dev_env, task_queue):
    async with Worker(
        dev_env.client,
        task_queue=task_queue,
        workflows=[HostAccessProbeWorkflow],
        workflow_runner=LeanSandboxedWorkflowRunner(),
    ):
        refused = await dev_env.client.execute_workflow(
            HostAccessProbeWorkflow.run, id=f"probe-{uuid.uuid4()}", task_queue=task_queue
        )
    assert refused == {"clock": True, "open": True}


class RecordingCodec(PayloadCodec, WithSerializationContext):
    """Passes payloads through unchanged and records the serialization context each was converted under."""

    def __init__(self, seen: list[tuple[Any, ...]], context: SerializationContext | None = None) -> None:
        self.seen = seen
        self.context = context

    def with_context(self, context: SerializationContext) -> RecordingCodec:
        return RecordingCodec(self.seen, context)

    def _record(self, direction: str) -> None:
        context = self.context
        if isinstance(context, ActivitySerializationContext):
            self.seen.append((direction, "activity", context.activity_type, context.is_local, context.workflow_id))
        elif isinstance(context, WorkflowSerializationContext):
            self.seen.append((direction, "workflow", context.workflow_id))
        else:
            self.seen.append((direction, type(context).__name__))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self._record("encode")
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self._record("decode")
        return list(payloads)


async def _contexts_seen(dev_env: Any, runner: SandboxedWorkflowRunner) -> set[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    client = Client(
        dev_env.client.service_client,
        namespace=dev_env.client.namespace,
        data_converter=DataConverter(payload_codec=RecordingCodec(seen)),
    )
    queue, workflow_id = f"tq-{uuid.uuid4()}", f"probe-{uuid.uuid4()}"
    async with Worker(
        client, task_queue=queue, workflows=[ActivityProbeWorkflow], activities=[echo], workflow_runner=runner
    ):
        assert await client.execute_workflow(ActivityProbeWorkflow.run, "hi", id=workflow_id, task_queue=queue) == (
            "echo: echo: hi"
        )
    return {tuple("WORKFLOW" if part == workflow_id else part for part in entry) for entry in seen}


async def test_every_payload_gets_the_context_temporalios_runner_gives_it(dev_env):
    stock = await _contexts_seen(dev_env, SandboxedWorkflowRunner())
    lean = await _contexts_seen(dev_env, LeanSandboxedWorkflowRunner())
    assert lean == stock
    # Not vacuous: the activity's payloads (remote and local) carry the activity's context, the rest the workflow's.
    assert ("encode", "activity", PROBE_ACTIVITY, False, "WORKFLOW") in lean
    assert ("encode", "activity", PROBE_ACTIVITY, True, "WORKFLOW") in lean
    assert ("encode", "workflow", "WORKFLOW") in lean


@contextmanager
def _counting_guard_entries(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    counts = {"guard": 0, "activations": 0, "runs": 0}
    applied, activate, create = Importer.applied, InSandbox.activate, LeanSandboxedWorkflowRunner.create_instance

    @contextmanager
    def counted_applied(self: Importer) -> Iterator[None]:
        counts["guard"] += 1
        with applied(self):
            yield

    def counted_activate(self: InSandbox, act: Any) -> Any:
        counts["activations"] += 1
        return activate(self, act)

    def counted_create(self: LeanSandboxedWorkflowRunner, det: WorkflowInstanceDetails) -> Any:
        counts["runs"] += 1  # one per run, and one more if the worker evicts and replays it
        return create(self, det)

    monkeypatch.setattr(Importer, "applied", counted_applied)
    monkeypatch.setattr(InSandbox, "activate", counted_activate)
    monkeypatch.setattr(LeanSandboxedWorkflowRunner, "create_instance", counted_create)
    yield counts


async def test_a_deployment_enters_the_sandbox_guard_per_activation_not_per_payload(
    dev_env, local_arm, tmp_path, task_queue, resource_group, monkeypatch
):
    request = request_for(
        local_arm, tmp_path, resource_group, storage_template([f"st{uuid.uuid4().hex[:10]}"]), skip_health=True
    )
    async with real_worker(dev_env.client, local_arm, tmp_path, task_queue):
        with _counting_guard_entries(monkeypatch) as counts:
            result = await result_of(await start_deployment(dev_env.client, request, task_queue=task_queue))
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert counts["activations"] >= 4 and counts["runs"] >= 1  # settings/validate/lint, plan, deploy, completion
    # Two entries build a run (import the workflow, create its instance); one per activation. temporalio's own
    # runner entered it about 110 more times for this deployment, once per payload conversion.
    assert counts["guard"] <= counts["activations"] + 2 * counts["runs"], counts


def _instance_details() -> WorkflowInstanceDetails:
    return WorkflowInstanceDetails(
        payload_converter_factory=DataConverter.default._new_payload_converter,
        failure_converter_class=DataConverter.default.failure_converter_class,
        interceptor_classes=[],
        defn=_Definition.from_class(DeploymentWorkflow),
        info=_fake_info,  # the sandbox's own placeholder info, as it uses to validate a workflow at worker start
        randomness_seed=-1,
        extern_functions={},
        disable_eager_activity_execution=False,
        worker_level_failure_exception_types=[],
        patch_activation_callback=None,
        last_completion_result=Payloads(),
        last_failure=Failure(),
    )


async def test_runs_share_the_workflow_code_but_not_its_module(dev_env, local_arm, tmp_path, task_queue):
    async with real_worker(dev_env.client, local_arm, tmp_path, task_queue):  # the worker as deployments run it
        runner = LeanSandboxedWorkflowRunner()
        first, second = (runner.create_instance(_instance_details()) for _ in range(2))
    one, two = (instance.globals_and_locals["__temporal_workflow_class"] for instance in (first, second))
    # Isolation kept: each run imported the workflow module anew (its own module, class and globals)...
    assert one is not two and one is not DeploymentWorkflow
    assert one.run.__globals__ is not two.run.__globals__
    # ...executing the same code objects, read once per process instead of once per run.
    assert one.run.__code__ is two.run.__code__
