"""The audit record of one deployment (one workflow run), as exported to JSON and SQLite.

The seed's fields come first (deployment_id, git_sha, template_file, parameters_file, timestamp, events, result,
resources); the rest is what an auditor also needs: the compiled template's hash, the what-if plan (its summary,
with the full ARM result referenced by digest in the content store), every approval with the plan it approved,
every failed attempt with its classification and backoff, the Bicep version and the workers that ran it.

Everything here is read from the run's event history (``services.audit.history``), never from a side channel,
so ``starter.py audit ID`` rebuilds the same record for any run still in Temporal's retention. Secure parameter
values are never in history (they are content-store references), so they are never here either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AuditEvent(_Model):
    """One thing that happened, in history order."""

    timestamp: datetime  # the history event's time (server clock)
    event_type: str  # deployment_started, stage_transition, activity_completed, activity_failed, retry_scheduled,
    #                  timer_fired, timer_canceled, signal_received, confirmation_recorded, deployment_completed, ...
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
    history_event_id: int


class AuditResult(_Model):
    success: bool
    message: str
    timestamp: datetime | None = None  # when the workflow closed (None while it runs)
    outcome: str | None = None  # DeployOutcome, e.g. SUCCEEDED, ENVIRONMENTAL_FAILURE, REJECTED
    workflow_status: str = "RUNNING"  # COMPLETED, FAILED, CANCELED, TERMINATED, TIMED_OUT, RUNNING
    failure: dict[str, Any] | None = None  # FailureInfo: stage, failure_class, code, message, attempts


class AuditResource(_Model):
    resource_id: str
    resource_type: str
    health_status: str  # Healthy, Unhealthy, NotChecked
    detail: str | None = None  # the provisioningState or error when unhealthy, a note, or why not checked
    availability: str | None = None  # Resource Health: Available, Unavailable, Degraded, Unknown, NotSupported


class AuditApproval(_Model):
    """A decision on a destructive plan: who, when, why and which plan (the deletions it was bound to)."""

    decision: str  # APPROVED, REJECTED, TIMED_OUT, SKIPPED (--no-confirm-deletes)
    by: str
    at: datetime
    reason: str = ""
    round: int = 1
    destructive_set: list[str] = Field(default_factory=list)
    plan_counts: dict[str, int] = Field(default_factory=dict)
    plan_full_result: dict[str, Any] | None = None  # BlobRef of the full what-if result the approver was shown
    signal_identity: str | None = None  # the Temporal client identity that sent the signal
    signal_received_at: datetime | None = None
    plan_hash: str | None = None  # the plan decided on (absent for runs before decisions were bound)
    bound_by: str | None = None  # how the decision named the plan: plan_hash, destructive_set, unbound
    # ``by`` is the identity the signal claimed (docs/SECURITY.md), unless every decision below verified.
    identity_verified: bool = False
    # Under an approval policy (verified approvals): each decision counted, with its statement, proof, verification
    # result and the trust root's digest; ``policy`` is the policy document they were verified against
    # (``starter.py verify-approvals`` checks them again offline).
    decisions: list[dict[str, Any]] = Field(default_factory=list)
    policy: dict[str, Any] | None = None


class AuditSignal(_Model):
    """Every approve/reject signal, including those the workflow ignored (nothing pending, another plan)."""

    name: str
    received_at: datetime
    approver: str | None = None
    reason: str | None = None
    destructive_set: list[str] | None = None
    plan_hash: str | None = None
    decision_id: str | None = None
    payload_excerpt: str | None = None  # a malformed payload's first characters (it is not an object of strings)
    identity: str | None = None
    history_event_id: int


class AuditRetry(_Model):
    """One failed attempt of a stage, classified; ``retried`` says whether the workflow tried again."""

    stage: str | None
    activity: str
    attempt: int
    failed_at: datetime
    failure_class: str | None  # LOGIC or ENVIRONMENTAL
    code: str
    message: str
    retry_after_seconds: float | None = None  # ARM's Retry-After, when it sent one
    retried: bool = False
    backoff_seconds: float | None = None  # the durable timer before the next attempt
    worker_identity: str | None = None


class AuditRecord(_Model):
    schema_version: int = SCHEMA_VERSION
    # the seed's record
    deployment_id: str  # the workflow id (deploy-{subscription}-{resource group}); with run_id, one deployment
    git_sha: str | None = None
    template_file: str | None = None
    parameters_file: str | None = None
    timestamp: datetime  # when the deployment was requested (the workflow's start)
    events: list[AuditEvent] = Field(default_factory=list)
    result: AuditResult
    resources: list[AuditResource] = Field(default_factory=list)
    # what we add
    run_id: str
    deployment_name: str | None = None  # the ARM deployment
    subscription_id: str | None = None
    resource_group: str | None = None
    location: str | None = None
    mode: str | None = None
    initiator: str | None = None
    # Every person's identity in this record (initiator, approvers, refused deciders) is claimed by the client
    # that sent it (the OS account our CLI runs as, or whatever a Temporal client put in a signal): unverified.
    identities_verified: bool = False
    # Verified approvals: the check of the initiator's signed start statement (None: the initiator is claimed)
    initiator_verification: dict[str, Any] | None = None
    state: str | None = None  # the last stage reached
    template_hash: str | None = None  # sha256 of the template deployed (compiled, for Bicep)
    source_template_hash: str | None = None  # sha256 of the template as submitted (the .bicep source for Bicep)
    bicep_version: str | None = None  # None for ARM JSON (no compiler involved)
    linter: str | None = None
    lint_warnings: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)  # non-secure entries, as submitted
    secure_parameter_names: list[str] = Field(default_factory=list)  # values never recorded
    plan: dict[str, Any] | None = None  # WhatIfPlan summary; ``full_result`` references the full result
    approvals: list[AuditApproval] = Field(default_factory=list)
    # four eyes: approve/reject signals the approval policy refused (decision, by, reason, why, round, at)
    refused_decisions: list[dict[str, Any]] = Field(default_factory=list)
    signals: list[AuditSignal] = Field(default_factory=list)
    retries: list[AuditRetry] = Field(default_factory=list)
    health_checks: dict[str, Any] | None = None  # declared checks' report, when any ran
    rollback: dict[str, Any] | None = None  # RollbackReport, when one ran
    worker_identity: str | None = None  # the worker that ran the workflow's first task
    worker_identities: list[str] = Field(default_factory=list)  # every worker that ran a task or an activity
    client_identity: str | None = None  # the Temporal client identity that started it
    search_attributes: dict[str, Any] = Field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
