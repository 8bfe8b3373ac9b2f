"""Resource functions: the *ResourceId family, reference/list*, resourceInfo, the scope objects (resourceGroup,
subscription, tenant, managementGroup), pickZones and providers.

pickZones is deterministic offline: for a region with availability zones (the published list below) it returns
``numberOfZones`` consecutive zones starting at ``1 + offset`` as strings (``['1']`` by default), for any other
region ``[]`` — what Azure answers for zone-capable resource types. providers() is deprecated and needs the
live provider registry, so it is Deferred.
"""

from __future__ import annotations

from typing import Any

from ..errors import IssueCode
from ..values import Deferred
from ._core import (
    FunctionError,
    Invocation,
    arg_int,
    arg_str,
    arm_function,
    contains_deferred,
    deep_copy,
    type_name,
)

ZONE_REGIONS = frozenset(
    [
        "australiaeast",
        "brazilsouth",
        "canadacentral",
        "centralindia",
        "centralus",
        "chinanorth3",
        "eastasia",
        "eastus",
        "eastus2",
        "francecentral",
        "germanywestcentral",
        "israelcentral",
        "italynorth",
        "japaneast",
        "japanwest",
        "koreacentral",
        "mexicocentral",
        "newzealandnorth",
        "northeurope",
        "norwayeast",
        "polandcentral",
        "qatarcentral",
        "southafricanorth",
        "southcentralus",
        "southeastasia",
        "spaincentral",
        "swedencentral",
        "switzerlandnorth",
        "uaenorth",
        "uksouth",
        "westeurope",
        "westus2",
        "westus3",
        "usgovvirginia",
        "austriaeast",
        "chilecentral",
        "indonesiacentral",
        "malaysiawest",
    ]
)


def _strings(inv: Invocation, args: list[Any]) -> list[str]:
    for i, value in enumerate(args):
        if not isinstance(value, str):
            raise FunctionError(
                IssueCode.TYPE_ERROR, f"argument {i + 1} of {inv.name}() must be a string, got {type_name(value)}"
            )
    return list(args)


def type_and_names_path(inv: Invocation, resource_type: str, names: list[str]) -> str:
    """'providers/NS/t1/n1/t2/n2': a type with k segments after the namespace takes k names."""
    segments = [s for s in resource_type.strip("/").split("/") if s]
    if len(segments) < 2:
        raise FunctionError(
            IssueCode.INVALID_VALUE,
            f"'{resource_type}' is not a resource type; expected 'Namespace/type[/childType...]'",
        )
    flat: list[str] = []
    for name in names:
        flat.extend(name.strip("/").split("/"))
    types = segments[1:]
    if len(flat) != len(types):
        raise FunctionError(
            IssueCode.INVALID_VALUE,
            f"the resource type '{resource_type}' needs {len(types)} name segment(s) but {len(flat)} were given",
        )
    parts = [segments[0]]
    for t, n in zip(types, flat, strict=True):
        parts += [t, n]
    return "providers/" + "/".join(parts)


def _split_at_type(inv: Invocation, args: list[str], max_prefix: int) -> tuple[list[str], str, list[str]]:
    for i, value in enumerate(args):
        if "/" in value:
            if i > max_prefix:
                break
            names = args[i + 1 :]
            if not names:
                raise FunctionError(IssueCode.WRONG_ARITY, f"{inv.name}() needs at least one resource name")
            return args[:i], value, names
    raise FunctionError(
        IssueCode.INVALID_VALUE,
        f"{inv.name}() needs a resource type such as 'Microsoft.Storage/storageAccounts' "
        f"after at most {max_prefix} scope argument(s)",
    )


@arm_function("resourceId", 2, None)
def resource_id(inv: Invocation, args: list[Any]) -> str:
    values = _strings(inv, args)
    prefix, rtype, names = _split_at_type(inv, values, 2)
    scope = inv.ctx.scope
    subscription, group = scope.subscription_id, scope.resource_group
    if len(prefix) == 1:
        group = prefix[0]
    elif len(prefix) == 2:
        subscription, group = prefix
    return f"/subscriptions/{subscription}/resourceGroups/{group}/" + type_and_names_path(inv, rtype, names)


@arm_function("subscriptionResourceId", 2, None)
def subscription_resource_id(inv: Invocation, args: list[Any]) -> str:
    values = _strings(inv, args)
    prefix, rtype, names = _split_at_type(inv, values, 1)
    subscription = prefix[0] if prefix else inv.ctx.scope.subscription_id
    return f"/subscriptions/{subscription}/" + type_and_names_path(inv, rtype, names)


@arm_function("tenantResourceId", 2, None)
def tenant_resource_id(inv: Invocation, args: list[Any]) -> str:
    values = _strings(inv, args)
    _, rtype, names = _split_at_type(inv, values, 0)
    return "/" + type_and_names_path(inv, rtype, names)


@arm_function("extensionResourceId", 3, None)
def extension_resource_id(inv: Invocation, args: list[Any]) -> str:
    values = _strings(inv, args)
    base = values[0].rstrip("/")
    return f"{base}/" + type_and_names_path(inv, values[1], values[2:])


@arm_function("managementGroupResourceId", 2, None)
def management_group_resource_id(inv: Invocation, args: list[Any]) -> Any:
    values = _strings(inv, args)
    prefix, rtype, names = _split_at_type(inv, values, 1)
    tail = type_and_names_path(inv, rtype, names)
    if not prefix:
        return inv.deferred("the management group is not part of a resource group deployment's scope")
    group = prefix[0].rstrip("/").split("/")[-1]
    return f"/providers/Microsoft.Management/managementGroups/{group}/{tail}"


@arm_function("resourceGroup", 0, 2)
def resource_group(inv: Invocation, args: list[Any]) -> Any:
    scope = inv.ctx.scope
    values = _strings(inv, args)
    if values:
        subscription = values[0] if len(values) == 2 else scope.subscription_id
        name = values[-1]
        if subscription.lower() != scope.subscription_id.lower() or name.lower() != scope.resource_group.lower():
            return {
                "id": f"/subscriptions/{subscription}/resourceGroups/{name}",
                "name": name,
                "type": "Microsoft.Resources/resourceGroups",
                "location": Deferred(f"[{inv.text}.location]", "another resource group's location"),
                "properties": {"provisioningState": "Succeeded"},
            }
    return {
        "id": scope.resource_group_id,
        "name": scope.resource_group,
        "type": "Microsoft.Resources/resourceGroups",
        "location": scope.location,
        "tags": dict(scope.resource_group_tags),
        "properties": {"provisioningState": "Succeeded"},
    }


@arm_function("subscription", 0, 1)
def subscription(inv: Invocation, args: list[Any]) -> Any:
    scope = inv.ctx.scope
    values = _strings(inv, args)
    sub = values[0] if values else scope.subscription_id
    return {
        "id": f"/subscriptions/{sub}",
        "subscriptionId": sub,
        "tenantId": scope.tenant_id,
        "displayName": scope.subscription_display_name,
    }


@arm_function("tenant", 0, 0)
def tenant(inv: Invocation, args: list[Any]) -> Any:
    tid = inv.ctx.scope.tenant_id
    return {"id": f"/tenants/{tid}", "tenantId": tid, "countryCode": "US", "displayName": "Local tenant"}


@arm_function("managementGroup", 0, 1)
def management_group(inv: Invocation, args: list[Any]) -> Any:
    values = _strings(inv, args)
    if values:
        return {
            "id": f"/providers/Microsoft.Management/managementGroups/{values[0]}",
            "name": values[0],
            "type": "Microsoft.Management/managementGroups",
        }
    return inv.deferred("the management group is not part of a resource group deployment's scope")


def _api_version(inv: Invocation, args: list[Any], index: int) -> str | None:
    """An API version not known yet (old templates write ``providers(ns, type).apiVersions[0]``) does not
    change which resource is meant, so it is passed on as None rather than deferring the whole call."""
    if len(args) <= index or args[index] is None or isinstance(args[index], Deferred):
        return None
    return arg_str(inv, args, index)


def _deferred_target_or_body(inv: Invocation, args: list[Any]) -> Deferred | None:
    for i, value in enumerate(args):
        if i == 1:
            continue
        found = contains_deferred(value)
        if found is not None:
            return inv.deferred(found.reason)
    return None


@arm_function("reference", 1, 3, mode="aware")
def reference(inv: Invocation, args: list[Any]) -> Any:
    deferred = _deferred_target_or_body(inv, args)
    if deferred is not None:
        return deferred
    target = arg_str(inv, args, 0)
    api_version = _api_version(inv, args, 1)
    full = False
    if len(args) == 3:
        option = arg_str(inv, args, 2)
        if option.lower() != "full":
            raise FunctionError(IssueCode.INVALID_VALUE, f"the third argument must be 'Full', got {option!r}")
        full = True
    return inv.ctx.reference(target, api_version, full)


@arm_function("references", 1, 2)
def references(inv: Invocation, args: list[Any]) -> Any:
    return inv.deferred("references() reads the state of deployed resources")


@arm_function("list", 2, 3, mode="aware")
def list_call(inv: Invocation, args: list[Any]) -> Any:
    """Every list* function (listKeys, listSecrets, listAccountSas, ...) is answered by the context."""
    deferred = _deferred_target_or_body(inv, args)
    if deferred is not None:
        return deferred
    target = arg_str(inv, args, 0)
    api_version = _api_version(inv, args, 1)
    body = deep_copy(args[2]) if len(args) == 3 else None
    return inv.ctx.list_call(inv.name, target, api_version, body)


@arm_function("resourceInfo", 1, 1)
def resource_info(inv: Invocation, args: list[Any]) -> Any:
    return inv.ctx.resource_info(arg_str(inv, args, 0))


@arm_function("pickZones", 3, 5)
def pick_zones(inv: Invocation, args: list[Any]) -> list[str]:
    arg_str(inv, args, 0)
    arg_str(inv, args, 1)
    location = arg_str(inv, args, 2).replace(" ", "").lower()
    count = arg_int(inv, args, 3) if len(args) > 3 else 1
    offset = arg_int(inv, args, 4) if len(args) > 4 else 0
    if count < 1 or offset < 0:
        raise FunctionError(IssueCode.INVALID_VALUE, "numberOfZones must be at least 1 and offset not negative")
    if location not in ZONE_REGIONS:
        return []
    return [str((offset + i) % 3 + 1) for i in range(min(count, 3))]


@arm_function("providers", 1, 2)
def providers(inv: Invocation, args: list[Any]) -> Any:
    _strings(inv, args)
    return inv.deferred("providers() reads the live resource provider registry")


@arm_function("toLogicalZone", 3, 3)
def to_logical_zone(inv: Invocation, args: list[Any]) -> Any:
    return inv.deferred("logical zone mapping is subscription-specific")


@arm_function("toLogicalZones", 3, 3)
def to_logical_zones(inv: Invocation, args: list[Any]) -> Any:
    return inv.deferred("logical zone mapping is subscription-specific")


@arm_function("toPhysicalZones", 3, 3)
def to_physical_zones(inv: Invocation, args: list[Any]) -> Any:
    return inv.deferred("physical zone mapping is subscription-specific")


@arm_function("toPhysicalZone", 3, 3)
def to_physical_zone(inv: Invocation, args: list[Any]) -> Any:
    return inv.deferred("physical zone mapping is subscription-specific")
