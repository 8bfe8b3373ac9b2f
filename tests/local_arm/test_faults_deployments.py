"""Deployment-level faults through the SDK: provisioning failures, preflight failures, slow and stuck LROs,
throttling while polling, onErrorDeployment rollback; and a restart in the middle of a deployment."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

from local_arm.admin import Fault
from local_arm.testing import LocalArm, running_local_arm
from tests.support.arm_templates import body, identities_template, stamped_template, web_app_template


@pytest.mark.parametrize("code", ["Conflict", "QuotaExceeded", "AllocationFailed", "InternalServerError"])
def test_provisioning_failure_ends_in_deployment_failed(local_arm: LocalArm, code: str) -> None:
    local_arm.create_resource_group("rg-pf")
    local_arm.admin.set_faults(Fault.provision_failure(code, resource_type="Microsoft.Web/sites"))
    client = local_arm.deployments_client()
    with pytest.raises(HttpResponseError) as exc:
        client.deployments.begin_create_or_update("rg-pf", "web", body(web_app_template())).result()
    error = exc.value.error
    assert error.code == "DeploymentFailed"
    assert error.message.startswith("At least one resource deployment operation failed.")
    inner = error.details[0]
    codes = [inner.code] + [d.code for d in (inner.details or [])]
    assert code in codes
    assert inner.target.endswith("/providers/Microsoft.Web/sites/app")
    deployment = client.deployments.get("rg-pf", "web")
    assert deployment.properties.provisioning_state == "Failed"
    assert deployment.properties.error.code == "DeploymentFailed"
    failed_ops = [
        o for o in client.deployment_operations.list("rg-pf", "web") if o.properties.provisioning_state == "Failed"
    ]
    assert len(failed_ops) == 1
    assert failed_ops[0].properties.target_resource.resource_name == "app"
    assert failed_ops[0].properties.status_message.error.code in (code, "ResourceDeploymentFailure")


def test_provisioning_failure_by_name_and_count_then_retry_succeeds(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-pc")
    local_arm.admin.set_faults(Fault.provision_failure("Conflict", resource_name="id1", count=1))
    client = local_arm.deployments_client()
    with pytest.raises(HttpResponseError):
        client.deployments.begin_create_or_update("rg-pc", "ids", body(identities_template(3))).result()
    result = client.deployments.begin_create_or_update("rg-pc", "ids", body(identities_template(3))).result()
    assert result.properties.provisioning_state == "Succeeded"
    assert local_arm.admin.counters().count(method="PUT", deployment="ids") == 2


def test_preflight_failure_is_invalid_template_deployment(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-pre")
    local_arm.admin.set_faults(Fault.preflight_failure("SkuNotAvailable", resource_type="Microsoft.Web/serverfarms"))
    client = local_arm.deployments_client()
    with pytest.raises(HttpResponseError) as validate:
        client.deployments.begin_validate("rg-pre", "web", body(web_app_template())).result()
    assert validate.value.status_code == 400
    assert validate.value.error.code == "InvalidTemplateDeployment"
    preflight = validate.value.error.details[0]
    assert preflight.code == "PreflightValidationCheckFailed"
    assert preflight.details[0].code == "SkuNotAvailable"
    assert "not available in location 'eastus'" in preflight.details[0].message
    with pytest.raises(HttpResponseError) as put:
        client.deployments.begin_create_or_update("rg-pre", "web", body(web_app_template()))
    assert put.value.error.code == "InvalidTemplateDeployment"
    assert client.deployments.check_existence("rg-pre", "web") is False


def test_slow_lro_keeps_the_poller_polling(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-slow")
    local_arm.admin.set_faults(
        Fault.slow_lro(1.0, deployment="slow"), Fault.slow_lro(0.5, operation="Deployments_WhatIf")
    )
    client = local_arm.deployments_client(polling_interval=0.1)
    started = time.monotonic()
    result = client.deployments.begin_create_or_update("rg-slow", "slow", body(identities_template(1))).result()
    assert result.properties.provisioning_state == "Succeeded"
    assert time.monotonic() - started >= 1.0
    polls = local_arm.admin.counters().count(operation="Deployments_OperationStatus")
    assert polls >= 3
    started = time.monotonic()
    plan = client.deployments.begin_what_if("rg-slow", "slow", body(identities_template(1))).result()
    assert plan.status == "Succeeded" and time.monotonic() - started >= 0.5
    assert local_arm.admin.counters().count(operation="OperationResults_Get", status=202) >= 2


def test_poller_survives_429_and_500_while_polling(local_arm: LocalArm) -> None:
    local_arm.admin.configure(provisioning_seconds=0.2)
    local_arm.create_resource_group("rg-poll")
    local_arm.admin.set_faults(
        Fault.throttle(operation="Deployments_OperationStatus", count=1, retry_after=0),
        Fault.error(500, operation="Deployments_Get", count=1),
    )
    client = local_arm.deployments_client(retry_backoff_factor=0.01)
    result = client.deployments.begin_create_or_update("rg-poll", "p", body(identities_template(2))).result()
    assert result.properties.provisioning_state == "Succeeded"
    counters = local_arm.admin.counters()
    assert counters.count(operation="Deployments_OperationStatus", status=429) == 1
    assert counters.count(operation="Deployments_Get", status=500) == 1
    assert counters.count(method="PUT", deployment="p") == 1  # the retries never re-sent the PUT


def test_throttled_put_is_retried_once(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-tput")
    local_arm.admin.set_faults(Fault.throttle(operation="Deployments_CreateOrUpdate", count=1, retry_after=1))
    client = local_arm.deployments_client()
    result = client.deployments.begin_create_or_update("rg-tput", "t", body(identities_template(1))).result()
    assert result.properties.provisioning_state == "Succeeded"
    counters = local_arm.admin.counters()
    assert counters.count(method="PUT", deployment="t", status=429) == 1
    assert counters.count(method="PUT", deployment="t", status=201) == 1


@pytest.mark.parametrize("kind", ["LastSuccessful", "SpecificDeployment"])
def test_on_error_deployment_redeploys_the_earlier_deployment(local_arm: LocalArm, kind: str) -> None:
    local_arm.create_resource_group("rg-roll")
    client = local_arm.deployments_client()
    client.deployments.begin_create_or_update("rg-roll", "good", body(identities_template(1))).result()
    resources = local_arm.resource_client()
    local_arm.admin.set_faults(Fault.provision_failure("Conflict", resource_name="id1"))
    on_error = {"type": kind} | ({"deploymentName": "good"} if kind == "SpecificDeployment" else {})
    with pytest.raises(HttpResponseError):
        client.deployments.begin_create_or_update(
            "rg-roll", "bad", body(identities_template(2, prefix="id"), onErrorDeployment=on_error)
        ).result()
    bad = client.deployments.get("rg-roll", "bad")
    assert bad.properties.provisioning_state == "Failed"
    assert bad.properties.on_error_deployment.type == kind
    assert bad.properties.on_error_deployment.deployment_name == "good"
    assert bad.properties.on_error_deployment.provisioning_state == "Succeeded"
    states = {r.name: r for r in resources.resources.list_by_resource_group("rg-roll")}
    assert "id0" in states


def test_a_rollback_redeploys_the_earlier_deployment_with_its_utcnow_values(local_arm: LocalArm) -> None:
    """ARM: "the parameter isn't reevaluated. Instead, the parameter value from the earlier deployment is
    automatically reused in the rollback deployment" (ARM template date functions, utcNow)."""
    local_arm.create_resource_group("rg-roll-time")
    client = local_arm.deployments_client()
    good = client.deployments.begin_create_or_update("rg-roll-time", "good", body(stamped_template())).result()
    stamp = good.properties.parameters["stamp"]["value"]
    local_arm.admin.set_faults(Fault.provision_failure("Conflict", resource_name="broken0"))
    with pytest.raises(HttpResponseError):
        client.deployments.begin_create_or_update(
            "rg-roll-time",
            "bad",
            body(identities_template(1, prefix="broken"), onErrorDeployment={"type": "LastSuccessful"}),
        ).result()
    assert client.deployments.get("rg-roll-time", "bad").properties.on_error_deployment.provisioning_state == (
        "Succeeded"
    )
    tags = {r.name: r.tags for r in local_arm.resource_client().resources.list_by_resource_group("rg-roll-time")}
    assert tags["outer"]["stamp"] == stamp


def test_restart_mid_deployment_neither_loses_nor_duplicates_it(tmp_path: Path) -> None:
    gen = running_local_arm(tmp_path, provisioning_seconds=2.0)
    arm = next(gen)
    arm.create_resource_group("rg-restart")
    client = arm.deployments_client()
    client.deployments.begin_create_or_update("rg-restart", "long", body(identities_template(4)))
    time.sleep(0.3)  # the identities are stored and Creating
    assert client.deployments.get("rg-restart", "long").properties.provisioning_state in ("Accepted", "Running")
    gen.close()  # the server stops mid-deployment

    gen = running_local_arm(tmp_path, provisioning_seconds=0.0)
    arm = next(gen)
    try:
        client = arm.deployments_client()
        deadline = time.monotonic() + 10
        state = client.deployments.get("rg-restart", "long").properties.provisioning_state
        while state != "Succeeded" and time.monotonic() < deadline:
            time.sleep(0.05)
            state = client.deployments.get("rg-restart", "long").properties.provisioning_state
        assert state == "Succeeded"
        assert [d.name for d in client.deployments.list_by_resource_group("rg-restart")] == ["long"]
        names = sorted(r.name for r in arm.resource_client().resources.list_by_resource_group("rg-restart"))
        assert names == ["id0", "id1", "id2", "id3"]
        creates = [
            o
            for o in client.deployment_operations.list("rg-restart", "long")
            if o.properties.provisioning_operation == "Create"
        ]
        assert sorted(o.properties.target_resource.resource_name for o in creates) == names
        plan = client.deployments.begin_what_if("rg-restart", "long", body(identities_template(4))).result()
        assert {c.change_type for c in plan.properties.changes} == {"NoChange"}
    finally:
        gen.close()


def test_deployment_history_survives_restart(tmp_path: Path) -> None:
    gen = running_local_arm(tmp_path)
    arm = next(gen)
    arm.create_resource_group("rg-hist")
    arm.deployments_client().deployments.begin_create_or_update("rg-hist", "v1", body(web_app_template())).result()
    gen.close()
    gen = running_local_arm(tmp_path)
    arm = next(gen)
    try:
        client = arm.deployments_client()
        old = client.deployments.get("rg-hist", "v1")
        assert old.properties.provisioning_state == "Succeeded" and old.properties.outputs["host"]["value"]
        plan = client.deployments.begin_what_if("rg-hist", "v2", body(web_app_template())).result()
        assert {c.change_type for c in plan.properties.changes} == {"NoChange"}
    finally:
        gen.close()


async def test_aio_poller_survives_throttling_and_reports_deployment_failed(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-aiof")
    local_arm.admin.set_faults(
        Fault.throttle(operation="Deployments_CreateOrUpdate", count=1, retry_after=0),
        Fault.error(503, operation="Deployments_OperationStatus", count=1, retry_after=0),
    )
    async with local_arm.async_deployments_client(retry_backoff_factor=0.01) as client:
        poller = await client.deployments.begin_create_or_update("rg-aiof", "a", body(identities_template(2)))
        result = await poller.result()
        assert result.properties.provisioning_state == "Succeeded"
        local_arm.admin.set_faults(Fault.provision_failure("QuotaExceeded", resource_name="id1"))
        poller = await client.deployments.begin_create_or_update("rg-aiof", "a", body(identities_template(2)))
        with pytest.raises(HttpResponseError) as exc:
            await poller.result()
        assert exc.value.error.code == "DeploymentFailed"
        assert exc.value.error.details[0].code == "QuotaExceeded"
    counters = local_arm.admin.counters()
    assert counters.count(method="PUT", deployment="a", status=429) == 1
    assert counters.count(operation="Deployments_OperationStatus", status=503) == 1


def test_poller_resumes_from_continuation_token_across_a_restart(tmp_path: Path) -> None:
    from local_arm.config import LocalArmConfig
    from local_arm.server import LocalArmServer
    from local_arm.testing import LocalArm

    first = LocalArmServer(tmp_path, config=LocalArmConfig(retry_after=0, provisioning_seconds=1.5)).start()
    port = first.port
    try:
        arm = LocalArm(first)
        arm.create_resource_group("rg-token")
        poller = arm.deployments_client().deployments.begin_create_or_update(
            "rg-token", "resume", body(identities_template(2))
        )
        token = poller.continuation_token()
        arm.close()
    finally:
        first.stop()
    # The same state dir and port (monitor URLs are absolute): a worker's heartbeat-resumed poller finishes.
    second = LocalArmServer(tmp_path, port=port, config=LocalArmConfig(retry_after=0, provisioning_seconds=0)).start()
    try:
        arm = LocalArm(second)
        client = arm.deployments_client()
        resumed = client.deployments.begin_create_or_update(
            "rg-token", "resume", body(identities_template(2)), continuation_token=token
        )
        result = resumed.result()
        assert result.properties.provisioning_state == "Succeeded"
        assert len(result.properties.outputs["principals"]["value"]) == 2
        assert arm.admin.counters().count(method="PUT") == 0  # resumed by polling, not by a new PUT
        arm.close()
    finally:
        second.stop()
