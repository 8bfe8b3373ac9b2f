"""A deployment's progress as Server-Sent Events, read from its Temporal event history.

Why history and not status polling: history is the workflow's own durable, ordered record, and every event in it has
a number that never changes (the history event id). Each SSE event carries that number as its ``id``, so a client
that reconnects with ``Last-Event-ID: N`` gets exactly the events after N — none lost, none twice — whichever
service replica it reaches; polling a status would only see the states that happened to be current at each poll
(a quick stage could be missed) and would need ids of its own. The stream long-polls history
(``wait_new_event``), so events arrive as the workflow records them, without a polling interval.

Events (``event:`` field; ``data:`` is one JSON object):

- ``stage`` — a stage transition (the workflow's ``transition`` memo upsert): stage, previous, at, detail, by;
- ``plan`` — a what-if plan was made (the plan activity's result): hash, counts, deletions, has_changes;
- ``decision`` — a decision was taken (``confirmation``) or refused (``refused_decision``);
- ``result`` — the run closed: outcome, stage, failure, outputs; the stream ends after it.

Comment lines (``: heartbeat``) keep proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle
from temporalio.converter import DataConverter

from client.deployments import result_of
from contract.models import ActivityName, WhatIfPlan

HEARTBEAT_SECONDS = 15.0
_CLOSED = frozenset(
    {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    }
)


@dataclass
class DeploymentEvent:
    id: int  # the history event id
    kind: str
    data: dict[str, Any]

    def encode(self) -> bytes:
        body = json.dumps(self.data, separators=(",", ":"), ensure_ascii=False, default=str)
        return f"id: {self.id}\nevent: {self.kind}\ndata: {body}\n\n".encode()


def plan_summary(plan: WhatIfPlan) -> dict[str, Any]:
    return {
        "hash": plan.plan_hash,
        "counts": dict(plan.counts),
        "has_changes": plan.has_changes,
        "deletions": plan.destructive_set,
        "truncated": plan.truncated,
    }


async def _decode(converter: DataConverter, payload: Any, type_hint: Any = None) -> Any:
    values = await converter.decode([payload], [type_hint] if type_hint is not None else None)
    return values[0] if values else None


async def history_events(
    handle: WorkflowHandle[Any, Any], converter: DataConverter, *, after: int = 0
) -> AsyncIterator[DeploymentEvent]:
    """The deployment's events with history ids above ``after``, as the run records them, until it closes."""
    scheduled: dict[int, str] = {}  # activity scheduled event id → activity type
    async for event in handle.fetch_history_events(wait_new_event=True):
        made = await _interpret(event, handle, converter, scheduled)
        for item in made:
            if item.id > after:
                yield item
        if event.event_type in _CLOSED:
            return


async def _interpret(
    event: HistoryEvent, handle: WorkflowHandle[Any, Any], converter: DataConverter, scheduled: dict[int, str]
) -> list[DeploymentEvent]:
    t = event.event_type
    if t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        return []
    if t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        done = event.activity_task_completed_event_attributes
        if scheduled.get(done.scheduled_event_id) != ActivityName.PLAN_DEPLOYMENT or not done.result.payloads:
            return []
        plan = await _decode(converter, done.result.payloads[0], WhatIfPlan)
        return [DeploymentEvent(event.event_id, "plan", plan_summary(plan))] if isinstance(plan, WhatIfPlan) else []
    if t == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
        fields = event.workflow_properties_modified_event_attributes.upserted_memo.fields
        out = []
        if "transition" in fields:
            out.append(DeploymentEvent(event.event_id, "stage", await _decode(converter, fields["transition"])))
        if "confirmation" in fields:
            record = await _decode(converter, fields["confirmation"])
            out.append(DeploymentEvent(event.event_id, "decision", {"taken": True, **_decision(record)}))
        if "refused_decision" in fields:
            record = await _decode(converter, fields["refused_decision"])
            out.append(DeploymentEvent(event.event_id, "decision", {"taken": False, **_decision(record)}))
        return out
    if t in _CLOSED:
        result = await result_of(handle)
        return [
            DeploymentEvent(
                event.event_id,
                "result",
                {
                    "outcome": result.outcome.value,
                    "stage": result.stage.value,
                    "deployment_name": result.deployment_name,
                    "failure": result.failure.model_dump(mode="json") if result.failure else None,
                    "outputs": result.outputs,  # secure outputs are masked by the workflow
                    "resources": len(result.resources),
                },
            )
        ]
    return []


def _decision(record: Any) -> dict[str, Any]:
    """A decision record for the stream: who, what, which plan, whether the identity was verified (not the proofs:
    GET /deployments/{id}/audit has them)."""
    if not isinstance(record, dict):
        return {}
    keep = ("decision", "by", "reason", "at", "round", "plan_hash", "identity_verified", "why", "kind", "decision_id")
    return {k: record[k] for k in keep if k in record}


async def sse_stream(
    handle: WorkflowHandle[Any, Any],
    converter: DataConverter,
    *,
    after: int = 0,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> AsyncIterator[bytes]:
    """The SSE body: a ``retry`` hint, the events, heartbeat comments while nothing happens; ends after ``result``."""
    queue: asyncio.Queue[DeploymentEvent | BaseException | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in history_events(handle, converter, after=after):
                await queue.put(item)
            await queue.put(None)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # reported to the client as an error event, then the stream ends
            await queue.put(exc)

    task = asyncio.create_task(pump())
    try:
        yield b"retry: 2000\n: stream of deployment events; reconnect with Last-Event-ID to resume\n\n"
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=heartbeat_seconds)
            except TimeoutError:
                yield b": heartbeat\n\n"
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                detail = {"detail": f"reading the deployment's history failed ({type(item).__name__}); reconnect"}
                yield f"event: error\ndata: {json.dumps(detail)}\n\n".encode()
                return
            yield item.encode()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
