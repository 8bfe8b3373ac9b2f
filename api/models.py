"""The API's request bodies (pydantic, so the OpenAPI document describes them). Unknown fields are refused: a typo
such as ``no_confirm_delete`` must not silently deploy with the default."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.models import MAX_REASON_CHARS, DeploymentMode


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeploymentCreate(_Body):
    """What ``starter.py deploy`` takes, as one JSON document (its flags in brackets)."""

    subscription_id: str = Field(max_length=80, description="subscription id (--subscription)")
    resource_group: str = Field(max_length=200, description="target resource group, created if missing (-g)")
    location: str = Field(max_length=80, description="Azure region of the resource group (-l)")
    template: dict[str, Any] | None = Field(
        default=None,
        description="the ARM JSON template (-t). Give this or bicep_path: Bicep is compiled on the worker from files "
        "at the same path there, so it is not taken inline",
    )
    bicep_path: str | None = Field(
        default=None,
        max_length=1000,
        description="a .bicep file under the service's Bicep root (ORCHESTRATOR_API_BICEP_ROOT: a folder the workers "
        "see at the same path, e.g. a shared checkout), relative to it; compiled and linted on the worker",
    )
    template_name: str | None = Field(
        default=None, max_length=400, description="a name for the template in the audit, e.g. its path in the repo"
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description='parameters-file entries (-p): {"name": {"value": ...}} or {"name": {"reference": ...}}',
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="parameter values applied last (--param NAME=VALUE), plain values"
    )
    secret_parameters: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="parameters to treat as secure like a securestring (--secret-param): sealed in the content "
        "store, never echoed",
    )
    mode: DeploymentMode = Field(default=DeploymentMode.INCREMENTAL, description="Incremental or Complete (--mode)")
    allow_warnings: bool = Field(default=False, description="do not halt on lint warnings (--allow-warnings)")
    no_confirm_deletes: bool = Field(
        default=False, description="deploy a plan that deletes without approval, where the policy allows it"
    )
    skip_health: bool = Field(default=False, description="skip VERIFYING_HEALTH (--skip-health)")
    rollback_on_failure: bool = Field(default=False, description="redeploy the last healthy deployment on failure")
    confirmation_timeout_seconds: float | None = Field(
        default=None, gt=0, le=30 * 86400, description="how long a plan that deletes waits for a decision"
    )
    git_sha: str | None = Field(default=None, max_length=64, description="commit the template comes from (--git-sha)")

    @model_validator(mode="after")
    def _one_template(self) -> DeploymentCreate:
        if (self.template is None) == (self.bicep_path is None):
            raise ValueError("give exactly one of template (ARM JSON) and bicep_path")
        return self


class Decision(_Body):
    """An approval or rejection of the pending plan, named by its hash (``plan.hash`` of GET /deployments/{id})."""

    plan_hash: str = Field(max_length=80, description="the pending plan's hash, as GET /deployments/{id} shows it")
    reason: str = Field(default="", max_length=MAX_REASON_CHARS, description="why (recorded in the audit)")
