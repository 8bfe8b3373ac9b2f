"""Rebuild a deployment's audit record from its Temporal event history — the only source.

What comes from where (docs/AUDIT.md has the table):

- the request (git SHA, files, initiator, parameters' names) — the WorkflowExecutionStarted input;
- stage changes and confirmations — the memo upserts (``stage``, ``transition``, ``confirmation``);
- attempts, results and classified failures — activity events and local-activity markers (validation, lint: the
  Bicep version and the compiled template's hash are in the lint marker's result);
- the backoff before each retry — the timers (their summary names the stage and the code);
- approvals and rejections — the signal events (with the sending client's identity);
- workers — the identities on workflow-task-completed and activity-task-started events;
- the outcome — the close event (a failed deployment carries its ``DeployResult`` as the failure's detail).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.common import TypedSearchAttributes
from temporalio.converter import DataConverter, decode_typed_search_attributes
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

from contract.models import (
    SIGNAL_APPROVE,
    SIGNAL_REJECT,
    ActivityName,
    DeployOutcome,
    DeployRequest,
    DeployResult,
    excerpt,
    parse_decision,
    parse_error_type,
)
from contract.search_attributes import NAMES
from services.audit.record import (
    AuditApproval,
    AuditEvent,
    AuditRecord,
    AuditResource,
    AuditResult,
    AuditRetry,
    AuditSignal,
)

LOCAL_ACTIVITY_MARKER = "core_local_activity"
# "outcome" repeats what the result holds (the final transition carries it for `list`, patch outcome-memo).
_KNOWN_MEMO = frozenset(
    {"stage", "transition", "confirmation", "refused_decision", "outcome", "initiator_verification"}
)
_ATTEMPT_SUMMARY = re.compile(r"^(?P<stage>[A-Z_]+) attempt (?P<attempt>\d+)$")
_RETRY_SUMMARY = re.compile(r"^(?P<stage>[A-Z_]+): retry (?P<retry>\d+) after (?P<code>\S+) \((?P<seconds>[\d.]+) s\)$")
_CLOSE_STATUS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "COMPLETED",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "FAILED",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "CANCELED",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "TERMINATED",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "TIMED_OUT",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "CONTINUED_AS_NEW",
}


class NotADeployment(ValueError):
    """The history is not a deployment workflow's (no DeployRequest as its input)."""


async def fetch_record(client: Client, workflow_id: str, run_id: str | None = None) -> AuditRecord:
    """The audit record of a run (the latest run of ``workflow_id`` when ``run_id`` is None)."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    history = await handle.fetch_history()
    if run_id is None:
        description = await handle.describe()
        run_id = description.run_id
    return await record_from_history(history, client.data_converter, run_id=run_id)


def _time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


def resource_type_of(resource_id: str) -> str:
    """``/subscriptions/…/providers/Microsoft.Web/sites/app/slots/s`` → ``Microsoft.Web/sites/slots``."""
    lower = resource_id.lower()
    index = lower.rfind("/providers/")
    if index < 0:
        return "Microsoft.Resources/resourceGroups" if "/resourcegroups/" in lower else "unknown"
    parts = [p for p in resource_id[index + len("/providers/") :].split("/") if p]
    if len(parts) < 3:
        return "/".join(parts) or "unknown"
    namespace, rest = parts[0], parts[1:]
    types = [rest[i] for i in range(0, len(rest), 2)]
    return "/".join([namespace, *types])


class _Builder:
    """One pass over the events, in order."""

    def __init__(self, converter: DataConverter, run_id: str) -> None:
        self.converter = converter
        self.run_id = run_id
        self.request: DeployRequest | None = None
        self.events: list[AuditEvent] = []
        self.started_at: datetime | None = None
        self.client_identity: str | None = None
        self.workflow_workers: list[str] = []
        self.activity_workers: list[str] = []
        self.scheduled: dict[int, dict[str, Any]] = {}  # activity scheduled event id -> type, summary, stage
        self.started_identity: dict[int, str] = {}  # activity scheduled event id -> worker identity
        self.timers: dict[str, str] = {}  # timer id -> summary
        self.retries: list[AuditRetry] = []
        self.signals: list[AuditSignal] = []
        self.approvals: list[AuditApproval] = []
        self.refused: list[dict[str, Any]] = []
        self.initiator_verification: dict[str, Any] | None = None
        self.plan: dict[str, Any] | None = None
        self.lint: dict[str, Any] | None = None
        self.deployed: dict[str, Any] | None = None
        self.health: dict[str, Any] | None = None
        self.health_checks: dict[str, Any] | None = None
        self.state: str | None = None
        self.result: DeployResult | None = None
        self.close_status = "RUNNING"
        self.close_time: datetime | None = None
        self.close_message = "the deployment is still running"
        self.search_attributes: dict[str, Any] = {}

    # -------------------------------------------------------------------------------------- decoding helpers

    async def decode(self, payloads: Any) -> list[Any]:
        items = list(payloads or [])
        return list(await self.converter.decode(items)) if items else []

    async def decode_one(self, payloads: Any) -> Any:
        values = await self.decode(payloads)
        return values[0] if values else None

    async def summary(self, event: HistoryEvent) -> str | None:
        if not event.HasField("user_metadata") or not event.user_metadata.HasField("summary"):
            return None
        value = await self.decode_one([event.user_metadata.summary])
        return str(value) if value is not None else None

    async def failure(self, failure: Failure) -> dict[str, Any]:
        """A failure, classified the way the workflow classified it (``classify_activity_failure``)."""
        err = await self.converter.decode_failure(failure)
        while isinstance(err, Exception) and not isinstance(err, ApplicationError | TemporalTimeoutError):
            cause = getattr(err, "cause", None)
            if cause is None:
                break
            err = cause
        if isinstance(err, TemporalTimeoutError):
            kind = err.type.name if err.type else "TIMEOUT"
            return {
                "failure_class": "ENVIRONMENTAL",
                "code": "HeartbeatTimeout" if kind == "HEARTBEAT" else "ActivityTimeout",
                "message": f"the activity timed out ({kind}): worker lost or ARM slow",
                "retry_after_seconds": None,
            }
        if isinstance(err, CancelledError):
            return {
                "failure_class": "ENVIRONMENTAL",
                "code": "ActivityCancelled",
                "message": "the attempt was cancelled by its worker",
                "retry_after_seconds": None,
            }
        if isinstance(err, ApplicationError):
            parsed = parse_error_type(err.type)
            detail = err.details[0] if err.details and isinstance(err.details[0], dict) else {}
            retry_after = err.next_retry_delay.total_seconds() if err.next_retry_delay else None
            return {
                "failure_class": parsed[0].value if parsed else "LOGIC",
                "code": parsed[1] if parsed else (err.type or "ActivityFailed"),
                "message": str(detail.get("message") or err.message),
                "retry_after_seconds": detail.get("retry_after_seconds", retry_after),
            }
        return {
            "failure_class": "ENVIRONMENTAL",
            "code": type(err).__name__,
            "message": str(err),
            "retry_after_seconds": None,
        }

    def add(self, event: HistoryEvent, event_type: str, message: str, **details: Any) -> None:
        self.events.append(
            AuditEvent(
                timestamp=_time(event),
                event_type=event_type,
                message=message,
                details={k: v for k, v in details.items() if v is not None},
                history_event_id=event.event_id,
            )
        )

    # ------------------------------------------------------------------------------------------------ events

    async def on_event(self, event: HistoryEvent) -> None:
        t = event.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            await self.on_started(event)
        elif t == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            identity = event.workflow_task_completed_event_attributes.identity
            if identity and identity not in self.workflow_workers:
                self.workflow_workers.append(identity)
        elif t == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
            await self.on_memo(event)
        elif t == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            upserted = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            self.search_attributes.update(_search_attribute_values(decode_typed_search_attributes(upserted)))
        elif t == EventType.EVENT_TYPE_MARKER_RECORDED:
            await self.on_marker(event)
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            summary = await self.summary(event)
            match = _ATTEMPT_SUMMARY.match(summary or "")
            self.scheduled[event.event_id] = {
                "activity": attrs.activity_type.name,
                "summary": summary,
                "stage": match["stage"] if match else None,
                "attempt": int(match["attempt"]) if match else 1,
            }
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs_started = event.activity_task_started_event_attributes
            self.started_identity[attrs_started.scheduled_event_id] = attrs_started.identity
            if attrs_started.identity and attrs_started.identity not in self.activity_workers:
                self.activity_workers.append(attrs_started.identity)
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs_done = event.activity_task_completed_event_attributes
            scheduled = self.scheduled.get(attrs_done.scheduled_event_id, {})
            value = await self.decode_one(attrs_done.result.payloads)
            self.on_activity_result(
                event,
                scheduled.get("activity", "?"),
                scheduled.get("stage"),
                scheduled.get("attempt", 1),
                value,
                self.started_identity.get(attrs_done.scheduled_event_id),
            )
        elif t in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
        ):
            await self.on_activity_failed(event)
        elif t == EventType.EVENT_TYPE_TIMER_STARTED:
            await self.on_timer(event)
        elif t == EventType.EVENT_TYPE_TIMER_FIRED:
            timer_id = event.timer_fired_event_attributes.timer_id
            self.add(event, "timer_fired", f"timer fired: {self.timers.get(timer_id) or timer_id}", timer_id=timer_id)
        elif t == EventType.EVENT_TYPE_TIMER_CANCELED:
            timer_id = event.timer_canceled_event_attributes.timer_id
            self.add(
                event, "timer_canceled", f"timer canceled: {self.timers.get(timer_id) or timer_id}", timer_id=timer_id
            )
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            await self.on_signal(event)
        elif t in _CLOSE_STATUS:
            await self.on_close(event)

    async def on_started(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_started_event_attributes
        value = await self.decode_one(attrs.input.payloads)
        if not isinstance(value, dict):
            raise NotADeployment(f"workflow type {attrs.workflow_type.name!r} does not take a DeployRequest")
        self.request = DeployRequest.model_validate(value)
        self.started_at = _time(event)
        self.client_identity = attrs.identity or None
        self.search_attributes.update(_search_attribute_values(decode_typed_search_attributes(attrs.search_attributes)))
        r = self.request
        self.add(
            event,
            "deployment_started",
            f"deployment of {r.template_path or r.template.digest} to resource group {r.resource_group} requested by "
            f"{r.initiator}",
            workflow_type=attrs.workflow_type.name,
            task_queue=attrs.task_queue.name,
            client_identity=attrs.identity or None,
            initiator=r.initiator,
            git_sha=r.git_sha,
            mode=r.mode.value,
            location=r.location,
            no_confirm_deletes=r.no_confirm_deletes or None,
            skip_health=r.skip_health or None,
            allow_warnings=r.allow_warnings or None,
            parameter_names=sorted(r.parameters) or None,
            secure_parameter_names=r.secure_parameter_names or None,
            override_names=r.override_names or None,
        )

    async def on_memo(self, event: HistoryEvent) -> None:
        fields = event.workflow_properties_modified_event_attributes.upserted_memo.fields
        values = {name: await self.decode_one([fields[name]]) for name in sorted(fields)}
        transition = values.get("transition")
        if isinstance(transition, dict):
            stage = str(transition.get("stage"))
            self.state = stage
            previous = transition.get("previous")
            detail = transition.get("detail") or ""
            arrow = f"{previous} → {stage}" if previous else stage
            self.add(
                event,
                "stage_transition",
                f"{arrow}: {detail}" if detail else arrow,
                stage=stage,
                previous=previous,
                at=transition.get("at"),
                detail=detail or None,
                by=transition.get("by"),
            )
        confirmation = values.get("confirmation")
        if isinstance(confirmation, dict):
            self.on_confirmation(event, confirmation)
        initiator = values.get("initiator_verification")
        if isinstance(initiator, dict):  # verified approvals: the check of the initiator's signed start statement
            self.initiator_verification = initiator
            self.add(
                event,
                "initiator_verified" if initiator.get("verified") is True else "initiator_not_verified",
                f"initiator {initiator.get('identity')}: "
                + ("verified" if initiator.get("verified") is True else f"not verified: {initiator.get('why')}"),
            )
        refused = values.get("refused_decision")
        if isinstance(refused, dict):  # four eyes: a decision the approval policy refused (recorded, ignored)
            self.refused.append({**refused, "identity_verified": refused.get("identity_verified") is True})
            self.add(
                event,
                "decision_refused",
                f"{str(refused.get('decision', '')).lower()} by {refused.get('by')} refused: {refused.get('why')}",
                **{k: refused.get(k) for k in ("decision", "by", "reason", "why", "round", "at", "kind", "plan_hash")},
                identity_verified=refused.get("identity_verified") is True,
                kind_of_proof=(refused.get("verification") or {}).get("proof_kind")
                if isinstance(refused.get("verification"), dict)
                else None,
            )
        other = {k: v for k, v in values.items() if k not in _KNOWN_MEMO}
        if other:  # a memo key this reader does not know yet: kept, not interpreted
            self.add(event, "memo_upserted", f"memo: {', '.join(sorted(other))}", memo=other)

    def on_confirmation(self, event: HistoryEvent, record: dict[str, Any]) -> None:
        decision = str(record.get("decision"))
        by = str(record.get("by"))
        signal = next(
            (s for s in reversed(self.signals) if s.approver == by and s.name in (SIGNAL_APPROVE, SIGNAL_REJECT)),
            None,
        )
        plan = self.plan or {}
        approval = AuditApproval(
            decision=decision,
            by=by,
            at=record.get("at") or _time(event),
            reason=str(record.get("reason") or ""),
            round=int(record.get("round") or 1),
            destructive_set=list(record.get("destructive_set") or []),
            plan_counts=dict(plan.get("counts") or {}),
            plan_full_result=plan.get("full_result"),
            signal_identity=signal.identity if signal and decision in ("APPROVED", "REJECTED") else None,
            signal_received_at=signal.received_at if signal and decision in ("APPROVED", "REJECTED") else None,
            plan_hash=record.get("plan_hash") if isinstance(record.get("plan_hash"), str) else None,
            bound_by=record.get("bound_by") if isinstance(record.get("bound_by"), str) else None,
            identity_verified=record.get("identity_verified") is True,
            decisions=[d for d in record.get("decisions") or [] if isinstance(d, dict)],
            policy=record.get("policy") if isinstance(record.get("policy"), dict) else None,
        )
        self.approvals.append(approval)
        self.add(
            event,
            "confirmation_recorded",
            f"deletions {decision.lower()} by {by} (round {approval.round})"
            + (f": {approval.reason}" if approval.reason else ""),
            decision=decision,
            by=by,
            reason=approval.reason or None,
            round=approval.round,
            destructive_set=approval.destructive_set,
        )

    async def on_marker(self, event: HistoryEvent) -> None:
        attrs = event.marker_recorded_event_attributes
        if attrs.marker_name != LOCAL_ACTIVITY_MARKER:
            return  # patch and other SDK markers are not facts about the deployment
        data = await self.decode_one(attrs.details["data"].payloads) if "data" in attrs.details else None
        data = data if isinstance(data, dict) else {}
        activity = str(data.get("activity_type") or "?")
        summary = await self.summary(event)
        match = _ATTEMPT_SUMMARY.match(summary or "")
        stage = match["stage"] if match else None
        attempt = int(match["attempt"]) if match else 1
        if attrs.HasField("failure"):
            failure = await self.failure(attrs.failure)
            self.on_failure(event, activity, stage, attempt, failure, self._workflow_worker())
            return
        value = await self.decode_one(attrs.details["result"].payloads) if "result" in attrs.details else None
        self.on_activity_result(event, activity, stage, attempt, value, self._workflow_worker(), local=True)

    def _workflow_worker(self) -> str | None:
        return self.workflow_workers[-1] if self.workflow_workers else None

    def on_activity_result(
        self,
        event: HistoryEvent,
        activity: str,
        stage: str | None,
        attempt: int,
        value: Any,
        identity: str | None,
        *,
        local: bool = False,
    ) -> None:
        facts: dict[str, Any] = {}
        if isinstance(value, dict):
            if activity == ActivityName.LINT_TEMPLATE:
                self.lint = value
                facts = {
                    "linter": value.get("linter"),
                    "bicep_version": value.get("bicep_version"),
                    "warnings": len(value.get("warnings") or []),
                    "compiled_template_hash": value.get("compiled_template_hash"),
                }
            elif activity == ActivityName.VALIDATE_PARAMETERS:
                facts = {"resource_count": value.get("resource_count")}
            elif activity == ActivityName.PLAN_DEPLOYMENT:
                self.plan = value
                facts = {"counts": value.get("counts"), "full_result": value.get("full_result")}
            elif activity == ActivityName.DEPLOY:
                self.deployed = value
                facts = {
                    "deployment_name": value.get("deployment_name"),
                    "provisioning_state": value.get("provisioning_state"),
                    "resources": len(value.get("resources") or []),
                    "submitted_by_this_attempt": value.get("submitted_by_this_attempt"),
                }
            elif activity == ActivityName.VERIFY_HEALTH:
                self.health = value
                facts = {
                    "healthy": len(value.get("healthy") or []),
                    "unhealthy": len(value.get("unhealthy") or {}),
                }
            elif activity == ActivityName.RUN_HEALTH_CHECKS:
                self.health_checks = value
                facts = {"healthy": value.get("healthy")}
            # Side-effect-free requests made again in place after a transient failure (not attempts of the stage).
            retried = value.get("request_retries") or []
            if retried and isinstance(retried, list):
                facts["requests_retried_in_place"] = [
                    f"{r.get('what')}: {r.get('code')} (again after {r.get('delay_seconds')} s)"
                    for r in retried
                    if isinstance(r, dict)
                ]
        where = f" on {identity}" if identity else ""
        self.add(
            event,
            "activity_completed",
            f"{stage + ': ' if stage else ''}{activity} attempt {attempt} succeeded{where}",
            activity=activity,
            stage=stage,
            attempt=attempt,
            local=local or None,
            worker_identity=identity,
            **{k: v for k, v in facts.items() if v is not None},
        )

    async def on_activity_failed(self, event: HistoryEvent) -> None:
        t = event.event_type
        if t == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            failed = event.activity_task_failed_event_attributes
            scheduled_id, failure_proto = failed.scheduled_event_id, failed.failure
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            timed_out = event.activity_task_timed_out_event_attributes
            scheduled_id, failure_proto = timed_out.scheduled_event_id, timed_out.failure
        else:
            canceled = event.activity_task_canceled_event_attributes
            scheduled_id, failure_proto = canceled.scheduled_event_id, None
        scheduled = self.scheduled.get(scheduled_id, {})
        if failure_proto is not None:
            failure = await self.failure(failure_proto)
        else:
            failure = {
                "failure_class": "ENVIRONMENTAL",
                "code": "ActivityCancelled",
                "message": "the activity was cancelled",
                "retry_after_seconds": None,
            }
        self.on_failure(
            event,
            scheduled.get("activity", "?"),
            scheduled.get("stage"),
            scheduled.get("attempt", 1),
            failure,
            self.started_identity.get(scheduled_id),
        )

    def on_failure(
        self,
        event: HistoryEvent,
        activity: str,
        stage: str | None,
        attempt: int,
        failure: dict[str, Any],
        identity: str | None,
    ) -> None:
        retry = AuditRetry(
            stage=stage,
            activity=activity,
            attempt=attempt,
            failed_at=_time(event),
            failure_class=failure["failure_class"],
            code=failure["code"],
            message=failure["message"],
            retry_after_seconds=failure.get("retry_after_seconds"),
            worker_identity=identity,
        )
        self.retries.append(retry)
        self.add(
            event,
            "activity_failed",
            f"{stage + ': ' if stage else ''}{activity} attempt {attempt} failed: {retry.failure_class} {retry.code}: "
            f"{retry.message}",
            activity=activity,
            stage=stage,
            attempt=attempt,
            failure_class=retry.failure_class,
            code=retry.code,
            error=retry.message,
            retry_after_seconds=retry.retry_after_seconds,
            worker_identity=identity,
        )

    async def on_timer(self, event: HistoryEvent) -> None:
        attrs = event.timer_started_event_attributes
        summary = await self.summary(event) or ""
        self.timers[attrs.timer_id] = summary
        seconds = attrs.start_to_fire_timeout.ToTimedelta().total_seconds()
        match = _RETRY_SUMMARY.match(summary)
        if match:
            pending = next((r for r in reversed(self.retries) if r.stage == match["stage"] and not r.retried), None)
            if pending is not None:
                pending.retried = True
                pending.backoff_seconds = seconds
            self.add(
                event,
                "retry_scheduled",
                summary,
                stage=match["stage"],
                retry=int(match["retry"]),
                code=match["code"],
                backoff_seconds=seconds,
                timer_id=attrs.timer_id,
            )
        else:
            self.add(
                event,
                "timer_started",
                f"{summary or 'timer'} ({seconds:g} s)",
                timer_id=attrs.timer_id,
                seconds=seconds,
            )

    async def on_signal(self, event: HistoryEvent) -> None:
        """Any payload anyone sent, read without trusting its shape: the record must export whatever was signalled
        (a malformed decision is listed as sent and, by the workflow, as refused)."""
        attrs = event.workflow_execution_signaled_event_attributes
        try:
            value = await self.decode_one(attrs.input.payloads)
        except Exception as exc:  # an encoding no converter reads: still a signal in the record
            value = f"<unreadable payload: {type(exc).__name__}>"
        doc = value if isinstance(value, dict) else {}
        approver = doc.get("approver", doc.get("provided_by"))
        destructive = doc.get("destructive_set")
        if attrs.signal_name in (SIGNAL_APPROVE, SIGNAL_REJECT):
            well_formed = parse_decision(value)[0] is not None
        else:
            well_formed = isinstance(value, dict) and (approver is None or isinstance(approver, str))
        signal = AuditSignal(
            name=attrs.signal_name,
            received_at=_time(event),
            approver=_short(approver) if approver is not None else None,
            reason=_short(doc.get("reason")) if doc.get("reason") is not None else None,
            destructive_set=[_short(d) for d in destructive[:_MAX_LISTED]]
            if isinstance(destructive, list) and all(isinstance(d, str) for d in destructive)
            else None,
            plan_hash=_short(doc.get("plan_hash")) if doc.get("plan_hash") is not None else None,
            decision_id=_short(doc.get("decision_id")) if doc.get("decision_id") is not None else None,
            payload_excerpt=None if well_formed else excerpt(value, as_json=True),
            identity=attrs.identity or None,
            history_event_id=event.event_id,
        )
        self.signals.append(signal)
        who = f" from {signal.approver}" if signal.approver else ""
        self.add(
            event,
            "signal_received",
            f"signal {attrs.signal_name}{who}" + (f": {signal.reason}" if signal.reason else ""),
            signal=attrs.signal_name,
            approver=signal.approver,
            reason=signal.reason,
            destructive_set=signal.destructive_set,
            plan_hash=signal.plan_hash,
            payload_excerpt=signal.payload_excerpt,
            client_identity=signal.identity,
        )

    async def on_close(self, event: HistoryEvent) -> None:
        t = event.event_type
        self.close_status = _CLOSE_STATUS[t]
        self.close_time = _time(event)
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            value = await self.decode_one(event.workflow_execution_completed_event_attributes.result.payloads)
            if isinstance(value, dict):
                self.result = DeployResult.model_validate(value)
            self.close_message = "deployment succeeded"
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            err = await self.converter.decode_failure(event.workflow_execution_failed_event_attributes.failure)
            if isinstance(err, ApplicationError) and err.details and isinstance(err.details[0], dict):
                self.result = DeployResult.model_validate(err.details[0])
            self.close_message = str(getattr(err, "message", None) or err)
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            attrs = event.workflow_execution_terminated_event_attributes
            self.close_message = f"terminated by {attrs.identity or 'unknown'}: {attrs.reason or 'no reason given'}"
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
            self.close_message = "the workflow was cancelled"
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
            self.close_message = "the workflow timed out"
        else:
            self.close_message = "continued as new"
        outcome = self.result.outcome.value if self.result else self.close_status
        self.add(
            event,
            "deployment_completed" if self.close_status == "COMPLETED" else "deployment_failed",
            f"{outcome}: {self.close_message}",
            workflow_status=self.close_status,
            outcome=self.result.outcome.value if self.result else None,
        )

    # ------------------------------------------------------------------------------------------------ record

    def record(self, workflow_id: str) -> AuditRecord:
        if self.request is None or self.started_at is None:
            raise NotADeployment(f"the history of {workflow_id} has no WorkflowExecutionStarted event")
        request, result = self.request, self.result
        success = bool(result and result.outcome == DeployOutcome.SUCCEEDED)
        lint = self.lint or {}
        secure = {n.lower() for n in request.secure_parameter_names}
        resources = self.resources()
        template_hash = (
            (result.template_hash if result else None)
            or lint.get("compiled_template_hash")
            or request.template_hash
            or request.template.digest
        )
        return AuditRecord(
            deployment_id=workflow_id,
            run_id=self.run_id,
            git_sha=request.git_sha,
            template_file=request.template_path,
            parameters_file=request.parameters_path,
            timestamp=self.started_at,
            events=self.events,
            result=AuditResult(
                success=success,
                message=self.result_message(),
                timestamp=self.close_time,
                outcome=result.outcome.value if result else None,
                workflow_status=self.close_status,
                failure=result.failure.model_dump(mode="json") if result and result.failure else None,
            ),
            resources=resources,
            deployment_name=result.deployment_name if result else (self.deployed or {}).get("deployment_name"),
            subscription_id=request.subscription_id,
            resource_group=request.resource_group,
            location=request.location,
            mode=request.mode.value,
            initiator=request.initiator,
            state=(result.stage.value if result else None) or self.state,
            template_hash=template_hash,
            source_template_hash=request.template.digest,
            bicep_version=lint.get("bicep_version"),
            linter=lint.get("linter"),
            lint_warnings=list(lint.get("warnings") or []),
            parameters={k: v for k, v in request.parameters.items() if k.lower() not in secure},
            secure_parameter_names=list(request.secure_parameter_names),
            plan=(result.plan.model_dump(mode="json") if result and result.plan else None) or self.plan,
            approvals=self.approvals,
            refused_decisions=self.refused,
            initiator_verification=self.initiator_verification,
            # True only when the initiator signed the start and every decision taken was verified
            identities_verified=bool(self.initiator_verification and self.initiator_verification.get("verified"))
            and all(a.identity_verified for a in self.approvals if a.decision in ("APPROVED", "REJECTED")),
            signals=self.signals,
            retries=self.retries,
            health_checks=(result.health_checks.model_dump(mode="json") if result and result.health_checks else None)
            or self.health_checks,
            rollback=result.rollback.model_dump(mode="json") if result and result.rollback else None,
            worker_identity=self.workflow_workers[0] if self.workflow_workers else None,
            worker_identities=sorted({*self.workflow_workers, *self.activity_workers}),
            client_identity=self.client_identity,
            search_attributes=dict(sorted(self.search_attributes.items())),
        )

    def result_message(self) -> str:
        result = self.result
        if result is None or result.failure is None:
            return self.close_message
        f = result.failure
        klass = f"{f.failure_class.value} " if f.failure_class else ""
        attempts = f" after {f.attempts} attempt(s)" if f.attempts > 1 else ""
        return f"{result.outcome.value}: {klass}{f.code} in {f.stage.value}{attempts}: {f.message}"

    def resources(self) -> list[AuditResource]:
        result = self.result
        ids: list[str] = list(result.resources) if result and result.resources else []
        if not ids and self.deployed:
            ids = list(self.deployed.get("resources") or [])
        health = self.health or {}
        healthy = {str(i).lower() for i in health.get("healthy") or []}
        unhealthy = {str(k).lower(): str(v) for k, v in (health.get("unhealthy") or {}).items()}
        availability = {str(k).lower(): str(v) for k, v in (health.get("availability") or {}).items()}
        notes = {str(k).lower(): str(v) for k, v in (health.get("notes") or {}).items()}
        skipped = bool(result and result.skipped_health) or bool(self.request and self.request.skip_health)
        out = []
        for resource_id in ids:
            key = resource_id.lower()
            detail: str | None
            if key in unhealthy:
                status, detail = "Unhealthy", unhealthy[key]
            elif key in healthy:
                status, detail = "Healthy", notes.get(key)
            else:
                status = "NotChecked"
                detail = "health verification skipped (--skip-health)" if skipped else "not verified"
            out.append(
                AuditResource(
                    resource_id=resource_id,
                    resource_type=resource_type_of(resource_id),
                    health_status=status,
                    detail=detail,
                    availability=availability.get(key),
                )
            )
        return out


_MAX_LISTED = 5000


def _short(value: Any, limit: int = 2000) -> str:
    """A signal field as text of bounded length, whatever its JSON type (a malformed signal's field too)."""
    text = value if isinstance(value, str) else excerpt(value, limit)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def _search_attribute_values(attributes: TypedSearchAttributes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in attributes:
        if pair.key.name not in NAMES:  # ours only (not the SDK's TemporalChangeVersion)
            continue
        value = pair.value
        out[pair.key.name] = value.isoformat() if isinstance(value, datetime) else value
    return out


async def record_from_history(history: WorkflowHistory, converter: DataConverter, *, run_id: str) -> AuditRecord:
    """Build the audit record from a run's history (decoded with ``converter``: the project's, with the codec when
    payloads are encrypted)."""
    builder = _Builder(converter, run_id)
    for event in history.events:
        await builder.on_event(event)
    return builder.record(history.workflow_id)


def run_id_of(history: WorkflowHistory) -> str:
    """The run id recorded in the started event (``original_execution_run_id``)."""
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = event.workflow_execution_started_event_attributes
            return attrs.original_execution_run_id or attrs.first_execution_run_id
    return ""


__all__ = [
    "NotADeployment",
    "fetch_record",
    "record_from_history",
    "resource_type_of",
    "run_id_of",
]
