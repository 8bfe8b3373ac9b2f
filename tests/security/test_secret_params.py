"""Secret parameters: securestring values and --secret-param values go to the content store (sealed when keys
are configured), Key Vault references stay references, and the CLI masks marked values in what it prints."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from client.cli.deploy import marked_secret_values
from client.deployments import build_deploy_request
from client.inputs import InputError, read_deployment_inputs
from harness.secret_template import random_token, secret_template
from services.codec import KeyRing
from services.content_store import LocalBlobStore, open_json
from services.secrets import MASK, redact, secret_strings

KV_REFERENCE = {
    "reference": {
        "keyVault": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"},
        "secretName": "admin-password",
    }
}


def test_marked_and_secure_values_are_sealed_and_references_pass_through(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_CODEC_KEYS", f"k1={base64.b64encode(os.urandom(32)).decode()}")
    owner = random_token()
    store = LocalBlobStore(tmp_path / "blobs")
    request = build_deploy_request(
        store=store,
        template=secret_template("stacct"),
        subscription_id="00000000-0000-0000-0000-000000000001",
        resource_group="rg",
        location="westeurope",
        parameters={"adminPassword": KV_REFERENCE, "ownerTag": {"value": owner}},
        secret_names=["OWNERTAG"],  # names are case-insensitive, as in ARM
    )
    # The Key Vault reference is not a value: it travels as the reference, for ARM to resolve.
    assert request.parameters == {"adminPassword": KV_REFERENCE}
    assert request.secure_parameter_names == ["ownerTag"]
    assert owner not in request.model_dump_json()
    assert request.secure_parameters is not None
    sealed = store.get(request.secure_parameters)
    assert owner.encode() not in sealed  # sealed with the codec's key, not plain JSON
    assert open_json(store, request.secure_parameters, KeyRing.from_environment()) == {"ownerTag": {"value": owner}}


def test_cli_checks_marked_names_and_masks_their_values(tmp_path: Path) -> None:
    owner = random_token()
    template = tmp_path / "main.json"
    template.write_text(json.dumps(secret_template("stacct")))
    inputs = read_deployment_inputs(template=str(template), parameters=None, overrides=[f"ownerTag={owner}"])
    hidden = marked_secret_values(inputs, ["ownerTag"])
    assert hidden == [owner]
    assert redact(f"value '{owner}' is not allowed", hidden) == f"value '{MASK}' is not allowed"
    with pytest.raises(InputError, match="--secret-param ownr names no parameter"):
        marked_secret_values(inputs, ["ownr"])


def test_redaction_covers_nested_values_and_json_escaping() -> None:
    secrets = secret_strings([{"user": "admin-user", "keys": ['p"q\\rst', 12345]}])
    text = json.dumps({"echo": 'p"q\\rst', "n": "12345", "u": "admin-user"})
    masked = redact(text, secrets)
    assert "admin-user" not in masked and "12345" not in masked and 'p\\"q' not in masked
    assert json.loads(masked) == {"echo": MASK, "n": MASK, "u": MASK}
