"""VALIDATING_PARAMETERS: expand the template offline with the ARM engine. A missing, unknown or mistyped
parameter, a value outside its allowed set, a bad expression or a dependency cycle halts here, as a LOGIC failure,
before any call reaches Azure."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from temporalio import activity

import arm_engine
from arm_engine import DeploymentScope, ExpandedDeployment
from contract.models import ActivityName, StageInput, ValidationReport
from services.content_store import BlobStore
from services.lint import static_error_count

from .errors import classified
from .lint_gate import is_bicep_request
from .parameters import deployment_parameters, load_template


def expand(template: dict[str, Any], parameters: dict[str, Any], scope: DeploymentScope) -> ExpandedDeployment:
    """The one call into the engine (``arm_engine.expand_template``)."""
    expand_template = getattr(arm_engine, "expand_template", None)
    if expand_template is None:  # the engine's entry point lives in arm_engine.template until exported
        expand_template = importlib.import_module("arm_engine.template").expand_template
    result: ExpandedDeployment = expand_template(template, parameters=parameters, scope=scope, state=None)
    return result


def scope_for(inp: StageInput) -> DeploymentScope:
    r = inp.request
    return DeploymentScope(
        subscription_id=r.subscription_id,
        resource_group=r.resource_group,
        location=r.location,
        deployment_name=inp.deployment_name,
    )


class ValidateActivities:
    def __init__(self, store: BlobStore) -> None:
        self._store = store

    @activity.defn(name=ActivityName.VALIDATE_PARAMETERS)
    async def validate_parameters(self, inp: StageInput) -> ValidationReport:
        async with classified():
            if is_bicep_request(inp.request):
                # Bicep source is not ARM JSON: LINTING compiles it and runs these same engine checks on the result.
                return ValidationReport(
                    warnings=["Bicep template: its parameters are checked against the compiled template at LINTING"],
                    deferred_to_lint="Bicep source: compiled and its parameters checked by LINTING",
                )
            template = await asyncio.to_thread(load_template, self._store, inp.request)  # a blob store: network
            errors = await asyncio.to_thread(static_error_count, template)
            if errors:
                # The engine would stop at the first of them; LINTING lists every one (path, line, column).
                return ValidationReport(
                    deferred_to_lint=f"not expanded: {errors} template error(s), every one listed by LINTING"
                )
            params = await asyncio.to_thread(deployment_parameters, self._store, inp.request)
            expanded = await asyncio.to_thread(expand, template, params, scope_for(inp))
            return ValidationReport(
                parameter_names=sorted(expanded.parameters),
                resource_count=sum(1 for r in expanded.resources if not r.existing),
            )
