"""Content store, deterministic names, request building and the what-if summary at ARM's limits (800 resources,
a multi-megabyte template) — what keeps Temporal payloads far below their 2 MB limit."""

from __future__ import annotations

import json
import re

import pytest

from activities.plan import summarize_what_if
from client.deployments import build_deploy_request
from contract.models import BlobRef, ChangeType, DeployRequest
from contract.naming import deployment_name_for, workflow_id_for
from services.content_store import BlobCorruptError, BlobNotFoundError, LocalBlobStore, get_json, put_json

TWO_MB = 2 * 1024 * 1024
ARM_NAME = re.compile(r"^[-\w._()]{1,64}$")


def big_template(resources: int = 800) -> dict:
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"adminPassword": {"type": "secureString"}},
        "resources": [
            {
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-01-01",
                "name": f"st{i:04d}",
                "location": "westeurope",
                "properties": {"description": "x" * 4000},
            }
            for i in range(resources)
        ],
    }


def what_if_result(creates: int, deletes: int = 0) -> dict:
    prefix = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/"
    changes = [
        {"resourceId": f"{prefix}st{i:04d}", "changeType": "Create",
         "after": {"name": f"st{i:04d}", "properties": {"description": "x" * 4000}}}
        for i in range(creates)
    ] + [
        {"resourceId": f"{prefix}old{i}", "changeType": "Delete", "before": {"name": f"old{i}"}}
        for i in range(deletes)
    ]  # fmt: skip
    return {"status": "Succeeded", "properties": {"changes": changes}}


def test_blob_store_round_trip_and_integrity(tmp_path) -> None:
    store = LocalBlobStore(tmp_path)
    ref = put_json(store, {"b": 1, "a": [1, 2]})
    assert ref == put_json(store, {"a": [1, 2], "b": 1})  # canonical: same document, same reference
    assert get_json(store, ref) == {"a": [1, 2], "b": 1}
    path = tmp_path / ref.digest[7:9] / ref.digest[7:]
    path.write_bytes(b'{"a": "swapped"}')
    with pytest.raises(BlobCorruptError):
        store.get(ref)
    with pytest.raises(BlobNotFoundError, match="ORCHESTRATOR_BLOB_DIR"):
        store.get(BlobRef(digest="sha256:" + "1" * 64, size=1))
    with pytest.raises(ValueError):
        store.get(BlobRef(digest="sha256:../../etc/passwd", size=1))


def test_an_800_resource_template_travels_as_a_reference(tmp_path) -> None:
    template = big_template()
    assert len(json.dumps(template)) > TWO_MB  # bigger than a Temporal payload may be
    request = build_deploy_request(
        store=LocalBlobStore(tmp_path),
        template=template,
        subscription_id="sub",
        resource_group="rg",
        location="westeurope",
        overrides={"adminPassword": "hunter2"},
    )
    payload = request.model_dump_json()
    assert len(payload) < 4096
    assert "hunter2" not in payload and request.secure_parameters is not None


def test_what_if_summary_of_800_resources_is_small_and_complete(tmp_path) -> None:
    doc = what_if_result(800, deletes=3)
    ref = put_json(LocalBlobStore(tmp_path), doc)
    plan = summarize_what_if(doc, ref)
    size = len(plan.model_dump_json())
    assert len(json.dumps(doc)) > TWO_MB
    assert size < 256 * 1024, size
    assert plan.counts == {"Create": 800, "Delete": 3}
    assert len(plan.destructive_changes) == 3 and plan.has_changes
    assert plan.full_result == ref


def test_summary_bounds_non_destructive_changes_but_keeps_every_delete() -> None:
    doc = what_if_result(1500, deletes=1200)
    plan = summarize_what_if(doc)
    assert plan.truncated
    assert len(plan.destructive_changes) == 1200
    assert plan.counts[ChangeType.CREATE.value] == 1500
    assert len(plan.model_dump_json()) < TWO_MB


def test_no_change_plan_has_no_changes() -> None:
    doc = {"status": "Succeeded", "properties": {"changes": [{"resourceId": "/x", "changeType": "NoChange"}]}}
    assert not summarize_what_if(doc).has_changes


def test_modify_deltas_are_trimmed() -> None:
    delta = [{"path": f"properties.p{i}", "propertyChangeType": "Modify", "before": "a", "after": "b" * 5000}
             for i in range(100)]  # fmt: skip
    doc = {"properties": {"changes": [{"resourceId": "/x", "changeType": "Modify", "delta": delta}]}}
    change = summarize_what_if(doc).changes[0]
    assert len(change.delta) == 25
    assert len(change.delta[0].after) <= 200


@pytest.mark.parametrize("rg", ["rg1", "My.Resource_Group(1)", "x" * 90, "ünïcode-rg"])
def test_deployment_names_are_valid_deterministic_and_distinct(rg: str) -> None:
    wf = workflow_id_for("00000000-0000-0000-0000-000000000001", rg)
    a = deployment_name_for(resource_group=rg, workflow_id=wf, run_id="run-a")
    assert ARM_NAME.match(a) and a.isascii()
    assert a == deployment_name_for(resource_group=rg, workflow_id=wf, run_id="run-a")
    assert a != deployment_name_for(resource_group=rg, workflow_id=wf, run_id="run-b")


def test_workflow_id_ignores_resource_group_case() -> None:
    assert workflow_id_for("SUB", "My-RG") == workflow_id_for("sub", "my-rg") == "deploy-sub-my-rg"


def test_overrides_replace_file_values_whatever_the_case(tmp_path) -> None:
    template = {"parameters": {"Sku": {"type": "string"}, "Pwd": {"type": "secureObject"}}, "resources": []}
    request = build_deploy_request(
        store=LocalBlobStore(tmp_path),
        template=template,
        subscription_id="s",
        resource_group="rg",
        location="westeurope",
        parameters={"sku": {"value": "Standard_LRS"}, "pwd": {"value": {"k": "v"}}, "kv": {"reference": {"x": 1}}},
        overrides={"SKU": "Premium_LRS"},
    )
    assert request.parameters == {"SKU": {"value": "Premium_LRS"}, "kv": {"reference": {"x": 1}}}
    assert request.secure_parameter_names == ["pwd"]
    assert request.override_names == ["SKU"]


def test_secure_values_are_sealed_when_codec_keys_are_configured(tmp_path, monkeypatch) -> None:
    import base64
    import os

    from activities.parameters import deployment_parameters
    from services.content_store import BlobKeyMissingError

    monkeypatch.setenv("ORCHESTRATOR_CODEC_KEYS", "k1=" + base64.b64encode(os.urandom(32)).decode())
    store = LocalBlobStore(tmp_path)
    template = {"parameters": {"pwd": {"type": "securestring"}}, "resources": []}
    request = build_deploy_request(
        store=store,
        template=template,
        subscription_id="s",
        resource_group="rg",
        location="westeurope",
        overrides={"pwd": "correct horse battery staple"},
    )
    assert request.secure_parameters is not None
    raw = store.get(request.secure_parameters)
    assert b"correct horse" not in raw  # ciphertext at rest
    assert deployment_parameters(store, request)["pwd"] == {"value": "correct horse battery staple"}
    # A worker without the key is told which setting it lacks.
    monkeypatch.setenv("ORCHESTRATOR_CODEC_KEYS", "k2=" + base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(BlobKeyMissingError, match="ORCHESTRATOR_CODEC_KEYS"):
        deployment_parameters(store, request)


def test_secure_values_are_sealed_with_a_local_key_without_configured_keys(tmp_path, monkeypatch, caplog) -> None:
    """Without codec keys, secure values are sealed with a key generated beside the store (0600, warned about
    once), and the reference in history is the digest of the ciphertext: it cannot confirm a guessed value."""
    import hashlib
    import stat

    from services.content_store import LOCAL_KEY_FILE, canonical_json, open_json

    monkeypatch.delenv("ORCHESTRATOR_CODEC_KEYS", raising=False)
    monkeypatch.delenv("ORCHESTRATOR_CODEC_KEY_FILE", raising=False)
    store = LocalBlobStore(tmp_path)

    def build() -> DeployRequest:
        return build_deploy_request(
            store=store,
            template={"parameters": {"pwd": {"type": "secureString"}}, "resources": []},
            subscription_id="s",
            resource_group="rg",
            location="westeurope",
            parameters={"pwd": {"value": "Summer2026!"}},
        )

    request, again = build(), build()
    assert request.secure_parameters is not None and again.secure_parameters is not None
    assert open_json(store, request.secure_parameters, None) == {"pwd": {"value": "Summer2026!"}}
    guess = "sha256:" + hashlib.sha256(canonical_json({"pwd": {"value": "Summer2026!"}})).hexdigest()
    assert request.secure_parameters.digest != guess
    assert request.secure_parameters.digest != again.secure_parameters.digest  # random nonce: no equality oracle
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"Summer2026!" not in path.read_bytes(), path
    key = tmp_path / LOCAL_KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sum(LOCAL_KEY_FILE in r.getMessage() for r in caplog.records) == 1  # warned once, when generated


def test_summary_of_a_huge_modify_plan_fits_its_budget_and_keeps_deletes() -> None:
    big = "v" * 5000
    delta = [{"path": f"properties.p{i}", "propertyChangeType": "Modify", "before": big, "after": big}
             for i in range(25)]  # fmt: skip
    changes = [{"resourceId": f"/r/m{i}", "changeType": "Modify", "delta": delta} for i in range(1000)]
    changes += [{"resourceId": f"/r/d{i}", "changeType": "Delete", "delta": delta} for i in range(50)]
    plan = summarize_what_if({"properties": {"changes": changes}})
    assert len(plan.model_dump_json()) <= 512 * 1024
    assert plan.truncated
    assert len(plan.destructive_changes) == 50
    assert plan.counts == {"Modify": 1000, "Delete": 50}
