"""Ensure the resource group exists in --location before the what-if (ARM's what-if needs it)."""

from __future__ import annotations

from temporalio import activity

from contract.models import ActivityName, DeployRequest, EnsureResourceGroupResult, StageInput
from services.config import ArmClients

from .errors import classified


async def ensure_resource_group(clients: ArmClients, r: DeployRequest) -> EnsureResourceGroupResult:
    """Create the resource group in ``r.location`` unless it exists (an existing one is left as it is)."""
    groups = clients.resources(r.subscription_id).resource_groups
    if await groups.check_existence(r.resource_group):
        return EnsureResourceGroupResult(
            created=False,
            resource_group_id=f"/subscriptions/{r.subscription_id}/resourceGroups/{r.resource_group}",
        )
    created = await groups.create_or_update(
        r.resource_group, {"location": r.location, "tags": {"createdBy": "bicep-orchestrator"}}
    )
    return EnsureResourceGroupResult(created=True, resource_group_id=created.id)


class ResourceGroupActivities:
    def __init__(self, clients: ArmClients) -> None:
        self._clients = clients

    @activity.defn(name=ActivityName.ENSURE_RESOURCE_GROUP)
    async def ensure_resource_group(self, inp: StageInput) -> EnsureResourceGroupResult:
        """Kept for workflows started before the plan activity ensured the group itself (patch plan-ensures-rg)."""
        async with classified():
            return await ensure_resource_group(self._clients, inp.request)
