"""The deployment workflow's activities, one module per stage. ``build_activities`` hands the worker every
activity callable, bound to the clients and the content store it built once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract.models import WorkerSettings
from services.config import ArmClients
from services.content_store import BlobStore
from services.health.policy import RequestPolicy
from services.notifications.config import Notifier

from .approvals import ApprovalActivities
from .deploy import DeployActivities
from .drift import DriftActivities
from .health import HealthActivities
from .health_checks import HealthCheckActivities
from .lint import LintActivities, Linter
from .lint_gate import lint_gate
from .notify import NotifyActivities
from .plan import PlanActivities
from .resource_group import ResourceGroupActivities
from .resource_health import resource_health_client
from .rollback import RollbackActivities
from .rollout import RolloutActivities
from .settings import SettingsActivities
from .validate import ValidateActivities


def build_activities(
    *,
    clients: ArmClients,
    store: BlobStore,
    settings: WorkerSettings,
    linter: Linter = lint_gate,
    health_policy: RequestPolicy | None = None,
    approval_policy_path: Path | None = None,
    notifier: Notifier | None = None,
) -> list[Callable[..., Any]]:
    """``health_policy``: what declared health checks may reach (default: from the ``ORCHESTRATOR_HEALTH_*``
    variables, with the worker's own ARM endpoint always refused)."""
    if health_policy is None:
        health_policy = RequestPolicy.from_environment(arm_endpoint=clients.config.endpoint)
    deploy = DeployActivities(clients, store)
    rollback = RollbackActivities(store)
    plan = PlanActivities(clients, store)
    validate = ValidateActivities(store)
    return [
        SettingsActivities(settings, approval_policy_path).resolve_settings,
        validate.validate_parameters,
        LintActivities(store, linter).lint_template,
        ResourceGroupActivities(clients).ensure_resource_group,
        plan.plan_deployment,
        deploy.deploy,
        deploy.cancel_deployment,
        HealthActivities(clients, store).verify_health,
        HealthCheckActivities(
            clients.resources,
            resource_health=lambda sub: resource_health_client(clients, sub),
            policy=health_policy,
            store=store,
        ).run_health_checks,
        rollback.record_last_good,
        rollback.load_last_good,
        ApprovalActivities(approval_policy_path).verify_approval,
        RolloutActivities(clients, plan, validate).preview_rollout_target,
        DriftActivities(store, plan).check_drift,
        NotifyActivities(notifier).notify,
    ]


__all__ = ["build_activities"]
