"""Acceptance, durability: SIGKILL the worker process while DEPLOYING, start another: the workflow completes and
the local ARM saw exactly one PUT for the deployment (the new attempt found the ARM deployment by its
deterministic name and resumed polling it). Also: cancelling the workflow cancels the ARM deployment."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import pytest

from client.deployments import query_status, result_of, start_deployment
from contract.models import DeploymentStage, DeployOutcome
from harness.localarm import real_worker, request_for, storage_template
from local_arm.admin import Fault
from local_arm.testing import FAST, LocalArm, running_local_arm
from services.config import StaticTokenCredential
from tests.support.worker_process import start_worker_process, stop_process, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-crash"), **FAST)


@pytest.fixture(autouse=True)
def no_faults_left(local_arm):
    yield
    local_arm.admin.clear_faults()


WORKER_ENV = {
    "ORCHESTRATOR_HEARTBEAT_TIMEOUT_SECONDS": "2",
    "ORCHESTRATOR_ARM_POLL_INTERVAL_SECONDS": "0.1",
    "ORCHESTRATOR_RETRY_INITIAL_SECONDS": "0.5",
    "ORCHESTRATOR_HEALTH_ALLOW_PRIVATE": "1",  # the health checks' test servers are on 127.0.0.1
}


async def test_sigkill_while_deploying_resumes_without_a_second_put(
    dev_env, local_arm, tmp_path, task_queue, resource_group
):
    client = dev_env.client
    address = client.service_client.config.target_host
    blob_dir = tmp_path / "blobs"
    log = tmp_path / "workers.log"
    local_arm.admin.add_faults(Fault.slow_lro(6.0, path=resource_group, method="PUT"))
    request = request_for(local_arm, blob_dir, resource_group, storage_template(["stcrash0001"]))
    first = start_worker_process(address, task_queue, local_arm, blob_dir, log, WORKER_ENV)
    second = None
    try:
        handle = await start_deployment(client, request, task_queue=task_queue)

        async def deploying_and_put() -> bool:
            status = await query_status(handle)
            if status.stage is not DeploymentStage.DEPLOYING:
                return False
            return local_arm.admin.counters().count(method="PUT", deployment=status.deployment_name) == 1

        await wait_until(deploying_and_put, 60, "DEPLOYING with the PUT sent")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = start_worker_process(address, task_queue, local_arm, blob_dir, log, WORKER_ENV)
        result = await asyncio.wait_for(result_of(handle), 120)
        status = await query_status(handle)
    finally:
        stop_process(first)
        if second is not None:
            stop_process(second)
    assert result.outcome is DeployOutcome.SUCCEEDED, (result.failure, log.read_text()[-3000:])
    assert local_arm.admin.counters().count(method="PUT", deployment=result.deployment_name) == 1
    deploying = status.stages[DeploymentStage.DEPLOYING]
    assert deploying.attempts >= 2 and deploying.last_error_code == "HeartbeatTimeout"


async def test_cancelling_the_workflow_cancels_the_arm_deployment(
    dev_env, local_arm, tmp_path, task_queue, resource_group
):
    client = dev_env.client
    # Slow provisioning (not the stuck_lro fault: the local ARM does not honor a cancel during that fault's wait).
    local_arm.admin.configure(provisioning_seconds=60)
    request = request_for(local_arm, tmp_path, resource_group, storage_template(["stcancel001"]))
    try:
        await _cancel_while_deploying(client, local_arm, tmp_path, task_queue, resource_group, request)
    finally:
        local_arm.admin.configure(provisioning_seconds=FAST["provisioning_seconds"])


async def _cancel_while_deploying(client, local_arm, tmp_path, task_queue, resource_group, request) -> None:
    async with real_worker(client, local_arm, tmp_path, task_queue):
        handle = await start_deployment(client, request, task_queue=task_queue)

        async def running() -> bool:
            status = await query_status(handle)
            return status.stage is DeploymentStage.DEPLOYING and (
                local_arm.admin.counters().count(method="PUT", deployment=status.deployment_name) == 1
            )

        await wait_until(running, 60, "DEPLOYING")
        name = (await query_status(handle)).deployment_name
        await handle.cancel()
        result = await result_of(handle)
        assert result.outcome is DeployOutcome.CANCELLED
        assert result.deployment_name == name and result.transitions[-1].stage is DeploymentStage.FAILED
        # The failure names where it stopped — in the result and in `status` — not the FAILED it moved to.
        assert result.failure is not None and result.failure.stage is DeploymentStage.DEPLOYING, result.failure
        status = await query_status(handle)
        assert status.failure is not None and status.failure.stage is DeploymentStage.DEPLOYING
        assert status.failure.code == "Cancelled"

        def arm_deployment_canceled() -> bool:
            d = local_arm.deployments_client().deployments.get(resource_group, name)
            return bool(d.properties.provisioning_state == "Canceled")

        async def cancelled() -> bool:
            return await asyncio.to_thread(arm_deployment_canceled)

        await wait_until(cancelled, 30, "the ARM deployment to be Canceled")


class ShortLivedTokens(StaticTokenCredential):
    """Tokens that expire 2 s after they are issued; counts how often the SDK asks for one."""

    def __init__(self) -> None:
        super().__init__(lifetime_seconds=2)
        self.issued = 0

    async def get_token(self, *scopes, **kwargs):
        self.issued += 1
        return await super().get_token(*scopes, **kwargs)

    async def get_token_info(self, *scopes, options=None):
        self.issued += 1
        return await super().get_token_info(*scopes, options=options)


async def test_a_deployment_outlives_its_access_token(dev_env, local_arm, tmp_path, task_queue, resource_group):
    """The local ARM refuses expired tokens (401 ExpiredAuthenticationToken); a deployment that runs 5 s with
    2-second tokens only succeeds if the credential is asked again as tokens expire."""
    credential = ShortLivedTokens()
    local_arm.admin.add_faults(Fault.slow_lro(5.0, path=resource_group, method="PUT"))
    request = request_for(local_arm, tmp_path, resource_group, storage_template(["sttoken0001"]))
    async with real_worker(dev_env.client, local_arm, tmp_path, task_queue, credential=credential):
        result = await result_of(await start_deployment(dev_env.client, request, task_queue=task_queue))
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert credential.issued >= 3


async def test_graceful_worker_stop_while_deploying_leaves_the_arm_deployment_running(
    dev_env, local_arm, tmp_path, task_queue, resource_group
):
    """SIGINT (a rolling restart) must not cancel the ARM deployment: the next worker resumes it, one PUT."""
    client = dev_env.client
    address = client.service_client.config.target_host
    blob_dir = tmp_path / "blobs"
    log = tmp_path / "workers.log"
    local_arm.admin.add_faults(Fault.slow_lro(6.0, path=resource_group, method="PUT"))
    request = request_for(local_arm, blob_dir, resource_group, storage_template(["stgraceful01"]))
    first = start_worker_process(address, task_queue, local_arm, blob_dir, log, WORKER_ENV)
    second = None
    try:
        handle = await start_deployment(client, request, task_queue=task_queue)

        async def deploying_and_put() -> bool:
            status = await query_status(handle)
            if status.stage is not DeploymentStage.DEPLOYING:
                return False
            return local_arm.admin.counters().count(method="PUT", deployment=status.deployment_name) == 1

        await wait_until(deploying_and_put, 60, "DEPLOYING with the PUT sent")
        stop_process(first)  # SIGINT: graceful shutdown
        assert first.returncode == 0, log.read_text()[-3000:]
        second = start_worker_process(address, task_queue, local_arm, blob_dir, log, WORKER_ENV)
        result = await asyncio.wait_for(result_of(handle), 120)
        status = await query_status(handle)
    finally:
        stop_process(first)
        if second is not None:
            stop_process(second)
    assert result.outcome is DeployOutcome.SUCCEEDED, (result.failure, log.read_text()[-3000:])
    assert local_arm.admin.counters().count(method="PUT", deployment=result.deployment_name) == 1
    assert local_arm.admin.counters().count(method="POST", path_contains=f"{result.deployment_name}/cancel") == 0
    deploying = status.stages[DeploymentStage.DEPLOYING]
    assert deploying.attempts >= 2
    assert deploying.last_error_code in ("WorkerShutdown", "ActivityCancelled", "HeartbeatTimeout")


async def test_sigkill_during_health_checks_resumes_the_window_and_keeps_every_try(
    dev_env, local_arm, tmp_path, task_queue, resource_group
):
    """A worker lost 4 s into a 20 s health window: the next attempt continues the same window (the stage ends about
    20 s after it began, not 20 s after the new attempt) from the lost attempt's last heartbeat, so the final report
    counts every try the server saw."""
    from client.health.declare import load_health_spec
    from client.health.live import live_health_progress
    from services.temporal_client import data_converter
    from tests.support.health_servers import HttpBehaviour, running_servers

    client = dev_env.client
    address = client.service_client.config.target_host
    blob_dir = tmp_path / "blobs"
    log = tmp_path / "workers.log"
    with running_servers() as servers:
        web = servers.http(HttpBehaviour(status=503))
        health = load_health_spec(
            template_path=None,
            flags=[f"http:GET http://127.0.0.1:{web}/health name=web"],
            window="20s",
            timeout="1s",
            retry_interval="0.5s",
        )
        request = request_for(local_arm, blob_dir, resource_group, storage_template(["stcrashhc01"])).model_copy(
            update={"health": health}
        )
        first = start_worker_process(address, task_queue, local_arm, blob_dir, log, WORKER_ENV)
        second = None
        try:
            handle = await start_deployment(client, request, task_queue=task_queue)

            async def checking_for_a_while() -> bool:
                live = await live_health_progress(handle, data_converter())
                return live is not None and live.report.checks[0].attempts >= 4

            await wait_until(checking_for_a_while, 90, "the health checks to be trying")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            tries_before_loss = len(servers.requests)
            second = start_worker_process(address, task_queue, local_arm, blob_dir, log, WORKER_ENV)
            result = await asyncio.wait_for(result_of(handle), 120)
        finally:
            stop_process(first)
            if second is not None:
                stop_process(second)
        tries = len(servers.requests)
    assert result.outcome is DeployOutcome.ENVIRONMENTAL_FAILURE, (result.failure, log.read_text()[-3000:])
    assert result.failure is not None and result.failure.code == "HealthCheckFailed"
    [check] = result.health_checks.checks
    assert tries > tries_before_loss >= 4
    assert check.attempts == tries, f"the report counts {check.attempts} tries; the server saw {tries}"
    stages = [(t.stage, t.at) for t in result.transitions]
    began = next(at for stage, at in stages if stage is DeploymentStage.VERIFYING_HEALTH)
    ended = next(at for stage, at in stages if stage is DeploymentStage.FAILED)
    took = (ended - began).total_seconds()
    assert took <= 20 + 1 + 3, f"VERIFYING_HEALTH took {took:.1f} s for a 20 s window"  # window + timeout + margin
