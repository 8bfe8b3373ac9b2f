"""Acceptance of the lint gate through the real workflow: a real Temporal dev server, the real activities and the
local ARM over HTTPS, the recorded Bicep stand-in on the worker's PATH (this process's PATH: the worker runs here)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.bicep_deploy import build_bicep_deploy_request
from client.deployments import query_status, result_of, start_deployment
from contract.models import DeploymentStage, DeployOutcome, FailureClass, LintReport
from harness.localarm import real_worker, request_for, storage_template
from local_arm.testing import FAST, LocalArm, running_local_arm
from services.content_store import LocalBlobStore, canonical_json
from tests.support.lint_env import FAKES_DIR

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm"), **FAST)


@pytest.fixture
def blob_dir(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def fake_bicep(monkeypatch: pytest.MonkeyPatch, shared: Path) -> None:
    monkeypatch.setenv("PATH", os.pathsep.join([str(FAKES_DIR), os.path.dirname(sys.executable)]))
    monkeypatch.delenv("BICEP_PATH", raising=False)
    monkeypatch.delenv("BICEP_FAKE_VERSION", raising=False)


def bicep_request(local_arm: LocalArm, blob_dir: Path, resource_group: str, **kw: Any):
    return build_bicep_deploy_request(
        store=LocalBlobStore(blob_dir),
        subscription_id=local_arm.subscription_id,
        resource_group=resource_group,
        location="westeurope",
        initiator="lint-acceptance",
        template=kw.pop("template", None),
        parameters=kw.pop("parameters", None),
        overrides=kw.pop("overrides", None),
        **kw,
    )


async def lint_reports(handle, client) -> list[LintReport]:
    """The LINTING activity's results, read back from the event history (the audit's source): an activity's
    completion event, or the marker a local activity leaves."""
    history = await handle.fetch_history()
    lint_scheduled = {
        e.event_id
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "lint_template"
    }
    results = []
    for e in history.events:
        if e.HasField("activity_task_completed_event_attributes"):
            attrs = e.activity_task_completed_event_attributes
            if attrs.scheduled_event_id in lint_scheduled:
                results.append(attrs.result.payloads[0])
        elif e.HasField("marker_recorded_event_attributes"):
            details = e.marker_recorded_event_attributes.details
            if "data" in details and "result" in details and details["result"].payloads:
                data = json.loads(details["data"].payloads[0].data)
                if data.get("activity_type") == "lint_template":
                    results.append(details["result"].payloads[0])
    return list(await client.data_converter.decode(results, [LintReport] * len(results)))


async def test_clean_quickstart_deploys_from_its_main_bicep(
    fake_bicep, dev_env, local_arm, blob_dir, task_queue, resource_group, quickstarts
):
    sample = quickstarts / "quickstarts__microsoft.storage__storage-account-create"
    request = bicep_request(local_arm, blob_dir, resource_group, template=str(sample / "main.bicep"))
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        handle = await start_deployment(dev_env.client, request, task_queue=task_queue)
        result = await result_of(handle)
        [report] = await lint_reports(handle, dev_env.client)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    compiled = json.loads((sample / "azuredeploy.json").read_text(encoding="utf-8-sig"))

    assert result.template_hash == "sha256:" + hashlib.sha256(canonical_json(compiled)).hexdigest()
    assert report.compiled_template_hash == result.template_hash
    assert report.bicep_version == "0.46.1 (545b338e2c)" and report.template_kind == "bicep"
    ids = {r.id.lower() for r in local_arm.resource_client().resources.list_by_resource_group(resource_group)}
    assert any("/providers/microsoft.storage/storageaccounts/" in i for i in ids)
    assert {i.lower() for i in result.resources} <= ids


async def test_warnings_halt_unless_allowed_and_are_recorded(
    fake_bicep, dev_env, local_arm, blob_dir, task_queue, resource_group, baselines
):
    main = str(baselines / "Unicode_LF" / "main.bicep")
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        gated = await result_of(
            await start_deployment(
                dev_env.client, bicep_request(local_arm, blob_dir, resource_group, template=main), task_queue=task_queue
            )
        )
        assert gated.outcome is DeployOutcome.LOGIC_FAILURE
        assert gated.failure is not None and gated.failure.stage is DeploymentStage.LINTING
        assert gated.failure.code == "LinterError" and gated.failure.attempts == 1
        assert gated.failure.message.count(" : Warning ") == 6 and "--allow-warnings" in gated.failure.message
        assert local_arm.admin.counters().count(path_contains=resource_group) == 0

        allowed_request = bicep_request(local_arm, blob_dir, resource_group, template=main, allow_warnings=True)
        handle = await start_deployment(dev_env.client, allowed_request, task_queue=task_queue)
        allowed = await result_of(handle)
        [report] = await lint_reports(handle, dev_env.client)
    assert allowed.outcome is DeployOutcome.SUCCEEDED, allowed.failure
    assert report.warning_count == 6 and len(report.warnings) == 6
    assert all(f"{main}(" in w and " : Warning " in w for w in report.warnings)


@pytest.mark.parametrize("sample", ["InvalidTargetScopes_LF", "InvalidMultilineString_CRLF"])
async def test_errors_halt_at_linting_listing_every_error(
    sample, fake_bicep, dev_env, local_arm, blob_dir, task_queue, resource_group, baselines
):
    from tests.support.lint_oracle import expected_diagnostics

    main = baselines / sample / "main.bicep"
    expected = expected_diagnostics(main.with_name("main.diagnostics.bicep"), crlf=sample.endswith("_CRLF"))
    request = bicep_request(local_arm, blob_dir, resource_group, template=str(main), allow_warnings=True)
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        handle = await start_deployment(dev_env.client, request, task_queue=task_queue)
        result = await result_of(handle)
        status = await query_status(handle)
    assert result.outcome is DeployOutcome.LOGIC_FAILURE
    assert result.failure is not None and result.failure.failure_class is FailureClass.LOGIC
    assert result.failure.stage is DeploymentStage.LINTING
    assert status.stages[DeploymentStage.LINTING].attempts == 1
    for e in expected:
        if e.level == "Error":
            assert f"{main}({e.line},{e.col}) : Error {e.code}: " in result.failure.message
    assert local_arm.admin.counters().count(path_contains=resource_group) == 0


async def test_bicepparam_parameters_reach_the_deployment(
    fake_bicep, dev_env, local_arm, blob_dir, task_queue, resource_group, baselines
):
    sample = baselines / "cli-build-params-stdout__Json"
    request = bicep_request(
        local_arm, blob_dir, resource_group, parameters=str(sample / "main.bicepparam"), overrides=["intParam=7"]
    )
    assert request.parameters == {}  # values never in history: they are in the content store
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        result = await result_of(await start_deployment(dev_env.client, request, task_queue=task_queue))
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    deployment = local_arm.deployments_client().deployments.get(resource_group, result.deployment_name)
    params = {k: v["value"] for k, v in deployment.properties.parameters.items()}
    assert params["stringParam"] == "foo" and params["objectParam"] == {"abc": "def"}
    assert params["intParam"] == 7  # --param applies on top of the .bicepparam


async def test_no_compiler_fails_at_linting_and_arm_json_still_deploys(
    dev_env, local_arm, blob_dir, task_queue, resource_group, baselines, monkeypatch, tmp_path
):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("BICEP_PATH", raising=False)
    request = bicep_request(local_arm, blob_dir, resource_group, template=str(baselines / "Empty" / "main.bicep"))
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        handle = await start_deployment(dev_env.client, request, task_queue=task_queue)
        result = await result_of(handle)
        desc = await handle.describe()
        assert result.outcome is DeployOutcome.LOGIC_FAILURE
        assert result.failure is not None and result.failure.code == "BicepNotFound"
        assert result.failure.stage is DeploymentStage.LINTING and result.failure.attempts == 1
        assert "needs no compiler" in result.failure.message and "worker '" in result.failure.message
        assert desc.status is not None and desc.status.name != "RUNNING"
        assert local_arm.admin.counters().count(path_contains=resource_group) == 0

        json_request = request_for(local_arm, blob_dir, resource_group, storage_template(["stnocompiler01"]))
        arm_json = await result_of(await start_deployment(dev_env.client, json_request, task_queue=task_queue))
    assert arm_json.outcome is DeployOutcome.SUCCEEDED, arm_json.failure


def _deploy_args(resource_group: str, local_arm: LocalArm, *argv: str):
    from client.cli import build_parser

    return build_parser().parse_args(
        ["deploy", "-g", resource_group, "-l", "westeurope", "--subscription", local_arm.subscription_id, *argv]
    )


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, task_queue: str, blob_dir: Path) -> None:
    """`starter.py deploy` in this process, with an injected client, on this test's task queue and content store."""
    monkeypatch.setenv("ORCHESTRATOR_TASK_QUEUE", task_queue)
    monkeypatch.setenv("ORCHESTRATOR_BLOB_DIR", str(blob_dir))


async def test_cli_shows_every_error_with_position_and_exits_1(
    fake_bicep, cli_env, dev_env, local_arm, blob_dir, task_queue, resource_group, baselines, capsys
):
    from client.cli.deploy import deploy
    from tests.support.lint_oracle import expected_diagnostics

    main = baselines / "InvalidMetadata_CRLF" / "main.bicep"
    errors = [
        e for e in expected_diagnostics(main.with_name("main.diagnostics.bicep"), crlf=True) if e.level == "Error"
    ]
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        code = await deploy(_deploy_args(resource_group, local_arm, "-t", str(main)), client=dev_env.client)
    out = capsys.readouterr().out
    assert code == 1
    assert "LINTING" in out
    for e in errors:
        assert f"{main}({e.line},{e.col}) : Error {e.code}: " in out
    assert len(errors) == 15
    assert local_arm.admin.counters().count(path_contains=resource_group) == 0


async def test_cli_deploys_a_bicepparam_without_template_flag(
    fake_bicep, cli_env, dev_env, local_arm, blob_dir, task_queue, resource_group, baselines, capsys
):
    from client.cli.deploy import deploy

    params = baselines / "cli-build-params-stdout__Json" / "main.bicepparam"
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        code = await deploy(
            _deploy_args(resource_group, local_arm, "-p", str(params), "--output", "json"), client=dev_env.client
        )
    assert code == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    assert doc["outcome"] == "SUCCEEDED"


async def test_cli_without_a_compiler_exits_1_and_leaves_no_workflow_running(
    cli_env, dev_env, local_arm, blob_dir, task_queue, resource_group, baselines, capsys, monkeypatch, tmp_path
):
    from client.cli.deploy import deploy

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("BICEP_PATH", raising=False)
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        code = await deploy(
            _deploy_args(resource_group, local_arm, "-t", str(baselines / "Empty" / "main.bicep")),
            client=dev_env.client,
        )
    out = capsys.readouterr().out
    assert code == 1
    assert "BicepNotFound" in out and "az bicep install" in out and "An ARM JSON template needs no compiler" in out
    running = [
        w async for w in dev_env.client.list_workflows(f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'")
    ]
    assert running == []
    assert local_arm.admin.counters().count(path_contains=resource_group) == 0


async def test_arm_json_expression_errors_halt_at_linting_every_one_listed(
    cli_env, dev_env, local_arm, blob_dir, task_queue, resource_group, capsys, tmp_path
):
    """ARM JSON with three syntax errors and an unknown function: the engine would stop at the first one (at
    VALIDATING_PARAMETERS); the lint gate halts at LINTING listing all four with line and column, exit 1, no ARM
    call — as `starter.py lint` lists them."""
    from client.cli.deploy import deploy

    template = storage_template(["stexprerr01"])
    template["variables"] = {"a": "[concat('a', ]", "b": "[toLower(parameters('location')]"}
    template["resources"][0]["tags"] = {"t": "[concat('x',,)]", "u": "[nosuchfn('x')]"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(template, indent=2))
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        code = await deploy(_deploy_args(resource_group, local_arm, "-t", str(path)), client=dev_env.client)
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "at LINTING: LinterError" in captured.out, captured.out
    assert captured.out.count(" : Error ExpressionSyntaxError: ") == 3, captured.out
    assert f"{path}(" in captured.out and " : Error UnknownFunction: the template function 'nosuchfn'" in captured.out
    assert "[LINTING] (validation: not expanded: 4 template error(s), every one listed by LINTING)" in captured.err
    assert local_arm.admin.counters().count(path_contains=resource_group) == 0


async def test_schema_findings_in_arm_json_halt_linting_unless_allowed(
    dev_env, local_arm, blob_dir, task_queue, resource_group, tmp_path
):
    # An ARM JSON template checked against Azure's type schemas at LINTING, on the worker (no compiler needed).
    template = storage_template(["stschemagate01"])
    template["resources"][0]["properties"] = {"accessTier": "Hott", "supportsHttpsTrafficOnlyy": True}
    path = tmp_path / "azuredeploy.json"
    path.write_text(json.dumps(template, indent=2), encoding="utf-8")
    line_of = {k: n for n, text in enumerate(path.read_text().splitlines(), 1) for k in ("Hott", "Onlyy") if k in text}
    async with real_worker(dev_env.client, local_arm, blob_dir, task_queue):
        gated = await result_of(
            await start_deployment(
                dev_env.client,
                request_for(local_arm, blob_dir, resource_group, template, template_path=str(path)),
                task_queue=task_queue,
            )
        )
        assert gated.outcome is DeployOutcome.LOGIC_FAILURE
        assert gated.failure is not None and gated.failure.stage is DeploymentStage.LINTING
        assert gated.failure.code == "LinterError" and "--allow-warnings" in gated.failure.message
        assert (
            f"{path}({line_of['Hott']}," in gated.failure.message and "Warning ValueNotAllowed" in gated.failure.message
        )
        assert (
            f"{path}({line_of['Onlyy']}," in gated.failure.message
            and "did you mean 'supportsHttpsTrafficOnly'?" in (gated.failure.message)
        )
        assert local_arm.admin.counters().count(path_contains=resource_group) == 0  # nothing reached ARM

        allowed = request_for(
            local_arm, blob_dir, resource_group, template, template_path=str(path), allow_warnings=True
        )
        handle = await start_deployment(dev_env.client, allowed, task_queue=task_queue)
        result = await result_of(handle)
        [report] = await lint_reports(handle, dev_env.client)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert report.warning_count == 2
