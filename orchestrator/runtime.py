"""Running a deployment worker: build the ARM clients and the content store once, register the workflow and the
activities, run until told to stop, close the clients. ``worker.py`` and the embedded ``dev`` command call this."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities import build_activities
from activities.lint import Linter
from activities.lint_gate import lint_gate
from workflows.deployment import DeploymentWorkflow

from orchestrator.blobstore import BlobStore, LocalBlobStore
from orchestrator.config import DISTRIBUTION, ArmClients, WorkerConfig, package_version
from orchestrator.health.policy import RequestPolicy
from orchestrator.temporal_client import connect

log = logging.getLogger(__name__)


def default_build_id() -> str:
    """The build id a worker reports unless told otherwise: the package version (docs/OPERATIONS.md)."""
    return f"{DISTRIBUTION}@{package_version()}"


def build_worker(
    client: Client,
    config: WorkerConfig,
    *,
    clients: ArmClients,
    store: BlobStore,
    linter: Linter = lint_gate,
    activities: list[Callable[..., Any]] | None = None,
    **worker_kwargs: Any,
) -> Worker:
    """A worker for the deployment workflow. ``activities`` replaces the real ones (tests use fakes)."""
    return Worker(
        client,
        task_queue=config.task_queue,
        workflows=[DeploymentWorkflow],
        activities=activities
        if activities is not None
        else build_activities(
            clients=clients, store=store, settings=config.settings, linter=linter, health_policy=config.health_policy
        ),
        max_concurrent_activities=config.max_concurrent_activities,
        max_concurrent_workflow_tasks=config.max_concurrent_workflow_tasks,
        max_concurrent_local_activities=config.max_concurrent_local_activities,
        graceful_shutdown_timeout=timedelta(seconds=config.graceful_shutdown_seconds),
        build_id=config.build_id or default_build_id(),
        **worker_kwargs,
    )


async def run_worker(
    config: WorkerConfig,
    *,
    client: Client | None = None,
    stop: asyncio.Event | None = None,
    linter: Linter = lint_gate,
) -> None:
    """Run until ``stop`` is set (or forever). Closes the ARM clients on the way out."""
    config.arm.validate()
    if client is None:
        client = await connect(
            address=config.temporal_address,
            namespace=config.temporal_namespace,
            api_key=config.temporal_api_key,
            tls=config.temporal_tls,
            profile=config.temporal_profile,
        )
    store = LocalBlobStore(config.blob_dir)
    clients = ArmClients(config.arm)
    try:
        worker = build_worker(client, config, clients=clients, store=store, linter=linter)
        log.info(
            "worker on task queue %r (namespace %r, build id %s, up to %d activities), ARM %s, content store %s",
            config.task_queue,
            client.namespace,
            config.build_id or default_build_id(),
            config.max_concurrent_activities,
            config.arm.endpoint,
            store.root,
        )
        policy = config.health_policy or RequestPolicy.from_environment(arm_endpoint=config.arm.endpoint)
        log.info("%s", policy.describe())
        async with worker:
            if stop is None:
                await asyncio.Event().wait()
            else:
                await stop.wait()
    finally:
        await clients.close()
