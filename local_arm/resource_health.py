"""Resource Health: ``GET {resourceId}/providers/Microsoft.ResourceHealth/availabilityStatuses/current``.

The answer has the shape of azure-mgmt-resourcehealth's ``AvailabilityStatus`` (api-version 2025-05-01 is what
the SDK sends; any date-shaped version is accepted): ``id``, ``name`` ``current``, ``type``
``Microsoft.ResourceHealth/AvailabilityStatuses``, ``location`` and ``properties`` with ``availabilityState``
(``Available``/``Unavailable``/``Degraded``/``Unknown``), ``title``, ``summary``, ``reasonType``,
``detailedStatus``, ``reasonChronicity``, ``occuredTime`` (ARM's spelling) and ``reportedTime``.

A deployed resource is ``Available`` unless an ``availability`` fault rule says otherwise (``local_arm.faults``).
Resource Health covers a published list of resource types, not all of them; for a type outside
``SUPPORTED_TYPES`` the local ARM answers 422 ``UnsupportedResourceType`` (Azure answers unsupported types with a
422 too), unless a fault rule names the resource. A resource that does not exist is 404 ``ResourceNotFound``.
"""

from __future__ import annotations

import time
from typing import Any

from .faults import FaultBook

OPERATION = "AvailabilityStatuses_GetByResource"
SUFFIX = ("providers", "microsoft.resourcehealth", "availabilitystatuses", "current")

# A subset of the types Azure Resource Health reports on (its "supported resource types" list), lower-cased.
SUPPORTED_TYPES = frozenset(
    t.lower()
    for t in (
        "Microsoft.ApiManagement/service",
        "Microsoft.App/containerApps",
        "Microsoft.Cache/Redis",
        "Microsoft.CognitiveServices/accounts",
        "Microsoft.Compute/virtualMachines",
        "Microsoft.Compute/virtualMachineScaleSets",
        "Microsoft.ContainerInstance/containerGroups",
        "Microsoft.ContainerRegistry/registries",
        "Microsoft.ContainerService/managedClusters",
        "Microsoft.DBforMySQL/flexibleServers",
        "Microsoft.DBforPostgreSQL/flexibleServers",
        "Microsoft.DocumentDB/databaseAccounts",
        "Microsoft.EventHub/namespaces",
        "Microsoft.KeyVault/vaults",
        "Microsoft.Network/applicationGateways",
        "Microsoft.Network/azureFirewalls",
        "Microsoft.Network/loadBalancers",
        "Microsoft.Network/virtualNetworkGateways",
        "Microsoft.ServiceBus/namespaces",
        "Microsoft.Sql/servers/databases",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.Web/serverfarms",
        "Microsoft.Web/sites",
    )
)

_TEXT = {
    "Available": ("Available", "There aren't any known Azure platform problems affecting this resource."),
    "Unavailable": ("Unavailable", "We're sorry, your resource is unavailable. We're working to restore it."),
    "Degraded": ("Degraded", "We're sorry, your resource is running with degraded performance."),
    "Unknown": ("Unknown", "We are currently unable to determine the health of this resource."),
}


def is_availability_path(lower_segments: list[str]) -> bool:
    """``lower_segments``: the request path's segments, lower-cased."""
    return len(lower_segments) > 4 and tuple(lower_segments[-4:]) == SUFFIX


def fault_state(faults: FaultBook, resource_type: str, resource_name: str, *, path: str) -> str | None:
    """The availabilityState an ``availability`` fault imposes on this read, or None."""
    rule = faults.match(
        ("availability",), method="GET", path=path, resource_type=resource_type, resource_name=resource_name
    )
    return rule.state if rule is not None else None


def availability_status(record: dict[str, Any], state: str) -> dict[str, Any]:
    """The ``AvailabilityStatus`` body for a stored resource in ``state``."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    title, summary = _TEXT.get(state, (state, ""))
    properties: dict[str, Any] = {
        "availabilityState": state,
        "title": title,
        "summary": summary,
        "reasonType": "" if state == "Available" else "Unplanned",
        "detailedStatus": "",
        "reasonChronicity": "Persistent" if state == "Available" else "Transient",
        "occuredTime": now,
        "reportedTime": now,
    }
    return {
        "id": f"{record['id']}/providers/Microsoft.ResourceHealth/availabilityStatuses/current",
        "name": "current",
        "type": "Microsoft.ResourceHealth/AvailabilityStatuses",
        "location": (record.get("payload") or {}).get("location") or (record.get("body") or {}).get("location"),
        "properties": properties,
    }
