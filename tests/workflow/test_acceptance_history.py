"""Acceptance, what history holds: no secure parameter value in plaintext (even when the template echoes it into a
resource property and a secure output), and payloads far below Temporal's 2 MB limit for an 800-resource template
whose template and what-if result are each several megabytes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from client.deployments import result_of, start_deployment
from contract.models import ChangeType, DeployOutcome
from harness.localarm import real_worker, request_for, storage_template
from local_arm.testing import FAST, LocalArm, running_local_arm
from services.content_store import LocalBlobStore, get_json
from tests.support.history_text import history_text, payload_sizes

pytestmark = pytest.mark.asyncio(loop_scope="session")

TWO_MB = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-history"), **FAST)


async def test_secure_values_never_reach_history(dev_env, local_arm, tmp_path, task_queue, resource_group):
    secret = f"P@ss-{uuid.uuid4()}"
    template = storage_template(["stsecret001"])
    template["parameters"]["adminPassword"] = {"type": "securestring"}
    template["resources"][0]["properties"] = {"customSecret": "[parameters('adminPassword')]"}
    template["outputs"] = {"echo": {"type": "securestring", "value": "[parameters('adminPassword')]"}}
    # customSecret is not a storage account property: the schema lint warns, and this test lets it through
    request = request_for(
        local_arm, tmp_path, resource_group, template, overrides={"adminPassword": secret}, allow_warnings=True
    )
    async with real_worker(dev_env.client, local_arm, tmp_path, task_queue):
        handle = await start_deployment(dev_env.client, request, task_queue=task_queue)
        result = await result_of(handle)
        history = await handle.fetch_history()
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert result.outputs["echo"] == "*****"
    text = history_text(history)
    assert "adminPassword" in text  # the name is there (the audit says which parameters were secure)...
    assert secret not in text  # ...the value is not, in any event or decoded payload


async def test_800_resources_keep_history_small(dev_env, local_arm, tmp_path, task_queue, resource_group):
    names = [f"st{i:04d}{uuid.uuid4().hex[:6]}" for i in range(800)]
    template = storage_template(names)
    for r in template["resources"]:
        r["tags"] = {"description": "x" * 3000}  # makes the template (and the what-if result) megabytes
    assert len(json.dumps(template)) > TWO_MB
    request = request_for(local_arm, tmp_path, resource_group, template, skip_health=True)
    async with real_worker(dev_env.client, local_arm, tmp_path, task_queue):
        handle = await start_deployment(dev_env.client, request, task_queue=task_queue)
        result = await result_of(handle)
        history = await handle.fetch_history()
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert result.plan is not None and result.plan.counts == {ChangeType.CREATE.value: 800}
    assert len(result.resources) == 800
    full = get_json(LocalBlobStore(tmp_path), result.plan.full_result)
    assert len(json.dumps(full)) > TWO_MB  # the full what-if is in the store...
    sizes = payload_sizes(history)
    assert max(sizes) < 512 * 1024, max(sizes)  # ...and no payload in history comes near 2 MB
