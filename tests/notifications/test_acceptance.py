"""Acceptance, end to end: a real Temporal dev server, the real worker (its activities against the local ARM over
HTTPS), a local webhook receiver and a local SMTP server requiring STARTTLS.

- A Complete-mode deployment that deletes waits for approval: the webhook receiver gets one signed CloudEvent and
  the SMTP server one e-mail "approval needed", both with the approval page's link; approved, it completes and
  that is announced once.
- A worker process SIGKILLed while its webhook request is unanswered: the next worker delivers the same event (same
  id, same signed body); the receiver, deduplicating on the id, handles it once, and nothing comes after success.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.deployments import query_status, result_of, start_deployment
from contract.models import SIGNAL_APPROVE, ApprovalSignal, DeploymentMode, DeploymentStage, DeployOutcome
from contract.notifications import NotificationKind, event_id
from harness.localarm import real_worker, request_for, storage_template
from local_arm.admin import Fault
from local_arm.testing import FAST, LocalArm, running_local_arm
from services.audit.history import fetch_record
from services.notifications.config import load_notifications
from tests.support.notification_receivers import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_KEY,
    HttpReceiver,
    http_receiver,
    smtp_server,
    verify_signature,
)
from tests.support.worker_process import start_worker_process, stop_process, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="session")

PUBLIC = "https://team.example.test"


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-notify"), **FAST)


async def test_approval_needed_reaches_the_webhook_and_the_mailbox_once_with_the_page_link(
    dev_env, local_arm, tmp_path, task_queue, resource_group
):
    client = dev_env.client
    blob_dir = tmp_path / "blobs"
    with http_receiver() as receiver, smtp_server(tmp_path / "smtp") as smtp:
        config = tmp_path / "notifications.yaml"
        config.write_text(
            "delivery: {initial_interval_seconds: 1}\n"
            "sinks:\n"
            f"  - {{name: audit, type: webhook, url: '{receiver.url}', secret_env: HOOK_KEY}}\n"
            f"  - name: approvers\n    type: email\n    events: [approval_needed]\n"
            f"    resource_groups: ['{resource_group[:6]}*']\n"
            f"    host: 127.0.0.1\n    port: {smtp.port}\n    ca_file: {smtp.ca_file}\n"
            f"    from: deployments@example.test\n    to: [approvers@example.test]\n"
            f"    username: {SMTP_USER}\n    password_env: SMTP_PASSWORD\n"
        )
        notifier = load_notifications(config, {"HOOK_KEY": WEBHOOK_KEY, "SMTP_PASSWORD": SMTP_PASSWORD},
                                      public_url=PUBLIC)  # fmt: skip
        async with real_worker(client, local_arm, blob_dir, task_queue, notifier=notifier):
            both = request_for(local_arm, blob_dir, resource_group, storage_template(["stnotea01", "stnoteb01"]))
            assert (await result_of(await start_deployment(client, both, task_queue=task_queue))).succeeded
            await receiver.arrival(1, 30)  # the first deployment's "completed"
            smaller = request_for(local_arm, blob_dir, resource_group, storage_template(["stnotea01"]),
                                  mode=DeploymentMode.COMPLETE)  # fmt: skip
            handle = await start_deployment(client, smaller, task_queue=task_queue)

            async def waiting() -> bool:
                return (await query_status(handle)).stage is DeploymentStage.AWAITING_CONFIRMATION

            await wait_until(waiting, 60, "AWAITING_CONFIRMATION")
            [mail] = await smtp.mailbox.arrival(1, 30)
            await receiver.arrival(2, 30)
            status = await query_status(handle)
            plan_hash = status.pending_confirmation.plan_hash
            await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="ok", plan_hash=plan_hash))
            result = await asyncio.wait_for(result_of(handle), 90)
            await receiver.arrival(3, 30)
            await asyncio.sleep(2)  # a second copy of anything would arrive within the retry interval
            record = await fetch_record(client, handle.id, handle.result_run_id)  # the audit reads such a history
    assert record.state == "COMPLETED"
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    link = f"{PUBLIC}/ui/deployments/{handle.id}"
    run = handle.result_run_id
    mine = [r for r in receiver.requests if r.json()["data"]["run_id"] == run]
    assert [r.json()["type"] for r in mine] == [
        "io.bicep-orchestrator.deployment.approval_needed",
        "io.bicep-orchestrator.deployment.completed",
    ]
    approval = mine[0].json()
    assert verify_signature(mine[0]) and approval["specversion"] == "1.0"
    assert approval["id"] == event_id(handle.id, run, NotificationKind.APPROVAL_NEEDED, 1)
    assert approval["data"]["link"] == link and approval["data"]["deletions"] == 1
    assert approval["data"]["plan_counts"].get("Delete") == 1 and approval["data"]["initiator"] == "acceptance-test"
    assert len(smtp.mailbox.messages) == 1 and smtp.mailbox.tls == [True]
    assert mail["Subject"].startswith("Approval needed: 1 deletion(s) in " + resource_group)
    assert f"Approval page: {link}" in mail.get_content()
    assert mail["X-Orchestrator-Event-Id"] == approval["id"]


def worker_env(config: Path) -> dict[str, str]:
    """A worker process delivering to the sinks of ``config``, with fast heartbeats and polls."""
    return {
        "ORCHESTRATOR_NOTIFICATIONS": str(config),
        "ORCHESTRATOR_PUBLIC_URL": PUBLIC,
        "HOOK_KEY": WEBHOOK_KEY,
        "ORCHESTRATOR_ARM_POLL_INTERVAL_SECONDS": "0.1",
        "ORCHESTRATOR_HEARTBEAT_TIMEOUT_SECONDS": "2",
    }


async def test_a_worker_killed_mid_delivery_neither_loses_nor_duplicates_the_event(
    dev_env, local_arm, tmp_path, task_queue, resource_group
):
    client = dev_env.client
    address = client.service_client.config.target_host
    blob_dir = tmp_path / "blobs"
    log = tmp_path / "workers.log"
    config = tmp_path / "notifications.yaml"
    with http_receiver(HttpReceiver(hold=True)) as receiver:
        config.write_text(
            "delivery: {initial_interval_seconds: 0.5, maximum_interval_seconds: 1, attempt_timeout_seconds: 3}\n"
            f"sinks:\n  - {{name: audit, type: webhook, url: '{receiver.url}', secret_env: HOOK_KEY}}\n"
        )
        first = start_worker_process(address, task_queue, local_arm, blob_dir, log, worker_env(config))
        second = None
        try:
            request = request_for(local_arm, blob_dir, resource_group, storage_template(["stnotkill1"]))
            handle = await start_deployment(client, request, task_queue=task_queue)
            # The deployment's outcome is there while the receiver still holds the notification unanswered.
            result = await asyncio.wait_for(result_of(handle), 120)
            await receiver.arrival(1, 60)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            receiver.release()  # its answer goes nowhere: the killed worker never learns it was delivered
            second = start_worker_process(address, task_queue, local_arm, blob_dir, log, worker_env(config))
            eid = event_id(handle.id, handle.result_run_id, NotificationKind.COMPLETED)
            child = client.get_workflow_handle(f"notify-{eid}")
            report = await asyncio.wait_for(child.result(), 90)
            await asyncio.sleep(3)  # past the retry interval: nothing more may come
        finally:
            stop_process(first)
            if second is not None:
                stop_process(second)
    assert result.outcome is DeployOutcome.SUCCEEDED, (result.failure, log.read_text()[-3000:])
    assert report["results"][0]["delivered"] is True, report
    ids = [r.json()["id"] for r in receiver.requests]
    assert ids == [eid, eid], ids  # delivered again after the kill, with the same id; never after the success
    assert receiver.requests[0].body == receiver.requests[1].body
    assert all(verify_signature(r) for r in receiver.requests)
    assert list(receiver.processed()) == [eid]  # what a receiver deduplicating on the id handles: once


async def test_a_rollback_is_announced_with_the_failure_and_the_redeployed_target(
    dev_env, local_arm, tmp_path, task_queue, resource_group
):
    client = dev_env.client
    blob_dir = tmp_path / "blobs"
    with http_receiver() as receiver:
        config = tmp_path / "notifications.yaml"
        config.write_text(
            f"sinks:\n  - {{name: audit, type: webhook, url: '{receiver.url}', secret_env: HOOK_KEY, "
            "events: [failed, rolled_back]}\n"
        )
        notifier = load_notifications(config, {"HOOK_KEY": WEBHOOK_KEY}, public_url=PUBLIC)
        async with real_worker(client, local_arm, blob_dir, task_queue, notifier=notifier):
            v1 = await start_deployment(
                client, request_for(local_arm, blob_dir, resource_group, storage_template(["stnotrb1"])),
                task_queue=task_queue,
            )  # fmt: skip
            assert (await result_of(v1)).succeeded
            local_arm.admin.add_faults(Fault.provision_failure("InvalidValue", resource_name="stnotrb2", count=1))
            try:
                v2_request = request_for(
                    local_arm, blob_dir, resource_group, storage_template(["stnotrb1", "stnotrb2"])
                ).model_copy(update={"rollback_on_failure": True})
                v2 = await start_deployment(client, v2_request, task_queue=task_queue)
                result = await asyncio.wait_for(result_of(v2), 120)
            finally:
                local_arm.admin.clear_faults()
            [got] = await receiver.arrival(1, 30)
            await asyncio.sleep(1)
    assert result.outcome is DeployOutcome.ROLLED_BACK, result.failure
    assert len(receiver.requests) == 1  # completed is not a kind this sink takes
    body = got.json()
    assert body["type"] == "io.bicep-orchestrator.deployment.rolled_back"
    assert body["id"] == event_id(v2.id, v2.result_run_id, NotificationKind.ROLLED_BACK)
    data = body["data"]
    assert data["outcome"] == "ROLLED_BACK" and data["stage"] == "ROLLED_BACK"
    assert data["failure"]["stage"] == "DEPLOYING" and data["rolled_back_to"] == v1.id
