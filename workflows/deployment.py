"""The deployment workflow: INITIALIZED → VALIDATING_PARAMETERS → LINTING → PLANNING → [AWAITING_CONFIRMATION] →
DEPLOYING → VERIFYING_HEALTH → COMPLETED, or FAILED (→ ROLLED_BACK).

Every stage is an activity; the workflow only decides. It drives retries itself, one activity execution per
attempt (see ``contract.retry``), so each attempt, its classified failure and each backoff timer is an event in
history. Every transition is upserted into the memo (``stage`` and ``transition``), so history alone reconstructs
the audit record: who started it (the request), what the plan was (the plan activity's result), who approved or
rejected and why (the signal events), every attempt and failure (activity events) and every stage change.

Signals ``approve`` and ``reject`` take one JSON object ``{"approver": ..., "reason": ...}``; the query ``status``
returns a ``DeploymentStatus``. Secure parameter values never pass through here (the request holds a reference).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TimeoutType,
)
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from contract import spans
    from contract.approvals import (
        PROOF_UNVERIFIED,
        DecisionEvidence,
        TrustPolicy,
        VerificationResult,
        VerifyApprovalInput,
        start_problem,
        statement_digest,
        statement_problem,
        summary_of,
        utc_text,
    )
    from contract.health import HealthCheckInput, HealthCheckReport, HealthProgress, health_activity_timeouts
    from contract.models import (
        MAX_REFUSED_KEPT,
        QUERY_STATUS,
        SIGNAL_APPROVE,
        SIGNAL_REJECT,
        SIGNAL_ROLLBACK_PARAMETERS,
        UPDATE_APPROVE,
        UPDATE_REJECT,
        WORKFLOW_NAME,
        ActivityName,
        ApprovalPolicy,
        ApprovalSignal,
        CancelInput,
        Classification,
        ConfirmationDecision,
        ConfirmationRecord,
        DecisionAnswer,
        DeployInput,
        DeploymentStage,
        DeploymentStatus,
        DeployOutcome,
        DeployOutcomeDetails,
        DeployRequest,
        DeployResult,
        EnsureResourceGroupResult,
        FailureClass,
        FailureInfo,
        HealthReport,
        LastGoodDeployment,
        LastGoodLookup,
        LastGoodQuery,
        LegacyApprovalSignal,
        LintReport,
        PendingConfirmation,
        RecordLastGoodInput,
        RefusedDecision,
        RollbackParametersSignal,
        RollbackReport,
        RollbackState,
        StageInput,
        StageProgress,
        StageTransition,
        ValidationReport,
        VerifyInput,
        WhatIfPlan,
        WorkerSettings,
        excerpt,
        parse_decision,
        rollback_request,
    )
    from contract.naming import deployment_name_for
    from contract.notifications import (
        NotificationEvent,
        NotificationFailure,
        NotificationKind,
        event_id,
    )
    from contract.plan_text import plan_documents, render_plan
    from contract.retry import SINGLE_ATTEMPT, next_delay
    from contract.search_attributes import DEPLOYMENT_STATE
    from workflows import metrics as deployment_metrics
    from workflows.notification import announce
    from workflows.spans import stage_span

T = TypeVar("T")

SETTINGS_TIMEOUT = timedelta(seconds=10)
# workflow.patched ids: each marks a change of the commands the workflow issues, so histories of runs started by an
# older worker still replay (tests/workflow/test_replay.py).
PATCH_PLAN_ENSURES_RG = "plan-ensures-rg"  # the plan activity ensures the resource group (was its own activity)
PATCH_FOUR_EYES = "four-eyes"  # approve/reject from someone the approval policy refuses is recorded, ignored
PATCH_RECORD_LAST_GOOD = "record-last-good"  # a healthy COMPLETED deployment is recorded for rollbacks
PATCH_ROLLBACK = "rollback-on-failure"  # --rollback-on-failure redeploys the last good deployment
PATCH_STATE_SEARCH_ATTRIBUTE = "state-search-attribute"  # DeploymentState upserted at each transition
# Decisions hardened: every approve/reject is parsed by the workflow (a malformed or oversized one is recorded as
# refused, never dropped), bound to the plan it names (the unbound plain form only in round 1), a late one is
# recorded as refused, and --no-confirm-deletes is refused under a four-eyes policy that does not allow it.
PATCH_DECISION_RECORDS = "decision-records"
# Verified approvals (docs/SECURITY.md): under an approval policy file, a signed decision's statement is checked
# against the pending round, its proof by the verify_approval activity, and N of M distinct approvers are counted.
PATCH_VERIFIED_DECISIONS = "verified-decisions"
PATCH_VERIFIED_START = "verified-start"  # the initiator's signed start statement checked before any stage
VERIFY_APPROVAL_TIMEOUT = timedelta(seconds=60)
PATCH_OUTCOME_MEMO = "outcome-memo"  # the final transition's memo upsert also carries the outcome (list's column)
# Health checks that failed only because of their declaration (an output that cannot be used, a target the worker's
# request policy refuses) fail as LOGIC and never roll back (older runs failed them as HealthCheckFailed).
PATCH_HEALTH_DECLARATION_LOGIC = "health-declaration-logic"
# Notifications (docs/NOTIFICATIONS.md): approval needed, completed, failed and rolled back each start a detached
# notification workflow, when the worker's settings route the event to a sink.
PATCH_NOTIFICATIONS = "notifications"
LAST_GOOD_TIMEOUT = timedelta(seconds=60)
HEALTH_DECLARATION_FAILED = "HealthDeclarationFailed"
DETAILS_PLAN_LINES = 60  # the plan in the UI's current details is cut after this many lines (the query has it all)


class StageFailed(Exception):
    """Raised inside the workflow when a stage gives up; turned into the workflow's ApplicationError."""

    def __init__(self, failure: FailureInfo, outcome: DeployOutcome, by: str | None = None) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.outcome = outcome
        self.by = by


@workflow.defn(name=WORKFLOW_NAME)
class DeploymentWorkflow:
    @workflow.init
    def __init__(self, request: DeployRequest) -> None:
        info = workflow.info()
        self._request = request
        self._settings = WorkerSettings()
        self._decision: tuple[ConfirmationDecision, ApprovalSignal, str | None] | None = None
        # Verified approvals: signed decisions waiting for their proof's check, statements already used (a replay is
        # refused), and the decisions counted in the pending round (N of M).
        self._to_verify: list[tuple[ConfirmationDecision, ApprovalSignal]] = []
        self._used_statements: set[str] = set()
        self._round_evidence: list[DecisionEvidence] = []
        self._counted: dict[str, DecisionEvidence] = {}  # decision id → counted as one of N approvals (for updates)
        self._last_deploy: DeployOutcomeDetails | None = None
        self._health_checks: HealthCheckReport | None = None
        self._last_health: HealthReport | None = None
        self._rollback_parameters: RollbackParametersSignal | None = None
        self._state_attribute = False  # upsert DeploymentState at each transition (decided in run)
        self._outcome_memo = False  # the final transition's memo carries the outcome (decided in run)
        self._verified_start = False  # a signed start is checked (decided in run)
        self._notifications = False  # events go to the worker's sinks (decided in run)
        self._rolling_back = False  # stage attempts go to the rollback's own record while set
        self._status = DeploymentStatus(
            workflow_id=info.workflow_id,
            deployment_name=deployment_name_for(
                resource_group=request.resource_group, workflow_id=info.workflow_id, run_id=info.run_id
            ),
            subscription_id=request.subscription_id,
            resource_group=request.resource_group,
            stage=DeploymentStage.INITIALIZED,
            transitions=[
                StageTransition(
                    stage=DeploymentStage.INITIALIZED,
                    at=workflow.now(),
                    detail="deployment requested",
                    by=request.initiator,
                )
            ],
        )

    # ------------------------------------------------------------------------------------ signals and query

    # The decision signals take the raw payload and read it themselves (``parse_decision``): typed, a payload that
    # did not convert was dropped by the SDK with a traceback and left a signal in history no model could read.
    @workflow.signal(name=SIGNAL_APPROVE)
    def approve(self, payload: RawValue) -> None:
        self._on_decision(ConfirmationDecision.APPROVED, payload)

    @workflow.signal(name=SIGNAL_REJECT)
    def reject(self, payload: RawValue) -> None:
        self._on_decision(ConfirmationDecision.REJECTED, payload)

    @workflow.update(name=UPDATE_APPROVE)
    async def approve_update(self, payload: RawValue) -> DecisionAnswer:
        return await self._decide_by_update(ConfirmationDecision.APPROVED, payload)

    @approve_update.validator
    def _validate_approve(self, payload: RawValue) -> None:
        self._validate_decision_update(payload)

    @workflow.update(name=UPDATE_REJECT)
    async def reject_update(self, payload: RawValue) -> DecisionAnswer:
        return await self._decide_by_update(ConfirmationDecision.REJECTED, payload)

    @reject_update.validator
    def _validate_reject(self, payload: RawValue) -> None:
        self._validate_decision_update(payload)

    @workflow.signal(name=SIGNAL_ROLLBACK_PARAMETERS)
    def provide_rollback_parameters(self, payload: RawValue) -> None:
        """Secure values a rollback could not recover (a reference into the content store, never the values).
        Read from the raw payload: a malformed one is logged and ignored (no command, as the SDK's drop was),
        never a traceback."""
        try:
            signal = RollbackParametersSignal.model_validate(workflow.payload_converter().from_payload(payload.payload))
        except Exception:
            workflow.logger.warning("a malformed %s signal was ignored", SIGNAL_ROLLBACK_PARAMETERS)
            return
        rollback = self._status.rollback
        if rollback is None or rollback.state != "AWAITING_PARAMETERS" or self._rollback_parameters is not None:
            workflow.logger.warning("rollback parameters from %s ignored: none are awaited", signal.provided_by)
            return
        missing = {n.lower() for n in rollback.missing_secure_parameters} - {n.lower() for n in signal.names}
        if missing:
            workflow.logger.warning(
                "rollback parameters from %s ignored: %s still missing", signal.provided_by, ", ".join(sorted(missing))
            )
            return
        self._rollback_parameters = signal

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> DeploymentStatus:
        return self._status

    @staticmethod
    def _decode_decision(payload: RawValue) -> tuple[Any, bool]:
        try:
            return workflow.payload_converter().from_payload(payload.payload), True
        except Exception:  # not JSON (another encoding): refused like any malformed payload
            return None, False

    def _on_decision(self, decision: ConfirmationDecision, payload: RawValue) -> None:
        value, readable = self._decode_decision(payload)
        self._on_decision_value(decision, value, readable)

    def _validate_decision_update(self, payload: RawValue) -> None:
        """An update that cannot be read or is oversized is rejected before it is written to history (a flood of
        them cannot grow it); every other decision is accepted and then taken, counted or refused-and-recorded."""
        value, readable = self._decode_decision(payload)
        if not readable:
            raise ValueError("the payload is not JSON")
        signal, kind, why = parse_decision(value)
        if signal is None and kind == "oversized":
            raise ValueError(f"oversized decision refused: {why}")

    async def _decide_by_update(self, decision: ConfirmationDecision, payload: RawValue) -> DecisionAnswer:
        """The update's answer: handled exactly as the signal (and recorded the same way), then the caller learns
        whether it was taken, counted, or refused and why (an ApplicationError ``DecisionRefused``)."""
        value, readable = self._decode_decision(payload)
        signal, kind, why = parse_decision(value)
        if signal is None:
            self._on_decision_value(decision, value, readable)
            raise ApplicationError(f"{kind} decision refused: {why}", type="DecisionRefused", non_retryable=True)
        info = workflow.current_update_info()
        decision_id = signal.decision_id or f"update-{info.id if info else workflow.uuid4().hex}"[:80]
        self._on_decision_value(decision, {**value, "decision_id": decision_id}, True)
        await workflow.wait_condition(lambda: self._decision_answer(decision_id) is not None)
        answer = self._decision_answer(decision_id)
        assert answer is not None
        if isinstance(answer, RefusedDecision):
            raise ApplicationError(
                f"{answer.kind} decision refused: {answer.why}", answer.kind, type="DecisionRefused", non_retryable=True
            )
        return answer

    def _decision_answer(self, decision_id: str) -> DecisionAnswer | RefusedDecision | None:
        for refused in reversed(self._status.refused_decisions):
            if refused.decision_id == decision_id:
                return refused
        for record in self._status.confirmations:
            if record.decision_id == decision_id:
                return DecisionAnswer(
                    outcome="taken",
                    decision=record.decision,
                    identity=record.by,
                    identity_verified=record.identity_verified,
                    round=record.round,
                    decision_id=decision_id,
                )
        evidence = self._counted.get(decision_id)
        if evidence is not None and self._status.pending_confirmation is not None:
            return DecisionAnswer(
                outcome="counted",
                decision=ConfirmationDecision.APPROVED,
                identity=evidence.identity,
                identity_verified=evidence.verification.verified,
                round=self._status.pending_confirmation.round,
                decision_id=decision_id,
            )
        return None

    def _on_decision_value(self, decision: ConfirmationDecision, value: Any, readable: bool) -> None:
        if not workflow.patched(PATCH_DECISION_RECORDS):
            self._on_decision_before_records(decision, value)
            return
        signal, kind, why = parse_decision(value) if readable else (None, "malformed", "the payload is not JSON")
        pending = self._status.pending_confirmation
        if signal is None:
            doc = value if isinstance(value, dict) else {}
            self._refuse(
                decision,
                by=excerpt(doc.get("approver", "?"), 80) if doc else "?",
                reason=excerpt(doc.get("reason", "") if doc else value),
                why=f"{kind} decision refused: {why}",
                kind=kind,
                round_number=pending.round if pending is not None else 0,
            )
            return
        refuse = lambda why, kind: self._refuse(  # noqa: E731
            decision,
            by=signal.approver,
            reason=signal.reason,
            why=why,
            kind=kind,
            round_number=pending.round if pending is not None else 0,
            signal=signal,
        )
        if pending is None or self._decision is not None:
            refuse(self._why_late(), "late")
            return
        trust = self._settings.approval.trust
        if trust is not None and workflow.patched(PATCH_VERIFIED_DECISIONS):
            if signal.statement is not None or signal.proof is not None:
                self._on_signed_decision(decision, signal, trust)
                return
            if not trust.accepts(PROOF_UNVERIFIED):
                refuse(
                    f"an unsigned decision (a claimed name) is refused: the approval policy ({trust.source or 'file'}, "
                    f"{trust.digest()[:19]}…) accepts only {', '.join(trust.accepted_proofs)} proofs; sign it with "
                    f"`python starter.py approve {workflow.info().workflow_id} --key ~/.ssh/id_ed25519`",
                    "unverified",
                )
                return
        expected = sorted(c.resource_id.lower() for c in pending.destructive_changes)
        if signal.plan_hash is not None and signal.plan_hash != pending.plan_hash:
            refuse(
                f"it names plan {signal.plan_hash}, but the pending plan (round {pending.round}) is "
                f"{pending.plan_hash}; `status` shows the pending plan and its approve command",
                "other-plan",
            )
            return
        if signal.destructive_set is not None and sorted(s.lower() for s in signal.destructive_set) != expected:
            refuse(
                f"it names a different set of deletions ({len(signal.destructive_set)}) than the pending plan "
                f"({len(expected)}, round {pending.round})",
                "other-plan",
            )
            return
        bound_by = "plan_hash" if signal.plan_hash else None
        if bound_by is None and signal.destructive_set is not None:
            bound_by = "destructive_set"
        # An approval must name the plan after round 1 (a re-plan changed what is deleted); a rejection deploys
        # nothing, so the plain form stays valid for it in any round.
        if bound_by is None and pending.round > 1 and decision is ConfirmationDecision.APPROVED:
            refuse(
                f"it names no plan, and this is round {pending.round}: the plan changed since the first request, so "
                "an approval must name the plan it is for (plan_hash, as `status` prints it)",
                "unbound",
            )
            return
        if trust is not None and workflow.patched(PATCH_VERIFIED_DECISIONS):
            claimed = VerificationResult(
                verified=False,
                proof_kind=PROOF_UNVERIFIED,
                identity=signal.approver,
                why="no proof: a claimed name, accepted because the policy accepts unverified decisions",
                failure="unverified",
                policy_digest=trust.digest(),
                checked_at=utc_text(workflow.now()),
            )
            self._take_policy_decision(decision, signal, trust, claimed, bound_by or "unbound")
            return
        workflow.patched(PATCH_FOUR_EYES)  # recorded as before: the policy applies to every run with this marker
        why_not = self._settings.approval.refusal(
            approver=signal.approver,
            initiator=self._request.initiator,
            approving=decision is ConfirmationDecision.APPROVED,
        )
        if why_not is not None:
            refuse(why_not, "policy")
            return
        self._decision = (decision, signal, bound_by or "unbound")

    def _why_late(self) -> str:
        if self._decision is not None:
            taken, by = self._decision[0], self._decision[1].approver
            return f"a decision was already taken for this round: {taken.value.lower()} by {by}"
        if self._status.confirmations:
            last = self._status.confirmations[-1]
            return (
                f"no confirmation is pending: round {last.round} was {last.decision.value.lower()} by {last.by} at "
                f"{last.at.isoformat(timespec='seconds')}; the deployment is at {self._status.stage.value}"
            )
        return f"no confirmation is pending: the deployment is at {self._status.stage.value}"

    def _refuse(
        self,
        decision: ConfirmationDecision,
        *,
        by: str,
        reason: str,
        why: str,
        kind: str,
        round_number: int,
        signal: ApprovalSignal | None = None,
        verification: VerificationResult | None = None,
    ) -> None:
        """Record a refused decision (status, memo — one event in history — and the log) and otherwise ignore it."""
        refused = RefusedDecision(
            decision=decision,
            by=by,
            reason=reason,
            at=workflow.now(),
            why=why,
            round=round_number,
            kind=kind,
            plan_hash=signal.plan_hash if signal else None,
            decision_id=signal.decision_id if signal else None,
            statement_digest=statement_digest(signal.statement) if signal and signal.statement else None,
            verification=verification,
            identity_verified=verification.verified if verification is not None else False,
        )
        self._status.refused_decisions = [*self._status.refused_decisions, refused][-MAX_REFUSED_KEPT:]
        self._status.refused_total += 1
        self._upsert_memo({"refused_decision": refused.model_dump(mode="json")})
        workflow.logger.warning("%s by %s refused and ignored: %s", decision.value, excerpt(by, 80), why)

    # ------------------------------------------------------------------------------------ verified approvals

    def _on_signed_decision(self, decision: ConfirmationDecision, signal: ApprovalSignal, trust: TrustPolicy) -> None:
        """A decision with a statement and a proof: the statement must be for this run, round and plan, current and
        not used before (pure checks, here); its proof is checked by the verify_approval activity while the
        confirmation waits (``_verify_pending``)."""
        pending = self._status.pending_confirmation
        assert pending is not None
        info = workflow.info()
        refuse = lambda why, kind: self._refuse(  # noqa: E731
            decision,
            by=signal.statement.identity if signal.statement else signal.approver,
            reason=signal.statement.reason if signal.statement else signal.reason,
            why=why,
            kind=kind,
            round_number=pending.round,
            signal=signal,
        )
        statement, proof = signal.statement, signal.proof
        if statement is None or proof is None:
            refuse("a signed decision needs both a statement and a proof", "malformed")
            return
        problem = statement_problem(
            statement,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            round_number=pending.round,
            plan_hash=pending.plan_hash,
            destructive_set=[c.resource_id for c in pending.destructive_changes],
            decision="approve" if decision is ConfirmationDecision.APPROVED else "reject",
            now=workflow.now(),
            lifetime_seconds=trust.statement_lifetime_seconds,
        )
        if problem is not None:
            refuse(f"{problem[0]} statement refused: {problem[1]}", problem[0])
            return
        # A replay: a statement already counted in this run. (Only counted ones: marking every statement received
        # would let anyone who saw a pending statement block it by sending it first with a bogus proof.)
        digest = statement_digest(statement)
        if digest in self._used_statements:
            refuse(f"replay refused: statement {digest[:19]}… was already counted in this run", "replay")
            return
        if not trust.accepts(proof.kind):
            refuse(
                f"the approval policy does not accept {proof.kind} proofs (it accepts "
                f"{', '.join(trust.accepted_proofs)})",
                "proof-kind",
            )
            return
        self._to_verify.append((decision, signal))

    async def _verify_pending(self, trust: TrustPolicy) -> None:
        """Check the proofs of the signed decisions received, one activity each, until a decision is taken; what is
        left once it is, is late."""
        while self._to_verify and self._decision is None:
            decision, signal = self._to_verify.pop(0)
            assert signal.statement is not None and signal.proof is not None
            pending = self._status.pending_confirmation
            assert pending is not None
            digest = statement_digest(signal.statement)
            if digest in self._used_statements:  # the same statement was queued twice and counted meanwhile
                self._refuse(
                    decision,
                    by=signal.statement.identity,
                    reason=signal.statement.reason,
                    why=f"replay refused: statement {digest[:19]}… was already counted in this run",
                    kind="replay",
                    round_number=pending.round,
                    signal=signal,
                )
                continue
            try:
                result = await workflow.execute_activity(
                    ActivityName.VERIFY_APPROVAL,
                    VerifyApprovalInput(statement=signal.statement, proof=signal.proof, policy=trust),
                    result_type=VerificationResult,
                    start_to_close_timeout=VERIFY_APPROVAL_TIMEOUT,
                    retry_policy=RetryPolicy(maximum_attempts=3),
                    summary=f"verify {signal.statement.identity}'s {signal.proof.kind} proof",
                )
            except ActivityError as exc:
                self._refuse(
                    decision,
                    by=signal.statement.identity,
                    reason=signal.statement.reason,
                    why=f"the proof could not be checked: {exc.cause or exc}",
                    kind="unverifiable",
                    round_number=pending.round,
                    signal=signal,
                )
                continue
            if not result.verified:
                self._refuse(
                    decision,
                    by=signal.statement.identity,
                    reason=signal.statement.reason,
                    why=f"proof refused: {result.why}",
                    kind=result.failure or "bad-proof",
                    round_number=pending.round,
                    signal=signal,
                    verification=result,
                )
                continue
            signed = signal.model_copy(update={"approver": result.identity, "reason": signal.statement.reason})
            self._take_policy_decision(decision, signed, result.policy or trust, result, "statement")
        self._refuse_unverified_leftovers()

    def _refuse_unverified_leftovers(self) -> None:
        """Signed decisions still queued once the round is decided (or timed out) are late: recorded as such."""
        for decision, signal in self._to_verify:
            assert signal.statement is not None
            self._refuse(
                decision,
                by=signal.statement.identity,
                reason=signal.statement.reason,
                why=self._why_late(),
                kind="late",
                round_number=self._status.pending_confirmation.round if self._status.pending_confirmation else 0,
                signal=signal,
            )
        self._to_verify = []

    def _take_policy_decision(
        self,
        decision: ConfirmationDecision,
        signal: ApprovalSignal,
        policy: TrustPolicy,
        verification: VerificationResult,
        bound_by: str,
    ) -> None:
        """Apply the approval policy's rules to an identity (verified, or claimed where the policy accepts that):
        allowed approvers of the scope, initiator may not approve, N of M distinct approvers. A rejection by an
        allowed person decides at once."""
        pending = self._status.pending_confirmation
        assert pending is not None
        approving = decision is ConfirmationDecision.APPROVED
        request = self._request
        refuse = lambda why, kind: self._refuse(  # noqa: E731
            decision,
            by=verification.identity,
            reason=signal.reason,
            why=why,
            kind=kind,
            round_number=pending.round,
            signal=signal,
            verification=verification,
        )
        why = policy.refusal(
            identity=verification.identity,
            initiator=request.initiator,
            approving=approving,
            subscription=request.subscription_id,
            resource_group=request.resource_group,
        )
        if why is not None:
            refuse(why, "policy")
            return
        evidence = DecisionEvidence(
            decision="approve" if approving else "reject",
            identity=verification.identity,
            reason=signal.reason,
            statement=signal.statement,
            proof=signal.proof,
            verification=verification,
            at=utc_text(workflow.now()),
        )
        if signal.statement is not None:
            self._used_statements.add(statement_digest(signal.statement))
        if not approving:
            self._round_evidence = [evidence]
            self._decision = (decision, signal, bound_by)
            return
        approvers = {e.identity.lower() for e in self._round_evidence}
        if verification.identity.lower() in approvers:
            refuse(
                f"{verification.identity!r} already approved round {pending.round}; the policy counts distinct "
                "approvers",
                "duplicate",
            )
            return
        self._round_evidence.append(evidence)
        pending.approved_by = [e.identity for e in self._round_evidence]
        required = policy.required_approvals(request.subscription_id, request.resource_group)
        if len(self._round_evidence) >= required:
            self._decision = (decision, signal, bound_by)
        else:
            if signal.decision_id:
                self._counted[signal.decision_id] = evidence
            workflow.logger.info(
                "approval %d of %d by %s recorded", len(self._round_evidence), required, verification.identity
            )

    async def _wait_for_verified_decision(self, trust: TrustPolicy, deadline: Any) -> None:
        """Wait for a decision, checking each signed one's proof as it arrives; TimeoutError at ``deadline``."""
        while self._decision is None:
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                raise TimeoutError
            await workflow.wait_condition(
                lambda: self._decision is not None or bool(self._to_verify),
                timeout=timedelta(seconds=remaining),
                timeout_summary="confirmation timeout",
            )
            await self._verify_pending(trust)

    async def _check_initiator(self, request: DeployRequest) -> None:
        """Under an approval policy that requires a verified start (or when the request carries a signed start
        statement), check it before any stage: this workflow, resource group, template, mode and initiator, current,
        and its proof verified. A start that fails is refused (exit 2), nothing planned or deployed."""
        trust = self._settings.approval.trust
        signed = request.start_statement is not None and request.start_proof is not None
        if trust is None or not (trust.require_signed_start or signed):
            return
        if not self._verified_start:
            return

        def refuse(why: str) -> NoReturn:
            self._fail(DeploymentStage.INITIALIZED, None, "InitiatorNotVerified", why, DeployOutcome.REFUSED,
                       by=request.initiator)  # fmt: skip

        if request.start_statement is None or request.start_proof is None:
            refuse(
                f"the approval policy ({trust.source or trust.digest()}) requires the initiator to sign the start: "
                "run deploy with --key ~/.ssh/id_ed25519 (the key allowed_signers lists for you)"
            )
        problem = start_problem(
            request.start_statement,
            workflow_id=workflow.info().workflow_id,
            subscription_id=request.subscription_id,
            resource_group=request.resource_group,
            template_digest=request.template.digest,
            mode=request.mode.value,
            initiator=request.initiator,
            now=workflow.now(),
            lifetime_seconds=trust.statement_lifetime_seconds,
        )
        if problem is not None:
            refuse(problem)
        result = await workflow.execute_activity(
            ActivityName.VERIFY_APPROVAL,
            VerifyApprovalInput(start=request.start_statement, proof=request.start_proof, policy=trust),
            result_type=VerificationResult,
            start_to_close_timeout=VERIFY_APPROVAL_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary=f"verify the initiator {request.initiator}'s start statement",
        )
        self._status.initiator_verification = result
        self._upsert_memo({"initiator_verification": result.model_dump(mode="json")})
        if not result.verified:
            refuse(f"the initiator's start statement did not verify: {result.why}")

    def _skip_refusal(self, request: DeployRequest) -> str | None:
        """Why --no-confirm-deletes is refused for this request's initiator, or None."""
        trust = self._settings.approval.trust
        if trust is not None:
            return trust.skip_refusal(
                initiator=request.initiator, subscription=request.subscription_id, resource_group=request.resource_group
            )
        return self._settings.approval.skip_refusal(request.initiator)

    def _on_decision_before_records(self, decision: ConfirmationDecision, value: Any) -> None:
        """How decisions were handled before PATCH_DECISION_RECORDS, for replaying older histories: a payload the
        typed handler could not convert was dropped; a late one or one for another plan was only logged."""
        try:
            legacy = LegacyApprovalSignal.model_validate(value)
        except Exception:
            return
        signal = ApprovalSignal.model_construct(**legacy.model_dump())
        pending = self._status.pending_confirmation
        if pending is None or self._decision is not None:
            workflow.logger.warning("%s by %s ignored: no confirmation is pending", decision.value, signal.approver)
            return
        if signal.destructive_set is not None:
            expected = sorted(c.resource_id.lower() for c in pending.destructive_changes)
            if sorted(s.lower() for s in signal.destructive_set) != expected:
                workflow.logger.warning(
                    "%s by %s ignored: it names a different set of deletions than the pending plan",
                    decision.value,
                    signal.approver,
                )
                return
        if workflow.patched(PATCH_FOUR_EYES):
            why = self._settings.approval.refusal(
                approver=signal.approver,
                initiator=self._request.initiator,
                approving=decision is ConfirmationDecision.APPROVED,
            )
            if why is not None:
                refused = RefusedDecision(
                    decision=decision,
                    by=signal.approver,
                    reason=signal.reason,
                    at=workflow.now(),
                    why=why,
                    round=pending.round,
                )
                self._status.refused_decisions.append(refused)
                self._upsert_memo({"refused_decision": refused.model_dump(mode="json")})
                workflow.logger.warning("%s by %s refused and ignored: %s", decision.value, signal.approver, why)
                return
        self._decision = (decision, signal, None)

    # ------------------------------------------------------------------------------------------- the run

    @workflow.run
    async def run(self, request: DeployRequest) -> DeployResult:
        deployment_metrics.deployment_begun(request.subscription_id)  # no command: metrics skip replays
        # DeploymentState follows every transition, for runs started with our search attributes (a server
        # lacking them would fail each workflow task on the upsert; the start then degrades to none). Decided first
        # thing, so the patch marker sits in the first workflow task, where a replaying worker is told of it.
        self._state_attribute = DEPLOYMENT_STATE in workflow.info().typed_search_attributes and workflow.patched(
            PATCH_STATE_SEARCH_ATTRIBUTE
        )
        hardened = workflow.patched(PATCH_DECISION_RECORDS)  # first task: the marker precedes any signal's effect
        # Decided in the first task too: asked only at the final transition, right after the record-last-good local
        # activity, the marker could land in a later workflow task than on replay (a nondeterminism error).
        self._outcome_memo = workflow.patched(PATCH_OUTCOME_MEMO)
        self._verified_start = workflow.patched(PATCH_VERIFIED_START)  # likewise: used after the settings activity
        self._notifications = workflow.patched(PATCH_NOTIFICATIONS)  # likewise
        stage_input = StageInput(request=request, deployment_name=self._status.deployment_name)
        try:
            self._settings = await workflow.execute_local_activity(
                ActivityName.RESOLVE_SETTINGS,
                stage_input,
                result_type=WorkerSettings,
                start_to_close_timeout=SETTINGS_TIMEOUT,
                summary="read the worker's settings",
            )
            if hardened and request.no_confirm_deletes:
                why = self._skip_refusal(request)
                if why is not None:  # before any stage: nothing is planned, nothing deployed
                    self._fail(
                        DeploymentStage.INITIALIZED,
                        None,
                        "ConfirmationSkipRefused",
                        why,
                        DeployOutcome.REFUSED,
                        by=request.initiator,
                    )
            await self._check_initiator(request)
            self._transition(DeploymentStage.VALIDATING_PARAMETERS)
            validation = await self._stage_activity(
                DeploymentStage.VALIDATING_PARAMETERS,
                ActivityName.VALIDATE_PARAMETERS,
                lambda attempt: stage_input.model_copy(update={"attempt": attempt}),
                ValidationReport,
                local=True,
            )
            self._transition(DeploymentStage.LINTING, validation.summary())
            lint = await self._stage_activity(
                DeploymentStage.LINTING,
                ActivityName.LINT_TEMPLATE,
                lambda attempt: stage_input.model_copy(update={"attempt": attempt}),
                LintReport,
                local=True,
            )
            self._transition(DeploymentStage.PLANNING, f"lint: {lint.linter}, {len(lint.warnings)} warnings")
            # A Bicep deployment continues with what LINTING compiled (and the .bicepparam values); ARM JSON unchanged.
            request = self._request = lint.apply_to(request)
            stage_input = stage_input.model_copy(update={"request": request})
            if workflow.patched(PATCH_PLAN_ENSURES_RG):
                # One activity (one round trip) ensures the resource group and runs the what-if.
                plan = await self._plan(stage_input.model_copy(update={"ensure_resource_group": True}))
            else:
                await self._stage_activity(
                    DeploymentStage.PLANNING,
                    ActivityName.ENSURE_RESOURCE_GROUP,
                    lambda attempt: stage_input.model_copy(update={"attempt": attempt}),
                    EnsureResourceGroupResult,
                )
                plan = await self._plan(stage_input)
            deployed, health = await self._deploy_and_verify(stage_input, plan)
            if not request.skip_health and workflow.patched(PATCH_RECORD_LAST_GOOD):
                await self._record_last_good(request, deployed)
            self._transition(DeploymentStage.COMPLETED, "deployment succeeded")
            self._status.outcome = DeployOutcome.SUCCEEDED
            await self._announce(NotificationKind.COMPLETED)
            return self._result(DeployOutcome.SUCCEEDED, deployed=deployed, health=health)
        except StageFailed as failed:
            try:
                return await self._fail_or_roll_back(failed)
            except ApplicationError:  # the deployment's end: FAILED or ROLLED_BACK
                rolled_back = self._status.outcome is DeployOutcome.ROLLED_BACK
                await self._announce(NotificationKind.ROLLED_BACK if rolled_back else NotificationKind.FAILED)
                raise
        except (asyncio.CancelledError, CancelledError):
            await self._on_cancelled(request)
            raise
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):  # re-raised above only when the workflow is cancelled
                await self._on_cancelled(request)
            raise

    # --------------------------------------------------------------------------------------------- stages

    async def _plan(self, stage_input: StageInput) -> WhatIfPlan:
        plan = await self._stage_activity(
            DeploymentStage.PLANNING,
            ActivityName.PLAN_DEPLOYMENT,
            lambda attempt: stage_input.model_copy(update={"attempt": attempt}),
            WhatIfPlan,
            heartbeat=timedelta(seconds=self._settings.heartbeat_timeout_seconds),
        )
        self._status.plan = plan
        return plan

    async def _confirm_deletions(
        self, stage_input: StageInput, plan: WhatIfPlan, *, allow_skip: bool = True
    ) -> WhatIfPlan:
        """Deletions wait for a decision; the approval is bound to the destructive set it was given for.
        ``allow_skip=False`` (a rollback's plan) waits even with --no-confirm-deletes."""
        if not plan.destructive_changes:
            return plan
        request = self._request
        if request.no_confirm_deletes and allow_skip:
            record = ConfirmationRecord(
                decision=ConfirmationDecision.SKIPPED,
                by=request.initiator,
                reason="--no-confirm-deletes",
                at=workflow.now(),
                destructive_set=plan.destructive_set,
            )
            self._status.confirmations.append(record)
            self._upsert_memo({"confirmation": record.model_dump(mode="json")})
            workflow.logger.info("deletions not confirmed: skipped by %s (--no-confirm-deletes)", request.initiator)
            return plan
        round_number = len(self._status.confirmations)  # a rollback's rounds follow the deployment's
        while plan.destructive_changes:
            round_number += 1
            approved = await self._await_decision(plan, round_number)
            # Re-plan: the approval holds only if ARM still plans to delete exactly what was approved.
            self._transition(DeploymentStage.PLANNING, "re-checking the plan after approval")
            fresh = await self._plan(stage_input)
            if fresh.destructive_set == approved.destructive_set:
                return fresh
            workflow.logger.warning(
                "the destructive set changed after approval (%d → %d deletions): asking again",
                len(approved.destructive_set),
                len(fresh.destructive_set),
            )
            plan = fresh
        return plan

    async def _await_decision(self, plan: WhatIfPlan, round_number: int) -> ConfirmationRecord:
        timeout = self._request.confirmation_timeout_seconds or self._settings.confirmation_timeout_seconds
        now = workflow.now()
        info = workflow.info()
        self._decision = None
        bound = workflow.patched(PATCH_DECISION_RECORDS)
        plan_hash = plan.plan_hash if bound else None
        signal_input = (
            f'{{"approver":"<you>","reason":"<why>","plan_hash":"{plan_hash}"}}'
            if bound
            else '{"approver":"<you>","reason":"<why>"}'
        )
        approve_command = (
            f"temporal workflow signal --workflow-id {info.workflow_id} --name {SIGNAL_APPROVE} "
            f"--input '{signal_input}'"
        )
        trust = self._settings.approval.trust
        verified = trust is not None and workflow.patched(PATCH_VERIFIED_DECISIONS)
        required = 1
        if trust is not None and verified:
            self._round_evidence = []
            required = trust.required_approvals(self._request.subscription_id, self._request.resource_group)
            if not trust.accepts(PROOF_UNVERIFIED):  # a plain signal would be refused: show the signing command
                approve_command = (
                    f"python starter.py approve {info.workflow_id} --key ~/.ssh/id_ed25519 --reason '<why>'"
                )
        self._status.pending_confirmation = PendingConfirmation(
            destructive_changes=plan.destructive_changes,
            asked_at=now,
            deadline=now + timedelta(seconds=timeout),
            round=round_number,
            approve_command=approve_command,
            approval_policy=self._approval_policy(),
            plan_hash=plan_hash,
            required_approvals=required,
        )
        self._transition(
            DeploymentStage.AWAITING_CONFIRMATION,
            f"{len(plan.destructive_changes)} deletion(s) need approval (round {round_number})",
        )
        await self._announce(NotificationKind.APPROVAL_NEEDED, round_number=round_number)
        try:
            if trust is not None and verified:
                await self._wait_for_verified_decision(trust, now + timedelta(seconds=timeout))
            else:
                await workflow.wait_condition(
                    lambda: self._decision is not None,
                    timeout=timedelta(seconds=timeout),
                    timeout_summary="confirmation timeout",
                )
        except TimeoutError:
            if self._to_verify:  # verified approvals only: queued signed decisions are late now
                self._refuse_unverified_leftovers()
            self._decision = None
            self._status.pending_confirmation = None
            record = ConfirmationRecord(
                decision=ConfirmationDecision.TIMED_OUT,
                by="timeout",
                reason=f"no approve/reject signal within {timeout:g} s",
                at=workflow.now(),
                destructive_set=plan.destructive_set,
                round=round_number,
            )
            self._status.confirmations.append(record)
            self._upsert_memo({"confirmation": record.model_dump(mode="json")})
            self._confirmation_span(record, now)
            self._fail(
                DeploymentStage.AWAITING_CONFIRMATION,
                None,
                "NotConfirmed",
                f"deletions were not confirmed within {timeout:g} s",
                DeployOutcome.NOT_CONFIRMED,
            )
        assert self._decision is not None
        decision, signal, bound_by = self._decision
        self._decision = None
        self._status.pending_confirmation = None
        record = ConfirmationRecord(
            decision=decision,
            by=signal.approver,
            reason=signal.reason,
            at=workflow.now(),
            destructive_set=plan.destructive_set,
            round=round_number,
            plan_hash=plan_hash,
            bound_by=bound_by,
            decision_id=signal.decision_id,
        )
        if trust is not None and verified:  # every decision counted, with its evidence (N of M)
            evidence, self._round_evidence = self._round_evidence, []
            record.decisions = evidence
            record.by = ", ".join(e.identity for e in evidence) or record.by
            record.identity_verified = bool(evidence) and all(e.verification.verified for e in evidence)
            record.policy = trust
        self._status.confirmations.append(record)
        self._upsert_memo({"confirmation": record.model_dump(mode="json")})
        self._confirmation_span(record, now)
        if decision is ConfirmationDecision.REJECTED:
            self._fail(
                DeploymentStage.AWAITING_CONFIRMATION,
                None,
                "Rejected",
                f"rejected by {signal.approver}: {signal.reason}",
                DeployOutcome.REJECTED,
                by=signal.approver,
            )
        return record

    async def _deploy_and_verify(
        self,
        stage_input: StageInput,
        plan: WhatIfPlan,
        *,
        rollback: RollbackReport | None = None,
        target: str = "",
    ) -> tuple[DeployOutcomeDetails, HealthReport]:
        """Confirm the plan's deletions, deploy, verify health: the path of every deployment, a normal run's and a
        rollback's. For a rollback (``rollback``, redeploying ``target``) its report follows each step and
        deletions wait for a decision even with --no-confirm-deletes."""
        request, name = stage_input.request, stage_input.deployment_name
        label = "rollback: " if rollback is not None else ""
        if rollback is not None and plan.destructive_changes:
            rollback.state = RollbackState.AWAITING_CONFIRMATION
        plan = await self._confirm_deletions(stage_input, plan, allow_skip=rollback is None)
        if rollback is not None:
            rollback.plan = plan
            rollback.state = RollbackState.DEPLOYING
        about = f" ({target})" if target else ""
        self._transition(DeploymentStage.DEPLOYING, f"{label}ARM deployment {name}{about}")
        deployed = await self._deploy(request, name)
        if rollback is not None:
            rollback.resources = deployed.resources
            rollback.state = RollbackState.VERIFYING_HEALTH
        if request.skip_health:  # never for a rollback (its request verifies)
            self._transition(DeploymentStage.VERIFYING_HEALTH, "skipped (--skip-health)", by=request.initiator)
            return deployed, HealthReport()
        self._transition(DeploymentStage.VERIFYING_HEALTH, f"{label}{len(deployed.resources)} resources")
        window_start = workflow.now().timestamp()  # the stage's one convergence window
        health = await self._stage_activity(
            DeploymentStage.VERIFYING_HEALTH,
            ActivityName.VERIFY_HEALTH,
            lambda attempt: VerifyInput(
                request=request,
                deployment_name=name,
                resources=deployed.resources,
                window_started_at=window_start,
            ),
            HealthReport,
            heartbeat=timedelta(seconds=self._settings.heartbeat_timeout_seconds),
        )
        if rollback is not None:
            rollback.health = health
        else:
            self._last_health = health
            self._status.health_notes = dict(health.notes)  # shown by a following CLI (Resource Health Unknown)
        if health.unhealthy:
            first = next(iter(health.unhealthy.items()))
            self._fail(
                DeploymentStage.VERIFYING_HEALTH,
                FailureClass.ENVIRONMENTAL,
                "ResourceUnhealthy",
                f"{len(health.unhealthy)} resource(s) not healthy, e.g. {first[0]}: {first[1]}",
                DeployOutcome.ENVIRONMENTAL_FAILURE,
            )
        if request.health.checks:
            self._health_checks = None
            try:
                await self._run_health_checks(request, deployed, window_start)
            finally:
                if rollback is not None:
                    rollback.health_checks = self._health_checks
        return deployed, health

    async def _deploy(self, request: DeployRequest, name: str | None = None) -> DeployOutcomeDetails:
        name = name or self._status.deployment_name
        resume: dict[str, Any] = {"token": None}

        def make_input(attempt: int) -> DeployInput:
            return DeployInput(request=request, deployment_name=name, resume_token=resume["token"], attempt=attempt)

        def on_timeout(err: TemporalTimeoutError) -> None:
            details = err.last_heartbeat_details
            if details:
                # The last heartbeat of the lost attempt: which ARM deployment it followed and its last state.
                last = details[0] if isinstance(details[0], dict) else {"deployment_name": str(details[0])}
                resume["token"] = f"{last.get('deployment_name')}@{last.get('provisioning_state') or 'submitting'}"

        deployed = await self._stage_activity(
            DeploymentStage.DEPLOYING,
            ActivityName.DEPLOY,
            make_input,
            DeployOutcomeDetails,
            start_to_close=timedelta(seconds=self._settings.deploy_timeout_seconds),
            heartbeat=timedelta(seconds=self._settings.heartbeat_timeout_seconds),
            on_timeout=on_timeout,
        )
        self._last_deploy = deployed
        return deployed

    async def _on_cancelled(self, request: DeployRequest) -> None:
        """Workflow cancelled: make sure the ARM deployment is cancelled too (the deploy activity also cancels it
        when it receives the cancellation, but it may be on a dead worker)."""
        if self._status.stage is DeploymentStage.DEPLOYING:
            try:
                await workflow.execute_activity(
                    ActivityName.CANCEL_DEPLOYMENT,
                    CancelInput(
                        subscription_id=request.subscription_id,
                        resource_group=request.resource_group,
                        deployment_name=self._arm_deployment_name(),
                    ),
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=SINGLE_ATTEMPT,
                    summary="cancel the ARM deployment (the workflow was cancelled)",
                )
            except ActivityError as err:
                workflow.logger.warning("could not cancel ARM deployment: %s", err)
        # The failure names the stage the deployment stopped in (status, the CLI's result), not FAILED. Workflow
        # state only (the query's answer): no command or memo changes, so histories replay.
        self._fail_quietly(self._status.stage, "Cancelled", "the workflow was cancelled")
        await self._announce(NotificationKind.FAILED)

    # ---------------------------------------------------------------------------------- attempts and retries

    async def _stage_activity(
        self,
        stage: DeploymentStage,
        activity_name: str,
        make_input: Any,
        result_type: type[T],
        *,
        start_to_close: timedelta | None = None,
        heartbeat: timedelta | None = None,
        on_timeout: Any = None,
        local: bool = False,
    ) -> T:
        """Run one stage's activity, one execution per attempt, retrying ENVIRONMENTAL failures on the worker's
        schedule (honoring Retry-After) and halting on the first LOGIC failure.

        ``local``: run it as a local activity, on the worker running the workflow, without a round trip through
        the server's task queue — for the offline stages (validation and lint make no Azure call). Their results
        are still recorded in history (as markers)."""
        # A rollback counts its own attempts (RollbackReport.stages), never adding them to the deployment's.
        stages = self._status.rollback.stages if self._rolling_back and self._status.rollback else self._status.stages
        progress = stages.setdefault(stage, StageProgress())
        if progress.started_at is None:
            progress.started_at = workflow.now()
        progress.finished_at = None  # running (again): VERIFYING_HEALTH runs two activities, each may be retried
        schedule = self._settings.retry
        retries = 0
        while True:
            progress.attempts += 1
            attempt = retries + 1
            timeout = start_to_close or timedelta(seconds=self._settings.activity_timeout_seconds)
            attempt_started = workflow.now()
            try:
                if local:
                    result = await workflow.execute_local_activity(
                        activity_name,
                        make_input(attempt),
                        result_type=result_type,
                        start_to_close_timeout=timeout,
                        retry_policy=SINGLE_ATTEMPT,
                        summary=f"{stage.value} attempt {attempt}",
                    )
                else:
                    result = await workflow.execute_activity(
                        activity_name,
                        make_input(attempt),
                        result_type=result_type,
                        start_to_close_timeout=timeout,
                        heartbeat_timeout=heartbeat,
                        retry_policy=SINGLE_ATTEMPT,
                        summary=f"{stage.value} attempt {attempt}",
                    )
                progress.finished_at = workflow.now()
                self._stage_span(stage, attempt, attempt_started)
                return result
            except (ActivityError, ApplicationError, TemporalTimeoutError) as err:
                # A remote activity's failure arrives as ActivityError(cause); a local activity's as the cause.
                cause = err.cause if isinstance(err, ActivityError) else err
                if isinstance(cause, CancelledError) and workflow.cancellation_reason() is not None:
                    raise  # the workflow itself is being cancelled
                # An activity that completed as cancelled without that (its worker shutting down) is retried like
                # any lost attempt.
                if isinstance(cause, TemporalTimeoutError) and on_timeout is not None:
                    on_timeout(cause)
                classification = classify_activity_failure(cause)
                self._stage_span(stage, attempt, attempt_started, classification)
                progress.last_error = classification.message
                progress.last_error_code = classification.code
                progress.failures += 1
                progress.last_error_class = classification.failure_class
                give_up = classification.failure_class is FailureClass.LOGIC or retries >= schedule.maximum_retries
                if give_up:
                    progress.finished_at = workflow.now()
                    outcome = (
                        DeployOutcome.LOGIC_FAILURE
                        if classification.failure_class is FailureClass.LOGIC
                        else DeployOutcome.ENVIRONMENTAL_FAILURE
                    )
                    suffix = "" if classification.failure_class is FailureClass.LOGIC else f" after {attempt} attempts"
                    self._fail(
                        stage,
                        classification.failure_class,
                        classification.code,
                        classification.message + suffix,
                        outcome,
                        attempts=attempt,
                    )
                retries += 1
                deployment_metrics.stage_retry(stage.value, classification.failure_class.value, classification.code)
                delay = next_delay(schedule, retries, classification.retry_after_seconds)
                workflow.logger.warning(
                    "%s attempt %d failed (%s %s); retry %d in %s",
                    stage.value,
                    attempt,
                    classification.failure_class.value,
                    classification.code,
                    retries,
                    delay,
                )
                progress.retry_at = workflow.now() + delay  # for the status query (the CLI shows the wait)
                await workflow.sleep(
                    delay,
                    summary=f"{stage.value}: retry {retries} after {classification.code} ({delay.total_seconds():g} s)",
                )
                progress.retry_at = None

    # ------------------------------------------------------------------------------------------ notifications

    async def _announce(self, kind: NotificationKind, *, round_number: int | None = None) -> None:
        """Start the detached notification workflow for this event when the worker routes it to a sink. Only its
        start is awaited (one round trip): delivery and its retries go on in the child, never delaying or failing
        the deployment. The event id is stable (workflow id, first run id, kind, round), and so is the child's id,
        which the server refuses to start twice."""
        routing = self._settings.notifications
        if not self._notifications or routing is None or not routing.sinks:
            return
        event = self._notification_event(kind, round_number)
        try:
            await announce(routing, event)
        except (asyncio.CancelledError, CancelledError):
            if kind is NotificationKind.APPROVAL_NEEDED:
                raise  # still running: the cancellation is the deployment's
            # The deployment has ended (its outcome is set): a cancel arriving now does not turn it into another.
            workflow.logger.warning("cancelled while announcing %s event %s; not announced", kind.value, event.id)

    def _notification_event(self, kind: NotificationKind, round_number: int | None) -> NotificationEvent:
        """The event: ids, names, counts and codes — never a parameter value or a failure's message."""
        info, status, request = workflow.info(), self._status, self._request
        plan, pending, failure = status.plan, status.pending_confirmation, status.failure
        event = NotificationEvent(
            id=event_id(info.workflow_id, info.first_execution_run_id, kind, round_number),
            kind=kind,
            time=workflow.now(),
            deployment_id=info.workflow_id,
            run_id=info.run_id,
            deployment_name=status.deployment_name,
            subscription_id=request.subscription_id,
            resource_group=request.resource_group,
            stage=status.stage.value,
            outcome=status.outcome.value if status.outcome and kind is not NotificationKind.APPROVAL_NEEDED else None,
            initiator=request.initiator,
            git_sha=request.git_sha,
            template_hash=request.template.digest,
            plan_counts=dict(plan.counts) if plan else {},
            deletions=len(plan.destructive_changes) if plan else 0,
            round=round_number,
        )
        if kind is NotificationKind.APPROVAL_NEEDED and pending is not None:
            event.plan_hash = pending.plan_hash
            event.required_approvals = pending.required_approvals
            event.deadline = pending.deadline
            event.deletions = len(pending.destructive_changes)
        if failure is not None and kind in (NotificationKind.FAILED, NotificationKind.ROLLED_BACK):
            klass = failure.failure_class.value if failure.failure_class else None
            event.failure = NotificationFailure(stage=failure.stage.value, failure_class=klass, code=failure.code)
        if kind is NotificationKind.ROLLED_BACK and status.rollback is not None:
            event.rolled_back_to = status.rollback.target_workflow_id
        return event

    # ------------------------------------------------------------------------------------------ bookkeeping

    def _confirmation_span(self, record: ConfirmationRecord, asked_at: Any) -> None:
        """The AWAITING_CONFIRMATION stage's span: the decision, its round and how long it took."""
        stage_span(
            DeploymentStage.AWAITING_CONFIRMATION.value,
            {
                spans.ATTR_STAGE: DeploymentStage.AWAITING_CONFIRMATION.value,
                spans.ATTR_RESOURCE_GROUP: self._request.resource_group,
                spans.ATTR_SUBSCRIPTION: self._request.subscription_id,
                spans.ATTR_DEPLOYMENT_NAME: self._status.deployment_name,
                spans.ATTR_ATTEMPT: record.round,
                spans.ATTR_DECISION: record.decision.value,
                spans.ATTR_REFUSED_DECISIONS: self._status.refused_total or len(self._status.refused_decisions),
                spans.ATTR_DURATION: (record.at - asked_at).total_seconds(),
            },
        )
        deployment_metrics.approval_wait(record.decision.value, (record.at - asked_at).total_seconds())

    def _approval_policy(self) -> ApprovalPolicy | None:
        """The worker's four-eyes policy as the status query shows it (None: anyone may decide)."""
        policy = self._settings.approval
        return policy if policy.enabled else None

    def _stage_span(
        self, stage: DeploymentStage, attempt: int, started: Any, failure: Classification | None = None
    ) -> None:
        """One OpenTelemetry span per stage attempt (no-op without tracing, never on replay, no commands).
        Names, ids and codes only: no parameter value reaches an attribute."""
        attributes: dict[str, str | int | float] = {
            spans.ATTR_STAGE: stage.value,
            spans.ATTR_RESOURCE_GROUP: self._request.resource_group,
            spans.ATTR_SUBSCRIPTION: self._request.subscription_id,
            spans.ATTR_DEPLOYMENT_NAME: self._status.deployment_name,
            spans.ATTR_ATTEMPT: attempt,
            spans.ATTR_OUTCOME: "failed" if failure else "succeeded",
            spans.ATTR_DURATION: (workflow.now() - started).total_seconds(),
        }
        if failure is not None:
            attributes[spans.ATTR_CLASSIFICATION] = failure.failure_class.value
            attributes[spans.ATTR_ERROR_CODE] = failure.code
        stage_span(stage.value, attributes)
        deployment_metrics.stage_attempt(stage.value, float(attributes[spans.ATTR_DURATION]), failure is not None)

    def _transition(self, stage: DeploymentStage, detail: str = "", *, by: str | None = None) -> None:
        previous = self._status.stage
        transition = StageTransition(stage=stage, at=workflow.now(), previous=previous, detail=detail, by=by)
        self._status.stage = stage
        self._status.transitions.append(transition)
        workflow.set_current_details(self._current_details())
        memo: dict[str, Any] = {"stage": stage.value, "transition": transition.model_dump(mode="json")}
        outcome = self._final_outcome(stage)
        if outcome is not None and self._outcome_memo:
            memo["outcome"] = outcome.value
        self._upsert_memo(memo)
        if self._state_attribute:
            workflow.upsert_search_attributes([DEPLOYMENT_STATE.value_set(stage.value)])

    def _final_outcome(self, stage: DeploymentStage) -> DeployOutcome | None:
        """The outcome a transition into COMPLETED or FAILED ends with (set by the caller just before or after)."""
        if stage is DeploymentStage.COMPLETED:
            return DeployOutcome.SUCCEEDED
        if stage in (DeploymentStage.FAILED, DeploymentStage.ROLLED_BACK):
            return self._status.outcome
        return None

    def _current_details(self) -> str:
        """What the Temporal UI shows as the workflow's current details (markdown): the stage, the plan in az's
        what-if notation and, while a confirmation waits, exactly what would be deleted and how to approve. Not
        a command: set on every transition, read by the UI through the workflow's metadata query."""
        status = self._status
        last = status.transitions[-1]
        lines = [f"**{status.stage.value}**" + (f": {last.detail}" if last.detail else "")]
        lines.append(f"resource group `{status.resource_group}`, ARM deployment `{status.deployment_name}`")
        pending = status.pending_confirmation
        if status.stage is DeploymentStage.AWAITING_CONFIRMATION and pending is not None:
            lines.append("")
            lines.append(
                f"**Waiting for approval** (round {pending.round}, until {pending.deadline:%Y-%m-%d %H:%M:%S} UTC)"
            )
            lines.append(f"The plan deletes {len(pending.destructive_changes)} resource(s):")
            lines.append("")
            lines.extend(f"- `{change.resource_id}`" for change in pending.destructive_changes)
            lines.append("")
            lines.append("Approve with:")
            lines.append(f"`python starter.py approve {status.workflow_id} --reason '...'` or")
            if pending.approve_command:
                lines.append(f"`{pending.approve_command}`")
            lines.append(f"reject with `python starter.py reject {status.workflow_id} --reason '...'`")
            if pending.required_approvals > 1 or pending.approved_by:
                so_far = ", ".join(pending.approved_by) or "none yet"
                lines.append(f"{pending.required_approvals} distinct approvals needed; so far: {so_far}")
        # Who decided, and whether that identity was verified (a claimed name is labelled so).
        decided = [c for c in status.confirmations if c.decision in (ConfirmationDecision.APPROVED,
                                                                      ConfirmationDecision.REJECTED)]  # fmt: skip
        if decided or status.initiator_verification is not None:
            lines.append("")
        if status.initiator_verification is not None:
            lines.append(f"initiator {status.initiator_verification.identity}: "
                         f"{summary_of(status.initiator_verification)}")  # fmt: skip
        for record in decided:
            if record.decisions:
                lines.extend(
                    f"- round {record.round}: {e.decision} by {e.identity}, {summary_of(e.verification)}"
                    for e in record.decisions
                )
            else:
                lines.append(
                    f"- round {record.round}: {record.decision.value.lower()} by {record.by}, unverified (claimed)"
                )
        if status.failure is not None:
            failure = status.failure
            klass = failure.failure_class.value if failure.failure_class else "NOT_DEPLOYED"
            lines.append("")
            lines.append(f"**Failed** at {failure.stage.value}: {klass} {failure.code}: {failure.message}")
        if status.plan is not None:
            rendered = render_plan(plan_documents(status.plan), legend=False).rstrip("\n").splitlines()
            if len(rendered) > DETAILS_PLAN_LINES:
                rendered = [*rendered[:DETAILS_PLAN_LINES], f"... ({len(rendered) - DETAILS_PLAN_LINES} more lines)"]
            lines.append("")
            lines.append("Plan (what-if):")
            lines.append("```")
            lines.extend(rendered)
            lines.append("```")
        return "\n".join(lines)

    def _upsert_memo(self, values: dict[str, Any]) -> None:
        workflow.upsert_memo(values)

    def _fail(
        self,
        stage: DeploymentStage,
        failure_class: FailureClass | None,
        code: str,
        message: str,
        outcome: DeployOutcome,
        *,
        attempts: int = 1,
        by: str | None = None,
    ) -> NoReturn:
        failure = FailureInfo(stage=stage, failure_class=failure_class, code=code, message=message, attempts=attempts)
        raise StageFailed(failure, outcome, by)

    def _arm_deployment_name(self) -> str:
        """The ARM deployment this run is driving: the rollback's while it deploys, else the deployment's."""
        rollback = self._status.rollback
        if rollback is not None and rollback.state is RollbackState.DEPLOYING and rollback.deployment_name:
            return rollback.deployment_name
        return self._status.deployment_name

    def _fail_quietly(self, stage: DeploymentStage, code: str, message: str) -> None:
        self._status.failure = FailureInfo(stage=stage, failure_class=None, code=code, message=message)
        self._status.outcome = DeployOutcome.CANCELLED
        self._transition(DeploymentStage.FAILED, message)
        deployment_metrics.deployment_outcome(
            DeployOutcome.CANCELLED.value, DeploymentStage.FAILED.value, self._request.subscription_id
        )

    def _fail_workflow(self, failed: StageFailed, rollback: RollbackReport | None = None) -> NoReturn:
        failure = failed.failure
        self._status.failure = failure
        self._status.outcome = failed.outcome
        klass = failure.failure_class.value if failure.failure_class else "NOT_DEPLOYED"
        also = ""
        if rollback is not None:  # FAILED with both errors
            self._status.rollback = rollback
            if rollback.failure is not None:
                also = f"; rollback failed in {rollback.failure.stage.value}: {rollback.failure.code}: "
                also += rollback.failure.message
            else:
                also = f"; rollback not possible: {rollback.note}"
        self._transition(
            DeploymentStage.FAILED,
            f"{klass} {failure.code} in {failure.stage.value}: {failure.message}{also}",
            by=failed.by,
        )
        result = self._result(failed.outcome)
        error_type = f"{klass}.{failure.code}"
        raise ApplicationError(
            f"deployment failed in {failure.stage.value}: {failure.code}: {failure.message}{also}",
            result,
            type=error_type,
            non_retryable=True,
        )

    # ------------------------------------------------------------------------------------- rollback

    async def _record_last_good(self, request: DeployRequest, deployed: DeployOutcomeDetails) -> None:
        """Keep this healthy deployment as the resource group's last good one; a failure here is logged, never
        fails a deployment that succeeded."""
        try:
            await workflow.execute_local_activity(
                ActivityName.RECORD_LAST_GOOD,
                RecordLastGoodInput(
                    request=request,
                    workflow_id=self._status.workflow_id,
                    deployment_name=self._status.deployment_name,
                    completed_at=workflow.now(),
                    resources=deployed.resources,
                ),
                result_type=LastGoodDeployment,
                start_to_close_timeout=LAST_GOOD_TIMEOUT,
                retry_policy=SINGLE_ATTEMPT,
                summary="record the last good deployment",
            )
        except ActivityError as err:
            workflow.logger.warning("could not record the last good deployment: %s", err.cause or err)

    async def _fail_or_roll_back(self, failed: StageFailed) -> NoReturn:
        if (
            self._request.rollback_on_failure
            and failed.failure.stage in (DeploymentStage.DEPLOYING, DeploymentStage.VERIFYING_HEALTH)
            and failed.failure.code != HEALTH_DECLARATION_FAILED  # a wrong declaration, not a broken deployment
            and workflow.patched(PATCH_ROLLBACK)
        ):
            try:
                await self._roll_back(failed)
            except (asyncio.CancelledError, CancelledError):
                await self._on_cancelled(self._request)
                raise
            except ActivityError as err:
                if isinstance(err.cause, CancelledError):
                    await self._on_cancelled(self._request)
                raise
        self._fail_workflow(failed)

    async def _roll_back(self, failed: StageFailed) -> NoReturn:
        """Redeploy the last deployment of this resource group that completed healthy: what-if (deletions wait
        for approval, even with --no-confirm-deletes), deploy, verify health. ROLLED_BACK, or FAILED with both
        errors."""
        original = failed.failure
        klass = original.failure_class.value if original.failure_class else "NOT_DEPLOYED"
        report = RollbackReport(reason=original)
        self._status.failure = original
        self._status.rollback = report
        self._transition(
            DeploymentStage.FAILED,
            f"{klass} {original.code} in {original.stage.value}: {original.message}; "
            "rolling back to the last good deployment (--rollback-on-failure)",
            by=failed.by,
        )
        saved = (self._status.plan, self._last_deploy, self._health_checks, self._last_health)
        self._rolling_back = True
        try:
            lookup = await workflow.execute_local_activity(
                ActivityName.LOAD_LAST_GOOD,
                LastGoodQuery(
                    subscription_id=self._request.subscription_id, resource_group=self._request.resource_group
                ),
                result_type=LastGoodLookup,
                start_to_close_timeout=LAST_GOOD_TIMEOUT,
                retry_policy=SINGLE_ATTEMPT,
                summary="load the last good deployment",
            )
        except ActivityError as err:
            lookup = LastGoodLookup(problem=f"the last good record could not be read: {err.cause or err}")
        record = lookup.record
        if record is None:
            report.state = RollbackState.NOT_POSSIBLE
            report.note = lookup.problem
            self._fail_workflow(failed, report)
        info = workflow.info()
        name = deployment_name_for(
            resource_group=self._request.resource_group,
            workflow_id=f"{info.workflow_id}/rollback",
            run_id=info.run_id,
        )
        report.target_workflow_id = record.workflow_id
        report.target_deployment_name = record.deployment_name
        report.target_template_hash = record.template_hash
        report.target_completed_at = record.completed_at
        report.deployment_name = name
        target = f"{record.workflow_id}'s deployment {record.deployment_name}"
        try:
            provided = None
            if record.unrecoverable_secure_parameters:
                provided = await self._await_rollback_parameters(record, report)
            request = rollback_request(self._request, record, secure_parameters=provided)
            stage_input = StageInput(request=request, deployment_name=name)
            report.state = RollbackState.PLANNING
            self._transition(DeploymentStage.PLANNING, f"rollback: what-if of {target}")
            report.plan = await self._plan(stage_input)
            await self._deploy_and_verify(stage_input, report.plan, rollback=report, target=target)
        except StageFailed as rollback_failed:
            report.state = RollbackState.FAILED
            report.failure = rollback_failed.failure
            self._status.plan, self._last_deploy, self._health_checks, self._last_health = saved
            self._fail_workflow(failed, report)
        self._status.plan, self._last_deploy, self._health_checks, self._last_health = saved
        report.state = RollbackState.ROLLED_BACK
        self._status.failure = original
        self._status.outcome = DeployOutcome.ROLLED_BACK
        self._transition(
            DeploymentStage.ROLLED_BACK,
            f"redeployed {target} (template {record.template_hash}) after {original.code} in {original.stage.value}",
        )
        raise ApplicationError(
            f"deployment failed in {original.stage.value}: {original.code}: {original.message}; "
            f"rolled back to {target}",
            self._result(DeployOutcome.ROLLED_BACK),
            type=f"ROLLED_BACK.{original.code}",
            non_retryable=True,
        )

    async def _await_rollback_parameters(self, record: LastGoodDeployment, report: RollbackReport) -> Any:
        """The last good deployment's secure values were not kept (no codec keys when it was recorded): ask for
        them instead of deploying without them."""
        names = ", ".join(record.unrecoverable_secure_parameters)
        timeout = self._request.confirmation_timeout_seconds or self._settings.confirmation_timeout_seconds
        report.state = RollbackState.AWAITING_PARAMETERS
        report.missing_secure_parameters = list(record.unrecoverable_secure_parameters)
        self._rollback_parameters = None
        self._transition(
            DeploymentStage.AWAITING_CONFIRMATION,
            f"rollback needs the secure parameter(s) {names} of {record.workflow_id}, which were not kept (no codec "
            f"keys on the worker that recorded it): give them with `python starter.py rollback-params "
            f"{self._status.workflow_id} --param NAME` (the '{SIGNAL_ROLLBACK_PARAMETERS}' signal) "
            f"within {timeout:g} s",
        )
        try:
            await workflow.wait_condition(
                lambda: self._rollback_parameters is not None,
                timeout=timedelta(seconds=timeout),
                timeout_summary="rollback parameters timeout",
            )
        except TimeoutError:
            self._fail(
                DeploymentStage.AWAITING_CONFIRMATION,
                None,
                "RollbackParametersMissing",
                f"the secure parameter(s) {names} the rollback needs were not provided within {timeout:g} s",
                DeployOutcome.NOT_CONFIRMED,
            )
        assert self._rollback_parameters is not None
        report.parameters_provided_by = self._rollback_parameters.provided_by
        return self._rollback_parameters.secure_parameters

    async def _run_health_checks(
        self, request: DeployRequest, deployed: DeployOutcomeDetails, window_start: float | None = None
    ) -> None:
        """The user's declared checks, after the provisioningState check: one activity that retries
        within the convergence window itself, so a failing check fails the stage instead of retrying it.

        The window is the stage's (``window_start``). An attempt lost with its worker hands its last heartbeat
        (every check's tries so far) to the next one, which continues from it."""
        start_to_close, heartbeat = health_activity_timeouts(
            request.health, heartbeat_seconds=min(10.0, self._settings.heartbeat_timeout_seconds)
        )
        lost: list[HealthCheckReport] = []

        def on_timeout(err: TemporalTimeoutError) -> None:
            for detail in err.last_heartbeat_details or ():
                with contextlib.suppress(ValueError, TypeError):
                    progress = detail if isinstance(detail, HealthProgress) else HealthProgress.model_validate(detail)
                    lost.append(progress.report)

        report = await self._stage_activity(
            DeploymentStage.VERIFYING_HEALTH,
            ActivityName.RUN_HEALTH_CHECKS,
            lambda attempt: HealthCheckInput(
                spec=request.health,
                deployment_name=self._status.deployment_name,
                subscription_id=request.subscription_id,
                outputs=deployed.outputs,
                resources=deployed.resources,
                window_started_at=window_start,
                resume=lost[-1] if lost else None,
            ),
            HealthCheckReport,
            start_to_close=start_to_close,
            heartbeat=heartbeat,
            on_timeout=on_timeout,
        )
        self._health_checks = report
        if not report.healthy:
            if report.only_declaration_errors() and workflow.patched(PATCH_HEALTH_DECLARATION_LOGIC):
                # The declaration is wrong (known only now, with the outputs or the worker's policy): nothing says
                # the deployment is unhealthy, so this is the user's to fix and never a reason to roll back.
                self._fail(
                    DeploymentStage.VERIFYING_HEALTH,
                    FailureClass.LOGIC,
                    HEALTH_DECLARATION_FAILED,
                    "the health check declaration cannot be used: " + report.summary(),
                    DeployOutcome.LOGIC_FAILURE,
                )
            self._fail(
                DeploymentStage.VERIFYING_HEALTH,
                FailureClass.ENVIRONMENTAL,
                "HealthCheckFailed",
                report.summary(),
                DeployOutcome.ENVIRONMENTAL_FAILURE,
            )

    def _result(
        self,
        outcome: DeployOutcome,
        *,
        deployed: DeployOutcomeDetails | None = None,
        health: HealthReport | None = None,
    ) -> DeployResult:
        plan = self._status.plan
        deployed = deployed or self._last_deploy
        health = health or self._last_health
        # Called once per run, as it ends (completed, failed or rolled back): the outcome metric.
        deployment_metrics.deployment_outcome(outcome.value, self._status.stage.value, self._request.subscription_id)
        return DeployResult(
            workflow_id=self._status.workflow_id,
            deployment_name=self._status.deployment_name,
            outcome=outcome,
            stage=self._status.stage,
            plan=plan,
            has_changes=bool(plan and plan.has_changes),
            outputs=deployed.outputs if deployed else {},
            resources=deployed.resources if deployed else [],
            unhealthy=sorted(health.unhealthy) if health else [],
            confirmations=list(self._status.confirmations),
            failure=self._status.failure,
            transitions=list(self._status.transitions),
            skipped_health=self._request.skip_health,
            health_checks=self._health_checks,
            health_notes=dict(health.notes) if health else {},
            template_hash=self._request.template.digest,
            git_sha=self._request.git_sha,
            initiator=self._request.initiator,
            rollback=self._status.rollback,
        )


def classify_activity_failure(cause: BaseException | None) -> Classification:
    """Read the classification an activity attached to its failure; timeouts are environmental; an activity
    failure that carries no classification (a bug) is a LOGIC failure so it halts instead of repeating."""
    if isinstance(cause, TemporalTimeoutError):
        return Classification(
            failure_class=FailureClass.ENVIRONMENTAL,
            code="HeartbeatTimeout" if cause.type == TimeoutType.HEARTBEAT else "ActivityTimeout",
            message=f"the activity timed out ({cause.type.name if cause.type else 'timeout'}): worker lost or ARM slow",
        )
    if isinstance(cause, CancelledError):
        return Classification(
            failure_class=FailureClass.ENVIRONMENTAL,
            code="ActivityCancelled",
            message="the attempt was cancelled by its worker (shutting down); the next attempt resumes",
        )
    if isinstance(cause, ApplicationError):
        attached = Classification.attached(cause.type, str(cause.message), cause.details)
        if attached is not None:
            if attached.retry_after_seconds is None and cause.next_retry_delay:  # failures recorded before the
                attached.retry_after_seconds = cause.next_retry_delay.total_seconds()  # detail carried it
            return attached
        return Classification(
            failure_class=FailureClass.LOGIC, code=cause.type or "ActivityFailed", message=str(cause.message)
        )
    return Classification(
        failure_class=FailureClass.ENVIRONMENTAL,
        code=type(cause).__name__ if cause else "ActivityFailed",
        message=str(cause) if cause else "the activity failed without a cause",
    )
