"""Deployments through the real SDK clients: the LRO contract, what-if, modes, history, operations, export."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from local_arm.admin import AdminError, Fault
from local_arm.config import LocalArmConfig
from local_arm.faults import FaultConfigError
from local_arm.testing import LocalArm
from tests.support.arm_templates import body, identities_template, stamped_template, values, web_app_template
from tests.support.rawhttp import call


def deployment_path(arm: LocalArm, rg: str, name: str) -> str:
    return f"/subscriptions/{arm.subscription_id}/resourcegroups/{rg}/providers/Microsoft.Resources/deployments/{name}"


def test_validate_what_if_create_what_if_through_sync_sdk(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-web", "westeurope")
    client = local_arm.deployments_client()
    request = body(web_app_template())

    validated = client.deployments.begin_validate("rg-web", "web", request).result()
    assert validated.properties.provisioning_state == "Succeeded"
    assert len(validated.properties.validated_resources) == 3

    plan = client.deployments.begin_what_if("rg-web", "web", request).result()
    assert plan.status == "Succeeded"
    assert [c.change_type for c in plan.properties.changes] == ["Create"] * 3
    site = next(c for c in plan.properties.changes if c.resource_id.endswith("/sites/app"))
    assert site.after["location"] == "westeurope"
    # The app setting reads the storage account's endpoint, unknown before it exists: shown unevaluated.
    setting = site.after["properties"]["siteConfig"]["appSettings"][0]["value"]
    assert setting.startswith("[reference(")

    result = client.deployments.begin_create_or_update("rg-web", "web", request).result()
    assert result.properties.provisioning_state == "Succeeded"
    storage_name = result.properties.parameters["storageName"]["value"]
    assert result.properties.outputs == {
        "blob": {"type": "String", "value": f"https://{storage_name}.blob.core.windows.net/"},
        "host": {"type": "String", "value": "app.azurewebsites.net"},
    }
    assert {r.id.rsplit("/", 1)[-1] for r in result.properties.output_resources} == {storage_name, "plan", "app"}

    again = client.deployments.begin_what_if("rg-web", "web", request).result()
    assert [c.change_type for c in again.properties.changes] == ["NoChange"] * 3

    assert local_arm.admin.counters().count(method="PUT", deployment="web") == 1


def test_deployment_put_speaks_the_async_operation_protocol(local_arm: LocalArm) -> None:
    local_arm.admin.configure(retry_after=1, provisioning_seconds=2.0)
    local_arm.create_resource_group("rg-raw")
    path = deployment_path(local_arm, "rg-raw", "raw") + "?api-version=2026-06-01"
    resp = call(local_arm.endpoint, local_arm.ca_file, "PUT", path, body(identities_template(1)))
    assert resp.status == 201
    assert resp.body["properties"]["provisioningState"] == "Accepted"
    assert resp.body["id"].endswith("/resourceGroups/rg-raw/providers/Microsoft.Resources/deployments/raw")
    monitor = resp.headers["azure-asyncoperation"]
    assert monitor.startswith(f"{local_arm.endpoint}{deployment_path(local_arm, 'rg-raw', 'raw')}/operationStatuses/")
    assert resp.headers["retry-after"] == "1"
    assert "location" not in resp.headers
    status = call(local_arm.endpoint, local_arm.ca_file, "GET", monitor.removeprefix(local_arm.endpoint))
    assert status.status == 200 and status.body == {"status": "Running"}
    assert status.headers["retry-after"] == "1"
    deadline = time.monotonic() + 10
    while status.body["status"] == "Running" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = call(local_arm.endpoint, local_arm.ca_file, "GET", monitor.removeprefix(local_arm.endpoint))
    assert status.body == {"status": "Succeeded"}


def test_poller_honours_retry_after(local_arm: LocalArm) -> None:
    # The SDK polls once at once; the deployment is still running then, so the next poll waits Retry-After.
    local_arm.admin.configure(retry_after=1, provisioning_seconds=1.5)
    local_arm.create_resource_group("rg-ra")
    client = local_arm.deployments_client(polling_interval=30)  # would hang 30 s if Retry-After were ignored
    started = time.monotonic()
    result = client.deployments.begin_create_or_update("rg-ra", "ra", body(identities_template(1))).result()
    assert result.properties.provisioning_state == "Succeeded"
    assert 1.4 <= time.monotonic() - started < 10  # polled at 1 s steps, not the client's 30 s


async def test_aio_client_deploys_and_reads_history(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-aio")
    async with local_arm.async_deployments_client() as client:
        poller = await client.deployments.begin_create_or_update("rg-aio", "ids", body(identities_template(3)))
        result = await poller.result()
        assert result.properties.provisioning_state == "Succeeded"
        principals = result.properties.outputs["principals"]["value"]
        assert len(set(principals)) == 3
        names = [d.name async for d in client.deployments.list_by_resource_group("rg-aio")]
        assert names == ["ids"]
        ops = [o async for o in client.deployment_operations.list("rg-aio", "ids")]
        creates = [o for o in ops if o.properties.provisioning_operation == "Create"]
        assert len(creates) == 3 and all(o.properties.provisioning_state == "Succeeded" for o in creates)
        plan = await (await client.deployments.begin_what_if("rg-aio", "ids", body(identities_template(3)))).result()
        assert {c.change_type for c in plan.properties.changes} == {"NoChange"}


def test_incremental_redeploy_with_a_changed_property_is_modify_with_delta(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-mod")
    client = local_arm.deployments_client()
    client.deployments.begin_create_or_update("rg-mod", "web", body(web_app_template())).result()
    changed = web_app_template()
    changed["resources"][1]["sku"] = {"name": "P1v3"}
    changed["resources"][1]["tags"] = {"owner": "team-a"}
    plan = client.deployments.begin_what_if("rg-mod", "web", body(changed, values(tlsVersion="TLS1_0"))).result()
    by_name = {c.resource_id.rsplit("/", 1)[-1]: c for c in plan.properties.changes}
    storage = next(c for n, c in by_name.items() if n.startswith("st"))
    assert storage.change_type == "Modify"
    assert [(d.path, d.property_change_type, d.before, d.after) for d in storage.delta] == [
        ("properties.minimumTlsVersion", "Modify", "TLS1_2", "TLS1_0")
    ]
    plan_change = by_name["plan"]
    assert plan_change.change_type == "Modify"
    assert sorted((d.path, d.property_change_type, d.before, d.after) for d in plan_change.delta) == [
        ("sku.name", "Modify", "B1", "P1v3"),
        ("tags.owner", "Create", None, "team-a"),
    ]
    assert by_name["app"].change_type == "NoChange"
    # Provider-added read-only properties (primaryEndpoints, provisioningState) are never reported.
    assert all("primaryEndpoints" not in d.path for c in plan.properties.changes for d in (c.delta or []))


def test_array_changes_are_reported_per_element(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-arr")
    client = local_arm.deployments_client()
    client.deployments.begin_create_or_update("rg-arr", "web", body(web_app_template())).result()
    changed = web_app_template()
    settings = changed["resources"][2]["properties"]["siteConfig"]["appSettings"]
    settings.append({"name": "MODE", "value": "fast"})
    plan = client.deployments.begin_what_if("rg-arr", "web", body(changed)).result()
    site = next(c for c in plan.properties.changes if c.resource_id.endswith("/sites/app"))
    assert site.change_type == "Modify"
    (array,) = site.delta
    assert (array.path, array.property_change_type) == ("properties.siteConfig.appSettings", "Array")
    assert [(c.path, c.property_change_type, c.after) for c in array.children] == [
        ("1", "Create", {"name": "MODE", "value": "fast"})
    ]


def test_complete_mode_reports_and_deletes_resources_left_out(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-cmp")
    client = local_arm.deployments_client()
    resources = local_arm.resource_client()
    client.deployments.begin_create_or_update("rg-cmp", "ids", body(identities_template(3))).result()
    smaller = body(identities_template(2), mode="Complete")
    plan = client.deployments.begin_what_if("rg-cmp", "ids", smaller).result()
    changes = {c.resource_id.rsplit("/", 1)[-1]: c.change_type for c in plan.properties.changes}
    assert changes == {"id0": "NoChange", "id1": "NoChange", "id2": "Delete"}
    incremental = client.deployments.begin_what_if("rg-cmp", "ids", body(identities_template(2))).result()
    assert {c.resource_id.rsplit("/", 1)[-1]: c.change_type for c in incremental.properties.changes}["id2"] == "Ignore"

    client.deployments.begin_create_or_update("rg-cmp", "ids", smaller).result()
    assert sorted(r.name for r in resources.resources.list_by_resource_group("rg-cmp")) == ["id0", "id1"]
    gone = (
        f"/subscriptions/{local_arm.subscription_id}/resourceGroups/rg-cmp/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/id2"
    )
    with pytest.raises(ResourceNotFoundError):
        resources.resources.get_by_id(gone, api_version="2023-01-31")


def test_deployed_resources_are_readable_as_generic_resources(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-gen")
    result = (
        local_arm.deployments_client()
        .deployments.begin_create_or_update("rg-gen", "web", body(web_app_template()))
        .result()
    )
    storage_id = next(r.id for r in result.properties.output_resources if "storageAccounts" in r.id)
    resources = local_arm.resource_client()
    storage = resources.resources.get_by_id(storage_id, api_version="2019-06-01")  # any api-version
    assert storage.properties["provisioningState"] == "Succeeded"
    assert storage.properties["minimumTlsVersion"] == "TLS1_2"
    assert storage.properties["primaryEndpoints"]["blob"].endswith(".blob.core.windows.net/")
    assert storage.sku.name == "Standard_LRS" and storage.kind == "StorageV2"
    assert len(list(resources.resources.list_by_resource_group("rg-gen"))) == 3
    resources.resources.begin_delete_by_id(storage_id, api_version="2023-01-01").result()
    assert len(list(resources.resources.list_by_resource_group("rg-gen"))) == 2


def test_resources_show_creating_before_succeeded(local_arm: LocalArm) -> None:
    local_arm.admin.configure(provisioning_seconds=0.6)
    local_arm.create_resource_group("rg-slow")
    client = local_arm.deployments_client()
    poller = client.deployments.begin_create_or_update("rg-slow", "ids", body(identities_template(1)))
    rid = (
        f"/subscriptions/{local_arm.subscription_id}/resourceGroups/rg-slow/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/id0"
    )
    resources = local_arm.resource_client()
    seen = set()
    deadline = time.monotonic() + 5
    while not poller.done() and time.monotonic() < deadline:
        with contextlib.suppress(ResourceNotFoundError):
            seen.add(resources.resources.get_by_id(rid, api_version="2023-01-31").properties["provisioningState"])
        time.sleep(0.05)
    poller.result()
    assert "Creating" in seen
    assert client.deployments.get("rg-slow", "ids").properties.provisioning_state == "Succeeded"
    redeploy = client.deployments.begin_create_or_update("rg-slow", "ids", body(identities_template(1)))
    states = set()
    while not redeploy.done() and time.monotonic() < deadline + 5:
        states.add(resources.resources.get_by_id(rid, api_version="2023-01-31").properties["provisioningState"])
        time.sleep(0.05)
    redeploy.result()
    assert "Updating" in states


def test_deployment_active_cancel_and_cannot_be_cancelled(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-act")
    local_arm.admin.set_faults(Fault.stuck_lro(deployment="busy"))
    client = local_arm.deployments_client()
    poller = client.deployments.begin_create_or_update("rg-act", "busy", body(identities_template(1)))
    with pytest.raises(ResourceExistsError) as active:
        client.deployments.begin_create_or_update("rg-act", "busy", body(identities_template(1)))
    assert active.value.status_code == 409 and active.value.error.code == "DeploymentActive"
    assert "Unable to edit or replace deployment 'busy'" in active.value.error.message
    time.sleep(0.3)
    assert not poller.done()
    client.deployments.cancel("rg-act", "busy")
    with pytest.raises(HttpResponseError) as canceled:
        poller.result()
    assert canceled.value.error.code == "DeploymentCanceled"
    assert client.deployments.get("rg-act", "busy").properties.provisioning_state == "Canceled"
    with pytest.raises(ResourceExistsError) as late:
        client.deployments.cancel("rg-act", "busy")
    assert late.value.error.code == "DeploymentCannotBeCancelled"


def test_delete_export_check_existence_and_list(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-hist")
    client = local_arm.deployments_client()
    template = identities_template(1)
    for name in ("first", "second", "third"):
        client.deployments.begin_create_or_update("rg-hist", name, body(template)).result()
    assert [d.name for d in client.deployments.list_by_resource_group("rg-hist")] == ["third", "second", "first"]
    assert [d.name for d in client.deployments.list_by_resource_group("rg-hist", top=1)] == ["third"]
    succeeded = client.deployments.list_by_resource_group("rg-hist", filter="provisioningState eq 'Succeeded'")
    assert len(list(succeeded)) == 3
    assert list(client.deployments.list_by_resource_group("rg-hist", filter="provisioningState eq 'Failed'")) == []
    assert client.deployments.export_template("rg-hist", "second").template == template
    assert client.deployments.check_existence("rg-hist", "second") is True
    client.deployments.begin_delete("rg-hist", "second").result()
    assert client.deployments.check_existence("rg-hist", "second") is False
    with pytest.raises(ResourceNotFoundError) as missing:
        client.deployments.get("rg-hist", "second")
    assert missing.value.error.code == "DeploymentNotFound"
    # Deleting a deployment keeps its resources, as ARM does.
    assert len(list(local_arm.resource_client().resources.list_by_resource_group("rg-hist"))) == 1


def test_deployment_into_missing_group_and_bad_bodies(local_arm: LocalArm) -> None:
    client = local_arm.deployments_client()
    with pytest.raises(ResourceNotFoundError) as missing:
        client.deployments.begin_create_or_update("rg-none", "d", body(identities_template(1)))
    assert missing.value.error.code == "ResourceGroupNotFound"
    local_arm.create_resource_group("rg-bad")
    path = deployment_path(local_arm, "rg-bad", "d") + "?api-version=2026-06-01"
    no_mode = call(local_arm.endpoint, local_arm.ca_file, "PUT", path, {"properties": {"template": {}}})
    assert no_mode.status == 400 and no_mode.body["error"]["code"] == "InvalidRequestContent"
    assert "mode" in no_mode.body["error"]["message"]
    bad_name = deployment_path(local_arm, "rg-bad", "bad%20name!") + "?api-version=2026-06-01"
    named = call(local_arm.endpoint, local_arm.ca_file, "PUT", bad_name, body(identities_template(1)))
    assert named.status == 400 and named.body["error"]["code"] == "InvalidDeploymentName"


def test_invalid_template_in_validate_put_and_what_if(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-inv")
    client = local_arm.deployments_client()
    broken = identities_template(1)
    broken["resources"][0]["location"] = "[resourceGroup().nowhere]"
    with pytest.raises(HttpResponseError) as validate:
        client.deployments.begin_validate("rg-inv", "d", body(broken)).result()
    assert validate.value.status_code == 400
    assert validate.value.error.code == "InvalidTemplate"
    assert validate.value.error.message.startswith("Deployment template validation failed:")
    with pytest.raises(HttpResponseError) as put:
        client.deployments.begin_create_or_update("rg-inv", "d", body(broken))
    assert put.value.status_code == 400 and put.value.error.code == "InvalidTemplate"
    # What-if reports a bad template in the operation result (HTTP 200, status Failed), as ARM does.
    plan = client.deployments.begin_what_if("rg-inv", "d", body(broken)).result()
    assert plan.status == "Failed" and plan.error.code == "InvalidTemplate"
    missing_param = identities_template(1)
    missing_param["parameters"]["needed"] = {"type": "string"}
    with pytest.raises(HttpResponseError) as param:
        client.deployments.begin_validate("rg-inv", "d", body(missing_param)).result()
    assert param.value.error.code == "InvalidTemplate" and "needed" in param.value.error.message
    raw = call(
        local_arm.endpoint,
        local_arm.ca_file,
        "POST",
        deployment_path(local_arm, "rg-inv", "d") + "/validate?api-version=2026-06-01",
        body(missing_param),
    )
    assert raw.body["error"]["additionalInfo"][0]["type"] == "TemplateViolation"


def test_async_validate_uses_a_location_monitor(local_arm: LocalArm) -> None:
    local_arm.admin.configure(async_validate=True)
    local_arm.create_resource_group("rg-av")
    client = local_arm.deployments_client()
    result = client.deployments.begin_validate("rg-av", "d", body(identities_template(2))).result()
    assert len(result.properties.validated_resources) == 2
    raw = call(
        local_arm.endpoint,
        local_arm.ca_file,
        "POST",
        deployment_path(local_arm, "rg-av", "d") + "/validate?api-version=2026-06-01",
        body(identities_template(2)),
    )
    assert raw.status == 202 and "/operationresults/" in raw.headers["location"]


def test_nested_deployments_are_stored_as_deployments(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-nest")
    inner = identities_template(1, prefix="inner")
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "child",
                "properties": {
                    "mode": "Incremental",
                    "expressionEvaluationOptions": {"scope": "inner"},
                    "template": inner,
                },
            }
        ],
        "outputs": {"fromChild": {"type": "array", "value": "[reference('child').outputs.principals.value]"}},
    }
    client = local_arm.deployments_client()
    result = client.deployments.begin_create_or_update("rg-nest", "parent", body(template)).result()
    assert len(result.properties.outputs["fromChild"]["value"]) == 1
    child = client.deployments.get("rg-nest", "child")
    assert child.properties.provisioning_state == "Succeeded"
    assert [r.id.rsplit("/", 1)[-1] for r in child.properties.output_resources] == ["inner0"]
    assert sorted(d.name for d in client.deployments.list_by_resource_group("rg-nest")) == ["child", "parent"]


def test_invalid_storage_account_name_fails_preflight(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-acct")
    client = local_arm.deployments_client()
    with pytest.raises(HttpResponseError) as exc:
        client.deployments.begin_validate(
            "rg-acct", "d", body(web_app_template(), values(storageName="Bad_Name"))
        ).result()
    assert exc.value.status_code == 400 and exc.value.error.code == "InvalidTemplateDeployment"
    assert exc.value.error.details[0].details[0].code == "AccountNameInvalid"


def test_what_if_resource_id_only_and_secrets_not_echoed(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-sec")
    template = identities_template(1)
    template["parameters"]["secret"] = {"type": "securestring"}
    template["resources"].append(
        {
            "type": "Microsoft.Compute/virtualMachines",
            "apiVersion": "2023-03-01",
            "name": "vm1",
            "location": "[resourceGroup().location]",
            "properties": {
                "osProfile": {
                    "computerName": "vm1",
                    "adminUsername": "azureuser",
                    "adminPassword": "[parameters('secret')]",
                }
            },
        }
    )
    request = body(template, values(secret="Sup3r-Secret!"))
    client = local_arm.deployments_client()
    short = client.deployments.begin_what_if(
        "rg-sec", "d", {"properties": {**request["properties"], "whatIfSettings": {"resultFormat": "ResourceIdOnly"}}}
    ).result()
    assert all(c.after is None and c.before is None for c in short.properties.changes)
    assert [c.change_type for c in short.properties.changes] == ["Create", "Create"]
    full = client.deployments.begin_what_if("rg-sec", "d", request).result()
    result = client.deployments.begin_create_or_update("rg-sec", "d", request).result()
    assert result.properties.parameters["secret"] == {"type": "SecureString"}
    vm_id = next(r.id for r in result.properties.output_resources if r.id.endswith("/vm1"))
    vm = local_arm.resource_client().resources.get_by_id(vm_id, api_version="2023-03-01")
    assert vm.properties["osProfile"]["adminUsername"] == "azureuser"
    again = client.deployments.begin_what_if("rg-sec", "d", request).result()
    for text in (str(full.as_dict()), str(vm.as_dict()), str(again.as_dict())):
        assert "Sup3r-Secret!" not in text
    assert {c.change_type for c in again.properties.changes} == {"NoChange"}
    ids_only = client.deployments.begin_what_if(
        "rg-sec", "d", {"properties": {**request["properties"], "whatIfSettings": {"resultFormat": "ResourceIdOnly"}}}
    ).result()
    assert [c.change_type for c in ids_only.properties.changes] == ["Deploy", "Deploy"]


def test_independent_resources_provision_in_parallel_dependents_wait(local_arm: LocalArm) -> None:
    local_arm.admin.configure(provisioning_seconds=1.0)
    local_arm.create_resource_group("rg-par")
    client = local_arm.deployments_client(polling_interval=0.05)
    started = time.monotonic()
    client.deployments.begin_create_or_update("rg-par", "ids", body(identities_template(4))).result()
    independent = time.monotonic() - started
    assert 1.0 <= independent < 3.0  # four at once, not 4 s one after another
    started = time.monotonic()
    client.deployments.begin_create_or_update("rg-par", "web", body(web_app_template())).result()
    chained = time.monotonic() - started
    assert chained >= 2.0  # the site waits for the plan and the storage account: two steps
    ops = list(client.deployment_operations.list("rg-par", "web"))
    assert all(o.properties.provisioning_state == "Succeeded" for o in ops)


def test_nested_deployment_into_a_missing_group_fails_with_resource_group_not_found(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-outer")
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "elsewhere",
                "resourceGroup": "rg-missing",
                "properties": {
                    "mode": "Incremental",
                    "expressionEvaluationOptions": {"scope": "inner"},
                    "template": identities_template(1),
                },
            }
        ],
    }
    client = local_arm.deployments_client()
    with pytest.raises(HttpResponseError) as exc:
        client.deployments.begin_create_or_update("rg-outer", "outer", body(template)).result()
    assert exc.value.error.code == "DeploymentFailed"
    assert exc.value.error.details[0].code == "ResourceGroupNotFound"
    local_arm.create_resource_group("rg-missing")
    result = client.deployments.begin_create_or_update("rg-outer", "outer", body(template)).result()
    assert result.properties.provisioning_state == "Succeeded"
    assert [r.name for r in local_arm.resource_client().resources.list_by_resource_group("rg-missing")] == ["id0"]


@pytest.mark.parametrize("retry_after", [0, 0.2])
def test_sub_second_retry_after_never_falls_back_to_the_sdk_default(local_arm: LocalArm, retry_after: float) -> None:
    local_arm.admin.configure(retry_after=retry_after, provisioning_seconds=0.3)
    local_arm.create_resource_group("rg-ms")
    client = local_arm.deployments_client(polling_interval=30)  # the SDK's default: 30 s between polls
    started = time.monotonic()
    result = client.deployments.begin_create_or_update("rg-ms", "ms", body(identities_template(1))).result()
    assert result.properties.provisioning_state == "Succeeded"
    assert time.monotonic() - started < 5


def test_history_keeps_the_newest_deployments_up_to_the_limit(tmp_path: Path) -> None:
    from local_arm.testing import running_local_arm

    gen = running_local_arm(tmp_path, history_limit=3)
    arm = next(gen)
    try:
        arm.create_resource_group("rg-many")
        client = arm.deployments_client()
        for i in range(5):
            client.deployments.begin_create_or_update("rg-many", f"d{i}", body(identities_template(1))).result()
        assert [d.name for d in client.deployments.list_by_resource_group("rg-many")] == ["d4", "d3", "d2"]
    finally:
        gen.close()


def test_providers_report_the_api_versions_in_use(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-prov")
    local_arm.deployments_client().deployments.begin_create_or_update(
        "rg-prov", "web", body(web_app_template())
    ).result()
    providers = local_arm.resource_client().providers
    web = providers.get("Microsoft.Web")
    assert web.registration_state == "Registered"
    assert {t.resource_type: t.api_versions for t in web.resource_types} == {
        "serverfarms": ["2022-03-01"],
        "sites": ["2022-03-01"],
    }
    assert providers.get("Microsoft.Unused").resource_types == []
    assert {p.namespace for p in providers.list()} == {"Microsoft.Storage", "Microsoft.Web"}


def test_utcnow_is_one_moment_per_deployment(local_arm: LocalArm) -> None:
    """ARM evaluates a utcNow() default once per deployment: the parameters it reports, the resources it wrote and
    its outputs carry the same value (the local ARM expands a deployment twice, for the preflight and the run)."""
    local_arm.create_resource_group("rg-time")
    client = local_arm.deployments_client()
    result = client.deployments.begin_create_or_update("rg-time", "t", body(stamped_template())).result()
    stamp = result.properties.parameters["stamp"]["value"]
    assert result.properties.outputs["stamp"]["value"] == stamp
    tags = {r.name: r.tags for r in local_arm.resource_client().resources.list_by_resource_group("rg-time")}
    assert tags["outer"]["stamp"] == stamp
    assert tags["inner"]["stamp"] == result.properties.outputs["inner"]["value"]

    # Every what-if (like every deployment) takes its own moment: the redeploy plans a Modify of exactly the
    # properties that derive from it, as ARM's what-if does.
    plan = client.deployments.begin_what_if("rg-time", "t", body(stamped_template())).result()
    modified = {
        c.resource_id.rsplit("/", 1)[-1]: [d.path for d in c.delta or []]
        for c in plan.properties.changes
        if c.change_type == "Modify"
    }
    assert modified == {"outer": ["tags.stamp"], "inner": ["tags.stamp"]}


def test_clock_offset_moves_the_moment_templates_see(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-later")
    client = local_arm.deployments_client()
    now = client.deployments.begin_create_or_update("rg-later", "a", body(stamped_template())).result()
    assert local_arm.admin.configure(clock_offset=2 * 86400)["clock_offset"] == 2 * 86400
    later = client.deployments.begin_create_or_update("rg-later", "b", body(stamped_template())).result()

    def moment(result: object) -> dt.datetime:
        return dt.datetime.fromisoformat(result.properties.parameters["stamp"]["value"])  # type: ignore[attr-defined]

    assert dt.timedelta(days=2) <= moment(later) - moment(now) < dt.timedelta(days=2, minutes=1)
    assert later.properties.timestamp - now.properties.timestamp < dt.timedelta(minutes=1)  # only utcNow() moved
    with pytest.raises(AdminError, match="clock_offset"):
        local_arm.admin.configure(clock_offset=-1)
    # the same setting in a --config file
    assert LocalArmConfig.from_dict({"clock_offset": "90"}).clock_offset == 90.0
    with pytest.raises(FaultConfigError, match="clock_offset"):
        LocalArmConfig.from_dict({"clock_offset": -5})


def test_new_guid_is_evaluated_once_per_deployment(local_arm: LocalArm) -> None:
    """Like utcNow(): the parameters a deployment reports are the values its resources got; each call its own."""
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "a": {"type": "string", "defaultValue": "[newGuid()]"},
            "b": {"type": "string", "defaultValue": "[concat(newGuid(), '/', newGuid())]"},
        },
        "resources": [
            {
                "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                "apiVersion": "2023-01-31",
                "name": "tagged",
                "location": "[resourceGroup().location]",
                "tags": {"a": "[parameters('a')]", "b": "[parameters('b')]"},
            }
        ],
    }
    local_arm.create_resource_group("rg-guid")
    client = local_arm.deployments_client()
    result = client.deployments.begin_create_or_update("rg-guid", "g", body(template)).result()
    a, b = (result.properties.parameters[k]["value"] for k in "ab")
    tags = next(iter(local_arm.resource_client().resources.list_by_resource_group("rg-guid"))).tags
    assert tags == {"a": a, "b": b}
    first, second = b.split("/")
    assert len({a, first, second}) == 3
    again = client.deployments.begin_create_or_update("rg-guid", "g2", body(template)).result()
    assert again.properties.parameters["a"]["value"] != a  # a new deployment, new values
