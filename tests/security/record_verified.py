"""Record the history the verified-decisions replay test replays:
``python -m tests.security.record_verified --tag v1`` writes ``verified_histories/verified.<tag>.json``: a worker with
an approval policy (ssh and relay proofs; 2 of 2 approvers for the resource group), keys made with ssh-keygen; an
unsigned decision refused, ana's signed approval counted, its replay refused, a statement for another round
refused, a tampered one refused after its check, bo's relay-attested approval deciding. Never re-record an existing
file (see tests/workflow/record_history.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.approvals import ApprovalActivities
from client.deployments import query_status, result_of, start_deployment
from contract.models import SIGNAL_APPROVE, DeploymentStage, RetrySchedule, WorkerSettings
from harness.fakes import DELETED, FakeStages, make_request, plan_of
from services.approvals import load_policy
from services.config import verified_approval_policy
from services.temporal_client import data_converter
from tests.support.approval_keys import make_approval_keys, relay_payload, ssh_payload, statement_for
from tests.support.workflow_env import find_binary
from workflows.deployment import DeploymentWorkflow

HISTORIES = Path(__file__).parent / "verified_histories"
TWO = '[[scope]]\nresource_group = "rg-verified"\napprovers = ["ana", "bo"]\nrequired_approvals = 2\n'


async def _refused(handle, n: int) -> None:
    while (await query_status(handle)).refused_total < n:
        await asyncio.sleep(0.05)


async def record(tag: str) -> None:
    path = find_binary("temporal-test-server")
    assert path, "temporal-test-server is not installed"
    out = HISTORIES / f"verified.{tag}.json"
    if out.exists():
        raise SystemExit(f"{out} exists: pick a new --tag (old generations must stay as they are)")
    folder = Path(tempfile.mkdtemp(prefix="verified-keys-"))
    keys = make_approval_keys(folder, initiator="tester@example.com", scopes=TWO)
    assert keys.policy is not None
    settings = WorkerSettings(retry=RetrySchedule(), confirmation_timeout_seconds=600)
    settings.approval = verified_approval_policy(load_policy(keys.policy))
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path, data_converter=data_converter())
    try:
        fakes = FakeStages(settings=settings, plan=lambda n: plan_of(0, [DELETED]))
        queue = f"tq-{uuid.uuid4()}"
        activities = [*fakes.activities(), ApprovalActivities(None).verify_approval]
        async with Worker(env.client, task_queue=queue, workflows=[DeploymentWorkflow], activities=activities):
            handle = await start_deployment(
                env.client, make_request("rg-verified"), task_queue=queue, workflow_id=f"deploy-replay-ver-{tag}"
            )
            while (s := await query_status(handle)).stage != DeploymentStage.AWAITING_CONFIRMATION:
                await asyncio.sleep(0.05)
            pending = s.pending_confirmation.model_dump(mode="json")  # type: ignore[union-attr]
            run_id = (await handle.describe()).run_id or ""

            def statement(identity: str, **kw):
                return statement_for(pending, workflow_id=handle.id, run_id=run_id, identity=identity, **kw)

            await handle.signal(SIGNAL_APPROVE, {"approver": "ana", "reason": "unsigned"})
            await _refused(handle, 1)
            ana = json.loads(ssh_payload(statement("ana"), keys.keys["ana"]))
            await handle.signal(SIGNAL_APPROVE, ana)
            while not (await query_status(handle)).pending_confirmation.approved_by:  # type: ignore[union-attr]
                await asyncio.sleep(0.05)
            await handle.signal(SIGNAL_APPROVE, ana)  # replay
            await handle.signal(SIGNAL_APPROVE, json.loads(ssh_payload(statement("bo", round=2), keys.keys["bo"])))
            tampered = json.loads(ssh_payload(statement("bo"), keys.keys["bo"], reason="edited"))
            await handle.signal(SIGNAL_APPROVE, tampered)
            await _refused(handle, 4)
            await handle.signal(SIGNAL_APPROVE, json.loads(relay_payload(statement("bo"), keys.relay_private)))
            result = await result_of(handle)
            assert result.succeeded, result.failure
            assert [r.kind for r in (await query_status(handle)).refused_decisions] == [
                "unverified", "replay", "other-round", "bad-signature"
            ]  # fmt: skip
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
