"""Record the workflow histories the Replayer test replays: ``python -m tests.workflow.record_history``.

Re-record only on purpose (a deliberate, versioned change of the workflow); the point of the saved files is that a
change to workflows/deployment.py which would break running workflows fails test_replay.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from orchestrator.deployments import query_status, result_of, start_deployment
from orchestrator.models import SIGNAL_APPROVE, ApprovalSignal, DeploymentStage, FailureClass
from orchestrator.temporal_client import data_converter
from workflows.deployment import DeploymentWorkflow

from .conftest import find_binary
from .fakes import FakeStages, classified_error, plan_of
from .test_workflow_timeskipping import DELETED, make_request

HISTORIES = Path(__file__).parent / "histories"


async def record() -> None:
    path = find_binary("temporal-test-server")
    assert path, "temporal-test-server is not installed"
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path, data_converter=data_converter())
    try:

        def flaky_deploy(n: int):
            from orchestrator.models import DeployOutcomeDetails

            if n == 1:
                raise classified_error(FailureClass.ENVIRONMENTAL, "TooManyRequests", retry_after=7)
            return DeployOutcomeDetails(deployment_name="d", provisioning_state="Succeeded", resources=["/r/1"])

        fakes = FakeStages(plan=lambda n: plan_of(2, [DELETED]), deploy=flaky_deploy)
        queue = f"tq-{uuid.uuid4()}"
        async with Worker(env.client, task_queue=queue, workflows=[DeploymentWorkflow], activities=fakes.activities()):
            handle = await start_deployment(
                env.client, make_request("rg-replay"), task_queue=queue, workflow_id="deploy-replay-approve-retry"
            )
            while (await query_status(handle)).stage != DeploymentStage.AWAITING_CONFIRMATION:
                await asyncio.sleep(0.05)
            await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="recorded for replay"))
            await result_of(handle)
            history = await handle.fetch_history()
        HISTORIES.mkdir(exist_ok=True)
        out = HISTORIES / "approve_then_retry.json"
        out.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
        print(f"wrote {out} ({len(history.events)} events)")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
