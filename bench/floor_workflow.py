"""The fixed cost of Temporal itself, for bench_workflow.py: a workflow that runs ``n`` empty activities.

In its own module because the workflow sandbox re-imports a workflow's module, which must not be a script.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


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
