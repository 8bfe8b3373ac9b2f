"""Twelve corpus templates with their expansion pinned: resource ids and names, dependency order, and the outputs
that need no resource state.

The expected values are derived by reading each template, not by copying the engine's output: names follow from
the parameters file (GEN-* placeholders replaced by ``placeholder_value``, the harness's own input) or from the
defaults, with uniqueString()/guid() computed by calling the hash primitives of arm_engine.unique directly on the
inputs the template names (those primitives are checked against Azure's published vectors in test_unique.py).
Ids are built by hand with ``rid``. The order is "dependencies first, then template order" — the engine's
documented tie-break; any order that satisfies dependsOn would be valid for ARM, so the pinned order also checks
the tie-break.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from arm_engine import Deferred, ExpandedDeployment
from arm_engine.unique import arm_guid, unique_string
from harness.corpus import CORPUS_SCOPE, corpus_samples, expand_sample, placeholder_value, unique_name

SUB = CORPUS_SCOPE.subscription_id
RG = CORPUS_SCOPE.resource_group
RG_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}"
LOCATION = CORPUS_SCOPE.location


def rid(rtype: str, *names: str) -> str:
    segments = rtype.split("/")
    parts = [segments[0]]
    for t, n in zip(segments[1:], names, strict=True):
        parts += [t, n]
    return f"{RG_ID}/providers/" + "/".join(parts)


def gen_unique(folder: str, parameter: str, length: int = 18) -> str:
    """What GEN-UNIQUE(-n) in the parameter's entry of the parameters file becomes."""
    return unique_name(f"{folder}/{parameter}", length)


@pytest.fixture(scope="module")
def corpus(shared: Path) -> dict[str, object]:
    return {s.folder: s for s in corpus_samples(shared)}


def run(corpus: dict[str, object], folder: str) -> ExpandedDeployment:
    return expand_sample(corpus[folder])  # type: ignore[arg-type]


def known_outputs(result: ExpandedDeployment) -> dict[str, object]:
    return {k: o.value for k, o in result.outputs.items() if not o.deferred}


def deferred_outputs(result: ExpandedDeployment) -> set[str]:
    return {k for k, o in result.outputs.items() if o.deferred}


def test_storage_account_create(corpus: dict[str, object]) -> None:
    # storageAccountName defaults to format('store{0}', uniqueString(resourceGroup().id)); no parameters given.
    folder = "quickstarts__microsoft.storage__storage-account-create"
    name = "store" + unique_string(RG_ID)
    result = run(corpus, folder)
    sid = rid("Microsoft.Storage/storageAccounts", name)
    assert [r.id for r in result.resources] == [sid]
    assert result.resources[0].location == LOCATION
    assert result.order == [sid]
    assert known_outputs(result) == {"storageAccountName": name, "storageAccountId": sid}


def test_vm_simple_windows(corpus: dict[str, object]) -> None:
    # bootdiags{uniqueString(rg id)}, fixed names for the rest; dnsLabelPrefix comes from the file (GEN-UNIQUE);
    # the GuestAttestation extension's condition holds (securityType TrustedLaunch, both uefi flags true).
    folder = "quickstarts__microsoft.compute__vm-simple-windows"
    result = run(corpus, folder)
    storage = rid("Microsoft.Storage/storageAccounts", "bootdiags" + unique_string(RG_ID))
    pip = rid("Microsoft.Network/publicIPAddresses", "myPublicIP")
    nsg = rid("Microsoft.Network/networkSecurityGroups", "default-NSG")
    vnet = rid("Microsoft.Network/virtualNetworks", "MyVNET")
    nic = rid("Microsoft.Network/networkInterfaces", "myVMNic")
    vm = rid("Microsoft.Compute/virtualMachines", "simple-vm")
    ext = rid("Microsoft.Compute/virtualMachines/extensions", "simple-vm", "GuestAttestation")
    assert [r.id for r in result.resources] == [storage, pip, nsg, vnet, nic, vm, ext]
    deps = {r.id: r.depends_on for r in result.resources}
    assert deps[vnet] == [nsg] and deps[nic] == [pip, vnet] and deps[vm] == [storage, nic] and deps[ext] == [vm]
    assert result.order == [storage, pip, nsg, vnet, nic, vm, ext]
    label = result.resource(pip).properties["dnsSettings"]["domainNameLabel"]  # type: ignore[union-attr]
    assert label == gen_unique(folder, "dnsLabelPrefix")
    assert deferred_outputs(result) == {"hostname"}  # reference() of the public IP: known after deployment
    password = placeholder_value(folder, "GEN-PASSWORD", "adminPassword")
    assert result.parameters["adminPassword"].value == password and result.parameters["adminPassword"].secure


def test_key_vault_create(corpus: dict[str, object]) -> None:
    folder = "quickstarts__microsoft.keyvault__key-vault-create"
    result = run(corpus, folder)
    vault, secret = gen_unique(folder, "keyVaultName"), gen_unique(folder, "secretName")
    vid = rid("Microsoft.KeyVault/vaults", vault)
    sid = rid("Microsoft.KeyVault/vaults/secrets", vault, secret)
    assert [r.id for r in result.resources] == [vid, sid]
    assert [r.name for r in result.resources] == [vault, f"{vault}/{secret}"]
    assert result.order == [vid, sid]
    assert result.resources[0].properties["tenantId"] == CORPUS_SCOPE.tenant_id  # default subscription().tenantId
    assert known_outputs(result) == {"location": LOCATION, "name": vault, "resourceGroupName": RG, "resourceId": vid}


def test_servicebus_create_queue(corpus: dict[str, object]) -> None:
    folder = "quickstarts__microsoft.servicebus__servicebus-create-queue"
    result = run(corpus, folder)
    ns, queue = gen_unique(folder, "serviceBusNamespaceName"), gen_unique(folder, "serviceBusQueueName")
    expected = [rid("Microsoft.ServiceBus/namespaces", ns), rid("Microsoft.ServiceBus/namespaces/queues", ns, queue)]
    assert [r.id for r in result.resources] == expected and result.order == expected
    assert result.resources[1].depends_on == expected[:1]


def test_storage_multi_blob_container(corpus: dict[str, object]) -> None:
    # a copy loop over range(0, numberOfContainers) with numberOfContainers = 3 from the file
    folder = "quickstarts__microsoft.storage__storage-multi-blob-container"
    result = run(corpus, folder)
    account, prefix = gen_unique(folder, "storageAccountName"), gen_unique(folder, "containerPrefix")
    account_id = rid("Microsoft.Storage/storageAccounts", account)
    blob = rid("Microsoft.Storage/storageAccounts/blobServices", account, "default")
    containers = [
        rid("Microsoft.Storage/storageAccounts/blobServices/containers", account, "default", f"{prefix}{i}")
        for i in range(3)
    ]
    assert [r.id for r in result.resources] == [account_id, blob, *containers]
    assert [r.copy.index for r in result.resources[2:]] == [0, 1, 2]  # type: ignore[union-attr]
    assert all(r.depends_on == [blob] for r in result.resources[2:])
    assert result.order == [account_id, blob, *containers]


def test_aci_linuxcontainer_public_ip_symbolic(corpus: dict[str, object]) -> None:
    # languageVersion 2.0; the parameters file sets name and image to their defaults; zone is null → zones null
    folder = "quickstarts__microsoft.containerinstance__aci-linuxcontainer-public-ip"
    result = run(corpus, folder)
    cid = rid("Microsoft.ContainerInstance/containerGroups", "acilinuxpublicipcontainergroup")
    (group,) = result.resources
    assert (group.id, group.symbolic_name) == (cid, "containerGroup")
    assert group.body["zones"] is None
    assert group.properties["containers"][0]["properties"]["resources"]["requests"] == {"cpu": 1, "memoryInGB": 2}
    assert known_outputs(result) == {
        "name": "acilinuxpublicipcontainergroup",
        "resourceGroupName": RG,
        "resourceId": cid,
        "location": LOCATION,
    }
    assert deferred_outputs(result) == {"containerIPv4Address"}
    assert isinstance(result.outputs["containerIPv4Address"].value, Deferred)


def test_rbac_builtinrole_resourcegroup_guid_name(corpus: dict[str, object]) -> None:
    # name = guid(principalId, roleDefinitionID, resourceGroup().id)
    folder = "quickstarts__microsoft.authorization__rbac-builtinrole-resourcegroup"
    result = run(corpus, folder)
    principal = placeholder_value(folder, "GEN-AZUREAD-OBJECTID", "principalId")
    name = arm_guid(principal, "acdd72a7-3385-48ef-bd42-f606fba81ae7", RG_ID)
    aid = rid("Microsoft.Authorization/roleAssignments", name)
    assert [r.id for r in result.resources] == [aid] and result.order == [aid]
    assert known_outputs(result) == {"name": name, "resourceGroupName": RG, "resourceId": aid}


def test_two_vms_internal_load_balancer(corpus: dict[str, object]) -> None:
    # storage named uniqueString(rg id); two copy loops (nic0/nic1, BackendVM0/BackendVM1) over range(0, 2)
    folder = "quickstarts__microsoft.compute__2-vms-internal-load-balancer"
    result = run(corpus, folder)
    storage = rid("Microsoft.Storage/storageAccounts", unique_string(RG_ID))
    avset = rid("Microsoft.Compute/availabilitySets", "AvSet")
    vnet = rid("Microsoft.Network/virtualNetworks", "vNet")
    nics = [rid("Microsoft.Network/networkInterfaces", f"nic{i}") for i in range(2)]
    lb = rid("Microsoft.Network/loadBalancers", "ilb")
    vms = [rid("Microsoft.Compute/virtualMachines", f"BackendVM{i}") for i in range(2)]
    assert [r.id for r in result.resources] == [storage, avset, vnet, *nics, lb, *vms]
    deps = {r.id: r.depends_on for r in result.resources}
    assert deps[nics[0]] == [vnet, lb] and deps[lb] == [vnet]
    assert deps[vms[1]] == [storage, avset, nics[1]]
    # nic0/nic1 wait for the load balancer, which waits for the vnet
    assert result.order == [storage, avset, vnet, lb, *nics, *vms]
    assert known_outputs(result) == {"location": LOCATION, "name": "ilb", "resourceGroupName": RG, "resourceId": lb}


def test_event_hubs_three_level_children(corpus: dict[str, object]) -> None:
    folder = "quickstarts__microsoft.eventhub__event-hubs-create-event-hub-and-consumer-group"
    result = run(corpus, folder)
    ns = gen_unique(folder, "namespaceName")
    hub = gen_unique(folder, "eventHubName", 15)
    group = gen_unique(folder, "consumerGroupName")
    expected = [
        rid("Microsoft.EventHub/namespaces", ns),
        rid("Microsoft.EventHub/namespaces/eventhubs", ns, hub),
        rid("Microsoft.EventHub/namespaces/eventhubs/consumergroups", ns, hub, group),
    ]
    assert [r.id for r in result.resources] == expected and result.order == expected
    assert result.resources[2].name == f"{ns}/{hub}/{group}"


def test_cosmosdb_free(corpus: dict[str, object]) -> None:
    # accountName from the file (GEN-UNIQUE), lower-cased by the template
    folder = "quickstarts__microsoft.documentdb__cosmosdb-free"
    result = run(corpus, folder)
    account = gen_unique(folder, "accountName").lower()
    expected = [
        rid("Microsoft.DocumentDB/databaseAccounts", account),
        rid("Microsoft.DocumentDB/databaseAccounts/sqlDatabases", account, "database1"),
        rid("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers", account, "database1", "container1"),
    ]
    assert [r.id for r in result.resources] == expected and result.order == expected
    assert known_outputs(result) == {
        "location": LOCATION,
        "name": "container1",
        "resourceGroupName": RG,
        "resourceId": expected[2],
    }


def test_key_vault_managed_identity_role_assignment_module(corpus: dict[str, object]) -> None:
    # a Bicep module (inner-scope nested deployment) with an extension resource scoped to the vault; the role
    # assignment's name is guid(vault id, reference(identity).principalId, ...): known only after deployment.
    folder = "quickstarts__microsoft.keyvault__key-vault-managed-identity-role-assignment"
    result = run(corpus, folder)
    vault = rid("Microsoft.KeyVault/vaults", "kv" + unique_string(RG_ID))
    identity = rid("Microsoft.ManagedIdentity/userAssignedIdentities", "my-managed-identity")
    deployment = rid("Microsoft.Resources/deployments", "role-assignment")
    by_type = {r.type: r for r in result.resources}
    assignment = by_type["Microsoft.Authorization/roleAssignments"]
    assert assignment.id.startswith(f"{vault}/providers/Microsoft.Authorization/roleAssignments/")
    assert assignment.deployment_path == ["role-assignment"]
    assert assignment.properties["roleDefinitionId"] == (
        f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/00482a5a-887f-4fb3-b363-3b7fe8e74483"
    )
    assert isinstance(assignment.properties["principalId"], Deferred)
    assert by_type["Microsoft.Resources/deployments"].depends_on == [vault, identity]
    assert result.order == [vault, identity, assignment.id, deployment]


def test_devbox_with_customized_image_module_outputs(corpus: dict[str, object]) -> None:
    # suffix defaults to 'default' (the file sets only userPrincipalId, userPrincipalType and location), so the
    # variables give devcenter-default, project-default, connection-default, vnet-devcenter-default and the
    # identity user-identitiy-default (sic). The module outputs are their own parameters: known offline.
    folder = "quickstarts__microsoft.devcenter__devbox-with-customized-image"
    result = run(corpus, folder)
    identity = rid("Microsoft.ManagedIdentity/userAssignedIdentities", "user-identitiy-default")
    vnet_dep, gallery_dep, devcenter_dep = (
        rid("Microsoft.Resources/deployments", n) for n in ("vnet", "gallery", "devcenter")
    )
    assert result.resources[0].id == identity
    outputs = known_outputs(result)
    assert {
        k: outputs[k] for k in ("devcetnerName", "projectName", "networkConnectionName", "vnetName", "subnetName")
    } == {
        "devcetnerName": "devcenter-default",
        "projectName": "project-default",
        "networkConnectionName": "connection-default",
        "vnetName": "vnet-devcenter-default",
        "subnetName": "default",
    }
    vnet = rid("Microsoft.Network/virtualNetworks", "vnet-devcenter-default")
    assert result.resource(vnet) is not None and result.resource(vnet).deployment_path == ["vnet"]  # type: ignore[union-attr]
    devcenter = rid("Microsoft.DevCenter/devcenters", "devcenter-default")
    position = {rid_: n for n, rid_ in enumerate(result.order)}
    # a module completes after its resources; devcenter's resources wait for both modules it depends on
    assert position[vnet] < position[vnet_dep] < position[devcenter] < position[devcenter_dep]
    assert position[gallery_dep] < position[devcenter]
