"""The one place the local ARM calls the template engine."""

from __future__ import annotations

from typing import Any

import arm_engine
from arm_engine import DeploymentScope, ExpandedDeployment, ResourceDeployer, ResourceStateView, TemplateError
from arm_engine.template import expand_template

from .errors import ArmError, error_object


def expand(
    template: dict[str, Any],
    parameters: dict[str, Any],
    *,
    scope: DeploymentScope,
    state: ResourceStateView | None,
    deployer: ResourceDeployer | None = None,
) -> ExpandedDeployment:
    result: ExpandedDeployment = expand_template(
        template,
        parameters={"contentVersion": "1.0.0.0", "parameters": parameters},
        scope=scope,
        state=state,
        deployer=deployer,
    )
    return result


def invalid_template(exc: TemplateError) -> ArmError:
    """ARM's InvalidTemplate (400) for an engine error, with TemplateViolation additionalInfo."""
    first = exc.first
    return ArmError(
        400,
        "InvalidTemplate",
        f"Deployment template validation failed: '{_sentence(first.message)}'.",
        additional_info=[_violation(first)],
        details=[_issue_error(i) for i in exc.issues[1:]],
    )


def invalid_template_object(exc: TemplateError) -> dict[str, Any]:
    return invalid_template(exc).error_object()


def _sentence(message: str) -> str:
    return message.rstrip(".") + "."


def _violation(issue: arm_engine.TemplateIssue) -> dict[str, Any]:
    return {
        "type": "TemplateViolation",
        "info": {"lineNumber": issue.line or 0, "linePosition": issue.column or 0, "path": issue.path},
    }


def _issue_error(issue: arm_engine.TemplateIssue) -> dict[str, Any]:
    return error_object(issue.code, issue.message, target=issue.path or None, additional_info=[_violation(issue)])
