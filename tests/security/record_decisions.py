"""Record the history the decision-records replay test replays:
``python -m tests.security.record_decisions --tag v1`` writes ``decision_histories/decisions.<tag>.json``: malformed
and oversized decisions refused, round 1 approved with the unbound plain form, the plan changes (round 2), the plain
form refused there, a decision naming the plan accepted, then a late reject refused. Never re-record an existing
file (see tests/workflow/record_history.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from client.deployments import query_status, result_of, start_deployment
from contract.models import SIGNAL_APPROVE, SIGNAL_REJECT, ApprovalSignal, DeploymentStage
from harness.fakes import DELETED, OTHER, FakeStages, make_request, plan_of
from services.temporal_client import data_converter
from tests.support.workflow_env import find_binary
from workflows.deployment import DeploymentWorkflow

HISTORIES = Path(__file__).parent / "decision_histories"


async def _refused(handle, n: int) -> None:
    while (await query_status(handle)).refused_total < n:
        await asyncio.sleep(0.05)


async def record(tag: str) -> None:
    path = find_binary("temporal-test-server")
    assert path, "temporal-test-server is not installed"
    out = HISTORIES / f"decisions.{tag}.json"
    if out.exists():
        raise SystemExit(f"{out} exists: pick a new --tag (old generations must stay as they are)")
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path, data_converter=data_converter())
    try:
        plans = {1: plan_of(0, [DELETED]), 2: plan_of(0, [DELETED, OTHER]), 3: plan_of(0, [DELETED, OTHER])}
        fakes = FakeStages(plan=lambda n: plans[min(n, 3)])
        queue = f"tq-{uuid.uuid4()}"
        async with Worker(env.client, task_queue=queue, workflows=[DeploymentWorkflow], activities=fakes.activities()):
            handle = await start_deployment(
                env.client, make_request("rg-decisions"), task_queue=queue, workflow_id=f"deploy-replay-dec-{tag}"
            )
            while (await query_status(handle)).stage != DeploymentStage.AWAITING_CONFIRMATION:
                await asyncio.sleep(0.05)
            for payload in ({"approver": 5}, "str", None, [1, 2], {}, {"approver": "m", "reason": "x" * 3000}):
                await handle.signal(SIGNAL_APPROVE, payload)
            await _refused(handle, 6)
            await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="round 1, unbound"))
            while (s := await query_status(handle)).pending_confirmation is None or s.pending_confirmation.round < 2:
                await asyncio.sleep(0.05)
            await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="round 2, unbound"))
            await _refused(handle, 7)
            plan_hash = s.pending_confirmation.plan_hash
            await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="bound", plan_hash=plan_hash))
            while not (await query_status(handle)).confirmations[1:]:
                await asyncio.sleep(0.05)
            await handle.signal(SIGNAL_REJECT, ApprovalSignal(approver="bo", reason="late"))
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
