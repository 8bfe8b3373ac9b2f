"""The fixed cost of Temporal itself, for bench_workflow.py: workflows that do nothing but schedule empty activities.

``FloorWorkflow`` runs ``n`` empty remote activities; ``ShapeFloorWorkflow`` has the deployment's shape — three
local activities (settings, validation, lint) and two remote ones (plan, deploy) — so the deployment's cost can be
compared with Temporal's floor for the same commands. ``python bench/floor_workflow.py ADDRESS QUEUE`` runs a worker
for both (its CPU is measured like the deployment worker's). In its own module because the workflow sandbox
re-imports a workflow's module, which must not be a script's ``__main__``.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker


@activity.defn(name="bench_noop")
async def noop_activity(n: int) -> int:
    return n


@workflow.defn(name="BenchFloor", sandboxed=True)
class FloorWorkflow:
    """The fixed cost of Temporal itself: a workflow that runs ``n`` empty activities."""

    @workflow.run
    async def run(self, n: int) -> int:
        for i in range(n):
            await workflow.execute_activity(noop_activity, i, start_to_close_timeout=timedelta(seconds=10))
        return n


@workflow.defn(name="BenchShapeFloor", sandboxed=True)
class ShapeFloorWorkflow:
    """The deployment's shape with nothing inside: 3 local then 2 remote empty activities."""

    @workflow.run
    async def run(self, n: int) -> int:
        for i in range(3):
            await workflow.execute_local_activity(noop_activity, i, start_to_close_timeout=timedelta(seconds=10))
        for i in range(2):
            await workflow.execute_activity(noop_activity, i, start_to_close_timeout=timedelta(seconds=10))
        return n


async def _serve(address: str, queue: str) -> None:
    client = await Client.connect(address)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    async with Worker(
        client, task_queue=queue, workflows=[FloorWorkflow, ShapeFloorWorkflow], activities=[noop_activity]
    ):
        print("ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], sys.argv[2]))
