"""Record the four-eyes history the security replay test replays:
``python -m tests.security.record_four_eyes --tag v1`` writes ``histories/four_eyes.<tag>.json``: a stranger's and
the initiator's approvals refused (recorded, ignored), then a second allowed person's approval. Never re-record an
existing file (see tests/workflow/record_history.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from client.deployments import query_status, result_of, start_deployment
from contract.models import (
    SIGNAL_APPROVE,
    ApprovalPolicy,
    ApprovalSignal,
    DeploymentStage,
    RetrySchedule,
    WorkerSettings,
)
from harness.fakes import DELETED, FakeStages, make_request, plan_of
from services.temporal_client import data_converter
from tests.support.workflow_env import find_binary
from workflows.deployment import DeploymentWorkflow

HISTORIES = Path(__file__).parent / "histories"
POLICY = ApprovalPolicy(enabled=True, allowed_approvers=["ana", "tester@example.com"], source="recorded")


async def record(tag: str) -> None:
    path = find_binary("temporal-test-server")
    assert path, "temporal-test-server is not installed"
    out = HISTORIES / f"four_eyes.{tag}.json"
    if out.exists():
        raise SystemExit(f"{out} exists: pick a new --tag (old generations must stay as they are)")
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path, data_converter=data_converter())
    try:
        settings = WorkerSettings(retry=RetrySchedule(), confirmation_timeout_seconds=600, approval=POLICY)
        fakes = FakeStages(settings=settings, plan=lambda n: plan_of(1, [DELETED]))
        queue = f"tq-{uuid.uuid4()}"
        async with Worker(env.client, task_queue=queue, workflows=[DeploymentWorkflow], activities=fakes.activities()):
            handle = await start_deployment(
                env.client, make_request("rg-four-eyes"), task_queue=queue, workflow_id=f"deploy-replay-4eyes-{tag}"
            )
            while (await query_status(handle)).stage != DeploymentStage.AWAITING_CONFIRMATION:
                await asyncio.sleep(0.05)
            for who, n in (("eve", 1), ("tester@example.com", 2)):  # a stranger, then the initiator
                await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver=who, reason="recorded for replay"))
                while len((await query_status(handle)).refused_decisions) < n:
                    await asyncio.sleep(0.05)
            await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="recorded for replay"))
            result = await result_of(handle)
            assert result.succeeded, result.failure
            history = await handle.fetch_history()
        HISTORIES.mkdir(exist_ok=True)
        out.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
        print(f"wrote {out} ({len(history.events)} events)")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", required=True, help="generation name, e.g. v1 (part of the file name)")
    asyncio.run(record(parser.parse_args().tag))
