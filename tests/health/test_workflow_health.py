"""Acceptance (issue 6, health half): the real deployment workflow and activities on a real Temporal dev server,
deploying to the local ARM, then checking real TCP and HTTP servers on 127.0.0.1 whose addresses come from the
deployment's outputs. Skips, saying why, until the workflow runs declared health checks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from client.deployments import result_of, start_deployment
from client.health.declare import load_health_spec
from contract.health import CheckState, HealthSpec
from contract.health_targets import declared_outputs
from contract.models import DeploymentStage, DeployOutcome
from harness.localarm import real_worker, request_for, storage_template
from local_arm.testing import FAST, LocalArm, running_local_arm
from services.temporal_client import data_converter
from tests.support.health_servers import ServerThread
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


def template_with_outputs() -> dict[str, Any]:
    """Storage accounts plus outputs that carry the health targets, as a real template's outputs would."""
    template = storage_template([f"st{uuid.uuid4().hex[:10]}"])
    template["parameters"] |= {"webHost": {"type": "string"}, "dbPort": {"type": "int"}}
    template["outputs"] = {
        "webHost": {"type": "string", "value": "[parameters('webHost')]"},
        "db": {"type": "object", "value": {"port": "[parameters('dbPort')]"}},
    }
    return template


async def deploy(
    temporal: WorkflowEnvironment, arm: LocalArm, tmp_path: Path, *, web_port: int, db_port: int, health: HealthSpec
) -> Any:
    template = template_with_outputs()
    blob_dir = tmp_path / "blobs"
    request = request_for(
        arm,
        blob_dir,
        f"rg-{uuid.uuid4().hex[:10]}",
        template,
        parameters={"webHost": {"value": f"127.0.0.1:{web_port}"}, "dbPort": {"value": db_port}},
    ).model_copy(update={"health": health})  # what `deploy` does with the validated --health-check/health file
    queue = f"tq-{uuid.uuid4()}"
    async with real_worker(temporal.client, arm, blob_dir, queue):
        return await result_of(await start_deployment(temporal.client, request, task_queue=queue))


def checks(window: str = "20s") -> HealthSpec:
    return load_health_spec(
        template_path=None,
        flags=[
            "http:GET http://{outputs.webHost}/health expect=200 contains=ok name=web",
            "tcp:127.0.0.1:{outputs.db.port} name=db",
        ],
        declared_outputs=declared_outputs(template_with_outputs()),
        window=window,
        timeout="2s",
        retry_interval="0.5s",
    )


async def test_all_healthy_completes(temporal, arm, tmp_path, servers: ServerThread) -> None:
    result = await deploy(temporal, arm, tmp_path, web_port=servers.http(), db_port=servers.tcp(), health=checks())
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert result.stage is DeploymentStage.COMPLETED
    assert result.health_checks is not None and result.health_checks.healthy
    assert [c.name for c in result.health_checks.checks] == ["web", "db"]


async def test_a_server_that_comes_up_late_completes_after_retries(temporal, arm, tmp_path, servers) -> None:
    result = await deploy(
        temporal, arm, tmp_path, web_port=servers.http(), db_port=servers.tcp(start_after=3), health=checks()
    )
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    db = result.health_checks.checks[1]
    assert db.state is CheckState.PASSED and db.attempts > 1 and "connection refused" in (db.last_error or "")


async def test_a_server_that_never_comes_up_fails_at_verifying_health(temporal, arm, tmp_path, servers) -> None:
    dead = servers.reserve_port().getsockname()[1]
    result = await deploy(temporal, arm, tmp_path, web_port=servers.http(), db_port=dead, health=checks("2s"))
    assert result.outcome is DeployOutcome.ENVIRONMENTAL_FAILURE
    assert result.stage is DeploymentStage.FAILED
    assert result.failure is not None and result.failure.stage is DeploymentStage.VERIFYING_HEALTH
    assert result.failure.code == "HealthCheckFailed"
    assert f"- db (127.0.0.1:{dead}): failed after" in result.failure.message
    assert "connection refused" in result.failure.message
    assert result.health_checks is not None and [c.state for c in result.health_checks.checks] == [
        CheckState.PASSED,
        CheckState.FAILED,
    ]
