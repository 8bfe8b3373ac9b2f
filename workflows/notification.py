"""The notification workflow: delivers one event to each of its sinks, one notify activity per sink, each retried on
the worker's delivery policy independently (a sink that fails never makes another receive the event twice).

A deployment starts it as a detached child (parent close policy ABANDON) with the id ``notify-<event id>``: the
deployment goes on, or ends, as soon as the child has started, and the delivery outlives it. Its result lists what
each sink answered; a sink that never accepted the event is logged and listed, never an error of the deployment.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from contract.notifications import (
        NOTIFICATION_WORKFLOW_NAME,
        NOTIFY_ACTIVITY,
        NotificationEvent,
        NotificationReport,
        NotificationRequest,
        NotificationRouting,
        NotifyInput,
        NotifyResult,
        notification_workflow_id,
    )


async def announce(routing: NotificationRouting, event: NotificationEvent) -> list[str]:
    """Start the detached delivery of ``event`` (from a deployment or a drift check) to the sinks the worker routes
    it to, and return them (empty: no sink takes it, nothing started). Only the start is awaited; the child's id
    derives from the event's stable id, so the server refuses a second start of the same event."""
    sinks = routing.sinks_for(event)
    if not sinks:
        return []
    try:
        await workflow.start_child_workflow(
            NOTIFICATION_WORKFLOW_NAME,
            NotificationRequest(event=event, sinks=sinks, delivery=routing.delivery),
            id=notification_workflow_id(event),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"{event.kind.value} to {', '.join(sinks)}",
        )
    except WorkflowAlreadyStartedError:
        workflow.logger.info("%s event %s was already announced", event.kind.value, event.id)
    return sinks


@workflow.defn(name=NOTIFICATION_WORKFLOW_NAME)
class NotificationWorkflow:
    @workflow.run
    async def run(self, request: NotificationRequest) -> NotificationReport:
        results = await asyncio.gather(*(self._deliver(request, sink) for sink in request.sinks))
        return NotificationReport(event_id=request.event.id, results=list(results))

    async def _deliver(self, request: NotificationRequest, sink: str) -> NotifyResult:
        policy = request.delivery
        event = request.event
        try:
            return await workflow.execute_activity(
                NOTIFY_ACTIVITY,
                NotifyInput(event=event, sink=sink),
                result_type=NotifyResult,
                start_to_close_timeout=timedelta(seconds=policy.attempt_timeout_seconds),
                schedule_to_close_timeout=timedelta(seconds=policy.give_up_after_seconds),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=policy.initial_interval_seconds),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=policy.maximum_interval_seconds),
                    maximum_attempts=0,  # until give_up_after_seconds
                ),
                summary=f"{event.kind.value} to {sink}",
            )
        except ActivityError as err:
            why = str(err.cause or err)
            workflow.logger.warning("%s event %s not delivered to %s: %s", event.kind.value, event.id, sink, why)
            return NotifyResult(sink=sink, delivered=False, detail=why)
