"""Fleet rollouts: the same template to many resource groups, in ordered rings (docs/FLEET.md).

What crosses the process boundary between the CLI and ``RolloutWorkflow``: the request (the shared deployment plus
one small entry per target), the progress the workflow carries across continue-as-new, the status query's answer,
and the signal payloads. Each target still runs as an ordinary child ``DeploymentWorkflow``: its request is the
shared ``base`` with the target's subscription, resource group, location, parameter overrides and health checks.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contract.approvals import ApprovalProof, ApprovalStatement, DecisionEvidence
from contract.health import HealthSpec
from contract.models import DeployOutcome, DeployRequest, LastGoodDeployment, WhatIfPlan

ROLLOUT_WORKFLOW_NAME = "RolloutWorkflow"
QUERY_ROLLOUT_STATUS = "rollout_status"
SIGNAL_PAUSE = "rollout_pause"
SIGNAL_RESUME = "rollout_resume"
SIGNAL_ABORT = "rollout_abort"
SIGNAL_APPROVE_RING = "rollout_approve_ring"
PREVIEW_TARGET_ACTIVITY = "preview_rollout_target"

# Bounds that keep every payload (the request, the progress carried across continue-as-new, the status query) well
# under Temporal's 2 MB: a target's entry is a few hundred bytes.
MAX_TARGETS = 2000
MAX_RINGS = 50
MAX_OVERRIDES_BYTES = 4096  # a target's parameter overrides, as JSON
MAX_MESSAGE_CHARS = 300  # a target's failure message kept in the progress
# The parent continues as new once its history holds this many events and no child is running (Temporal warns at
# 10,240 events and stops a run at 51,200; one child costs about 8 events of the parent's history).
CONTINUE_AS_NEW_EVENTS = 4000
# ... or this many bytes: each child's start and completion events carry its DeployRequest and DeployResult (about
# 8.5 KB per target with the fake stage set), and Temporal warns at 10 MB of history and stops a run at 50 MB.
CONTINUE_AS_NEW_BYTES = 4 * 1024 * 1024


def rollout_workflow_id(name: str) -> str:
    """One running rollout per name: a second start of the same rollout file while one runs is refused."""
    return f"rollout-{name.lower()}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", use_enum_values=False)


class OnFailure(StrEnum):
    HALT = "halt"  # stop: no later target or ring starts
    ROLLBACK = "rollback"  # halt, then redeploy the ring's completed targets' previous good deployment (previewed)


class OnHalt(StrEnum):
    FINISH = "finish"  # targets already running finish (default)
    CANCEL = "cancel"  # targets already running are cancelled (their ARM deployment too)


class RolloutTarget(_Model):
    subscription_id: str
    resource_group: str
    location: str
    parameters: dict[str, Any] = Field(default_factory=dict)  # plain values, applied over the shared parameters
    health: HealthSpec | None = None  # replaces the shared health checks for this target

    @property
    def key(self) -> str:
        return f"{self.subscription_id.lower()}/{self.resource_group.lower()}"


class RolloutRing(_Model):
    name: str
    targets: list[RolloutTarget]
    max_parallel: int = 1
    bake_seconds: float = 0.0
    gates: HealthSpec | None = None  # must hold through the bake: checked every gate_interval_seconds and at its end
    gate_interval_seconds: float = 300.0
    requires_approval: bool = False
    on_failure: OnFailure = OnFailure.HALT
    on_halt: OnHalt = OnHalt.FINISH


class RolloutRequest(_Model):
    name: str
    base: DeployRequest  # template, shared parameters, mode, health; subscription/group/location of the first target
    rings: list[RolloutRing]
    initiator: str = "unknown"
    rollout_file: str | None = None
    preview_only: bool = False  # `rollout plan`: what-if of every target, nothing deployed
    # Continue as new once the history holds this many events and no child runs (tests and benchmarks lower it).
    history_limit: int = Field(default=CONTINUE_AS_NEW_EVENTS, ge=100, le=40_000)

    def target_request(self, target: RolloutTarget) -> DeployRequest:
        """The child deployment's request: the shared one with the target's place, overrides and checks."""
        params = dict(self.base.parameters)
        for key, value in target.parameters.items():
            for existing in [k for k in params if k.lower() == key.lower()]:
                del params[existing]  # ARM parameter names are case-insensitive
            params[key] = {"value": value}
        update: dict[str, Any] = {
            "subscription_id": target.subscription_id,
            "resource_group": target.resource_group,
            "location": target.location,
            "parameters": params,
            "override_names": sorted({*self.base.override_names, *target.parameters}),
        }
        if target.health is not None:
            update["health"] = target.health
        return self.base.model_copy(update=update)


class TargetState(StrEnum):
    PENDING = "PENDING"
    PREVIEWING = "PREVIEWING"
    PREVIEWED = "PREVIEWED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # halted before it started
    CANCELLED = "CANCELLED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"
    ROLLBACK_FAILED = "ROLLBACK_FAILED"


class RingState(StrEnum):
    PENDING = "PENDING"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    DEPLOYING = "DEPLOYING"
    BAKING = "BAKING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"
    HALTED = "HALTED"  # a ring before it failed, or the rollout was aborted: never started
    PREVIEWED = "PREVIEWED"


class RolloutState(StrEnum):
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    SUCCEEDED = "SUCCEEDED"
    HALTED = "HALTED"  # a ring failed; later rings did not start
    ABORTED = "ABORTED"
    PREVIEWED = "PREVIEWED"


class PlanCounts(_Model):
    creates: int = 0
    modifies: int = 0
    deletes: int = 0
    other: int = 0  # NoChange, Ignore, Deploy, Unsupported
    new_resource_group: bool = False
    error: str | None = None

    @classmethod
    def of(cls, plan: WhatIfPlan | None) -> PlanCounts:
        if plan is None:
            return cls()
        c = plan.counts
        return cls(
            creates=c.get("Create", 0),
            modifies=c.get("Modify", 0),
            deletes=c.get("Delete", 0),
            other=sum(v for k, v in c.items() if k not in ("Create", "Modify", "Delete")),
            new_resource_group=bool(plan.resource_group_created),
        )

    @property
    def changes(self) -> bool:
        return bool(self.creates or self.modifies or self.deletes or self.new_resource_group)


class TargetProgress(_Model):
    subscription_id: str
    resource_group: str
    state: TargetState = TargetState.PENDING
    workflow_id: str | None = None
    run_id: str | None = None  # the child deployment's run: `starter.py audit ID --run-id RUN` rebuilds its record
    outcome: DeployOutcome | None = None
    plan: PlanCounts | None = None
    message: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    rollback_preview: PlanCounts | None = None
    rollback_run_id: str | None = None


class RingProgress(_Model):
    name: str
    state: RingState = RingState.PENDING
    targets: list[TargetProgress]
    bake_until: float | None = None  # Unix time the bake ends (durable across worker restarts and continue-as-new)
    gate_checks: int = 0
    gate_failure: str | None = None
    approved_by: str | None = None
    # A ring that needs approval: the hash of its targets' previews (each what-if's content digest), which the
    # approval must name, and the approvals refused for naming another (the latest MAX_REFUSED_KEPT).
    plan_hash: str | None = None
    refused_approvals: list[str] = Field(default_factory=list)
    # Under the worker's approval policy: the approvals the ring needs (the most any of its targets' scopes asks
    # for) and those counted, with their verification (the ring starts once enough distinct people approved).
    required_approvals: int = 1
    approvals: list[DecisionEvidence] = Field(default_factory=list)
    statement_lifetime_seconds: int | None = None  # the policy's: how long a signed approval may be valid
    # The previous good deployment of each target (key ``sub/rg``), loaded before it deploys: what a rollback
    # redeploys. Kept only for rings that roll back, and dropped when the ring ends.
    previous: dict[str, LastGoodDeployment] = Field(default_factory=dict)


class RolloutProgress(_Model):
    rings: list[RingProgress]
    ring_index: int = 0
    paused: bool = False
    aborted_by: str | None = None
    abort_reason: str | None = None
    runs: int = 1  # runs of the rollout (continue-as-new adds one)
    halted_ring: str | None = None

    @classmethod
    def fresh(cls, request: RolloutRequest) -> RolloutProgress:
        return cls(
            rings=[
                RingProgress(
                    name=ring.name,
                    targets=[
                        TargetProgress(subscription_id=t.subscription_id, resource_group=t.resource_group)
                        for t in ring.targets
                    ],
                )
                for ring in request.rings
            ]
        )


class RolloutInput(_Model):
    """The workflow's one input: the request, and (after continue-as-new) where the previous run left off."""

    request: RolloutRequest
    progress: RolloutProgress | None = None


class RolloutStatus(_Model):
    """The ``rollout_status`` query's answer and (its final form) the workflow's result."""

    rollout_id: str
    name: str
    state: RolloutState
    rings: list[RingProgress]
    paused: bool = False
    aborted_by: str | None = None
    abort_reason: str | None = None
    halted_ring: str | None = None
    runs: int = 1
    history_length: int = 0
    preview_only: bool = False
    initiator: str = ""
    first_run_id: str = ""  # what a signed ring approval names as its run (stable across continue-as-new)

    def counts(self) -> dict[str, int]:
        tally: dict[str, int] = {}
        for ring in self.rings:
            for t in ring.targets:
                tally[t.state.value] = tally.get(t.state.value, 0) + 1
        return tally


class AbortSignal(_Model):
    by: str
    reason: str = ""


MAX_REFUSED_KEPT = 20


class ApproveRingSignal(_Model):
    ring: str
    by: str
    plan_hash: str | None = None  # the ring's aggregate plan hash the approver saw (`rollout status`)
    # Verified approvals (the worker's approval policy file): a statement for this rollout (``workflow_id``, its
    # first run id as ``run_id``), the ring (``round``: its position, 1-based), its plan hash and an empty
    # destructive set, with its proof (ssh or relay).
    statement: ApprovalStatement | None = None
    proof: ApprovalProof | None = None


def ring_round(ring_index: int) -> int:
    """The ``round`` a ring's approval statement names: the ring's position in the file, from 1."""
    return ring_index + 1


class PreviewInput(_Model):
    request: DeployRequest
    deployment_name: str


class TargetPreview(_Model):
    plan: WhatIfPlan | None = None
    resource_group_exists: bool = True
    resource_count: int = 0
