"""Drift detection (docs/FLEET.md): a Temporal Schedule per resource group runs ``DriftCheckWorkflow``, which runs
what-if of the last good deployment's template and parameters against the live state and classifies the result."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from contract.models import DeployRequest

DRIFT_WORKFLOW_NAME = "DriftCheckWorkflow"
DRIFT_CHECK_ACTIVITY = "check_drift"
MAX_ALLOW_ENTRIES = 200
MAX_FINDINGS = 200  # per report (the counts are complete)


def drift_schedule_id(subscription_id: str, resource_group: str) -> str:
    return f"drift-{subscription_id.lower()}-{resource_group.lower()}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AllowEntry(_Model):
    """A property that may differ without being drift: (type, api version, property path) until ``expires``."""

    resource_type: str  # e.g. Microsoft.Storage/storageAccounts (case-insensitive)
    api_version: str = "*"  # "*": any
    path: str  # a what-if property path; "*" matches within one segment, a trailing ".*" everything below
    expires: datetime
    who: str
    why: str


class DriftClass(StrEnum):
    NO_CHANGE = "no change"
    NOISE = "noise"  # only differences the baseline or the allow-list explain
    CONFIGURATION_DRIFT = "configuration drift"  # a property differs from what was deployed
    DESTRUCTIVE_DRIFT = "destructive drift"  # a deployed resource is gone


class DriftCheckInput(_Model):
    subscription_id: str
    resource_group: str
    allow_list: list[AllowEntry] = Field(default_factory=list)
    # ``drift enable --remediate``: a check that finds drift starts an ordinary deployment of the last good template
    # and parameters (plan, approval of deletions under the worker's policy, deploy, health), named in the report.
    remediate: bool = False
    initiator: str = "drift-check"  # who enabled the schedule: the remediation deployment's initiator (four eyes)
    # ``drift enable -t/-p``: compare with this template and these parameters (ARM JSON in the content store, secure
    # values sealed) instead of the last good deployment; None: the last good deployment.
    request: DeployRequest | None = None


class DriftFinding(_Model):
    resource_id: str
    change_type: str  # what-if's: Create (the resource is gone), Modify, Delete (complete mode: added out of band)
    paths: list[str] = Field(default_factory=list)  # the drifted property paths (not the suppressed ones)


class DriftReport(_Model):
    subscription_id: str
    resource_group: str
    classification: DriftClass
    checked_at: datetime
    last_good_workflow_id: str | None = None
    last_good_deployment: str | None = None
    findings: list[DriftFinding] = Field(default_factory=list)
    suppressed_baseline: int = 0  # property differences the post-deployment baseline holds (provider noise)
    suppressed_allow_list: int = 0  # property differences an unexpired allow-list entry covers
    expired_entries: list[str] = Field(default_factory=list)  # allow-list entries past their expiry (not applied)
    baseline_captured: bool = False  # this run took the baseline (the first check after a new good deployment)
    problem: str | None = None  # why nothing could be checked (no good deployment recorded, ...)
    compared_with: str | None = None  # -t/-p: the template named (its path and digest) instead of the last good one
    # Drift found: the event announced to the worker's sinks (its stable id; None when no sink takes it) and, with
    # --remediate, the deployment started to put the last good state back (or why none was started).
    notification_id: str | None = None
    remediation_workflow_id: str | None = None
    remediation_run_id: str | None = None
    remediation_problem: str | None = None
    # The check activity's request for the last good deployment (template and parameters by reference, secure values
    # sealed): what a remediation deploys. Dropped from the workflow's result.
    last_good_request: DeployRequest | None = None

    @property
    def drifted(self) -> bool:
        return self.classification in (DriftClass.CONFIGURATION_DRIFT, DriftClass.DESTRUCTIVE_DRIFT)
