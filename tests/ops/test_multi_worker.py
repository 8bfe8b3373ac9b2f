"""Acceptance (issue 8): two ``worker.py`` processes on one task queue complete 40 deployments between them, and
SIGKILL of one of them mid-run loses nothing — every deployment SUCCEEDED, each ARM deployment was PUT once (the
local ARM's request counters), and the histories show that both workers ran tasks.

Real processes throughout: the Temporal dev server (persistent database file), the local ARM over HTTPS and the
workers, all on loopback (bench/chaos.py's ``Cluster``)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import pytest

from bench.chaos import Cluster, storage_template
from client.deployments import build_deploy_request, result_of, start_deployment
from contract.models import DeployOutcome
from local_arm.admin import Fault
from services.content_store import LocalBlobStore

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.timeout(240)]

DEPLOYMENTS = 40


def activity_workers(history) -> set[str]:
    """Identities of the workers that ran this workflow's activities."""
    found = set()
    for event in history.events:
        if event.HasField("activity_task_started_event_attributes"):
            found.add(event.activity_task_started_event_attributes.identity)
    return found


async def test_two_workers_share_40_deployments_and_one_dies_mid_run(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "cluster", workers=2)
    try:
        await cluster.start()
        assert cluster.client is not None
        first, second = cluster.workers
        # Each ARM deployment takes 1.5 s, so deployments are in flight on both workers when one dies.
        cluster.admin().add_faults(Fault.slow_lro(1.5, method="PUT", operation="Deployments_CreateOrUpdate"))
        store = LocalBlobStore(cluster.blob_dir)
        handles = []
        for i in range(DEPLOYMENTS):
            request = build_deploy_request(
                store=store, template=storage_template([f"st{uuid.uuid4().hex[:12]}"]),
                subscription_id="00000000-0000-0000-0000-00000000000b", resource_group=f"rg-mw-{i}",
                location="westeurope", initiator="multi-worker-test",
            )  # fmt: skip
            handles.append(await start_deployment(cluster.client, request, task_queue=cluster.task_queue))

        # Mid-run: once a third of the ARM deployments were submitted, SIGKILL the first worker.
        deadline = time.monotonic() + 60
        while cluster.admin().counters().count(method="PUT", operation="Deployments_CreateOrUpdate") < DEPLOYMENTS // 3:
            assert time.monotonic() < deadline, "the deployments did not get going"
            await asyncio.sleep(0.1)
        first.stop(signal.SIGKILL)
        killed_at_puts = cluster.admin().counters().count(method="PUT", operation="Deployments_CreateOrUpdate")

        results = await asyncio.wait_for(asyncio.gather(*(result_of(h) for h in handles)), 180)
        histories = [await h.fetch_history() for h in handles]
    finally:
        cluster.stop()

    failed = [(r.workflow_id, r.failure) for r in results if r.outcome is not DeployOutcome.SUCCEEDED]
    assert not failed, (failed, second.tail(40))
    assert killed_at_puts < DEPLOYMENTS, "the kill came after every deployment was submitted: not mid-run"
    puts = cluster.counters()
    for r in results:
        took = sum(c["count"] for c in puts if c["method"] == "PUT" and c["deployment"] == r.deployment_name
                   and c["status"] in (200, 201))  # fmt: skip
        assert took == 1, f"{r.deployment_name}: {took} ARM deployment PUTs took effect"
    identities = set().union(*(activity_workers(h) for h in histories))
    pids = {i.split("@", 1)[0] for i in identities}
    assert {str(first.pid), str(second.pid)} <= pids, f"activities ran on {sorted(identities)}"
    # The killed worker's in-flight deployments were finished by the survivor.
    resumed = [h for h in histories if any(e.HasField("activity_task_timed_out_event_attributes") for e in h.events)]
    assert resumed, "no deployment was in flight on the killed worker"
