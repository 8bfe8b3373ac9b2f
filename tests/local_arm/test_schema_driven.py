"""The local ARM's behaviour derived from Azure's type schemas (local_arm/schema_values.py), through the SDK:
computed read-only properties for reference(), list*() answers shaped by the function's schema, what-if ignoring
read-only and write-only properties; and two protocol details a second real client (the JavaScript SDK) relies on:
Retry-After alongside retry-after-ms, and one correlation id per operation."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_arm.testing import LocalArm, running_local_arm
from tests.support.arm_templates import body
from tests.support.rawhttp import call

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


def template(resources: list[dict[str, Any]], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "resources": resources, "outputs": outputs or {}}


def deploy(arm: LocalArm, rg: str, doc: dict[str, Any], name: str = "d") -> Any:
    arm.create_resource_group(rg)
    return arm.deployments_client().deployments.begin_create_or_update(rg, name, body(doc)).result()


def test_reference_reads_read_only_properties_only_the_schema_knows(local_arm: LocalArm) -> None:
    # Types and properties no hand-written table covers: Microsoft.Maps accounts' uniqueId, a Purview account's
    # endpoints, an Automation account's registration URL. reference() resolves them as on Azure, short and 'Full'.
    doc = template(
        [
            {
                "type": "Microsoft.Maps/accounts",
                "apiVersion": "2023-06-01",
                "name": "maps1",
                "location": "global",
                "sku": {"name": "G2"},
                "kind": "Gen2",
                "properties": {},
            },
            {
                "type": "Microsoft.Purview/accounts",
                "apiVersion": "2021-12-01",
                "name": "purview1",
                "location": "westeurope",
                "identity": {"type": "SystemAssigned"},
                "properties": {},
            },
        ],
        {
            "mapsId": {"type": "string", "value": "[reference('maps1').uniqueId]"},
            "mapsFull": {
                "type": "string",
                "value": "[reference(resourceId('Microsoft.Maps/accounts', 'maps1'), '2023-06-01', 'Full')"
                ".properties.uniqueId]",
            },
            "catalog": {"type": "string", "value": "[reference('purview1').endpoints.catalog]"},
            "friendly": {"type": "string", "value": "[reference('purview1').friendlyName]"},
        },
    )
    result = deploy(local_arm, "rg-computed", doc)
    outputs = {k: v["value"] for k, v in result.properties.outputs.items()}
    uuid.UUID(outputs["mapsId"])  # the schema's pattern asks for a GUID
    assert outputs["mapsFull"] == outputs["mapsId"]
    assert outputs["catalog"].startswith("https://purview1.")
    assert outputs["friendly"] == "purview1"
    # Deterministic: the same resource id gives the same values on a redeploy.
    again = local_arm.deployments_client().deployments.begin_create_or_update("rg-computed", "d2", body(doc)).result()
    assert {k: v["value"] for k, v in again.properties.outputs.items()} == outputs


def test_nearest_api_version_is_used_and_logged(local_arm: LocalArm, caplog: pytest.LogCaptureFixture) -> None:
    doc = template(
        [
            {
                "type": "Microsoft.Maps/accounts",
                "apiVersion": "2023-06-02",  # not a version the schema has
                "name": "maps2",
                "location": "global",
                "sku": {"name": "G2"},
                "properties": {},
            }
        ],
        {"mapsId": {"type": "string", "value": "[reference('maps2').uniqueId]"}},
    )
    with caplog.at_level(logging.INFO, logger="local_arm"):
        result = deploy(local_arm, "rg-nearest", doc)
    uuid.UUID(result.properties.outputs["mapsId"]["value"])
    assert any(
        "Microsoft.Maps/accounts has no api-version 2023-06-02" in r.getMessage()
        and "using the nearest, 2023-06-01" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


def test_list_functions_answer_in_the_schema_shape_and_stay_out_of_plans(local_arm: LocalArm) -> None:
    hostpool = {
        "type": "Microsoft.DesktopVirtualization/hostPools",
        "apiVersion": "2024-04-03",
        "name": "hp1",
        "location": "westeurope",
        "properties": {
            "hostPoolType": "Pooled",
            "loadBalancerType": "BreadthFirst",
            "preferredAppGroupType": "Desktop",
        },
    }
    storage = {
        "type": "Microsoft.Storage/storageAccounts",
        "apiVersion": "2023-05-01",
        "name": "stlist1",
        "location": "westeurope",
        "sku": {"name": "Standard_LRS"},
        "kind": "StorageV2",
        "properties": {},
    }
    first = deploy(local_arm, "rg-list", template([hostpool, storage]))
    assert first.properties.provisioning_state == "Succeeded"
    reader = template(
        [
            {
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-05-01",
                "name": "stlist1",
                "location": "westeurope",
                "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
                "tags": {
                    "keyHash": "[uniqueString(listKeys(resourceId('Microsoft.Storage/storageAccounts', 'stlist1'), "
                    "'2023-05-01').keys[1].value)]"
                },
                "properties": {},
            }
        ],
        {
            "token": {
                "type": "securestring",
                "value": "[listRegistrationTokens(resourceId('Microsoft.DesktopVirtualization/hostPools', 'hp1'), "
                "'2024-04-03').value[0].token]",
            },
            "keyName": {
                "type": "string",
                "value": "[listKeys(resourceId('Microsoft.Storage/storageAccounts', 'stlist1'), '2023-05-01')"
                ".keys[0].keyName]",
            },
            "permissions": {
                "type": "string",
                "value": "[listKeys(resourceId('Microsoft.Storage/storageAccounts', 'stlist1'), '2023-05-01')"
                ".keys[0].permissions]",
            },
        },
    )
    client = local_arm.deployments_client()
    plan = client.deployments.begin_what_if("rg-list", "r", body(reader)).result()
    [change] = [c for c in plan.properties.changes if c.change_type != "Ignore"]  # the host pool: not declared
    # A key never enters a plan: the list*() value is shown as its expression.
    assert change.after["tags"]["keyHash"].startswith("[uniqueString(listKeys(")
    result = client.deployments.begin_create_or_update("rg-list", "r", body(reader)).result()
    outputs = result.properties.outputs
    assert outputs["keyName"]["value"] == "key1"
    assert outputs["permissions"]["value"] in ("Read", "Full")  # the schema's closed enum
    assert "value" not in outputs["token"]  # a securestring output is never returned, as in ARM
    stored = local_arm.resource_client().resources.get_by_id(
        f"/subscriptions/{local_arm.subscription_id}/resourceGroups/rg-list/providers/Microsoft.Storage/"
        "storageAccounts/stlist1",
        api_version="2023-05-01",
    )
    key_hash = stored.tags["keyHash"]
    again = client.deployments.begin_create_or_update("rg-list", "r2", body(reader)).result()
    assert again.properties.provisioning_state == "Succeeded"
    stored = local_arm.resource_client().resources.get_by_id(stored.id, api_version="2023-05-01")
    assert stored.tags["keyHash"] == key_hash  # deterministic per resource


def test_what_if_ignores_read_only_and_write_only_properties_from_the_schema(local_arm: LocalArm) -> None:
    def vm_template(password: str, computed: str) -> dict[str, Any]:
        return template(
            [
                {
                    "type": "Microsoft.Storage/storageAccounts",
                    "apiVersion": "2023-05-01",
                    "name": "stwhatif1",
                    "location": "westeurope",
                    "sku": {"name": "Standard_LRS", "tier": computed},  # sku.tier: read-only
                    "kind": "StorageV2",
                    "properties": {"creationTime": computed},  # read-only
                },
                {
                    "type": "Microsoft.Sql/servers",
                    "apiVersion": "2023-08-01",
                    "name": "sqlwhatif1",
                    "location": "westeurope",
                    # write-only per the schema (never returned by GET, so what-if cannot compare it)
                    "properties": {"administratorLogin": "admin1", "administratorLoginPassword": password},
                },
            ]
        )

    deploy(local_arm, "rg-whatif", vm_template("first-Passw0rd!", "Standard"))
    plan = (
        local_arm.deployments_client()
        .deployments.begin_what_if("rg-whatif", "d", body(vm_template("second-Passw0rd!", "Premium")))
        .result()
    )
    assert [c.change_type for c in plan.properties.changes] == ["NoChange", "NoChange"]


@pytest.fixture
def arm_as_deployed(tmp_path: Path) -> Iterator[LocalArm]:
    """The server as shipped (Retry-After always sent), with a sub-second poll delay."""
    gen = running_local_arm(tmp_path, retry_after=0.2, retry_after_ms_only=False, provisioning_seconds=1.0)
    arm = next(gen)
    try:
        yield arm
    finally:
        gen.close()


def test_sub_second_poll_delay_sends_retry_after_too(arm_as_deployed: LocalArm) -> None:
    arm = arm_as_deployed
    arm.create_resource_group("rg-ra")
    path = f"/subscriptions/{arm.subscription_id}/resourcegroups/rg-ra/providers/Microsoft.Resources/deployments/ra"
    doc = template([{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
                     "name": "id1", "location": "westeurope"}])  # fmt: skip
    resp = call(arm.endpoint, arm.ca_file, "PUT", path + "?api-version=2026-06-01", body(doc))
    assert resp.status == 201
    # JavaScript's poller reads only Retry-After; azure-core reads Retry-After (an integer) first.
    assert (resp.headers["retry-after"], resp.headers["retry-after-ms"]) == ("1", "200")
    status = call(arm.endpoint, arm.ca_file, "GET", resp.headers["azure-asyncoperation"].removeprefix(arm.endpoint))
    assert status.body == {"status": "Running"}
    assert (status.headers["retry-after"], status.headers["retry-after-ms"]) == ("1", "200")
    # The Python SDK still finishes (it waits the whole second, never its 30 s default).
    started = time.monotonic()
    result = (
        arm.deployments_client(polling_interval=30).deployments.begin_create_or_update("rg-ra", "ra2", body(doc))
    ).result()
    assert result.properties.provisioning_state == "Succeeded"
    assert time.monotonic() - started < 10


def test_one_operation_keeps_one_correlation_id(local_arm: LocalArm) -> None:
    local_arm.admin.configure(provisioning_seconds=1.0)
    local_arm.create_resource_group("rg-corr")
    base = (
        f"/subscriptions/{local_arm.subscription_id}/resourcegroups/rg-corr/providers/Microsoft.Resources/deployments"
    )
    doc = template([{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
                     "name": "id1", "location": "westeurope"}])  # fmt: skip
    # The client's correlation id is echoed on the PUT, on every poll (sent without it) and in the deployment.
    mine = str(uuid.uuid4())
    put = call(local_arm.endpoint, local_arm.ca_file, "PUT", f"{base}/c1?api-version=2026-06-01", body(doc),
               headers={"x-ms-correlation-request-id": mine})  # fmt: skip
    assert put.headers["x-ms-correlation-request-id"] == mine
    monitor = put.headers["azure-asyncoperation"].removeprefix(local_arm.endpoint)
    poll = call(local_arm.endpoint, local_arm.ca_file, "GET", monitor)
    assert poll.headers["x-ms-correlation-request-id"] == mine
    assert poll.headers["x-ms-request-id"] != put.headers["x-ms-request-id"]  # request ids stay per request
    got = call(local_arm.endpoint, local_arm.ca_file, "GET", f"{base}/c1?api-version=2026-06-01")
    assert got.body["properties"]["correlationId"] == mine
    # Without one, the operation's own id is the same on the PUT, the polls and the deployment.
    put = call(local_arm.endpoint, local_arm.ca_file, "PUT", f"{base}/c2?api-version=2026-06-01", body(doc))
    theirs = put.headers["x-ms-correlation-request-id"]
    monitor = put.headers["azure-asyncoperation"].removeprefix(local_arm.endpoint)
    assert call(local_arm.endpoint, local_arm.ca_file, "GET", monitor).headers["x-ms-correlation-request-id"] == theirs
    got = call(local_arm.endpoint, local_arm.ca_file, "GET", f"{base}/c2?api-version=2026-06-01")
    assert got.body["properties"]["correlationId"] == theirs
    # What-if: the 202 and its monitor share one too.
    plan = call(local_arm.endpoint, local_arm.ca_file, "POST", f"{base}/c3/whatIf?api-version=2026-06-01", body(doc))
    assert plan.status == 202
    result = call(
        local_arm.endpoint, local_arm.ca_file, "GET", plan.headers["location"].removeprefix(local_arm.endpoint)
    )
    assert result.headers["x-ms-correlation-request-id"] == plan.headers["x-ms-correlation-request-id"]


def test_what_if_reports_types_without_a_get_as_unsupported(local_arm: LocalArm) -> None:
    # Key Vault accessPolicies has no GET (readableScopes 0 in the schema): what-if cannot compare it.
    doc = template(
        [
            {
                "type": "Microsoft.KeyVault/vaults",
                "apiVersion": "2023-07-01",
                "name": "kvunsupported1",
                "location": "westeurope",
                "properties": {
                    "tenantId": str(uuid.UUID(int=0)),
                    "sku": {"family": "A", "name": "standard"},
                    "accessPolicies": [],
                },
            },
            {
                "type": "Microsoft.KeyVault/vaults/accessPolicies",
                "apiVersion": "2023-07-01",
                "name": "kvunsupported1/add",
                "dependsOn": ["[resourceId('Microsoft.KeyVault/vaults', 'kvunsupported1')]"],
                "properties": {
                    "accessPolicies": [
                        {
                            "tenantId": str(uuid.UUID(int=0)),
                            "objectId": str(uuid.UUID(int=1)),
                            "permissions": {"secrets": ["get"]},
                        }
                    ]
                },
            },
        ]
    )
    deploy(local_arm, "rg-unsupported", doc)
    plan = local_arm.deployments_client().deployments.begin_what_if("rg-unsupported", "d", body(doc)).result()
    kinds = {c.resource_id.rsplit("/", 2)[-2]: c.change_type for c in plan.properties.changes}
    assert kinds == {"vaults": "NoChange", "accessPolicies": "Unsupported"}
    [unsupported] = [c for c in plan.properties.changes if c.change_type == "Unsupported"]
    assert "cannot be read" in unsupported.unsupported_reason


def test_resource_group_ids_compare_in_canonical_form(local_arm: LocalArm) -> None:
    def tagged(expression: str) -> dict[str, Any]:
        return template([{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
                          "name": "idcanon", "location": "westeurope", "tags": {"group": expression}}])  # fmt: skip

    deploy(local_arm, "rg-canon", tagged("[subscriptionResourceId('Microsoft.Resources/resourceGroups', 'Other')]"))
    same = tagged("[format('{0}/resourceGroups/other', subscription().id)]")  # the id a provider returns
    plan = local_arm.deployments_client().deployments.begin_what_if("rg-canon", "d", body(same)).result()
    assert [c.change_type for c in plan.properties.changes] == ["NoChange"]
    other = tagged("[format('{0}/resourceGroups/another', subscription().id)]")
    plan = local_arm.deployments_client().deployments.begin_what_if("rg-canon", "d", body(other)).result()
    assert [c.change_type for c in plan.properties.changes] == ["Modify"]


def test_api_management_reports_its_default_gateway_host_name(local_arm: LocalArm) -> None:
    doc = template(
        [
            {
                "type": "Microsoft.ApiManagement/service",
                "apiVersion": "2023-05-01-preview",
                "name": "apimhosts1",
                "location": "westeurope",
                "sku": {"name": "Developer", "capacity": 1},
                "properties": {"publisherEmail": "a@example.com", "publisherName": "a"},
            }
        ],
        {"host": {"type": "string", "value": "[reference('apimhosts1').hostnameConfigurations[0].hostName]"}},
    )
    result = deploy(local_arm, "rg-apim", doc)
    assert result.properties.outputs["host"]["value"] == "apimhosts1.azure-api.net"


def test_templates_can_index_into_computed_arrays(local_arm: LocalArm) -> None:
    # customDnsConfigs: writable in the schema, filled by the service (hand-written); validationProperties: read-only
    # in the schema; instanceView.statuses[0]: a read-only array of values, one typed element.
    pe = {
        "type": "Microsoft.Network/privateEndpoints",
        "apiVersion": "2023-09-01",
        "name": "pe1",
        "location": "westeurope",
        "properties": {
            "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'default')]"},
            "privateLinkServiceConnections": [
                {
                    "name": "c",
                    "properties": {
                        "privateLinkServiceId": "[resourceId('Microsoft.Storage/storageAccounts', 'stpe1')]",
                        "groupIds": ["blob"],
                    },
                }
            ],
        },
    }
    domain = {
        "type": "Microsoft.Cdn/profiles/customDomains",
        "apiVersion": "2023-05-01",
        "name": "afd1/www",
        "properties": {"hostName": "www.example.com", "tlsSettings": {"certificateType": "ManagedCertificate"}},
    }
    doc = template(
        [pe, domain],
        {
            "ip": {"type": "string", "value": "[reference('pe1').customDnsConfigs[0].ipAddresses[0]]"},
            "fqdn": {"type": "string", "value": "[reference('pe1').customDnsConfigs[0].fqdn]"},
            "token": {
                "type": "string",
                "value": "[reference(resourceId('Microsoft.Cdn/profiles/customDomains', 'afd1', 'www'))"
                ".validationProperties.validationToken]",
            },
        },
    )
    outputs = {k: v["value"] for k, v in deploy(local_arm, "rg-index", doc).properties.outputs.items()}
    assert outputs["ip"].startswith("10.") and outputs["fqdn"] == "stpe1.privatelink.blob.azure.net"
    assert len(outputs["token"]) >= 16


def test_a_read_only_properties_object_is_filled_whole(local_arm: LocalArm) -> None:
    # DNSSEC configs: the schema marks the whole `properties` read-only; the template writes none of it.
    doc = template(
        [
            {
                "type": "Microsoft.Network/dnsZones",
                "apiVersion": "2023-07-01-preview",
                "name": "contoso.example",
                "location": "global",
            },
            {
                "type": "Microsoft.Network/dnsZones/dnssecConfigs",
                "apiVersion": "2023-07-01-preview",
                "name": "contoso.example/default",
                "dependsOn": ["[resourceId('Microsoft.Network/dnsZones', 'contoso.example')]"],
            },
        ],
        {
            "key": {
                "type": "string",
                "value": "[reference(resourceId('Microsoft.Network/dnsZones/dnssecConfigs', 'contoso.example', "
                "'default'), '2023-07-01-preview').signingKeys[0].publicKey]",
            }
        },
    )
    assert len(deploy(local_arm, "rg-dnssec", doc).properties.outputs["key"]["value"]) >= 16


def test_list_callback_url_is_url_shaped(local_arm: LocalArm) -> None:
    doc = template(
        [{"type": "Microsoft.Logic/workflows", "apiVersion": "2019-05-01", "name": "wf1", "location": "westeurope",
          "properties": {"definition": {"$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/"
                                        "schemas/2016-06-01/workflowdefinition.json#", "contentVersion": "1.0.0.0",
                                        "triggers": {"manual": {"type": "Request", "kind": "Http"}}, "actions": {}}}}],
        {"url": {"type": "string", "value": "[listCallbackUrl(resourceId('Microsoft.Logic/workflows/triggers', 'wf1', "
                 "'manual'), '2019-05-01').value]"}},
    )  # fmt: skip
    url = deploy(local_arm, "rg-callback", doc).properties.outputs["url"]["value"]
    assert url.startswith("https://wf1.") and "sig=" in url


def test_assigned_identities_report_the_identity_resources_ids(local_arm: LocalArm) -> None:
    uid = "[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'id-app')]"
    doc = template(
        [
            {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "id-app",
             "location": "westeurope"},
            {"type": "Microsoft.Web/sites", "apiVersion": "2022-09-01", "name": "app-identity",
             "location": "westeurope", "dependsOn": [uid],
             "identity": {"type": "UserAssigned", "userAssignedIdentities": {uid: {}}}, "properties": {}},
        ],
        {
            "fromApp": {"type": "string", "value": "[reference(resourceId('Microsoft.Web/sites', 'app-identity'), "
                        "'2022-09-01', 'Full').identity.userAssignedIdentities[resourceId("
                        "'Microsoft.ManagedIdentity/userAssignedIdentities', 'id-app')].principalId]"},
            "own": {"type": "string", "value": "[reference('id-app').principalId]"},
        },
    )  # fmt: skip
    outputs = deploy(local_arm, "rg-uai", doc).properties.outputs
    assert outputs["fromApp"]["value"] == outputs["own"]["value"]


def test_function_keys_have_their_default_entry(local_arm: LocalArm) -> None:
    keys = "listKeys(resourceId('Microsoft.Web/sites/host', 'fa1', 'default'), '2022-03-01')"
    doc = template(
        [],
        {
            "function": {"type": "string", "value": f"[{keys}.functionKeys.default]"},
            "master": {"type": "string", "value": f"[{keys}.masterKey]"},
        },
    )
    outputs = deploy(local_arm, "rg-fnkeys", doc).properties.outputs
    assert len(outputs["function"]["value"]) >= 40 and outputs["function"]["value"] != outputs["master"]["value"]
