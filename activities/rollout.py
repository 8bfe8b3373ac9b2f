"""The rollout's preview of one target (``rollout plan``, and a ring's rollback before it runs): what-if where the
resource group exists; where it does not, what the template would create, without creating the group (a what-if
needs the group, and a plan must change nothing)."""

from __future__ import annotations

from azure.core.exceptions import ResourceNotFoundError
from temporalio import activity

from contract.models import StageInput
from contract.rollout import PREVIEW_TARGET_ACTIVITY, PreviewInput, TargetPreview
from services.config import ArmClients

from .errors import classified
from .plan import PlanActivities
from .validate import ValidateActivities


class RolloutActivities:
    def __init__(self, clients: ArmClients, plan: PlanActivities, validate: ValidateActivities) -> None:
        self._clients = clients
        self._plan = plan
        self._validate = validate

    @activity.defn(name=PREVIEW_TARGET_ACTIVITY)
    async def preview_rollout_target(self, inp: PreviewInput) -> TargetPreview:
        stage_input = StageInput(request=inp.request, deployment_name=inp.deployment_name)
        r = inp.request
        async with classified():
            groups = self._clients.resources(r.subscription_id).resource_groups
            try:
                exists = bool(await groups.check_existence(r.resource_group))
            except ResourceNotFoundError:
                exists = False
        if not exists:
            report = await self._validate.validate_parameters(stage_input)
            return TargetPreview(resource_group_exists=False, resource_count=report.resource_count)
        return TargetPreview(plan=await self._plan.plan_deployment(stage_input))
