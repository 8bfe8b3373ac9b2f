"""Resource Health and the health fault knobs, driven through the real SDK clients (azure-mgmt-resourcehealth,
azure-mgmt-resource)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from local_arm.admin import AdminError, Fault
from local_arm.credential import LocalArmCredential
from local_arm.testing import LocalArm
from tests.support.arm_templates import body, identities_template, web_app_template
from tests.support.rawhttp import call

RG = "rg-health"


@pytest.fixture
def deployed(local_arm: LocalArm) -> dict[str, str]:
    """The web app template and two identities deployed; type → resource id."""
    local_arm.create_resource_group(RG)
    client = local_arm.deployments_client()
    client.deployments.begin_create_or_update(RG, "web", body(web_app_template())).result()
    client.deployments.begin_create_or_update(RG, "ids", body(identities_template(2))).result()
    ids = {r.type: r.id for r in local_arm.resource_client().resources.list_by_resource_group(RG)}
    return {k.lower(): v for k, v in ids.items()}


@pytest.fixture
def health_client(local_arm: LocalArm) -> Iterator[Any]:
    from azure.mgmt.resourcehealth import ResourceHealthMgmtClient

    client = ResourceHealthMgmtClient(LocalArmCredential(), local_arm.subscription_id, **local_arm.client_kwargs())
    try:
        yield client
    finally:
        client.close()


def _state(health_client: Any, resource_id: str) -> str:
    status = health_client.availability_statuses.get_by_resource(resource_id)
    state = status.properties.availability_state
    return str(getattr(state, "value", state))  # the SDK gives an AvailabilityStateValues member


def test_deployed_resource_is_available_in_the_sdk_model(deployed: dict[str, str], health_client: Any) -> None:
    site = deployed["microsoft.web/sites"]
    status = health_client.availability_statuses.get_by_resource(site)
    assert status.name == "current"
    assert status.type == "Microsoft.ResourceHealth/AvailabilityStatuses"
    assert status.id.lower() == f"{site}/providers/Microsoft.ResourceHealth/availabilityStatuses/current".lower()
    assert status.location == "eastus"
    assert status.properties.availability_state == "Available"
    assert status.properties.summary
    assert status.properties.reported_time is not None  # a datetime, deserialized by the SDK


def test_unsupported_type_and_missing_resource(
    local_arm: LocalArm, deployed: dict[str, str], health_client: Any
) -> None:
    identity = deployed["microsoft.managedidentity/userassignedidentities"]
    with pytest.raises(HttpResponseError) as err:
        health_client.availability_statuses.get_by_resource(identity)
    assert err.value.status_code == 422
    assert err.value.error is not None and err.value.error.code == "UnsupportedResourceType"
    missing = deployed["microsoft.web/sites"] + "-gone"
    with pytest.raises(ResourceNotFoundError):
        health_client.availability_statuses.get_by_resource(missing)
    counters = local_arm.admin.counters()
    assert counters.count(operation="AvailabilityStatuses_GetByResource", status=422) == 1
    assert counters.count(operation="AvailabilityStatuses_GetByResource", status=404) == 1


def test_unavailable_for_n_reads(local_arm: LocalArm, deployed: dict[str, str], health_client: Any) -> None:
    site = deployed["microsoft.web/sites"]
    storage = deployed["microsoft.storage/storageaccounts"]
    local_arm.admin.add_faults(Fault.unavailable(resource_type="Microsoft.Web/sites", count=2))
    assert [_state(health_client, site) for _ in range(3)] == ["Unavailable", "Unavailable", "Available"]
    assert _state(health_client, storage) == "Available"  # the filter names the site only


def test_degraded_for_n_seconds(local_arm: LocalArm, deployed: dict[str, str], health_client: Any) -> None:
    storage = deployed["microsoft.storage/storageaccounts"]
    local_arm.admin.add_faults(Fault.degraded(resource_type="Microsoft.Storage/storageAccounts", duration=0.6))
    assert _state(health_client, storage) == "Degraded"
    assert _state(health_client, storage) == "Degraded"  # no count: every read within the duration
    time.sleep(0.7)
    assert _state(health_client, storage) == "Available"


def test_a_fault_makes_an_unsupported_type_answer(deployed: dict[str, str], local_arm: LocalArm) -> None:
    from azure.mgmt.resourcehealth import ResourceHealthMgmtClient

    identity = deployed["microsoft.managedidentity/userassignedidentities"]
    local_arm.admin.add_faults(Fault.availability("Unknown", resource_name=identity.rsplit("/", 1)[-1]))
    with ResourceHealthMgmtClient(
        LocalArmCredential(), local_arm.subscription_id, **local_arm.client_kwargs()
    ) as client:
        assert _state(client, identity) == "Unknown"


def test_resource_stays_updating_then_recovers(local_arm: LocalArm, deployed: dict[str, str]) -> None:
    site = deployed["microsoft.web/sites"]
    resources = local_arm.resource_client().resources
    local_arm.admin.add_faults(Fault.stays_updating(resource_name="app", count=2))
    states = [resources.get_by_id(site, api_version="2022-03-01").properties["provisioningState"] for _ in range(3)]
    assert states == ["Updating", "Updating", "Succeeded"]


def test_resource_turns_failed_until_the_rule_is_removed(local_arm: LocalArm, deployed: dict[str, str]) -> None:
    storage = deployed["microsoft.storage/storageaccounts"]
    resources = local_arm.resource_client().resources
    local_arm.admin.add_faults(Fault.turns_failed(resource_type="Microsoft.Storage/storageAccounts"))
    for _ in range(3):
        assert resources.get_by_id(storage, api_version="2023-01-01").properties["provisioningState"] == "Failed"
    faults = local_arm.admin.faults()
    assert faults["rules"][0]["fired"] == 3
    local_arm.admin.clear_faults()
    assert resources.get_by_id(storage, api_version="2023-01-01").properties["provisioningState"] == "Succeeded"
    # The fault is on reads only: the deployment itself stayed Succeeded.
    deployment = local_arm.deployments_client().deployments.get(RG, "web")
    assert deployment.properties.provisioning_state == "Succeeded"


def test_bad_health_fault_rules_are_refused(local_arm: LocalArm) -> None:
    with pytest.raises(AdminError, match="state"):
        local_arm.admin.add_faults({"kind": "availability", "state": "Sleepy"})
    with pytest.raises(AdminError, match="needs 'state'"):
        local_arm.admin.add_faults({"kind": "resource_state"})
    with pytest.raises(AdminError, match="duration"):
        local_arm.admin.add_faults(Fault.unavailable(duration=-1))


def test_raw_shape_and_api_version(local_arm: LocalArm, deployed: dict[str, str]) -> None:
    site = deployed["microsoft.web/sites"]
    path = f"{site}/providers/Microsoft.ResourceHealth/availabilityStatuses/current"
    ok = call(local_arm.endpoint, local_arm.ca_file, "GET", path + "?api-version=2025-05-01")
    assert ok.status == 200
    assert set(ok.body["properties"]) >= {"availabilityState", "summary", "reasonType", "occuredTime", "reportedTime"}
    missing = call(local_arm.endpoint, local_arm.ca_file, "GET", path)
    assert missing.status == 400 and missing.body["error"]["code"] == "MissingApiVersionParameter"
