"""Stand-ins for the stage activities, registered under the real activity names.

They replace only the stage logic (ARM calls, the engine) so that a test can look at what the *workflow* does with
each outcome: ordering, retries and their timers, confirmation, failure classification. The real activities are
tested against the local ARM in test_acceptance_local_arm.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.settings import SettingsActivities
from contract.health import HealthCheckInput, HealthCheckReport
from contract.models import (
    ActivityName,
    BlobRef,
    ChangeType,
    Classification,
    DeployInput,
    DeployOutcomeDetails,
    DeployRequest,
    EnsureResourceGroupResult,
    FailureClass,
    HealthReport,
    LastGoodDeployment,
    LastGoodLookup,
    LastGoodQuery,
    LintReport,
    PlanChange,
    RecordLastGoodInput,
    RetrySchedule,
    StageInput,
    ValidationReport,
    VerifyInput,
    WhatIfPlan,
    WorkerSettings,
)
from contract.rollout import PREVIEW_TARGET_ACTIVITY, PreviewInput, TargetPreview


def classified_error(failure_class: FailureClass, code: str, retry_after: float | None = None) -> ApplicationError:
    c = Classification(
        failure_class=failure_class, code=code, message=f"injected {code}", retry_after_seconds=retry_after
    )
    return ApplicationError(
        f"{code}: injected",
        c,
        type=c.error_type,
        non_retryable=failure_class is FailureClass.LOGIC,
        next_retry_delay=timedelta(seconds=retry_after) if retry_after else None,
    )


def plan_of(creates: int = 1, deletes: list[str] | None = None) -> WhatIfPlan:
    changes = [
        PlanChange(resource_id=f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa{i}",
                   change_type=ChangeType.CREATE)
        for i in range(creates)
    ]  # fmt: skip
    changes += [PlanChange(resource_id=d, change_type=ChangeType.DELETE) for d in deletes or []]
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.change_type.value] = counts.get(c.change_type.value, 0) + 1
    return WhatIfPlan(changes=changes, counts=counts)


Behaviour = Callable[[int], Any]  # call number (1-based) -> result, or raises


@dataclass
class FakeStages:
    settings: WorkerSettings = field(
        default_factory=lambda: WorkerSettings(retry=RetrySchedule(), confirmation_timeout_seconds=600)
    )
    validate: Behaviour | None = None
    plan: Behaviour | None = None
    deploy: Behaviour | None = None
    health: Behaviour | None = None
    calls: dict[str, int] = field(default_factory=dict)
    # Fleet rollouts: resource groups whose deploy fails (a LOGIC failure), the resource groups deployed in order,
    # and the health gates' behaviour (None: no gate activity registered; call number -> HealthCheckReport).
    fail_resource_groups: set[str] = field(default_factory=set)
    slow_resource_groups: dict[str, float] = field(default_factory=dict)  # deploy takes this many (real) seconds
    deployed: list[str] = field(default_factory=list)
    gates: Behaviour | None = None

    def _count(self, name: str) -> int:
        self.calls[name] = self.calls.get(name, 0) + 1
        return self.calls[name]

    def activities(self) -> list[Callable[..., Any]]:
        fakes = self

        @activity.defn(name=ActivityName.VALIDATE_PARAMETERS)
        async def validate_parameters(inp: StageInput) -> ValidationReport:
            n = fakes._count("validate")
            if fakes.validate:
                return fakes.validate(n)  # type: ignore[no-any-return]
            return ValidationReport(parameter_names=["location"], resource_count=1)

        @activity.defn(name=ActivityName.LINT_TEMPLATE)
        async def lint_template(inp: StageInput) -> LintReport:
            fakes._count("lint")
            return LintReport()

        @activity.defn(name=ActivityName.ENSURE_RESOURCE_GROUP)
        async def ensure_resource_group(inp: StageInput) -> EnsureResourceGroupResult:
            fakes._count("ensure_rg")
            return EnsureResourceGroupResult(created=False, resource_group_id="/subscriptions/s/resourceGroups/rg")

        @activity.defn(name=ActivityName.PLAN_DEPLOYMENT)
        async def plan_deployment(inp: StageInput) -> WhatIfPlan:
            if inp.ensure_resource_group:
                fakes._count("ensure_rg")
            n = fakes._count("plan")
            if fakes.plan:
                return fakes.plan(n)  # type: ignore[no-any-return]
            return plan_of(1)

        @activity.defn(name=ActivityName.DEPLOY)
        async def deploy(inp: DeployInput) -> DeployOutcomeDetails:
            n = fakes._count("deploy")
            fakes.deployed.append(inp.request.resource_group)
            if inp.request.resource_group in fakes.fail_resource_groups:
                raise classified_error(FailureClass.LOGIC, "InjectedDeployFailure")
            if inp.request.resource_group in fakes.slow_resource_groups:
                await asyncio.sleep(fakes.slow_resource_groups[inp.request.resource_group])
            if fakes.deploy:
                return fakes.deploy(n)  # type: ignore[no-any-return]
            return DeployOutcomeDetails(
                deployment_name=inp.deployment_name, provisioning_state="Succeeded", resources=["/r/1"]
            )

        @activity.defn(name=ActivityName.CANCEL_DEPLOYMENT)
        async def cancel_deployment(inp: Any) -> None:
            fakes._count("cancel")

        @activity.defn(name=ActivityName.VERIFY_HEALTH)
        async def verify_health(inp: VerifyInput) -> HealthReport:
            n = fakes._count("health")
            if fakes.health:
                return fakes.health(n)  # type: ignore[no-any-return]
            return HealthReport(healthy=list(inp.resources))

        # Issue 6's rollback bookkeeping (local activities, content store only): nothing is kept by the fakes.
        @activity.defn(name=ActivityName.RECORD_LAST_GOOD)
        async def record_last_good(inp: RecordLastGoodInput) -> LastGoodDeployment:
            req = inp.request
            return LastGoodDeployment(
                subscription_id=req.subscription_id,
                resource_group=req.resource_group,
                location=req.location,
                workflow_id=inp.workflow_id,
                deployment_name=inp.deployment_name,
                completed_at=inp.completed_at,
                template=req.template,
            )

        @activity.defn(name=ActivityName.LOAD_LAST_GOOD)
        async def load_last_good(inp: LastGoodQuery) -> LastGoodLookup:
            return LastGoodLookup(problem="the test fakes keep no last good deployment")

        @activity.defn(name=PREVIEW_TARGET_ACTIVITY)
        async def preview_rollout_target(inp: PreviewInput) -> TargetPreview:
            fakes._count("preview")
            return TargetPreview(plan=plan_of(1))

        @activity.defn(name=ActivityName.RUN_HEALTH_CHECKS)
        async def run_health_checks(inp: HealthCheckInput) -> HealthCheckReport:
            n = fakes._count("gates")
            assert fakes.gates is not None
            return fakes.gates(n)  # type: ignore[no-any-return]

        gate = [run_health_checks] if self.gates is not None else []
        return [
            *gate,
            preview_rollout_target,
            SettingsActivities(self.settings).resolve_settings,
            validate_parameters,
            lint_template,
            ensure_resource_group,
            plan_deployment,
            deploy,
            cancel_deployment,
            verify_health,
            record_last_good,
            load_last_good,
        ]


DELETED = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/old"
OTHER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/other"


def make_request(resource_group: str, **kw: object) -> DeployRequest:
    """A request for the fake stage set: the template reference is never read."""
    return DeployRequest(
        subscription_id="00000000-0000-0000-0000-000000000001",
        resource_group=resource_group,
        location="westeurope",
        template=BlobRef(digest="sha256:" + "0" * 64, size=2),
        initiator="tester@example.com",
        **kw,  # type: ignore[arg-type]
    )
