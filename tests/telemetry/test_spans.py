"""OpenTelemetry: with tracing configured every stage attempt is a span with resource group, deployment name,
attempt and (for a failed attempt) its classification; no secret value reaches any span. Without configuration
nothing is traced."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from client.deployments import build_deploy_request, result_of, start_deployment
from contract import spans as span_names
from contract.models import DeployOutcome
from harness.localarm import real_worker
from harness.secret_template import random_token, secret_template
from local_arm.admin import Fault
from services import telemetry
from services.content_store import LocalBlobStore
from services.temporal_client import connect

STAGES = ["VALIDATING_PARAMETERS", "LINTING", "PLANNING", "DEPLOYING", "VERIFYING_HEALTH"]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    telemetry.use_tracer_provider(telemetry.tracer_provider(exporter, batch=False))
    try:
        yield exporter
    finally:
        telemetry.reset_tracing()


@pytest.mark.asyncio(loop_scope="session")
async def test_every_stage_is_a_span_with_its_attributes_and_no_secret(
    dev_env, local_arm, task_queue, resource_group, tmp_path, exporter
):
    token = random_token()
    blob_dir = tmp_path / "blobs"
    client = await connect(address=dev_env.client.service_client.config.target_host, namespace="default")
    account = "st" + uuid.uuid4().hex[:12]
    request = build_deploy_request(
        store=LocalBlobStore(blob_dir),
        template=secret_template(account),
        subscription_id=local_arm.subscription_id,
        resource_group=resource_group,
        location="westeurope",
        parameters={"adminPassword": {"value": token}},
        initiator="span-test",
    )
    # One environmental failure of the deployment PUT (a what-if would be made again inside the attempt), so one
    # DEPLOYING attempt fails (classified) and the next succeeds.
    local_arm.admin.add_faults(Fault.error(503, operation="Deployments_CreateOrUpdate", path=resource_group, count=1))
    try:
        async with real_worker(client, local_arm, blob_dir, task_queue):
            result = await result_of(await start_deployment(client, request, task_queue=task_queue))
    finally:
        local_arm.admin.clear_faults()
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    spans = exporter.get_finished_spans()
    stage_spans = [s for s in spans if s.name.startswith(span_names.STAGE_SPAN_PREFIX)]
    assert [s.attributes[span_names.ATTR_STAGE] for s in stage_spans] == [
        "VALIDATING_PARAMETERS", "LINTING", "PLANNING", "DEPLOYING", "DEPLOYING", "VERIFYING_HEALTH",
    ]  # fmt: skip
    for span in stage_spans:
        attrs = dict(span.attributes or {})
        assert attrs[span_names.ATTR_RESOURCE_GROUP] == resource_group
        assert attrs[span_names.ATTR_DEPLOYMENT_NAME] == result.deployment_name
        assert attrs["temporalWorkflowID"] == result.workflow_id
    failed, retried = stage_spans[3], stage_spans[4]
    assert (failed.attributes[span_names.ATTR_ATTEMPT], retried.attributes[span_names.ATTR_ATTEMPT]) == (1, 2)
    assert failed.attributes[span_names.ATTR_CLASSIFICATION] == "ENVIRONMENTAL"
    assert failed.attributes[span_names.ATTR_OUTCOME] == "failed"
    assert span_names.ATTR_CLASSIFICATION not in (retried.attributes or {})
    # The interceptor's own spans: the client's start, the workflow run, every activity.
    names = {s.name for s in spans}
    assert "StartWorkflow:DeploymentWorkflow" in names and "RunWorkflow:DeploymentWorkflow" in names
    assert {"RunActivity:plan_deployment", "RunActivity:deploy"} <= names
    # No span carries the secret anywhere (attributes, events, status), byte for byte.
    exported = "".join(s.to_json() for s in spans)
    assert token not in exported


def test_nothing_is_traced_unless_configured() -> None:
    telemetry.reset_tracing()
    assert telemetry.client_interceptors({}) == []
    assert telemetry.temporal_runtime() is None
    with pytest.raises(telemetry.TelemetryConfigError, match="ORCHESTRATOR_OTEL_TRACES"):
        telemetry.TelemetrySettings.from_environment({"ORCHESTRATOR_OTEL_TRACES": "jaeger"})
    with pytest.raises(telemetry.TelemetryConfigError, match="HOST:PORT"):
        telemetry.TelemetrySettings.from_environment({"ORCHESTRATOR_PROMETHEUS_BIND": "9464"})
    settings = telemetry.TelemetrySettings.from_environment(
        {"ORCHESTRATOR_OTEL_TRACES": "OTLP", "ORCHESTRATOR_PROMETHEUS_BIND": "127.0.0.1:9464"}
    )
    assert settings.traces == "otlp" and settings.prometheus_bind == "127.0.0.1:9464"


def test_a_cli_command_never_takes_the_workers_metrics_address(dev_env) -> None:
    """ORCHESTRATOR_PROMETHEUS_BIND exported for the worker (same shell, same .env) must not make a CLI command bind
    it too: with the worker holding the address, ``list`` failed as "Cannot reach the Temporal server" (exit 3).
    The worker's endpoint itself is tested in test_metrics.py."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "TEMPORAL_"))}
    with socket.socket() as held:  # the worker's endpoint, as far as the CLI can tell
        held.bind(("127.0.0.1", 0))
        held.listen()
        env.update(TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
                   ORCHESTRATOR_PROMETHEUS_BIND=f"127.0.0.1:{held.getsockname()[1]}")  # fmt: skip
        proc = subprocess.run([sys.executable, "starter.py", "list"], cwd=root, env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Prometheus" not in proc.stderr


def test_worker_refuses_bad_telemetry_and_key_settings_by_name() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "TEMPORAL_"))}
    for extra_env, argv, named in (
        ({}, ["--prometheus-bind", "9464"], "ORCHESTRATOR_PROMETHEUS_BIND"),
        ({"ORCHESTRATOR_OTEL_TRACES": "zipkin"}, [], "ORCHESTRATOR_OTEL_TRACES"),
        ({"ORCHESTRATOR_CODEC_KEYS": "k1=@@@"}, [], "ORCHESTRATOR_CODEC_KEYS"),
    ):
        proc = subprocess.run([sys.executable, "worker.py", *argv], cwd=root, env={**base, **extra_env},
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert named in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.asyncio(loop_scope="session")
async def test_the_confirmation_wait_is_a_span_with_its_decision(
    dev_env, local_arm, task_queue, resource_group, tmp_path, exporter
):
    from client.deployments import query_status
    from contract.models import SIGNAL_APPROVE, ApprovalSignal, DeploymentMode, DeploymentStage
    from harness.localarm import example_parameters, example_template, request_for

    blob_dir = tmp_path / "blobs"
    client = await connect(address=dev_env.client.service_client.config.target_host, namespace="default")
    full = request_for(local_arm, blob_dir, resource_group, example_template(), parameters=example_parameters())
    smaller = request_for(local_arm, blob_dir, resource_group, example_template("azuredeploy.without-web.json"),
                          parameters=example_parameters(), mode=DeploymentMode.COMPLETE)  # fmt: skip
    async with real_worker(client, local_arm, blob_dir, task_queue):
        assert (await result_of(await start_deployment(client, full, task_queue=task_queue))).succeeded
        handle = await start_deployment(client, smaller, task_queue=task_queue)
        for _ in range(600):
            if (await query_status(handle)).stage is DeploymentStage.AWAITING_CONFIRMATION:
                break
            await asyncio.sleep(0.05)
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="bo", reason="web app retired"))
        result = await result_of(handle)
    assert result.succeeded, result.failure
    [waited] = [s for s in exporter.get_finished_spans() if s.name == "Stage:AWAITING_CONFIRMATION"]
    assert waited.attributes["deployment.decision"] == "APPROVED"
    assert waited.attributes[span_names.ATTR_RESOURCE_GROUP] == resource_group
    assert waited.attributes[span_names.ATTR_DURATION] >= 0
