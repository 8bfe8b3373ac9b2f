"""Helpers for acceptance tests: a real worker (real activities) wired to the local ARM over HTTPS."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from client.deployments import build_deploy_request
from contract.models import DeploymentMode, DeployRequest, RetrySchedule, WorkerSettings
from services.config import ArmClients, ArmConfig, WorkerConfig
from services.content_store import BlobStore, open_content_store
from services.health.policy import RequestPolicy
from worker import build_worker

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "storage-and-web"


def example_template(name: str = "azuredeploy.json") -> dict[str, Any]:
    return json.loads((EXAMPLE / name).read_text())


def example_parameters() -> dict[str, Any]:
    return dict(json.loads((EXAMPLE / "azuredeploy.parameters.json").read_text())["parameters"])


def storage_template(names: list[str], *, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A template of plain storage accounts (one resource type the local ARM provisions quickly)."""
    template: dict[str, Any] = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"location": {"type": "string", "defaultValue": "[resourceGroup().location]"}},
        "resources": [
            {
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-01-01",
                "name": n,
                "location": "[parameters('location')]",
                "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
                "properties": {},
            }
            for n in names
        ],
    }
    if extra:
        template = copy.deepcopy(template) | extra
    return template


def arm_config(local_arm: Any, *, request_reserve: int | None = None) -> ArmConfig:
    """The shared ARM request budget is off unless asked for: its pauses run on the wall clock, which the
    time-skipping test server does not skip (tests/fleet/test_arm_budget.py tests it)."""
    return ArmConfig(endpoint=local_arm.endpoint, ca_file=Path(local_arm.ca_file), credential="local",
                     polling_interval=0.02, request_reserve=request_reserve)  # fmt: skip


def fast_settings(**kw: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "retry": RetrySchedule(initial_interval_seconds=0.2, backoff_coefficient=2, maximum_retries=5),
        "confirmation_timeout_seconds": 120.0,
        "heartbeat_timeout_seconds": 5.0,
    }
    values.update(kw)
    return WorkerSettings(**values)


@asynccontextmanager
async def real_worker(
    client: Client,
    local_arm: Any,
    blob_dir: Path,
    task_queue: str,
    settings: WorkerSettings | None = None,
    credential: Any = None,
    store: BlobStore | None = None,
    notifier: Any = None,
) -> AsyncIterator[Worker]:
    """A worker with the real activities. ``store`` defaults to the configured content store (the folder
    ``blob_dir`` unless ``ORCHESTRATOR_CONTENT_STORE`` chooses another). ``notifier``: the notification sinks
    (services/notifications), whose routing goes into the settings."""
    config = WorkerConfig(arm=arm_config(local_arm), task_queue=task_queue, blob_dir=blob_dir,
                          settings=settings or fast_settings(), notifier=notifier)  # fmt: skip
    if notifier is not None:
        config.settings = config.settings.model_copy(update={"notifications": notifier.routing})
    # Like the embedded default, a worker beside a loopback local ARM lets health checks reach loopback addresses
    # (the test servers); its own ARM endpoint stays refused.
    config.health_policy = RequestPolicy(allow_private=True, refused_endpoints=_endpoint(config.arm.endpoint))
    clients = ArmClients(config.arm, credential)
    try:
        store = store if store is not None else open_content_store(blob_dir=blob_dir)
        async with build_worker(client, config, clients=clients, store=store) as worker:
            yield worker
    finally:
        await clients.close()


def _endpoint(url: str) -> tuple[tuple[str, int], ...]:
    return RequestPolicy.from_environment({}, arm_endpoint=url).refused_endpoints


def request_for(
    local_arm: Any,
    blob_dir: Path,
    resource_group: str,
    template: dict[str, Any],
    *,
    parameters: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    mode: DeploymentMode = DeploymentMode.INCREMENTAL,
    store: BlobStore | None = None,
    **kw: Any,
) -> DeployRequest:
    return build_deploy_request(
        store=store if store is not None else open_content_store(blob_dir=blob_dir),
        template=template,
        subscription_id=local_arm.subscription_id,
        resource_group=resource_group,
        location="westeurope",
        parameters=parameters,
        overrides=overrides,
        mode=mode,
        initiator="acceptance-test",
        **kw,
    )
