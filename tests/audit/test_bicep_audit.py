"""A Bicep deployment's audit record: the compiler's version and the compiled template's hash come from the LINTING
result in history. A real Temporal dev server, the real activities and the local ARM over HTTPS; the recorded Bicep
stand-in (tests/fakes/bicep) on the worker's PATH (the worker runs in this process)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
from collections.abc import Iterator

import pytest

from client.bicep_deploy import build_bicep_deploy_request
from client.deployments import result_of, start_deployment
from contract.models import DeployOutcome
from harness.localarm import real_worker
from local_arm.testing import FAST, LocalArm, running_local_arm
from services.audit.history import fetch_record
from services.audit.store import write_record
from services.content_store import LocalBlobStore, canonical_json
from tests.support.lint_env import FAKES_DIR

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-audit"), **FAST)


async def test_bicep_version_and_compiled_hash_are_in_the_record(
    dev_env,
    local_arm,
    tmp_path,
    task_queue,
    resource_group,
    quickstarts,
    monkeypatch,
) -> None:
    monkeypatch.setenv("PATH", os.pathsep.join([str(FAKES_DIR), os.path.dirname(sys.executable)]))
    monkeypatch.delenv("BICEP_PATH", raising=False)
    monkeypatch.delenv("BICEP_FAKE_VERSION", raising=False)
    sample = quickstarts / "quickstarts__microsoft.storage__storage-account-create"
    blob_dir = tmp_path / "blobs"
    request = build_bicep_deploy_request(
        store=LocalBlobStore(blob_dir),
        subscription_id=local_arm.subscription_id,
        resource_group=resource_group,
        location="westeurope",
        initiator="audit-bicep",
        template=str(sample / "main.bicep"),
        parameters=None,
        overrides=None,
        git_sha="b" * 40,
    )
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        handle = await start_deployment(dev_env.client, request, task_queue=task_queue)
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure

    record = await fetch_record(dev_env.client, handle.id)
    compiled = json.loads((sample / "azuredeploy.json").read_text(encoding="utf-8-sig"))
    assert record.bicep_version == "0.46.1 (545b338e2c)" and record.linter
    assert record.template_hash == "sha256:" + hashlib.sha256(canonical_json(compiled)).hexdigest()
    assert record.template_hash == result.template_hash
    assert record.source_template_hash == request.template.digest != record.template_hash  # the .bicep source
    assert record.template_file is not None and record.template_file.endswith("main.bicep")
    assert record.result.success and record.resources
    assert {r.resource_type for r in record.resources} == {"Microsoft.Storage/storageAccounts"}
    lint_events = [
        e for e in record.events if e.event_type == "activity_completed" and e.details.get("stage") == "LINTING"
    ]
    assert lint_events and lint_events[0].details["bicep_version"] == "0.46.1 (545b338e2c)"

    write_record(record, tmp_path / "audit")
    with sqlite3.connect(tmp_path / "audit" / "audit.db") as db:
        row = db.execute(
            "SELECT bicep_version, template_hash FROM deployments WHERE run_id = ?", (record.run_id,)
        ).fetchone()
    assert row == (record.bicep_version, record.template_hash)
