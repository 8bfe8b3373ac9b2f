"""The LINTING activity's logic on a request, without Temporal: what it raises and what it hands the next stages."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.lint_gate import lint_gate
from arm_engine import TemplateError
from client.bicep_deploy import build_bicep_deploy_request
from client.deployments import build_deploy_request
from services.content_store import LocalBlobStore, get_json, open_json

SUB = "00000000-0000-0000-0000-000000000001"


def _bicep_request(store: LocalBlobStore, **kw):
    return build_bicep_deploy_request(
        store=store, subscription_id=SUB, resource_group="rg", location="westeurope", overrides=None, **kw
    )


def test_compiled_template_and_parameters_replace_the_source(
    fake_bicep_on_path: Path, baselines: Path, tmp_path: Path
) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    sample = baselines / "cli-build-params-stdout__Json"
    request = _bicep_request(store, template=None, parameters=str(sample / "main.bicepparam"))
    report = lint_gate(store, request)
    after = report.apply_to(request)
    assert after.template == request.template  # a .json `using` target: already ARM JSON
    assert after.parameters == {} and after.secure_parameters == report.parameters
    # The .bicepparam values are sealed (the store's local key without configured keys), never plaintext at rest.
    assert open_json(store, after.secure_parameters, None)["boolParam"] == {"value": False}
    assert b"boolParam" not in store.get(after.secure_parameters)

    main = baselines / "Unicode_LF" / "main.bicep"
    request = _bicep_request(store, template=str(main), parameters=None, allow_warnings=True)
    report = lint_gate(store, request)
    after = report.apply_to(request)
    assert after.template.digest == report.compiled_template_hash != request.template.digest
    assert get_json(store, after.template) == json.loads((main.parent / "main.json").read_text(encoding="utf-8"))
    assert report.warning_count == 6 and report.bicep_version


def test_parameters_are_checked_against_the_compiled_template(
    fake_bicep_on_path: Path, baselines: Path, tmp_path: Path
) -> None:
    """VALIDATING_PARAMETERS cannot read Bicep; LINTING runs the engine on what it compiled."""
    store = LocalBlobStore(tmp_path / "blobs")
    request = _bicep_request(store, template=str(baselines / "AKS_LF" / "main.bicep"), parameters=None,
                             allow_warnings=True)  # fmt: skip
    with pytest.raises(TemplateError) as caught:
        lint_gate(store, request)
    assert {i.code for i in caught.value.issues} == {"MissingParameter"}
    assert "dnsPrefix" in str(caught.value)


def test_gate_failure_is_a_non_retryable_logic_error(fake_bicep_on_path: Path, baselines: Path, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    request = _bicep_request(store, template=str(baselines / "InvalidTargetScopes_LF" / "main.bicep"), parameters=None)
    with pytest.raises(ApplicationError) as caught:
        lint_gate(store, request)
    assert caught.value.type == "LOGIC.LinterError" and caught.value.non_retryable
    assert caught.value.message.count(" : Error BCP") == 14


def test_a_changed_source_is_refused(fake_bicep_on_path: Path, baselines: Path, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    main = tmp_path / "main.bicep"
    main.write_bytes((baselines / "Empty" / "main.bicep").read_bytes())
    request = _bicep_request(store, template=str(main), parameters=None)
    main.write_text("param x string\n", encoding="utf-8")
    with pytest.raises(ApplicationError) as caught:
        lint_gate(store, request)
    assert caught.value.type == "LOGIC.TemplateChanged"


def test_arm_json_with_a_bad_expression_names_the_users_file(no_compiler: None, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "variables": {"v": "[concat('a',]"},
        "resources": [],
    }
    path = tmp_path / "azuredeploy.json"
    path.write_text(json.dumps(template, indent=2), encoding="utf-8")
    request = build_deploy_request(
        store=store, template=template, subscription_id=SUB, resource_group="rg", location="westeurope",
        template_path=str(path),
    )  # fmt: skip
    with pytest.raises(ApplicationError) as caught:
        lint_gate(store, request)
    assert caught.value.type == "LOGIC.LinterError"
    assert (
        f"{path}(5,10) : Error ExpressionSyntaxError" in caught.value.message
        and "ExpressionSyntaxError" in caught.value.message
    )


def test_a_compiler_that_hangs_is_an_environmental_failure(
    monkeypatch: pytest.MonkeyPatch, baselines: Path, tmp_path: Path
) -> None:
    """A second tiny test double: answers --version, then never finishes (a registry out of reach)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    hang = bin_dir / "bicep"
    hang.write_text(
        "#!/usr/bin/env python3\nimport sys, time\n"
        "if sys.argv[1:] == ['--version']:\n    print('Bicep CLI version 0.46.1 (test double)')\nelse:\n"
        "    time.sleep(30)\n"
    )
    hang.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.path.dirname(sys.executable)]))
    monkeypatch.delenv("BICEP_PATH", raising=False)
    monkeypatch.setenv("ORCHESTRATOR_BICEP_TIMEOUT_SECONDS", "0.5")
    store = LocalBlobStore(tmp_path / "blobs")
    request = _bicep_request(store, template=str(baselines / "Empty" / "main.bicep"), parameters=None)
    with pytest.raises(ApplicationError) as caught:
        lint_gate(store, request)
    assert caught.value.type == "ENVIRONMENTAL.BicepTimeout"
    assert caught.value.details[0].failure_class.value == "ENVIRONMENTAL"  # the workflow retries it on its schedule


def test_arm_json_the_worker_cannot_see_is_linted_from_the_store(no_compiler: None, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    template = {"$schema": "x", "contentVersion": "1.0.0.0", "resources": [{"type": "T", "name": "n"}]}
    request = build_deploy_request(
        store=store, template=template, subscription_id=SUB, resource_group="rg", location="westeurope",
        template_path="elsewhere/azuredeploy.json",
    )  # fmt: skip
    with pytest.raises(ApplicationError) as caught:
        lint_gate(store, request)
    assert "elsewhere/azuredeploy.json (stored copy sha256:" in caught.value.message
    assert "lacks 'apiVersion'" in caught.value.message


def test_values_given_for_a_bicep_template_never_appear_in_a_lint_failure(
    fake_bicep_on_path: Path, baselines: Path, tmp_path: Path
) -> None:
    """Before compiling nobody knows which parameters are secure, so every value given is kept out of messages."""
    store = LocalBlobStore(tmp_path / "blobs")
    main = baselines / "user_submitted__000__21-array-lookup" / "main.bicep"
    request = build_bicep_deploy_request(
        store=store, subscription_id=SUB, resource_group="rg", location="westeurope", template=str(main),
        parameters=None, overrides=["azRegion=hunter2-not-a-region"],
    )  # fmt: skip
    assert "hunter2" not in request.model_dump_json()
    with pytest.raises((TemplateError, ApplicationError)) as caught:
        lint_gate(store, request)
    assert "azRegion" in str(caught.value) and "hunter2-not-a-region" not in str(caught.value)
