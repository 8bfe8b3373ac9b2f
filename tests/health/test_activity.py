"""The run_health_checks activity: real local servers, heartbeats, a resumed window, and arm checks read from the
local ARM over HTTPS with the real SDK."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.health_checks import HealthCheckActivities, HealthCheckInput, health_activity_timeouts
from client.health.declare import load_health_spec
from contract.health import CheckState, HealthProgress, HealthSpec
from local_arm.testing import LocalArm
from tests.support.health_servers import LOOPBACK_POLICY, ServerThread

SUB = "00000000-0000-0000-0000-0000000000aa"


def spec(*flags: str, window: str = "10s") -> HealthSpec:
    return load_health_spec(
        template_path=None,
        flags=list(flags),
        declared_outputs=["web"],
        window=window,
        timeout="2s",
        retry_interval="0.2s",
    )


async def test_activity_runs_the_checks_against_the_outputs_and_heartbeats_their_state(servers: ServerThread) -> None:
    port = servers.http(start_after=0.6)
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    inp = HealthCheckInput(
        spec=spec("http:GET http://{outputs.web}/health name=web"),
        deployment_name="dep-1",
        subscription_id=SUB,
        outputs={"web": {"type": "String", "value": f"127.0.0.1:{port}"}},
    )
    report = await env.run(HealthCheckActivities(heartbeat_every=0.1, policy=LOOPBACK_POLICY).run_health_checks, inp)
    assert report.healthy, report.summary()
    assert report.checks[0].attempts > 1
    assert all(isinstance(b, HealthProgress) for b in beats)
    assert beats[-1].report.checks == report.checks
    assert any(b.report.checks and b.report.checks[0].state is CheckState.PENDING for b in beats)
    assert len({b.started_at for b in beats}) == 1


async def test_a_retried_activity_uses_only_what_is_left_of_the_window(servers: ServerThread) -> None:
    dead = servers.reserve_port().getsockname()[1]
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[{"started_at": time.time() - 598.5}])
    inp = HealthCheckInput(
        spec=spec(f"tcp:127.0.0.1:{dead} name=db", window="10m"), deployment_name="d", subscription_id=SUB
    )
    started = time.monotonic()
    report = await env.run(HealthCheckActivities(policy=LOOPBACK_POLICY).run_health_checks, inp)
    assert time.monotonic() - started < 4  # not another 10 minutes
    assert report.checks[0].state is CheckState.FAILED and report.checks[0].attempts >= 1


def test_activity_timeouts_cover_the_window_and_one_attempt() -> None:
    start_to_close, heartbeat = health_activity_timeouts(spec("tcp:h:1 timeout=45s", window="5m"), heartbeat_seconds=20)
    assert start_to_close.total_seconds() == 300 + 45 + 60 and heartbeat.total_seconds() == 20


async def test_arm_checks_read_provisioning_state_from_the_local_arm(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-health")
    rg = f"/subscriptions/{local_arm.subscription_id}/resourceGroups/rg-health"
    present = f"{rg}/providers/Microsoft.Storage/storageAccounts/sthealth1"
    missing = f"{rg}/providers/Microsoft.Storage/storageAccounts/stmissing"
    local_arm.resource_client().resources.begin_create_or_update_by_id(
        present, {"location": "eastus", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}, api_version="2023-05-01"
    ).result()
    api_versions = {present: "2023-05-01", missing: "2023-05-01"}
    async with local_arm.async_resource_client() as client:
        activities = HealthCheckActivities(lambda sub: client)
        ok = await ActivityEnvironment().run(
            activities.run_health_checks,
            HealthCheckInput(
                spec=spec("arm name=resources"),
                deployment_name="d",
                subscription_id=local_arm.subscription_id,
                resources=[present],
                api_versions=api_versions,
            ),
        )
        assert ok.healthy, ok.summary()
        bad = await ActivityEnvironment().run(
            activities.run_health_checks,
            HealthCheckInput(
                spec=spec("arm name=resources", window="20s"),
                deployment_name="d",
                subscription_id=local_arm.subscription_id,
                resources=[present, missing],
                api_versions=api_versions,
            ),
        )
    [failed] = bad.failed()
    # A resource that does not exist will not appear by waiting: the check fails at once, not after the window.
    assert failed.last_error == f"{missing} does not exist (ARM answered 404)"
    assert failed.attempts == 1 and bad.elapsed_seconds < 10


async def test_arm_checks_without_a_client_say_so(servers: ServerThread) -> None:
    report = await ActivityEnvironment().run(
        HealthCheckActivities(policy=LOOPBACK_POLICY).run_health_checks,
        HealthCheckInput(spec=spec("arm"), deployment_name="d", subscription_id=SUB, resources=["/subscriptions/x"]),
    )
    assert report.failed()[0].last_error == "no ARM state reader is configured for arm checks in this worker"


async def test_arm_checks_find_the_api_version_from_the_resource_provider(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-health-providers")
    rg = f"/subscriptions/{local_arm.subscription_id}/resourceGroups/rg-health-providers"
    present = f"{rg}/providers/Microsoft.Storage/storageAccounts/sthealth2"
    local_arm.resource_client().resources.begin_create_or_update_by_id(
        present, {"location": "eastus", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}, api_version="2023-05-01"
    ).result()
    async with local_arm.async_resource_client() as client:
        report = await ActivityEnvironment().run(
            HealthCheckActivities(lambda sub: client).run_health_checks,
            HealthCheckInput(
                spec=spec("arm name=resources", window="2s"),
                deployment_name="d",
                subscription_id=local_arm.subscription_id,
                resources=[present],  # no api_versions: looked up with Providers_Get
            ),
        )
    assert report.healthy, report.summary()


async def test_arm_checks_with_availability_ask_resource_health(local_arm: LocalArm) -> None:
    from azure.mgmt.resourcehealth.aio import ResourceHealthMgmtClient

    from local_arm.admin import Fault
    from local_arm.credential import AsyncLocalArmCredential

    local_arm.create_resource_group("rg-health-rh")
    rg = f"/subscriptions/{local_arm.subscription_id}/resourceGroups/rg-health-rh"
    storage = f"{rg}/providers/Microsoft.Storage/storageAccounts/sthealth3"
    identity = f"{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id3"
    resources = local_arm.resource_client().resources
    resources.begin_create_or_update_by_id(
        storage, {"location": "eastus", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}, api_version="2023-05-01"
    ).result()
    resources.begin_create_or_update_by_id(identity, {"location": "eastus"}, api_version="2023-01-31").result()
    local_arm.admin.add_faults(Fault.unavailable(resource_name="sthealth3", count=2))
    versions = {storage: "2023-05-01", identity: "2023-01-31"}
    async with local_arm.async_resource_client() as client:
        activities = HealthCheckActivities(
            lambda sub: client,
            resource_health=lambda sub: ResourceHealthMgmtClient(
                AsyncLocalArmCredential(), sub, **local_arm.async_client_kwargs()
            ),
        )
        report = await ActivityEnvironment().run(
            activities.run_health_checks,
            HealthCheckInput(
                spec=spec("arm availability=on name=resources", window="5s"),
                deployment_name="d",
                subscription_id=local_arm.subscription_id,
                resources=[storage, identity],
                api_versions=versions,
            ),
        )
    [check] = report.checks
    assert check.state is CheckState.PASSED, report.summary()
    assert check.attempts == 3  # Unavailable twice in Resource Health, then Available
    assert check.last_error == f"{storage} is Unavailable in Resource Health"
    assert check.note == f"{identity}: Resource Health not available for this resource type"
