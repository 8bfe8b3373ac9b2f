"""What the audit export costs: fetching a deployment's history and building its record, and writing it (JSON and
SQLite), for a small deployment and an 800-resource one; and the search-attribute check before a start.

A real Temporal dev server (search attributes registered) runs the deployment workflow with the stage activities
replaced by fakes (tests/workflow/fakes.py): the history is the workflow's own, the ARM side is not what is measured.

    .venv/bin/python bench/bench_audit.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from client.deployments import result_of, start_deployment
from client.embedded import dev_server_args, temporal_binary
from contract import search_attributes
from contract.models import BlobRef, DeployOutcomeDetails, DeployRequest
from harness.fakes import FakeStages, plan_of
from services.audit import registration
from services.audit.history import fetch_record, record_from_history
from services.audit.store import record_text, write_record
from services.temporal_client import data_converter
from workflows.deployment import DeploymentWorkflow


async def _median(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), max(times)


async def _deploy(client: Client, resources: int) -> str:
    ids = [
        f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa{i}"
        for i in range(resources)
    ]
    fakes = FakeStages(
        plan=lambda n: plan_of(resources),
        deploy=lambda n: DeployOutcomeDetails(deployment_name="bench", provisioning_state="Succeeded", resources=ids),
    )
    request = DeployRequest(
        subscription_id="00000000-0000-0000-0000-000000000001",
        resource_group=f"rg-{uuid.uuid4().hex[:8]}",
        location="eastus",
        template=BlobRef(digest="sha256:" + "0" * 64, size=2),
        git_sha="a" * 40,
        initiator="bench",
        skip_health=True,
    )
    task_queue = f"bench-{uuid.uuid4()}"
    async with Worker(client, task_queue=task_queue, workflows=[DeploymentWorkflow], activities=fakes.activities()):
        handle = await start_deployment(
            client, request, task_queue=task_queue, workflow_id=f"deploy-bench-{uuid.uuid4()}"
        )
        await result_of(handle)
    return handle.id


async def _measure(client: Client, workflow_id: str, resources: int, repeat: int) -> None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    record = await fetch_record(client, workflow_id)
    size = len(record_text(record).encode())
    fetch = await _median(lambda: fetch_record(client, workflow_id), repeat)
    build = await _median(lambda: record_from_history(history, client.data_converter, run_id=record.run_id), repeat)
    with tempfile.TemporaryDirectory() as folder:
        write = await _median(lambda: asyncio.to_thread(write_record, record, Path(folder)), repeat)
    print(
        f"{resources} resources: {len(history.events)} events, record {size / 1024:.0f} KiB; "
        f"fetch+build median {fetch[0] * 1000:.1f} ms ({fetch[1] * 1000:.1f}–{fetch[2] * 1000:.1f}), "
        f"build alone {build[0] * 1000:.1f} ms, write JSON+SQLite {write[0] * 1000:.1f} ms"
    )


async def main(repeat: int) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=data_converter(),
        ip="127.0.0.1",
        dev_server_log_level="error",
        dev_server_extra_args=dev_server_args(),
        search_attributes=search_attributes.KEYS,
    )
    try:
        client = env.client

        async def probe() -> None:
            registration._known.clear()
            await registration.attributes_registered(client)

        m = await _median(probe, repeat)
        print(
            f"search-attribute check before a start: median {m[0] * 1000:.1f} ms ({m[1] * 1000:.1f}–{m[2] * 1000:.1f})"
        )
        for resources in (3, 800):
            await _measure(client, await _deploy(client, resources), resources, repeat)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    asyncio.run(main(parser.parse_args().repeat))
