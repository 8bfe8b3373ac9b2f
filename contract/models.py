"""The data that crosses Temporal: one pydantic model in and one out for the workflow, every activity, signal and
query.

These models are the contract between the workflow, the activities, the worker and the CLI. Fields are added
with defaults, never renamed or removed, so running workflows keep decoding. Nothing here carries a bulky document
(templates and full what-if results live in the content store, see ``services.content_store``; history carries a
``BlobRef`` and a summary) nor the value of a secure parameter (those travel as ``secure_parameters``, a reference
into the content store).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.approvals import (
    ApprovalProof,
    ApprovalStatement,
    DecisionEvidence,
    StartStatement,
    TrustPolicy,
    VerificationResult,
)
from contract.health import HEALTH_CHECK_ACTIVITY, HealthCheckReport, HealthSpec
from contract.notifications import NotificationRouting

# ------------------------------------------------------------------------------------------------------ enums


class DeploymentStage(StrEnum):
    """The lifecycle, in order. ROLLED_BACK is reached from FAILED only."""

    INITIALIZED = "INITIALIZED"
    VALIDATING_PARAMETERS = "VALIDATING_PARAMETERS"
    LINTING = "LINTING"
    PLANNING = "PLANNING"
    AWAITING_CONFIRMATION = "AWAITING_CONFIRMATION"
    DEPLOYING = "DEPLOYING"
    VERIFYING_HEALTH = "VERIFYING_HEALTH"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ROLLED_BACK = "ROLLED_BACK"

    @property
    def terminal(self) -> bool:
        return self in (DeploymentStage.COMPLETED, DeploymentStage.FAILED, DeploymentStage.ROLLED_BACK)


class FailureClass(StrEnum):
    """LOGIC: the input is wrong, a retry cannot help. ENVIRONMENTAL: the world misbehaved, retry with backoff."""

    LOGIC = "LOGIC"
    ENVIRONMENTAL = "ENVIRONMENTAL"


class DeployOutcome(StrEnum):
    """How a deployment ended; the CLI maps it to an exit code (``client.exit_codes``)."""

    SUCCEEDED = "SUCCEEDED"
    LOGIC_FAILURE = "LOGIC_FAILURE"  # exit 1
    ENVIRONMENTAL_FAILURE = "ENVIRONMENTAL_FAILURE"  # exit 3
    REJECTED = "REJECTED"  # exit 4
    NOT_CONFIRMED = "NOT_CONFIRMED"  # exit 4
    CANCELLED = "CANCELLED"  # exit 3 (someone cancelled the workflow)
    ROLLED_BACK = "ROLLED_BACK"  # exit 5: failed, and the last healthy deployment was redeployed
    REFUSED = "REFUSED"  # exit 2: the request asks for what the worker's policy forbids (nothing was done)


class DeploymentMode(StrEnum):
    INCREMENTAL = "Incremental"
    COMPLETE = "Complete"


class ChangeType(StrEnum):
    """What-if change types, as ARM spells them."""

    CREATE = "Create"
    DELETE = "Delete"
    IGNORE = "Ignore"
    DEPLOY = "Deploy"
    NO_CHANGE = "NoChange"
    MODIFY = "Modify"
    UNSUPPORTED = "Unsupported"


class _Model(BaseModel):
    # Unknown fields are ignored so an older worker can read what a newer client sent.
    model_config = ConfigDict(extra="ignore", use_enum_values=False)


# ------------------------------------------------------------------------------------------------ references


class BlobRef(_Model):
    """A document in the content-addressed store: its sha256 digest, size and kind. Safe to put in history."""

    digest: str  # "sha256:<hex>"
    size: int
    media_type: str = "application/json"


# --------------------------------------------------------------------------------------------------- request


class DeployRequest(_Model):
    """Everything a deployment needs, decided by the starter before the workflow starts.

    ``parameters`` holds the non-secure parameter entries in ARM's parameters-file shape (``{name: {"value": v}}``
    or ``{name: {"reference": {...}}}``) with the ``--param`` overrides already applied. The values of parameters
    the template declares ``securestring``/``secureObject`` are never here: they are in the content store behind
    ``secure_parameters`` (see ``client.deployments.build_deploy_request``).
    """

    subscription_id: str
    resource_group: str
    location: str
    template: BlobRef
    template_path: str | None = None  # as the user gave it, for the audit
    template_hash: str | None = None  # same as template.digest; kept separate for readers of the audit
    parameters: dict[str, Any] = Field(default_factory=dict)
    secure_parameters: BlobRef | None = None
    secure_parameter_names: list[str] = Field(default_factory=list)
    parameters_path: str | None = None
    override_names: list[str] = Field(default_factory=list)  # which --param KEY=... were given
    mode: DeploymentMode = DeploymentMode.INCREMENTAL
    allow_warnings: bool = False
    no_confirm_deletes: bool = False
    skip_health: bool = False
    health: HealthSpec = Field(default_factory=HealthSpec)  # declared checks, validated by the starter
    confirmation_timeout_seconds: float | None = None  # None: the worker's default
    git_sha: str | None = None
    initiator: str = "unknown"
    audit_dir: str | None = None
    # when DEPLOYING or VERIFYING_HEALTH fails, redeploy the last deployment of this resource group that
    # completed healthy (see services.last_good). Off by default, like az's --rollback-on-error.
    rollback_on_failure: bool = False
    # Verified approvals: the initiator's signed start statement (``deploy --key``), checked when the worker's
    # approval policy requires a verified start (docs/SECURITY.md).
    start_statement: StartStatement | None = None
    start_proof: ApprovalProof | None = None


# ------------------------------------------------------------------------------------------------------ plan


class PropertyChange(_Model):
    path: str
    change_type: str  # Create, Delete, Modify, Array, NoEffect
    before: Any = None
    after: Any = None
    children: list[PropertyChange] = Field(default_factory=list)


class PlanChange(_Model):
    resource_id: str
    change_type: ChangeType
    resource_type: str | None = None
    # Property deltas for Modify changes, trimmed to a bounded number (the full result is in the store).
    delta: list[PropertyChange] = Field(default_factory=list)
    unsupported_reason: str | None = None


class RequestRetry(_Model):
    """A request that changes nothing, made again in place after a transient failure (activities/transient.py): not
    an attempt of the stage, so it is recorded in the activity's result, and so in history and the audit."""

    what: str
    code: str  # the classified failure, e.g. TooManyRequests, ServiceUnavailable, NetworkError
    delay_seconds: float


MAX_RECORDED_REQUEST_RETRIES = 50  # per activity result; history stays small whatever the fault rate


class WhatIfPlan(_Model):
    """A what-if summary small enough for history; the full ARM result is ``full_result`` in the store."""

    changes: list[PlanChange] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)  # change type -> number of resources
    full_result: BlobRef | None = None
    truncated: bool = False  # True when ``changes`` was cut to stay small; counts stay complete
    diagnostics: list[str] = Field(default_factory=list)
    # Set when the plan activity was asked to ensure the resource group first: True when it created it.
    resource_group_created: bool | None = None
    request_retries: list[RequestRetry] = Field(default_factory=list)

    @property
    def destructive_changes(self) -> list[PlanChange]:
        return [c for c in self.changes if c.change_type == ChangeType.DELETE]

    @property
    def destructive_set(self) -> list[str]:
        """Lower-cased ids of the resources the plan deletes, sorted: what an approval is bound to."""
        return sorted({c.resource_id.lower() for c in self.destructive_changes})

    @property
    def plan_hash(self) -> str:
        """What a decision binds to: sha256 over the plan's changes (type and lower-cased id, sorted) and counts.
        Deterministic (workflow code computes it); shown by ``status`` and sent back by ``approve``."""
        doc = {
            "changes": sorted([c.change_type.value, c.resource_id.lower()] for c in self.changes),
            "counts": dict(sorted(self.counts.items())),
        }
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    @property
    def has_changes(self) -> bool:
        return any(c.change_type not in (ChangeType.NO_CHANGE, ChangeType.IGNORE) for c in self.changes) or any(
            n > 0 for k, n in self.counts.items() if k not in (ChangeType.NO_CHANGE.value, ChangeType.IGNORE.value)
        )


# ---------------------------------------------------------------------------------------- signals and queries


# Size limits of a decision (approve/reject signal): anyone who may signal could otherwise grow a run's history
# and status by megabytes per signal.
MAX_APPROVER_CHARS = 256
MAX_REASON_CHARS = 2000
MAX_DESTRUCTIVE_SET = 5000
MAX_DECISION_BYTES = 512 * 1024  # the whole signal payload; an approve of the largest plan stays well under
REFUSED_EXCERPT_CHARS = 200  # how much of a malformed or oversized payload a refusal record keeps
MAX_REFUSED_KEPT = 100  # refused decisions kept in the status query (all are counted, and in history)


class ApprovalSignal(_Model):
    """Payload of the ``approve`` and ``reject`` signals: who decided, why, and which plan. Any Temporal client can
    send it: ``temporal workflow signal --workflow-id ID --name approve --input '{"approver":"ana","reason":"ok",
    "plan_hash":"sha256:..."}'`` (``status`` prints the exact command for the pending plan).

    The workflow reads the payload itself (``parse_decision``): a malformed or oversized one is recorded as a
    refused decision, never dropped. ``approver`` is a *claimed* identity (docs/SECURITY.md)."""

    approver: str = Field(max_length=MAX_APPROVER_CHARS)
    reason: str = Field(default="", max_length=MAX_REASON_CHARS)
    # The plan the decision is for: its hash (``WhatIfPlan.plan_hash``) and/or its destructive set (lower-cased
    # resource ids). A decision naming another plan is refused; one naming none is accepted only in round 1.
    destructive_set: list[str] | None = Field(default=None, max_length=MAX_DESTRUCTIVE_SET)
    plan_hash: str | None = Field(default=None, max_length=80)
    # Set by our CLI: an id it polls for in ``status`` to learn whether the decision was taken or refused.
    decision_id: str | None = Field(default=None, max_length=80)
    # Where the sender took the identity from (our CLI: "os-account"); informational, never verified.
    identity_source: str | None = Field(default=None, max_length=80)
    # Verified approvals (contract/approvals.py): the signed statement and its proof. Under an approval policy the
    # statement decides (approver, reason and plan above are then ignored); without one they are kept, unverified.
    statement: ApprovalStatement | None = None
    proof: ApprovalProof | None = None


class LegacyApprovalSignal(_Model):
    """The decision signal as workflows before ``decision-records`` read it (no size limits): for replaying them."""

    approver: str
    reason: str = ""
    destructive_set: list[str] | None = None


def parse_decision(value: Any) -> tuple[ApprovalSignal | None, str, str]:
    """The decision a signal payload carries, or None with the refusal's kind (``malformed``/``oversized``) and
    why. Never raises: any JSON value is an answer, so one bad signal cannot break the workflow or its audit."""
    try:
        size = len(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return None, "malformed", "the payload is not JSON"
    if size > MAX_DECISION_BYTES:
        return None, "oversized", f"the payload is {size} bytes; a decision may be at most {MAX_DECISION_BYTES} bytes"
    if not isinstance(value, dict):
        return None, "malformed", f"the payload is a JSON {_json_kind(value)}, not an object with 'approver'"
    try:
        signal = ApprovalSignal.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
        kind = "oversized" if "at most" in str(first.get("msg", "")) else "malformed"
        return None, kind, f"{where}: {first.get('msg', 'invalid')}"
    if not signal.approver.strip() or any(ord(c) < 32 or ord(c) == 127 for c in signal.approver):
        return None, "malformed", "approver: must name someone (no empty name, no control characters)"
    if signal.destructive_set is not None and any(len(s) > 2048 for s in signal.destructive_set):
        return None, "oversized", "destructive_set: holds an entry longer than a resource id can be"
    return signal, "", ""


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {str: "string", bool: "boolean", int: "number", float: "number", list: "array"}.get(type(value), "value")


def excerpt(value: Any, limit: int = REFUSED_EXCERPT_CHARS, *, as_json: bool = False) -> str:
    """A short printable excerpt of any value, for a refusal record (never the bulk of an oversized payload);
    ``as_json``: a string too is shown as JSON (quoted), as it was sent."""
    try:
        text = value if isinstance(value, str) and not as_json else json.dumps(value, default=str, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


class ConfirmationDecision(StrEnum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    SKIPPED = "SKIPPED"  # --no-confirm-deletes


class ConfirmationRecord(_Model):
    decision: ConfirmationDecision
    by: str
    reason: str = ""
    at: datetime
    destructive_set: list[str] = Field(default_factory=list)
    round: int = 1  # how many times confirmation was asked in this deployment
    plan_hash: str | None = None  # the plan decided on (``WhatIfPlan.plan_hash``)
    # How the decision named the plan: "plan_hash", "destructive_set", "unbound" (round 1's plain form); None for
    # records of older runs, a timeout or --no-confirm-deletes.
    bound_by: str | None = None
    decision_id: str | None = None  # the sender's id (our CLI), when it sent one
    identity_verified: bool = False  # ``by`` is what the signal claimed, unless every decision below verified
    # Under an approval policy: every decision counted (N of M approvals, or the rejection), with its statement,
    # proof and verification result.
    decisions: list[DecisionEvidence] = Field(default_factory=list)
    policy: TrustPolicy | None = None  # the approval policy those were verified against (the trust root)


class PendingConfirmation(_Model):
    """What the workflow waits on while AWAITING_CONFIRMATION."""

    destructive_changes: list[PlanChange]
    asked_at: datetime
    deadline: datetime
    round: int = 1
    approve_command: str = ""  # the exact Temporal CLI command that approves (bound to this plan)
    plan_hash: str | None = None  # what a decision must name (``WhatIfPlan.plan_hash``); None on older runs
    approval_policy: ApprovalPolicy | None = None  # who may decide (four eyes); None: anyone
    # Under an approval policy file: how many distinct approvers this round needs, and who has approved so far.
    required_approvals: int = 1
    approved_by: list[str] = Field(default_factory=list)


class StageTransition(_Model):
    """One arrow of the lifecycle, with enough to rebuild the audit record from history alone."""

    stage: DeploymentStage
    at: datetime
    previous: DeploymentStage | None = None
    detail: str = ""
    by: str | None = None  # who caused it (approver, rejecter, initiator)


class StageProgress(_Model):
    attempts: int = 0
    last_error: str | None = None
    last_error_code: str | None = None
    last_error_class: FailureClass | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    retry_at: datetime | None = None  # while waiting out a backoff after a failed attempt: when the next one starts
    failures: int = 0  # failed attempts so far (a stage may run two activities: VERIFYING_HEALTH)


class FailureInfo(_Model):
    stage: DeploymentStage
    failure_class: FailureClass | None  # None for rejection/not-confirmed/cancelled
    code: str
    message: str
    attempts: int = 1


class LastGoodDeployment(_Model):
    """What a rollback redeploys: the last deployment of a resource group that completed healthy, as we kept it in
    the content store (``services.last_good``) — not ARM's pruned deployment history.

    ``parameters`` are the plain values; secure values are only ever referenced sealed (``secure_parameters``,
    AES-GCM with the codec's key ring). Without a key ring on the worker that recorded it, their names are listed
    in ``unrecoverable_secure_parameters`` and a rollback asks for them."""

    subscription_id: str
    resource_group: str
    location: str
    workflow_id: str
    deployment_name: str
    completed_at: datetime
    template: BlobRef  # the compiled ARM JSON that was deployed
    template_hash: str | None = None
    template_path: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    secure_parameters: BlobRef | None = None  # sealed, never plaintext
    secure_parameter_names: list[str] = Field(default_factory=list)
    unrecoverable_secure_parameters: list[str] = Field(default_factory=list)
    mode: DeploymentMode = DeploymentMode.INCREMENTAL
    # The health checks. With a key ring they are sealed whole in ``sealed_health`` (header values, URL query
    # strings and credentials are secrets) and ``health`` keeps only a redacted copy; loading the record for a
    # rollback opens them again.
    health: HealthSpec = Field(default_factory=HealthSpec)
    sealed_health: BlobRef | None = None
    resources: list[str] = Field(default_factory=list)
    git_sha: str | None = None
    initiator: str | None = None


class RecordLastGoodInput(_Model):
    request: DeployRequest  # as deployed (the compiled template swapped in)
    workflow_id: str
    deployment_name: str
    completed_at: datetime
    resources: list[str] = Field(default_factory=list)


class LastGoodQuery(_Model):
    subscription_id: str
    resource_group: str


class LastGoodLookup(_Model):
    record: LastGoodDeployment | None = None
    problem: str | None = None  # why no record could be read (none kept, unreadable, ...)


class RollbackParametersSignal(_Model):
    """Payload of ``provide_rollback_parameters``: secure values a rollback could not recover, as a reference to a
    content-store document (sealed when the codec's keys are configured) — never the values themselves, so they
    stay out of history. ``names`` are the parameters it holds."""

    provided_by: str
    names: list[str]
    secure_parameters: BlobRef


class RollbackState(StrEnum):
    """Where a rollback is; the values are the stage names it passes through, plus how it ended."""

    PLANNING = "PLANNING"
    AWAITING_PARAMETERS = "AWAITING_PARAMETERS"  # secure values the last good record could not keep
    AWAITING_CONFIRMATION = "AWAITING_CONFIRMATION"
    DEPLOYING = "DEPLOYING"
    VERIFYING_HEALTH = "VERIFYING_HEALTH"
    ROLLED_BACK = "ROLLED_BACK"
    FAILED = "FAILED"
    NOT_POSSIBLE = "NOT_POSSIBLE"  # no last good deployment, or its record could not be read


class RollbackReport(_Model):
    """The rollback part of a deployment's result and status."""

    reason: FailureInfo  # why the deployment rolled back: the original failure
    state: RollbackState = RollbackState.PLANNING
    target_workflow_id: str | None = None
    target_deployment_name: str | None = None  # the healthy ARM deployment being restored
    target_template_hash: str | None = None
    target_completed_at: datetime | None = None
    deployment_name: str | None = None  # the rollback's own ARM deployment
    plan: WhatIfPlan | None = None
    resources: list[str] = Field(default_factory=list)
    health: HealthReport | None = None
    health_checks: HealthCheckReport | None = None
    missing_secure_parameters: list[str] = Field(default_factory=list)
    parameters_provided_by: str | None = None
    failure: FailureInfo | None = None  # the rollback's own error, when it did not succeed
    note: str | None = None
    # The rollback's own attempts per stage (the deployment's are DeploymentStatus.stages: never added together).
    stages: dict[DeploymentStage, StageProgress] = Field(default_factory=dict)


class DeploymentStatus(_Model):
    """Result of the ``status`` query."""

    workflow_id: str
    deployment_name: str
    subscription_id: str
    resource_group: str
    stage: DeploymentStage
    plan: WhatIfPlan | None = None
    pending_confirmation: PendingConfirmation | None = None
    confirmations: list[ConfirmationRecord] = Field(default_factory=list)
    stages: dict[DeploymentStage, StageProgress] = Field(default_factory=dict)
    transitions: list[StageTransition] = Field(default_factory=list)
    failure: FailureInfo | None = None
    outcome: DeployOutcome | None = None
    rollback: RollbackReport | None = None  # set once a rollback started
    refused_decisions: list[RefusedDecision] = Field(default_factory=list)  # the latest MAX_REFUSED_KEPT
    refused_total: int = 0  # every refused decision, also those no longer in the list
    # What VERIFYING_HEALTH tolerated, per resource id (e.g. Resource Health "Unknown"), once its check finished.
    health_notes: dict[str, str] = Field(default_factory=dict)
    # Verified approvals: the check of the initiator's signed start statement, when there was one.
    initiator_verification: VerificationResult | None = None


# ---------------------------------------------------------------------------------------------------- result


class DeployResult(_Model):
    """The workflow's result. A failed deployment also produces one: it is the first detail of the workflow's
    ``ApplicationError`` (``client.deployments.result_of`` reads it either way)."""

    workflow_id: str
    deployment_name: str
    outcome: DeployOutcome
    stage: DeploymentStage
    plan: WhatIfPlan | None = None
    has_changes: bool = False
    outputs: dict[str, Any] = Field(default_factory=dict)  # secure outputs masked
    resources: list[str] = Field(default_factory=list)  # ids of the deployed resources
    unhealthy: list[str] = Field(default_factory=list)
    confirmations: list[ConfirmationRecord] = Field(default_factory=list)
    failure: FailureInfo | None = None
    transitions: list[StageTransition] = Field(default_factory=list)
    skipped_health: bool = False
    health_checks: HealthCheckReport | None = None
    # What VERIFYING_HEALTH tolerated, per resource id (e.g. Resource Health "Unknown" passes with this note).
    health_notes: dict[str, str] = Field(default_factory=dict)  # the declared checks' outcome (None: none ran)
    template_hash: str | None = None
    git_sha: str | None = None
    initiator: str | None = None
    rollback: RollbackReport | None = None  # what the rollback did, when one ran

    @property
    def succeeded(self) -> bool:
        return self.outcome == DeployOutcome.SUCCEEDED


# ------------------------------------------------------------------------------------------ activity contracts


class RetrySchedule(_Model):
    """The environmental retry policy (see ``contract.retry``)."""

    initial_interval_seconds: float = 5.0
    backoff_coefficient: float = 2.0
    maximum_interval_seconds: float = 300.0
    maximum_retries: int = 5  # after the first attempt: 5, 10, 20, 40, 80 s


class ApprovalPolicy(_Model):
    """Who may approve or reject a deletion (four eyes), resolved on the worker (``services.config``)
    and recorded in history with the other settings. ``enabled`` False: anyone may decide (the single-user
    default). Identities compare case-insensitively; they are what the signal claims (see docs/SECURITY.md)."""

    enabled: bool = False
    allowed_approvers: list[str] | None = None  # None: any identity other than the initiator's
    allow_self_approval: bool = False  # the initiator may approve their own deployment
    allow_approver_override: bool = False  # the CLI's --as may name someone other than the OS user
    # Initiators whose --no-confirm-deletes the policy accepts (ORCHESTRATOR_ALLOW_SKIP_CONFIRMATION); anyone
    # else's is refused when the policy is on.
    skip_confirmation_allowed: list[str] = Field(default_factory=list)
    source: str = ""  # where the list came from (variable or file), for messages
    # The operator's approval policy file (ORCHESTRATOR_APPROVAL_POLICY): proofs, trust roots and rules. When set it
    # decides instead of the fields above; None: the claimed-name rules above (the embedded default).
    trust: TrustPolicy | None = None

    def refusal(self, *, approver: str, initiator: str, approving: bool) -> str | None:
        """Why ``approver`` may not decide, or None. A self-rejection is always allowed (it deploys nothing)."""
        if not self.enabled:
            return None
        who = approver.strip().lower()
        if not who:
            return "the signal names no approver"
        allowed = self.allowed_approvers
        self_rejection = not approving and who == initiator.strip().lower()
        if allowed is not None and who not in {a.strip().lower() for a in allowed} and not self_rejection:
            where = f" ({self.source})" if self.source else ""
            return f"{approver!r} is not among the allowed approvers{where}"
        if approving and who == initiator.strip().lower() and not self.allow_self_approval:
            return f"{approver!r} started this deployment; four eyes: another person must approve it"
        return None

    def skip_refusal(self, initiator: str) -> str | None:
        """Why ``initiator`` may not skip confirmation (--no-confirm-deletes), or None."""
        if not self.enabled:
            return None
        if initiator.strip().lower() in {a.strip().lower() for a in self.skip_confirmation_allowed}:
            return None
        where = f" ({self.source})" if self.source else ""
        return (
            f"the worker's four-eyes approval policy{where} requires another person to approve deletions, so "
            f"--no-confirm-deletes is refused for {initiator!r} (ORCHESTRATOR_ALLOW_SKIP_CONFIRMATION lists the "
            "initiators it is allowed for)"
        )


class DecisionAnswer(_Model):
    """Result of the ``approve``/``reject`` update: the decision was taken (the round is decided) or counted (one of
    the N approvals the policy needs)."""

    outcome: str  # taken, counted
    decision: ConfirmationDecision
    identity: str
    identity_verified: bool = False
    round: int = 1
    decision_id: str


class RefusedDecision(_Model):
    """An approve/reject signal the workflow refused: recorded (status, memo, history) and otherwise ignored.
    Refused: the policy's refusals, malformed or oversized payloads (``by``/``reason`` then hold short excerpts),
    decisions for another plan or none (after round 1), and late decisions (nothing pending, already decided)."""

    decision: ConfirmationDecision
    by: str
    reason: str = ""
    at: datetime
    why: str
    round: int = 1  # the pending round, or 0 when nothing was pending
    kind: str = "policy"  # policy, malformed, oversized, other-plan, unbound, late
    plan_hash: str | None = None  # the plan the decision named, if any
    decision_id: str | None = None
    identity_verified: bool = False
    statement_digest: str | None = None  # a signed decision's statement (contract/approvals.py)
    verification: VerificationResult | None = None  # what checking its proof found, when it was checked


class WorkerSettings(_Model):
    """Per-worker settings the workflow reads once through a local activity, so they are recorded in history."""

    retry: RetrySchedule = Field(default_factory=RetrySchedule)
    confirmation_timeout_seconds: float = 3600.0
    activity_timeout_seconds: float = 600.0
    deploy_timeout_seconds: float = 6 * 3600.0
    heartbeat_timeout_seconds: float = 30.0
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)  # four eyes
    # Where notifications go (ORCHESTRATOR_NOTIFICATIONS, docs/NOTIFICATIONS.md): sink names and patterns, no secret.
    notifications: NotificationRouting | None = None


class StageInput(_Model):
    """Input of the validate, lint and plan activities."""

    request: DeployRequest
    deployment_name: str
    attempt: int = 1
    # PLANNING: make sure the resource group exists in --location before the what-if (one activity, one round trip)
    ensure_resource_group: bool = False


class ValidationReport(_Model):
    parameter_names: list[str] = Field(default_factory=list)
    resource_count: int = 0
    warnings: list[str] = Field(default_factory=list)
    # Why the template was not expanded here and LINTING decides instead (None: it was expanded): Bicep source, or
    # an ARM JSON template with errors the lint gate lists in full (the engine would stop at the first).
    deferred_to_lint: str | None = None

    def summary(self) -> str:
        """The LINTING transition's detail (a report without ``deferred_to_lint`` reads as it always did)."""
        if self.deferred_to_lint:
            return self.deferred_to_lint
        return f"{self.resource_count} resources, parameters valid"


# A Bicep deployment stores its *source* as ``DeployRequest.template`` with this media type; LINTING compiles it and
# ``LintReport.apply_to`` swaps the compiled ARM JSON in for PLANNING and DEPLOYING (docs/LINT.md).
BICEP_MEDIA_TYPE = "text/x-bicep"


class LintReport(_Model):
    linter: str = "passthrough"
    warnings: list[str] = Field(default_factory=list)  # rendered: "path(line,col) : Warning CODE: message"
    template_kind: str = "arm-json"  # "bicep" | "arm-json"
    error_count: int = 0
    warning_count: int = 0
    info_count: int = 0
    bicep_version: str | None = None
    # The compiled template (Bicep only): what PLANNING and DEPLOYING use, and its "sha256:<hex>" for the audit.
    compiled_template: BlobRef | None = None
    compiled_template_hash: str | None = None
    # Every parameter value of a .bicepparam deployment (its values, then --param overrides), in the content store.
    parameters: BlobRef | None = None
    parameter_names: list[str] = Field(default_factory=list)
    secure_parameter_names: list[str] = Field(default_factory=list)  # those the compiled template declares secure

    def apply_to(self, request: DeployRequest) -> DeployRequest:
        """The request the later stages run: the compiled template and the .bicepparam parameters swapped in."""
        update: dict[str, Any] = {}
        if self.compiled_template is not None:
            update["template"] = self.compiled_template
        if self.parameters is not None:
            update.update(
                parameters={}, secure_parameters=self.parameters, secure_parameter_names=self.secure_parameter_names
            )
        return request.model_copy(update=update) if update else request


class EnsureResourceGroupResult(_Model):
    created: bool
    resource_group_id: str


class DeployInput(_Model):
    request: DeployRequest
    deployment_name: str
    # Heartbeat details recovered by the workflow from a timed-out attempt: resume, do not resubmit.
    resume_token: str | None = None
    attempt: int = 1


class DeployProgress(_Model):
    """What the deploy activity heartbeats."""

    deployment_name: str
    submitted: bool
    provisioning_state: str | None = None


class DeployOutcomeDetails(_Model):
    deployment_name: str
    deployment_id: str | None = None
    provisioning_state: str
    resources: list[str] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    submitted_by_this_attempt: bool = True
    duration: str | None = None
    request_retries: list[RequestRetry] = Field(default_factory=list)


class VerifyInput(_Model):
    request: DeployRequest
    deployment_name: str
    resources: list[str] = Field(default_factory=list)
    # When the workflow entered VERIFYING_HEALTH (Unix time): the stage's one convergence window starts here, for
    # every attempt of the resource-state wait and for the declared checks after it. None: the attempt's start.
    window_started_at: float | None = None


class HealthReport(_Model):
    healthy: list[str] = Field(default_factory=list)
    unhealthy: dict[str, str] = Field(default_factory=dict)  # id -> provisioningState or error
    # Resource Health: id -> Available/Unavailable/Degraded/Unknown, or NotSupported for the type
    availability: dict[str, str] = Field(default_factory=dict)
    notes: dict[str, str] = Field(default_factory=dict)  # id -> a tolerated state (Unknown in Resource Health)
    request_retries: list[RequestRetry] = Field(default_factory=list)


class CancelInput(_Model):
    subscription_id: str
    resource_group: str
    deployment_name: str


# ---------------------------------------------------------------------------------------------- Temporal names

WORKFLOW_NAME = "DeploymentWorkflow"
SIGNAL_APPROVE = "approve"
SIGNAL_REJECT = "reject"
# Workflow Updates with the same names and payload as the signals, for callers who need an answer: the result is a
# ``DecisionAnswer``; a refused decision fails the update with the reason (type ``DecisionRefused``) and is recorded
# as the signal's would be. The validator rejects only payloads that are not JSON or oversized (nothing in history).
UPDATE_APPROVE = "approve"
UPDATE_REJECT = "reject"
QUERY_STATUS = "status"
SIGNAL_ROLLBACK_PARAMETERS = "provide_rollback_parameters"


# ------------------------------------------------------------------------------------------- classification


class Classification(_Model):
    """What ``services.classification.classify_failure`` decided about one failure."""

    failure_class: FailureClass
    code: str
    message: str
    retry_after_seconds: float | None = None  # ARM's Retry-After, when it sent one
    http_status: int | None = None

    @property
    def error_type(self) -> str:
        """The ApplicationError type: names the class and the code, e.g. ``LOGIC.InvalidTemplate``."""
        return f"{self.failure_class.value}.{self.code}"

    @classmethod
    def attached(cls, error_type: str | None, message: str, details: Sequence[Any]) -> Classification | None:
        """The classification an activity attached to its ``ApplicationError`` (its first detail, see
        ``activities/errors.application_error``); for a failure without that detail, the one its type names.
        None when the failure is not one of ours."""
        if details and isinstance(details[0], dict):
            try:
                return cls.model_validate(details[0])
            except ValueError:
                pass
        parsed = parse_error_type(error_type)
        if parsed is None:
            return None
        return cls(failure_class=parsed[0], code=parsed[1], message=message)


def parse_error_type(error_type: str | None) -> tuple[FailureClass, str] | None:
    """``"ENVIRONMENTAL.TooManyRequests"`` → (ENVIRONMENTAL, "TooManyRequests"); None if not one of ours."""
    if not error_type:
        return None
    head, sep, code = error_type.partition(".")
    if not sep or head not in FailureClass.__members__:
        return None
    return FailureClass(head), code


class ActivityName:
    """Activity names, one place: the workflow schedules by name (it imports no activity code) and test fakes
    register under the same names."""

    RESOLVE_SETTINGS = "resolve_settings"
    VALIDATE_PARAMETERS = "validate_parameters"
    LINT_TEMPLATE = "lint_template"
    ENSURE_RESOURCE_GROUP = "ensure_resource_group"
    PLAN_DEPLOYMENT = "plan_deployment"
    DEPLOY = "deploy"
    CANCEL_DEPLOYMENT = "cancel_deployment"
    VERIFY_HEALTH = "verify_health"
    RUN_HEALTH_CHECKS = HEALTH_CHECK_ACTIVITY
    RECORD_LAST_GOOD = "record_last_good"
    LOAD_LAST_GOOD = "load_last_good"
    VERIFY_APPROVAL = "verify_approval"


def rollback_request(
    failed: DeployRequest, record: LastGoodDeployment, *, secure_parameters: BlobRef | None = None
) -> DeployRequest:
    """The request a rollback deploys: the last good template, parameters, mode and health checks, into the same
    resource group. ``secure_parameters`` replaces the record's (values provided for unrecoverable ones)."""
    secure = secure_parameters or record.secure_parameters
    return failed.model_copy(
        update={
            "location": record.location,
            "template": record.template,
            "template_path": record.template_path,
            "template_hash": record.template_hash,
            "parameters": dict(record.parameters),
            "secure_parameters": secure,
            "secure_parameter_names": list(record.secure_parameter_names) if secure else [],
            "parameters_path": None,
            "override_names": [],
            "mode": record.mode,
            "health": record.health,
            "skip_health": False,
            "git_sha": record.git_sha,
            "rollback_on_failure": False,
        }
    )
