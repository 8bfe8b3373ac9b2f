"""Record the workflow histories the Replayer test replays:
``python -m tests.workflow.record_history --tag v2`` writes ``histories/<scenario>.<tag>.json``.

Add a generation after a deliberate, versioned change of the workflow (a new ``workflow.patched`` id); never
re-record an existing file: the old generations are what prove that runs started by an older worker still replay
(test_replay.py replays every file). Each scenario drives a different path: approval then a throttled retry, a
logic failure, a rejection, a confirmation timeout; the ``*_notified`` ones with a notification sink configured
(the detached notification workflows the deployment starts: approval needed and completed, failed). ``--only NAME``
records just those scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from client.deployments import query_status, result_of, start_deployment
from contract.models import (
    SIGNAL_APPROVE,
    SIGNAL_REJECT,
    ApprovalSignal,
    DeploymentStage,
    DeployOutcomeDetails,
    FailureClass,
    RetrySchedule,
    WorkerSettings,
)
from contract.notifications import NOTIFY_ACTIVITY, NotificationRouting, NotifyInput, NotifyResult, SinkRoute
from harness.fakes import DELETED, FakeStages, classified_error, make_request, plan_of
from services.temporal_client import data_converter
from tests.support.workflow_env import find_binary
from workflows.deployment import DeploymentWorkflow
from workflows.notification import NotificationWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def _until_waiting(handle: WorkflowHandle[Any, Any]) -> None:
    while (await query_status(handle)).stage != DeploymentStage.AWAITING_CONFIRMATION:
        await asyncio.sleep(0.05)


def _throttled_once(n: int) -> DeployOutcomeDetails:
    if n == 1:
        raise classified_error(FailureClass.ENVIRONMENTAL, "TooManyRequests", retry_after=7)
    return DeployOutcomeDetails(deployment_name="d", provisioning_state="Succeeded", resources=["/r/1"])


def _logic(n: int) -> Any:
    raise classified_error(FailureClass.LOGIC, "InvalidTemplate")


async def _approve(handle: WorkflowHandle[Any, Any]) -> None:
    await _until_waiting(handle)
    await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="recorded for replay"))


async def _reject(handle: WorkflowHandle[Any, Any]) -> None:
    await _until_waiting(handle)
    await handle.signal(SIGNAL_REJECT, ApprovalSignal(approver="bo", reason="recorded for replay"))


async def _nothing(handle: WorkflowHandle[Any, Any]) -> None:
    return None


@activity.defn(name=NOTIFY_ACTIVITY)
async def _notify(inp: NotifyInput) -> NotifyResult:
    return NotifyResult(sink=inp.sink, detail="recorded for replay")


def _notified() -> WorkerSettings:
    routing = NotificationRouting(sinks=[SinkRoute(name="audit")])
    return WorkerSettings(retry=RetrySchedule(), confirmation_timeout_seconds=600, notifications=routing)


SCENARIOS: dict[str, tuple[FakeStages, dict[str, Any], Callable[[WorkflowHandle[Any, Any]], Awaitable[None]]]] = {
    "approve_then_retry": (FakeStages(plan=lambda n: plan_of(2, [DELETED]), deploy=_throttled_once), {}, _approve),
    "logic_failure": (FakeStages(plan=_logic), {}, _nothing),
    "rejected": (FakeStages(plan=lambda n: plan_of(1, [DELETED])), {}, _reject),
    "not_confirmed": (
        FakeStages(plan=lambda n: plan_of(0, [DELETED])),
        {"confirmation_timeout_seconds": 600},
        _nothing,
    ),
    "approve_notified": (
        FakeStages(settings=_notified(), plan=lambda n: plan_of(1, [DELETED])),
        {},
        _approve,
    ),
    "logic_failure_notified": (FakeStages(settings=_notified(), plan=_logic), {}, _nothing),
}


async def record(tag: str, only: list[str] | None = None) -> None:
    path = find_binary("temporal-test-server")
    assert path, "temporal-test-server is not installed"
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path, data_converter=data_converter())
    try:
        HISTORIES.mkdir(exist_ok=True)
        for name, (fakes, request_fields, drive) in SCENARIOS.items():
            if only and name not in only:
                continue
            out = HISTORIES / f"{name}.{tag}.json"
            if out.exists():
                raise SystemExit(f"{out} exists: pick a new --tag (old generations must stay as they are)")
            queue = f"tq-{uuid.uuid4()}"
            async with Worker(
                env.client,
                task_queue=queue,
                workflows=[DeploymentWorkflow, NotificationWorkflow],
                activities=[*fakes.activities(), _notify],
            ):
                handle = await start_deployment(
                    env.client,
                    make_request(f"rg-{name}", **request_fields),
                    task_queue=queue,
                    workflow_id=f"deploy-replay-{name}-{tag}",
                )
                await drive(handle)
                await result_of(handle)
                history = await handle.fetch_history()
            out.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
            print(f"wrote {out} ({len(history.events)} events)")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", required=True, help="generation name, e.g. v2 (part of each file name)")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="record only this scenario")
    args = parser.parse_args()
    asyncio.run(record(args.tag, args.only))
