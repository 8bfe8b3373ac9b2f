"""200 deployments against a local ARM with ARM's token buckets switched on, with and without the shared ARM request
budget (services/arm_budget.py): failed deployments and 429s of each. One worker (real activities, in-process) on a
Temporal dev server; each configuration gets its own subscription, so its buckets start full.

    .venv/bin/python bench/bench_arm_budget.py [--deployments 200] [--writes 200,10] [--reads 250,25]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from temporalio.testing import WorkflowEnvironment  # noqa: E402

from client.deployments import build_deploy_request, result_of, start_deployment  # noqa: E402
from contract.models import DeployOutcome  # noqa: E402
from harness.localarm import fast_settings, storage_template  # noqa: E402
from local_arm.testing import running_local_arm  # noqa: E402
from services.config import ArmClients, ArmConfig, WorkerConfig  # noqa: E402
from services.content_store import LocalBlobStore  # noqa: E402
from services.temporal_client import data_converter  # noqa: E402
from worker import build_worker  # noqa: E402


async def run(env: WorkflowEnvironment, arm: Any, work: Path, *, reserve: int | None, n: int) -> dict[str, Any]:
    sub = str(uuid.uuid4())
    queue = f"budget-{uuid.uuid4()}"
    blob_dir = work / f"blobs-{queue}"
    store = LocalBlobStore(blob_dir)
    config = WorkerConfig(
        arm=ArmConfig(endpoint=arm.endpoint, ca_file=Path(arm.ca_file), credential="local", polling_interval=0.2,
                      request_reserve=reserve),
        task_queue=queue, blob_dir=blob_dir, settings=fast_settings(),
    )  # fmt: skip
    clients = ArmClients(config.arm)
    before = arm.admin.counters().count(status=429)
    started = time.monotonic()
    try:
        async with build_worker(env.client, config, clients=clients, store=store):
            handles = []
            for i in range(n):
                request = build_deploy_request(
                    store=store, template=storage_template([f"st{i:04d}x"]), subscription_id=sub,
                    resource_group=f"rg-budget-{i:04d}", location="westeurope", skip_health=True, initiator="bench",
                )  # fmt: skip
                handles.append(await start_deployment(env.client, request, task_queue=queue))
            results = await asyncio.gather(*(result_of(h) for h in handles))
    finally:
        await clients.close()
    wall = time.monotonic() - started
    failed = [r for r in results if r.outcome is not DeployOutcome.SUCCEEDED]
    return {
        "budget": f"reserve {reserve}" if reserve is not None else "off",
        "deployments": n,
        "failed": len(failed),
        "failure_codes": sorted({r.failure.code for r in failed if r.failure}),
        "arm_429s": arm.admin.counters().count(status=429) - before,
        "budget_waits": clients.budget.waits if clients.budget else 0,
        "wall_seconds": round(wall, 1),
    }


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--deployments", type=int, default=200)
    p.add_argument("--writes", default="200,10", help="capacity,refill per second (ARM's: 200,10)")
    p.add_argument("--reads", default="250,25", help="capacity,refill per second (ARM's: 250,25)")
    p.add_argument("--reserve", type=int, default=20)
    args = p.parse_args()
    writes = tuple(float(x) for x in args.writes.split(","))
    reads = tuple(float(x) for x in args.reads.split(","))
    temporal = Path(sys.prefix) / "bin" / "temporal"
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as tmp:
        work = Path(tmp)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(temporal), data_converter=data_converter(), dev_server_log_level="error"
        )
        arm_gen = running_local_arm(work / "arm", retry_after=0, provisioning_seconds=0.0)
        arm = next(arm_gen)
        try:
            arm.admin.set_rate_limits(writes=writes, reads=reads)  # type: ignore[arg-type]
            report = {
                "buckets": {"writes": writes, "reads": reads},
                "runs": [
                    await run(env, arm, work, reserve=None, n=args.deployments),
                    await run(env, arm, work, reserve=args.reserve, n=args.deployments),
                ],
            }
        finally:
            next(arm_gen, None)
            await env.shutdown()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
