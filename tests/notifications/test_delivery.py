"""Delivery through the workflows on a real Temporal dev server: the deployment starts one detached notification
workflow per event, whose notify activity (the real one, with the real webhook sink) posts to a local receiver.
The stage activities are the harness's fakes (the path to ARM is tested in test_acceptance.py); what is looked at
here is what reaches the receiver: how often, with which id, and that the deployment never waits for a sink."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.worker import Replayer, Worker

from activities.notify import NotifyActivities
from client.deployments import query_status, result_of, start_deployment
from contract.models import SIGNAL_APPROVE, ApprovalSignal, DeploymentStage, DeployOutcome, FailureClass
from contract.notifications import NotificationKind, NotificationReport, event_id
from harness.fakes import DELETED, FakeStages, classified_error, make_request, plan_of
from services.notifications.config import Notifier, load_notifications
from services.temporal_client import data_converter
from tests.support.notification_receivers import WEBHOOK_KEY, HttpReceiver, http_receiver, verify_signature
from workflows.deployment import DeploymentWorkflow
from workflows.notification import NotificationWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

FAST_DELIVERY = "delivery: {initial_interval_seconds: 1, maximum_interval_seconds: 2, attempt_timeout_seconds: 5}\n"


def webhook_notifier(tmp_path: Path, url: str, *, extra: str = "", delivery: str = FAST_DELIVERY) -> Notifier:
    path = tmp_path / "notifications.yaml"
    path.write_text(
        delivery + f"sinks:\n  - {{name: hook, type: webhook, url: '{url}', secret_env: HOOK_KEY{extra}}}\n"
    )
    return load_notifications(path, {"HOOK_KEY": WEBHOOK_KEY}, public_url="https://deploy.example.test")


def worker_for(client: Client, task_queue: str, fakes: FakeStages, notifier: Notifier) -> Worker:
    fakes.settings = fakes.settings.model_copy(update={"notifications": notifier.routing})
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[DeploymentWorkflow, NotificationWorkflow],
        activities=[*fakes.activities(), NotifyActivities(notifier).notify],
    )


async def notification_result(client: Client, handle: Any, kind: NotificationKind, round_number: int | None = None):
    first_run = handle.first_execution_run_id or handle.result_run_id
    eid = event_id(handle.id, first_run, kind, round_number)
    child = client.get_workflow_handle(f"notify-{eid}")
    report = await asyncio.wait_for(child.result(), 60)
    return eid, NotificationReport.model_validate(report) if isinstance(report, dict) else report


async def test_a_receiver_failing_twice_gets_the_event_on_the_third_try_and_never_again(dev_env, tmp_path, task_queue):
    client = dev_env.client
    with http_receiver(HttpReceiver(statuses=[500, 503])) as receiver:
        # Tries at 0, 2 and 6 s: the deployment's result is back long before the third.
        delivery = "delivery: {initial_interval_seconds: 2, maximum_interval_seconds: 4, attempt_timeout_seconds: 5}\n"
        notifier = webhook_notifier(tmp_path, receiver.url, delivery=delivery)
        async with worker_for(client, task_queue, FakeStages(), notifier):
            handle = await start_deployment(client, make_request("rg-notify-retry"), task_queue=task_queue)
            result = await asyncio.wait_for(result_of(handle), 60)
            # The deployment's outcome does not wait for the sink: it is there before the third try.
            sent_when_done = len(receiver.requests)
            eid, report = await notification_result(client, handle, NotificationKind.COMPLETED)
            await asyncio.sleep(5)  # longer than the retry interval: nothing more may arrive
    assert result.outcome is DeployOutcome.SUCCEEDED
    assert sent_when_done < 3
    assert [r.delivered for r in report.results] == [True] and report.event_id == eid
    assert len(receiver.requests) == 3, [r.headers.get("x-orchestrator-event-id") for r in receiver.requests]
    assert {r.json()["id"] for r in receiver.requests} == {eid}
    assert len({r.body for r in receiver.requests}) == 1
    assert all(verify_signature(r) for r in receiver.requests)
    assert list(receiver.processed()) == [eid]
    data = receiver.requests[0].json()["data"]
    assert data["kind"] == "completed" and data["outcome"] == "SUCCEEDED" and data["deployment_id"] == handle.id


async def test_each_approval_round_and_the_end_are_one_event_each(dev_env, tmp_path, task_queue):
    client = dev_env.client
    fakes = FakeStages(plan=lambda n: plan_of(1, [DELETED]))
    with http_receiver() as receiver:
        notifier = webhook_notifier(tmp_path, receiver.url)
        async with worker_for(client, task_queue, fakes, notifier):
            handle = await start_deployment(client, make_request("rg-notify-rounds"), task_queue=task_queue)
            await wait_for_round(handle, 1)
            [first] = await receiver.arrival(1, 30)
            status = await query_status(handle)
            plan_hash = status.pending_confirmation.plan_hash
            await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="ok", plan_hash=plan_hash))
            result = await asyncio.wait_for(result_of(handle), 60)
            await notification_result(client, handle, NotificationKind.COMPLETED)
            history = await handle.fetch_history()
    assert result.outcome is DeployOutcome.SUCCEEDED
    kinds = [r.json()["data"]["kind"] for r in receiver.requests]
    assert kinds == ["approval_needed", "completed"]
    data = first.json()["data"]
    assert data["round"] == 1 and data["deletions"] == 1 and data["plan_hash"] == plan_hash
    assert data["link"] == f"https://deploy.example.test/ui/deployments/{handle.id}"
    assert first.json()["id"] == event_id(handle.id, handle.result_run_id, NotificationKind.APPROVAL_NEEDED, 1)
    # Replaying the run issues the same child workflow ids, so the same event ids (a changed id fails the replay).
    await assert_replays(history)


async def wait_for_round(handle: Any, round_number: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = await query_status(handle)
        pending = status.pending_confirmation
        if status.stage is DeploymentStage.AWAITING_CONFIRMATION and pending and pending.round == round_number:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no approval round {round_number}")


async def assert_replays(history: WorkflowHistory) -> None:
    replayer = Replayer(workflows=[DeploymentWorkflow], data_converter=data_converter())
    replay = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None, replay.replay_failure
    starts = [e for e in history.events if e.HasField("start_child_workflow_execution_initiated_event_attributes")]
    assert starts, "the run started no notification workflow"


async def test_a_failure_is_announced_with_its_code_and_no_message(dev_env, tmp_path, task_queue):
    client = dev_env.client
    fakes = FakeStages(plan=lambda n: (_ for _ in ()).throw(classified_error(FailureClass.LOGIC, "InvalidTemplate")))
    with http_receiver() as receiver:
        notifier = webhook_notifier(tmp_path, receiver.url)
        async with worker_for(client, task_queue, fakes, notifier):
            handle = await start_deployment(client, make_request("rg-notify-fail"), task_queue=task_queue)
            result = await asyncio.wait_for(result_of(handle), 60)
            await notification_result(client, handle, NotificationKind.FAILED)
    assert result.outcome is DeployOutcome.LOGIC_FAILURE
    [got] = receiver.requests
    data = got.json()["data"]
    assert data["kind"] == "failed" and data["outcome"] == "LOGIC_FAILURE"
    assert data["failure"] == {"stage": "PLANNING", "failure_class": "LOGIC", "code": "InvalidTemplate"}
    assert "injected" not in got.body.decode(), "the failure's message is never carried"


async def test_a_sink_that_never_answers_does_not_hold_or_fail_the_deployment(dev_env, tmp_path, task_queue):
    client = dev_env.client
    delivery = (
        "delivery: {initial_interval_seconds: 0.5, maximum_interval_seconds: 1, attempt_timeout_seconds: 2, "
        "give_up_after_seconds: 6}\n"
    )
    with http_receiver(HttpReceiver(statuses=[500] * 50)) as receiver:
        notifier = webhook_notifier(tmp_path, receiver.url, delivery=delivery)
        async with worker_for(client, task_queue, FakeStages(), notifier):
            handle = await start_deployment(client, make_request("rg-notify-down"), task_queue=task_queue)
            result = await asyncio.wait_for(result_of(handle), 60)
            eid = event_id(handle.id, handle.result_run_id, NotificationKind.COMPLETED)
            delivering = (await client.get_workflow_handle(f"notify-{eid}").describe()).status
            _, report = await notification_result(client, handle, NotificationKind.COMPLETED)
    assert result.outcome is DeployOutcome.SUCCEEDED
    assert delivering is WorkflowExecutionStatus.RUNNING, "the deployment ended only after the delivery gave up"
    assert [r.delivered for r in report.results] == [False]
    assert "HTTP 500" in report.results[0].detail
    assert len(receiver.requests) >= 2


async def test_events_outside_a_sinks_patterns_start_nothing(dev_env, tmp_path, task_queue):
    client = dev_env.client
    with http_receiver() as receiver:
        notifier = webhook_notifier(tmp_path, receiver.url, extra=", resource_groups: ['rg-prod-*'], events: [failed]")
        async with worker_for(client, task_queue, FakeStages(), notifier):
            handle = await start_deployment(client, make_request("rg-prod-web"), task_queue=task_queue)
            assert (await result_of(handle)).outcome is DeployOutcome.SUCCEEDED  # completed: not a kind it takes
            other = await start_deployment(
                client, make_request("rg-test-web"), task_queue=task_queue, workflow_id="deploy-notify-test-web"
            )
            assert (await result_of(other)).outcome is DeployOutcome.SUCCEEDED
            history = await handle.fetch_history()
    assert receiver.requests == []
    assert not [e for e in history.events if e.HasField("start_child_workflow_execution_initiated_event_attributes")]


async def test_a_cancelled_deployment_is_announced_as_failed_once(dev_env, tmp_path, task_queue):
    client = dev_env.client
    fakes = FakeStages(plan=lambda n: plan_of(1, [DELETED]))
    with http_receiver() as receiver:
        notifier = webhook_notifier(tmp_path, receiver.url)
        async with worker_for(client, task_queue, fakes, notifier):
            handle = await start_deployment(client, make_request("rg-notify-cancel"), task_queue=task_queue)
            await wait_for_round(handle, 1)
            await handle.cancel()
            result = await asyncio.wait_for(result_of(handle), 60)
            eid, report = await notification_result(client, handle, NotificationKind.FAILED)
    assert result.outcome is DeployOutcome.CANCELLED
    assert [r.delivered for r in report.results] == [True]
    assert [r.json()["data"]["kind"] for r in receiver.requests] == ["approval_needed", "failed"]
    data = receiver.requests[1].json()["data"]
    assert (
        data["outcome"] == "CANCELLED"
        and data["failure"]["code"] == "Cancelled"
        and receiver.requests[1].json()["id"] == eid
    )
