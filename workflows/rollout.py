"""The rollout workflow: one template to many resource groups, ring by ring (docs/FLEET.md).

Each target runs as a child ``DeploymentWorkflow`` with the id ``deploy-<subscription>-<rg>`` on the rollout's task
queue, so it is individually visible, approvable and audited exactly as if ``starter.py deploy`` had started it.
This workflow only decides: which targets start (at most ``max_parallel`` of a ring at once, none while paused),
how long a ring bakes (a durable timer whose end is kept as a time, so a restarted worker or a continued run waits
only for what remains), whether the health gates hold through the bake, and what a failure does (halt: no later
target or ring starts; rollback: preview, then redeploy the previous good deployment of the ring's completed
targets). The history stays bounded: the workflow continues as new when it grows long and no child is running.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hashlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.exceptions import CancelledError as TemporalCancelledError

with workflow.unsafe.imports_passed_through():
    from contract.approvals import (
        PROOF_UNVERIFIED,
        DecisionEvidence,
        VerificationResult,
        VerifyApprovalInput,
        statement_digest,
        statement_problem,
        utc_text,
    )
    from contract.health import HealthCheckInput, HealthCheckReport, health_activity_timeouts
    from contract.models import (
        WORKFLOW_NAME,
        ActivityName,
        DeployOutcome,
        DeployRequest,
        DeployResult,
        LastGoodLookup,
        LastGoodQuery,
        StageInput,
        WhatIfPlan,
        WorkerSettings,
        rollback_request,
    )
    from contract.naming import deployment_name_for, workflow_id_for
    from contract.retry import SINGLE_ATTEMPT
    from contract.rollout import (
        CONTINUE_AS_NEW_BYTES,
        MAX_MESSAGE_CHARS,
        MAX_REFUSED_KEPT,
        PREVIEW_TARGET_ACTIVITY,
        QUERY_ROLLOUT_STATUS,
        ROLLOUT_WORKFLOW_NAME,
        SIGNAL_ABORT,
        SIGNAL_APPROVE_RING,
        SIGNAL_PAUSE,
        SIGNAL_RESUME,
        AbortSignal,
        ApproveRingSignal,
        OnFailure,
        OnHalt,
        PlanCounts,
        PreviewInput,
        RingProgress,
        RingState,
        RolloutInput,
        RolloutProgress,
        RolloutRequest,
        RolloutRing,
        RolloutState,
        RolloutStatus,
        RolloutTarget,
        TargetPreview,
        TargetProgress,
        TargetState,
        ring_round,
    )

# workflow.patched ids: each marks a change of the commands the workflow issues (tests/fleet/test_rollout_replay.py).
# A ring that needs approval previews its targets first and binds the approval to the hash of those previews.
PATCH_RING_PLAN_HASH = "ring-approval-plan-hash"
# Ring approvals go through the worker's approval policy as deployment approvals do: four eyes (the rollout's
# initiator may not approve its rings), the allowed approvers of every target's scope, N of M distinct approvers, and
# signed (ssh) or relay proofs when the policy file demands them.
PATCH_RING_APPROVAL_POLICY = "ring-approval-policy"
SETTINGS_TIMEOUT = timedelta(seconds=10)
VERIFY_APPROVAL_TIMEOUT = timedelta(seconds=60)

ACTIVITY_TIMEOUT = timedelta(minutes=10)
LAST_GOOD_TIMEOUT = timedelta(seconds=60)
PREVIEW_PARALLEL = 10  # what-ifs of `rollout plan` at once, whatever the ring's max_parallel


def _short(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def _mark_finished(finished: list[int], index: int, _task: object) -> None:
    finished.append(index)


def _child_outcome(err: ChildWorkflowError) -> tuple[DeployOutcome | None, str]:
    """The failed child's outcome and message: its ``DeployResult`` is the first detail of its ApplicationError."""
    cause = err.cause
    message = str(cause or err)
    if isinstance(cause, ApplicationError) and cause.details:
        detail = cause.details[0]
        try:
            result = detail if isinstance(detail, DeployResult) else DeployResult.model_validate(detail)
        except (ValueError, TypeError):
            return None, message
        if result.failure is not None:
            message = f"{result.stage.value}: {result.failure.message}"
        return result.outcome, message
    return None, message


@workflow.defn(name=ROLLOUT_WORKFLOW_NAME)
class RolloutWorkflow:
    @workflow.init
    def __init__(self, inp: RolloutInput) -> None:
        self._request: RolloutRequest = inp.request
        self._progress: RolloutProgress = inp.progress or RolloutProgress.fresh(inp.request)
        self._children: dict[str, Any] = {}  # target key → running child handle (this run only)
        self._settings: WorkerSettings | None = None  # read when a ring first waits for approval in this run
        self._ring_approvals: list[ApproveRingSignal] = []  # received, checked by the run (proofs need an activity)

    # ---------------------------------------------------------------------------------------------- signals
    @workflow.signal(name=SIGNAL_PAUSE)
    def pause(self) -> None:
        self._progress.paused = True

    @workflow.signal(name=SIGNAL_RESUME)
    def resume(self) -> None:
        self._progress.paused = False

    @workflow.signal(name=SIGNAL_ABORT)
    def abort(self, signal: AbortSignal) -> None:
        if self._progress.aborted_by is None:
            self._progress.aborted_by = signal.by[:200]
            self._progress.abort_reason = signal.reason[:MAX_MESSAGE_CHARS]

    @workflow.signal(name=SIGNAL_APPROVE_RING)
    def approve_ring(self, signal: ApproveRingSignal) -> None:
        if self._policy_applies:  # also asked here: a signal may be handled before the run's first line
            # Checked by the run (a proof needs an activity); an approval of a ring that does not wait is dropped,
            # as it always was.
            if any(r.name == signal.ring and r.state is RingState.AWAITING_APPROVAL for r in self._progress.rings):
                self._ring_approvals.append(signal)
            return
        for ring in self._progress.rings:
            if ring.name != signal.ring or ring.state is not RingState.AWAITING_APPROVAL:
                continue
            if ring.plan_hash is not None and signal.plan_hash != ring.plan_hash:
                refused = f"{signal.by[:200]}: names plan {str(signal.plan_hash)[:80]}, the ring's is {ring.plan_hash}"
                ring.refused_approvals = [*ring.refused_approvals, refused][-MAX_REFUSED_KEPT:]
                continue
            ring.approved_by = signal.by[:200]

    @workflow.query(name=QUERY_ROLLOUT_STATUS)
    def status(self) -> RolloutStatus:
        return self._status(self._state())

    # ------------------------------------------------------------------------------------------------- run
    @workflow.run
    async def run(self, inp: RolloutInput) -> RolloutStatus:
        workflow.patched(PATCH_RING_APPROVAL_POLICY)  # asked first thing, so the marker is in the first task
        if self._request.preview_only:
            await self._preview_all()
            return self._status(RolloutState.PREVIEWED)
        p = self._progress
        while p.ring_index < len(self._request.rings):
            ring, rp = self._request.rings[p.ring_index], p.rings[p.ring_index]
            if self._aborted:
                break
            await self._run_ring(ring, rp)
            if rp.state in (RingState.FAILED, RingState.ROLLED_BACK, RingState.ROLLING_BACK) or self._aborted:
                break
            if rp.state is RingState.SUCCEEDED:
                p.ring_index += 1
                await self._continue_as_new_if_long()
            else:  # stopped mid-ring to continue as new
                await self._continue_as_new_if_long(force=True)
        for later in p.rings[p.ring_index :]:
            if later.state in (RingState.PENDING, RingState.AWAITING_APPROVAL, RingState.BAKING):
                later.state = RingState.HALTED
                for t in later.targets:
                    t.state = TargetState.SKIPPED
        final = self._state()
        workflow.logger.info("rollout %s ended %s", self._request.name, final.value)
        return self._status(final)

    @property
    def _policy_applies(self) -> bool:
        """Ring approvals under the worker's approval policy (runs started before it: any approval counts)."""
        return workflow.patched(PATCH_RING_APPROVAL_POLICY)

    @property
    def _aborted(self) -> bool:
        return self._progress.aborted_by is not None

    def _state(self) -> RolloutState:
        p = self._progress
        if self._request.preview_only:
            done = all(r.state is RingState.PREVIEWED for r in p.rings)
            return RolloutState.PREVIEWED if done else RolloutState.RUNNING
        if self._aborted:
            return RolloutState.ABORTED
        if p.halted_ring is not None:
            return RolloutState.HALTED
        if all(r.state is RingState.SUCCEEDED for r in p.rings):
            return RolloutState.SUCCEEDED
        return RolloutState.PAUSED if p.paused else RolloutState.RUNNING

    def _status(self, state: RolloutState) -> RolloutStatus:
        p = self._progress
        return RolloutStatus(
            rollout_id=workflow.info().workflow_id,
            name=self._request.name,
            state=state,
            rings=[r.model_copy(update={"previous": {}}) for r in p.rings],
            paused=p.paused,
            aborted_by=p.aborted_by,
            abort_reason=p.abort_reason,
            halted_ring=p.halted_ring,
            runs=p.runs,
            history_length=workflow.info().get_current_history_length(),
            preview_only=self._request.preview_only,
            initiator=self._request.initiator,
            first_run_id=workflow.info().first_execution_run_id,
        )

    async def _continue_as_new_if_long(self, *, force: bool = False) -> None:
        if force or self._history_long():
            await workflow.wait_condition(workflow.all_handlers_finished)
            self._progress.runs += 1
            workflow.continue_as_new(RolloutInput(request=self._request, progress=self._progress))

    def _history_long(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() >= self._request.history_limit
            or info.get_current_history_size() >= CONTINUE_AS_NEW_BYTES
            or info.is_continue_as_new_suggested()
        )

    # ------------------------------------------------------------------------------------------------ a ring
    async def _run_ring(self, ring: RolloutRing, rp: RingProgress) -> None:
        if rp.state is RingState.PENDING:
            await workflow.wait_condition(lambda: not self._progress.paused or self._aborted)
            if self._aborted:
                return
            if ring.requires_approval and rp.approved_by is None:
                if workflow.patched(PATCH_RING_PLAN_HASH):
                    rp.plan_hash = await self._ring_plan_hash(ring, rp)
                rp.state = RingState.AWAITING_APPROVAL
                await self._await_ring_approval(ring, rp)
                if self._aborted:
                    return
            rp.state = RingState.DEPLOYING
        if rp.state is RingState.AWAITING_APPROVAL:  # continued while waiting
            await self._await_ring_approval(ring, rp)
            if self._aborted:
                return
            rp.state = RingState.DEPLOYING
        if rp.state is RingState.DEPLOYING:
            stopped_for_history = await self._deploy_ring(ring, rp)
            if stopped_for_history:
                return
            if any(t.state in (TargetState.FAILED, TargetState.CANCELLED) for t in rp.targets):
                await self._fail_ring(ring, rp, reason="a target failed")
                return
            if self._aborted:
                rp.state = RingState.HALTED
                return
            rp.state = RingState.BAKING
            rp.bake_until = workflow.now().timestamp() + ring.bake_seconds
        if rp.state is RingState.BAKING:
            gate_failure = await self._bake(ring, rp)
            if self._aborted:
                return
            if gate_failure is not None:
                rp.gate_failure = gate_failure
                await self._fail_ring(ring, rp, reason=f"health gate failed: {gate_failure}")
                return
            rp.previous = {}
            rp.state = RingState.SUCCEEDED

    async def _deploy_ring(self, ring: RolloutRing, rp: RingProgress) -> bool:
        """Start the ring's pending targets, at most ``max_parallel`` at once. True when it stopped early so the
        workflow can continue as new (no child running then). Bookkeeping is O(1) per event (a queue of pending
        indexes, a list of finished ones), so a ring of hundreds of targets replays quickly."""
        for tp in rp.targets:  # a target RUNNING in the progress of a previous run was finished there
            if tp.state is TargetState.RUNNING:
                tp.state = TargetState.PENDING
        queue = collections.deque(i for i, tp in enumerate(rp.targets) if tp.state is TargetState.PENDING)
        running: dict[int, asyncio.Task[None]] = {}
        finished: list[int] = []
        failed = halted = False
        while True:
            if (failed or self._aborted) and not halted:
                halted = True
                if ring.on_halt is OnHalt.CANCEL:
                    for task in running.values():
                        task.cancel()
            stop_starting = halted or self._history_long()
            if not running and (not queue or stop_starting):
                break
            if not stop_starting and queue and len(running) < ring.max_parallel and not self._progress.paused:
                i = queue.popleft()
                rp.targets[i].state = TargetState.RUNNING
                task = asyncio.create_task(self._deploy_target(ring, ring.targets[i], rp.targets[i]))
                task.add_done_callback(functools.partial(_mark_finished, finished, i))
                running[i] = task
                continue
            await workflow.wait_condition(
                lambda: (
                    bool(finished)
                    or self._aborted
                    or (not self._progress.paused and len(running) < ring.max_parallel and bool(queue))
                )
            )
            for i in finished:
                running.pop(i, None)
                if rp.targets[i].state in (TargetState.FAILED, TargetState.CANCELLED, TargetState.RUNNING):
                    failed = True
                if rp.targets[i].state is TargetState.RUNNING:  # cancelled before it started
                    rp.targets[i].state = TargetState.CANCELLED
            finished.clear()
        if halted:
            for i in queue:
                rp.targets[i].state = TargetState.SKIPPED
            return False
        return bool(queue)

    async def _deploy_target(self, ring: RolloutRing, target: RolloutTarget, tp: TargetProgress) -> None:
        request = self._request.target_request(target)
        if ring.on_failure is OnFailure.ROLLBACK:
            await self._remember_previous(request, target, ring, tp)
        tp.started_at = workflow.now().timestamp()
        tp.workflow_id = workflow_id_for(target.subscription_id, target.resource_group)
        try:
            result = await self._run_child(request, tp.workflow_id, tp, run_attr="run_id")
            tp.outcome = result.outcome
            tp.plan = PlanCounts.of(result.plan)
            tp.state = TargetState.SUCCEEDED if result.succeeded else TargetState.FAILED
        except ChildWorkflowError as err:
            tp.outcome, message = _child_outcome(err)
            tp.message = _short(message)
            cancelled = tp.outcome is DeployOutcome.CANCELLED or isinstance(err.cause, TemporalCancelledError)
            tp.state = TargetState.CANCELLED if cancelled else TargetState.FAILED
        except WorkflowAlreadyStartedError:
            tp.state = TargetState.FAILED
            tp.message = f"another deployment of {target.resource_group} is running ({tp.workflow_id})"
        except asyncio.CancelledError:
            tp.state = TargetState.CANCELLED
            tp.message = "cancelled: the ring halted (on_halt: cancel) or the rollout was aborted"
        tp.ended_at = workflow.now().timestamp()

    async def _run_child(
        self, request: DeployRequest, workflow_id: str, tp: TargetProgress, *, run_attr: str
    ) -> DeployResult:
        handle = await workflow.start_child_workflow(
            WORKFLOW_NAME,
            request,
            id=workflow_id,
            result_type=DeployResult,
            parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
            memo={
                "subscription_id": request.subscription_id,
                "resource_group": request.resource_group,
                "initiator": request.initiator,
                "template": request.template_path or request.template.digest,
                "rollout": workflow.info().workflow_id,
            },
            static_summary=f"rollout {self._request.name}: deploy to {request.resource_group}",
        )
        setattr(tp, run_attr, handle.first_execution_run_id)
        result: DeployResult = await handle
        return result

    async def _remember_previous(
        self, request: DeployRequest, target: RolloutTarget, ring: RolloutRing, tp: TargetProgress
    ) -> None:
        rp = self._progress.rings[self._request.rings.index(ring)]
        try:
            lookup = await workflow.execute_local_activity(
                ActivityName.LOAD_LAST_GOOD,
                LastGoodQuery(subscription_id=request.subscription_id, resource_group=request.resource_group),
                result_type=LastGoodLookup,
                start_to_close_timeout=LAST_GOOD_TIMEOUT,
                retry_policy=SINGLE_ATTEMPT,
            )
        except ActivityError:
            return
        if lookup.record is not None:
            rp.previous[target.key] = lookup.record

    async def _ring_plan_hash(self, ring: RolloutRing, rp: RingProgress) -> str:
        """Preview every target of the ring (what-if; the plan counts go to the status) and hash the previews: each
        what-if's content digest (or, for a group that does not exist yet, the count it would create)."""
        lines: list[str] = []
        rollout_id = workflow.info().workflow_id
        for target, tp in zip(ring.targets, rp.targets, strict=True):
            request = self._request.target_request(target)
            name = deployment_name_for(resource_group=target.resource_group, workflow_id=rollout_id, run_id="approval")
            counts, digest = await self._preview_with_digest(request, name)
            tp.plan = counts
            lines.append(f"{target.key}={digest}")
        return "sha256:" + hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()

    # ------------------------------------------------------------------------------------------ ring approval
    async def _await_ring_approval(self, ring: RolloutRing, rp: RingProgress) -> None:
        """Wait until the ring is approved (or the rollout aborted). Under the policy, each approval received is
        checked here: its proof by the verify_approval activity, its identity against every target's scope."""
        if not self._policy_applies:
            await workflow.wait_condition(lambda: rp.approved_by is not None or self._aborted)
            return
        if self._settings is None:
            self._settings = await workflow.execute_local_activity(
                ActivityName.RESOLVE_SETTINGS,
                StageInput(
                    request=self._request.target_request(ring.targets[0]),
                    deployment_name=f"rollout-{self._request.name}",
                ),
                result_type=WorkerSettings,
                start_to_close_timeout=SETTINGS_TIMEOUT,
                summary="read the worker's approval policy",
            )
        trust = self._settings.approval.trust
        if trust is not None:
            rp.statement_lifetime_seconds = trust.statement_lifetime_seconds
            rp.required_approvals = max(trust.required_approvals(t.subscription_id, t.resource_group)
                                        for t in ring.targets)  # fmt: skip
        while rp.approved_by is None and not self._aborted:
            await workflow.wait_condition(
                lambda: rp.approved_by is not None or self._aborted or bool(self._ring_approvals)
            )
            while self._ring_approvals and rp.approved_by is None and not self._aborted:
                await self._take_ring_approval(self._ring_approvals.pop(0))

    def _refuse_ring_approval(self, rp: RingProgress, by: str, why: str) -> None:
        refused = f"{by[:200]}: {why}"
        rp.refused_approvals = [*rp.refused_approvals, refused][-MAX_REFUSED_KEPT:]
        workflow.logger.warning("approval of ring %s refused: %s", rp.name, refused)

    async def _take_ring_approval(self, signal: ApproveRingSignal) -> None:
        """One approval of the waiting ring, through the worker's approval policy."""
        p = self._progress
        index = next((i for i, r in enumerate(p.rings) if r.name == signal.ring), None)
        if index is None or p.rings[index].state is not RingState.AWAITING_APPROVAL:
            return  # as before the policy: an approval of a ring that does not wait changes nothing
        ring, rp = self._request.rings[index], p.rings[index]
        assert self._settings is not None
        approval, request = self._settings.approval, self._request
        trust = approval.trust
        by = signal.statement.identity if signal.statement is not None else signal.by
        if rp.plan_hash is not None and signal.plan_hash != rp.plan_hash:
            why = f"names plan {str(signal.plan_hash)[:80]}, the ring's is {rp.plan_hash}"
            self._refuse_ring_approval(rp, by, why)
            return
        now = workflow.now()
        if trust is None:
            why_not = approval.refusal(approver=signal.by, initiator=request.initiator, approving=True)
            if why_not is not None:
                self._refuse_ring_approval(rp, by, why_not.replace("this deployment", "this rollout"))
                return
            verification = VerificationResult(verified=False, proof_kind=PROOF_UNVERIFIED, identity=signal.by,
                                              why="a claimed name", checked_at=utc_text(now))  # fmt: skip
        elif signal.statement is None and signal.proof is None:
            if not trust.accepts(PROOF_UNVERIFIED):
                self._refuse_ring_approval(
                    rp,
                    by,
                    f"an unsigned approval (a claimed name) is refused: the approval policy accepts only "
                    f"{', '.join(trust.accepted_proofs)} proofs; sign it with `python starter.py rollout approve "
                    f"{workflow.info().workflow_id} --ring {ring.name} --key ~/.ssh/id_ed25519`",
                )
                return
            verification = VerificationResult(verified=False, proof_kind=PROOF_UNVERIFIED, identity=signal.by,
                                              why="a claimed name, accepted because the policy accepts unverified "
                                              "decisions", failure="unverified", policy_digest=trust.digest(),
                                              checked_at=utc_text(now))  # fmt: skip
        else:
            checked = await self._verify_ring_statement(signal, index, rp)
            if checked is None:
                return
            verification = checked
        identity = verification.identity
        if trust is not None:
            for target in ring.targets:
                why_not = trust.refusal(
                    identity=identity,
                    initiator=request.initiator,
                    approving=True,
                    subscription=target.subscription_id,
                    resource_group=target.resource_group,
                )
                if why_not is not None:
                    self._refuse_ring_approval(rp, identity, why_not.replace("this deployment", "this rollout"))
                    return
        if identity.lower() in {e.identity.lower() for e in rp.approvals}:
            self._refuse_ring_approval(rp, identity, f"already approved ring {ring.name}; distinct approvers count")
            return
        rp.approvals = [*rp.approvals, DecisionEvidence(decision="approve", identity=identity,
                                                        statement=signal.statement, proof=signal.proof,
                                                        verification=verification, at=utc_text(now))]  # fmt: skip
        if len(rp.approvals) >= rp.required_approvals:
            rp.approved_by = ", ".join(e.identity for e in rp.approvals)[:200]

    async def _verify_ring_statement(
        self, signal: ApproveRingSignal, index: int, rp: RingProgress
    ) -> VerificationResult | None:
        """A signed approval: the statement must be for this rollout (its first run), this ring and its plan, current
        and not counted before; then its proof is checked. The verification, or None (refused and recorded)."""
        assert self._settings is not None and self._settings.approval.trust is not None
        trust = self._settings.approval.trust
        statement, proof = signal.statement, signal.proof
        by = statement.identity if statement is not None else signal.by
        if statement is None or proof is None:
            self._refuse_ring_approval(rp, by, "a signed approval needs both a statement and a proof")
            return None
        info = workflow.info()
        problem = statement_problem(
            statement,
            workflow_id=info.workflow_id,
            run_id=info.first_execution_run_id,
            round_number=ring_round(index),
            plan_hash=rp.plan_hash,
            destructive_set=[],
            decision="approve",
            now=workflow.now(),
            lifetime_seconds=trust.statement_lifetime_seconds,
        )
        if problem is not None:
            self._refuse_ring_approval(rp, by, f"{problem[0]} statement refused: {problem[1]}")
            return None
        digest = statement_digest(statement)
        if any(e.statement is not None and statement_digest(e.statement) == digest for e in rp.approvals):
            self._refuse_ring_approval(rp, by, f"replay refused: statement {digest[:19]}… was already counted")
            return None
        if not trust.accepts(proof.kind):
            self._refuse_ring_approval(rp, by, f"the approval policy does not accept {proof.kind} proofs")
            return None
        try:
            result = await workflow.execute_activity(
                ActivityName.VERIFY_APPROVAL,
                VerifyApprovalInput(statement=statement, proof=proof, policy=trust),
                result_type=VerificationResult,
                start_to_close_timeout=VERIFY_APPROVAL_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary=f"verify {statement.identity}'s {proof.kind} proof for ring {rp.name}",
            )
        except ActivityError as exc:
            self._refuse_ring_approval(rp, by, f"the proof could not be checked: {exc.cause or exc}")
            return None
        if not result.verified:
            self._refuse_ring_approval(rp, by, f"proof refused: {result.why}")
            return None
        return result

    # ------------------------------------------------------------------------------------------------- bake
    async def _bake(self, ring: RolloutRing, rp: RingProgress) -> str | None:
        """Wait until ``bake_until`` (what remains of it after a restart), running the gates every interval and at
        the end. The failing gate's summary, or None."""
        assert rp.bake_until is not None
        while True:
            remaining = rp.bake_until - workflow.now().timestamp()
            if remaining <= 0:
                break
            step = min(remaining, ring.gate_interval_seconds) if ring.gates else remaining
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._aborted, timeout=timedelta(seconds=step))
            if self._aborted:
                return None
            if ring.gates and rp.bake_until - workflow.now().timestamp() > 0:
                failure = await self._check_gates(ring, rp)
                if failure:
                    return failure
        if ring.gates:
            return await self._check_gates(ring, rp)
        return None

    async def _check_gates(self, ring: RolloutRing, rp: RingProgress) -> str | None:
        assert ring.gates is not None
        start_to_close, heartbeat = health_activity_timeouts(ring.gates)
        rp.gate_checks += 1
        try:
            report = await workflow.execute_activity(
                ActivityName.RUN_HEALTH_CHECKS,
                HealthCheckInput(
                    spec=ring.gates,
                    deployment_name=f"rollout {self._request.name} ring {ring.name} gate",
                    subscription_id=ring.targets[0].subscription_id,
                ),
                result_type=HealthCheckReport,
                start_to_close_timeout=start_to_close,
                heartbeat_timeout=heartbeat,
                retry_policy=SINGLE_ATTEMPT,
                summary=f"health gates of ring {ring.name}",
            )
        except ActivityError as err:
            return _short(f"the gate check could not run: {err.cause or err}")
        return None if report.healthy else _short(report.summary())

    # -------------------------------------------------------------------------------------------- failure
    async def _fail_ring(self, ring: RolloutRing, rp: RingProgress, *, reason: str) -> None:
        self._progress.halted_ring = rp.name
        rp.state = RingState.FAILED
        workflow.logger.info("ring %s failed (%s): later rings halt", rp.name, reason)
        if ring.on_failure is OnFailure.ROLLBACK and not self._aborted:
            await self._roll_back(ring, rp)

    async def _roll_back(self, ring: RolloutRing, rp: RingProgress) -> None:
        """Preview (what-if) every completed target's rollback first, recorded in the status, then redeploy each
        target's previous good deployment as an ordinary child deployment (its own plan and gates)."""
        rp.state = RingState.ROLLING_BACK
        targets = {t.key: t for t in ring.targets}
        todo: list[tuple[TargetProgress, DeployRequest]] = []
        for tp in rp.targets:
            key = f"{tp.subscription_id.lower()}/{tp.resource_group.lower()}"
            if tp.state is not TargetState.SUCCEEDED:
                continue
            record = rp.previous.get(key)
            if record is None:
                tp.message = "no earlier good deployment to roll back to: left as deployed"
                continue
            request = rollback_request(self._request.target_request(targets[key]), record)
            todo.append((tp, request))
        for tp, request in todo:
            rollout_id = workflow.info().workflow_id
            name = deployment_name_for(resource_group=request.resource_group, workflow_id=rollout_id, run_id="preview")
            tp.rollback_preview = await self._preview(request, name)
        for tp, request in todo:
            tp.state = TargetState.ROLLING_BACK
            try:
                result = await self._run_child(request, tp.workflow_id or "", tp, run_attr="rollback_run_id")
                tp.state = TargetState.ROLLED_BACK if result.succeeded else TargetState.ROLLBACK_FAILED
            except ChildWorkflowError as err:
                tp.state = TargetState.ROLLBACK_FAILED
                tp.message = _short(_child_outcome(err)[1])
            except WorkflowAlreadyStartedError:
                tp.state = TargetState.ROLLBACK_FAILED
                tp.message = "another deployment of this resource group is running"
        rp.previous = {}
        rp.state = (
            RingState.ROLLED_BACK
            if all(tp.state is not TargetState.ROLLBACK_FAILED for tp in rp.targets)
            else RingState.FAILED
        )

    # -------------------------------------------------------------------------------------------- preview
    async def _preview(self, request: DeployRequest, name: str) -> PlanCounts:
        return (await self._preview_with_digest(request, name))[0]

    async def _preview_with_digest(self, request: DeployRequest, name: str) -> tuple[PlanCounts, str]:
        try:
            preview = await workflow.execute_activity(
                PREVIEW_TARGET_ACTIVITY,
                PreviewInput(request=request, deployment_name=name),
                result_type=TargetPreview,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=SINGLE_ATTEMPT,
                summary=f"what-if of {request.resource_group}",
            )
        except ActivityError as err:
            message = _short(str(err.cause or err))
            return PlanCounts(error=message), f"error:{message}"
        if not preview.resource_group_exists:
            counts = PlanCounts(creates=preview.resource_count, new_resource_group=True)
            return counts, f"new:{preview.resource_count}"
        plan = preview.plan
        if plan is not None and plan.full_result is not None:
            digest = plan.full_result.digest
        else:
            changes = [(c.resource_id.lower(), c.change_type.value) for c in (plan.changes if plan else [])]
            digest = "changes:" + hashlib.sha256(repr(sorted(changes)).encode()).hexdigest()
        return PlanCounts.of(plan), digest

    async def _preview_all(self) -> None:
        jobs: list[tuple[RolloutTarget, TargetProgress]] = []
        for ring, rp in zip(self._request.rings, self._progress.rings, strict=True):
            rp.state = RingState.DEPLOYING
            jobs += list(zip(ring.targets, rp.targets, strict=True))
        run_id = workflow.info().run_id

        async def one(target: RolloutTarget, tp: TargetProgress) -> None:
            tp.state = TargetState.PREVIEWING
            request = self._request.target_request(target)
            name = deployment_name_for(resource_group=target.resource_group, workflow_id=target.key, run_id=run_id)
            tp.plan = await self._preview(request, name)
            tp.state = TargetState.PREVIEWED

        for start in range(0, len(jobs), PREVIEW_PARALLEL):
            await asyncio.gather(*(one(t, tp) for t, tp in jobs[start : start + PREVIEW_PARALLEL]))
        for rp in self._progress.rings:
            rp.state = RingState.PREVIEWED


__all__ = ["RolloutWorkflow", "StageInput", "WhatIfPlan"]
