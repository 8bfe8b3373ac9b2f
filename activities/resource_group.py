"""Ensure the resource group exists in --location before the what-if (ARM's what-if needs it)."""

from __future__ import annotations

from temporalio import activity

from orchestrator.config import ArmClients
from orchestrator.models import ActivityName, EnsureResourceGroupResult, StageInput

from .errors import classified


class ResourceGroupActivities:
    def __init__(self, clients: ArmClients) -> None:
        self._clients = clients

    @activity.defn(name=ActivityName.ENSURE_RESOURCE_GROUP)
    async def ensure_resource_group(self, inp: StageInput) -> EnsureResourceGroupResult:
        r = inp.request
        async with classified():
            groups = self._clients.resources(r.subscription_id).resource_groups
            if await groups.check_existence(r.resource_group):
                return EnsureResourceGroupResult(
                    created=False,
                    resource_group_id=f"/subscriptions/{r.subscription_id}/resourceGroups/{r.resource_group}",
                )
            created = await groups.create_or_update(
                r.resource_group, {"location": r.location, "tags": {"createdBy": "bicep-orchestrator"}}
            )
            return EnsureResourceGroupResult(created=True, resource_group_id=created.id)
