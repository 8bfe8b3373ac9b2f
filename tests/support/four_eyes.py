"""A deployment waiting for approval of a Complete-mode removal, on a real dev server and local ARM (the four-eyes
and decision tests start from it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from client.deployments import build_deploy_request, query_status, result_of, start_deployment
from contract.models import DeploymentMode, DeploymentStage
from harness.localarm import example_parameters, example_template
from services.content_store import LocalBlobStore

INITIATOR = "ana"


def request(local_arm, blob_dir: Path, resource_group: str, template: dict, **kw):
    return build_deploy_request(
        store=LocalBlobStore(blob_dir),
        template=template,
        subscription_id=local_arm.subscription_id,
        resource_group=resource_group,
        location="westeurope",
        parameters=example_parameters(),
        initiator=INITIATOR,
        **kw,
    )


async def waiting_removal(client, local_arm, blob_dir, task_queue, resource_group):
    full = request(local_arm, blob_dir, resource_group, example_template())
    assert (await result_of(await start_deployment(client, full, task_queue=task_queue))).succeeded
    smaller = request(
        local_arm, blob_dir, resource_group, example_template("azuredeploy.without-web.json"),
        mode=DeploymentMode.COMPLETE,
    )  # fmt: skip
    handle = await start_deployment(client, smaller, task_queue=task_queue)
    for _ in range(600):
        s = await query_status(handle)
        if s.stage is DeploymentStage.AWAITING_CONFIRMATION:
            return handle
        assert not s.stage.terminal, s.failure
        await asyncio.sleep(0.05)
    raise AssertionError("never waited for confirmation")
