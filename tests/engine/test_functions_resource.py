"""Resource functions: resource id rules (scopes, child types), scope objects, reference/list* passthrough,
pickZones and providers."""

from __future__ import annotations

from typing import Any

import pytest

from arm_engine.errors import IssueCode, TemplateError
from arm_engine.scope import DeploymentScope
from arm_engine.values import Deferred
from tests.support.expressions import SimpleContext

SUB = "11111111-2222-3333-4444-555555555555"
SCOPE = DeploymentScope(
    subscription_id=SUB, resource_group="MyRG", location="westeurope", resource_group_tags={"env": "test"}
)
RG = f"/subscriptions/{SUB}/resourceGroups/MyRG"


def ev(text: str, ctx: SimpleContext | None = None) -> Any:
    from tests.support.expressions import ev as evaluate

    return evaluate(text, ctx or SimpleContext(scope=SCOPE))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[resourceId('Microsoft.Storage/storageAccounts', 'st1')]",
            f"{RG}/providers/Microsoft.Storage/storageAccounts/st1",
        ),
        (
            "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'default')]",
            f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default",
        ),
        (
            "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet/default')]",
            f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default",
        ),
        (
            "[resourceId('otherRG', 'Microsoft.Storage/storageAccounts', 'st1')]",
            f"/subscriptions/{SUB}/resourceGroups/otherRG/providers/Microsoft.Storage/storageAccounts/st1",
        ),
        (
            "[resourceId('00000000-0000-0000-0000-000000000001', 'rg2', 'Microsoft.Web/sites/slots', 'app', 'stage')]",
            "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg2/providers/Microsoft.Web/sites/app/slots/stage",
        ),
        (
            "[subscriptionResourceId('Microsoft.Resources/resourceGroups', 'rg2')]",
            f"/subscriptions/{SUB}/providers/Microsoft.Resources/resourceGroups/rg2",
        ),
        (
            "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b24988ac-6180-42a0-ab88-20f7382dd24c')]",  # noqa: E501
            f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
        ),
        (
            "[subscriptionResourceId('sub2', 'Microsoft.Resources/resourceGroups', 'rg2')]",
            "/subscriptions/sub2/providers/Microsoft.Resources/resourceGroups/rg2",
        ),
        (
            "[tenantResourceId('Microsoft.Management/managementGroups', 'mg1')]",
            "/providers/Microsoft.Management/managementGroups/mg1",
        ),
        (
            "[extensionResourceId(resourceId('Microsoft.Storage/storageAccounts', 'st1'), 'Microsoft.Authorization/locks', 'lock1')]",  # noqa: E501
            f"{RG}/providers/Microsoft.Storage/storageAccounts/st1/providers/Microsoft.Authorization/locks/lock1",
        ),
        (
            "[managementGroupResourceId('mg1', 'Microsoft.Authorization/policyDefinitions', 'p1')]",
            "/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/policyDefinitions/p1",
        ),
        ("[resourceGroup().id]", RG),
        ("[resourceGroup().name]", "MyRG"),
        ("[resourceGroup().location]", "westeurope"),
        ("[resourceGroup().type]", "Microsoft.Resources/resourceGroups"),
        ("[resourceGroup().tags.env]", "test"),
        ("[resourceGroup().properties.provisioningState]", "Succeeded"),
        ("[subscription().subscriptionId]", SUB),
        ("[subscription().id]", f"/subscriptions/{SUB}"),
        ("[subscription().tenantId]", "00000000-0000-0000-0000-000000000000"),
        ("[tenant().tenantId]", "00000000-0000-0000-0000-000000000000"),
        ("[pickZones('Microsoft.Compute', 'virtualMachines', 'westus2')]", ["1"]),
        ("[pickZones('Microsoft.Compute', 'virtualMachines', 'West US 2', 3)]", ["1", "2", "3"]),
        ("[pickZones('Microsoft.Compute', 'virtualMachines', 'eastus2', 2, 1)]", ["2", "3"]),
        ("[pickZones('Microsoft.Compute', 'virtualMachines', 'northcentralus')]", []),
        ("[length(pickZones('Microsoft.Network', 'publicIPAddresses', 'westcentralus'))]", 0),
        ("[resourceInfo('st').name]", "st"),
    ],
)
def test_resource_functions(text: str, expected: Any) -> None:
    assert ev(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet')]", IssueCode.INVALID_VALUE),
        ("[resourceId('Microsoft.Storage/storageAccounts', 'a', 'b')]", IssueCode.INVALID_VALUE),
        ("[resourceId('noslash', 'name')]", IssueCode.INVALID_VALUE),
        ("[resourceId('a', 'b', 'c', 'Microsoft.Storage/storageAccounts', 'st')]", IssueCode.INVALID_VALUE),
        ("[resourceId('Microsoft.Storage/storageAccounts')]", IssueCode.WRONG_ARITY),
        ("[resourceId('Microsoft.Storage/storageAccounts', 1)]", IssueCode.TYPE_ERROR),
        ("[tenantResourceId('rg', 'Microsoft.Management/managementGroups', 'mg1')]", IssueCode.INVALID_VALUE),
        ("[reference('x', '2020-01-01', 'partial')]", IssueCode.INVALID_VALUE),
        ("[pickZones('Microsoft.Compute', 'virtualMachines', 'westus2', 0)]", IssueCode.INVALID_VALUE),
        ("[listKeys('x')]", IssueCode.WRONG_ARITY),
    ],
)
def test_resource_errors(text: str, code: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(text)
    assert info.value.first.code == code


def test_resource_id_of_deferred_name_is_deferred() -> None:
    value = ev("[resourceId('Microsoft.Storage/storageAccounts', reference('x').name)]")
    assert isinstance(value, Deferred)


def test_reference_and_list_calls_reach_the_context() -> None:
    ctx = SimpleContext(scope=SCOPE, resources={"st1": {"properties": {"primaryEndpoints": {"blob": "https://st1/"}}}})
    assert ev("[reference('st1').primaryEndpoints.blob]", ctx) == "https://st1/"
    assert ctx.calls[-1] == ("reference", ("st1", None, False))
    assert ev("[reference(resourceId('Microsoft.Storage/storageAccounts', 'st1'), '2023-01-01', 'full').x]", ctx) == (
        Deferred(
            "[reference(resourceId('Microsoft.Storage/storageAccounts', 'st1'), '2023-01-01', 'full').x]",
            "not deployed yet",
        )
    )
    assert ctx.calls[-1] == ("reference", (f"{RG}/providers/Microsoft.Storage/storageAccounts/st1", "2023-01-01", True))
    for name in ("listKeys", "listSecrets", "listConnectionStrings", "listCredentials", "list"):
        ev(f"[{name}('st1', '2023-01-01')]", ctx)
        assert ctx.calls[-1][0] == name


def test_unknown_api_version_does_not_defer_a_known_reference() -> None:
    ctx = SimpleContext(scope=SCOPE, resources={"st1": {"properties": {"name": "st1"}}})
    assert ev("[reference('st1', providers('Microsoft.Storage', 'storageAccounts').apiVersions[0]).name]", ctx) == "st1"
    assert ctx.calls[-1] == ("reference", ("st1", None, False))
    ev("[listKeys('st1', providers('Microsoft.Storage', 'storageAccounts').apiVersions[0])]", ctx)
    assert ctx.calls[-1] == ("listKeys", ("st1", None, None))
    assert isinstance(ev("[reference(reference('x').id)]", ctx), Deferred)
    assert isinstance(ev("[listAccountSas('st1', '2023-01-01', createObject('e', reference('x').id))]", ctx), Deferred)


def test_other_resource_group_location_is_deferred() -> None:
    other = ev("[resourceGroup('elsewhere')]")
    assert other["id"] == f"/subscriptions/{SUB}/resourceGroups/elsewhere"
    assert isinstance(other["location"], Deferred)
    assert ev("[resourceGroup('myrg').location]") == "westeurope"


def test_providers_and_management_group_are_deferred() -> None:
    assert isinstance(ev("[providers('Microsoft.Web', 'sites').apiVersions[0]]"), Deferred)
    assert isinstance(ev("[managementGroup().id]"), Deferred)
    assert isinstance(ev("[managementGroupResourceId('Microsoft.Authorization/policyDefinitions', 'p1')]"), Deferred)
