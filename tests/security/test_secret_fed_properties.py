"""Property-based tests of secret scrubbing in the what-if plan, the live side included.

A securestring parameter feeds a resource property — directly, transformed (``base64``, ``toUpper``, ``concat``),
through a variable, inside an array of settings, under a tag whose name holds a dot — and the secret is rotated:
the local ARM's own what-if computation (``local_arm.whatif.property_delta`` over the deployed body and the new
one, the live payload as ``before``) yields a plan whose ``before`` holds the old value. PLANNING's scrubbing
(``activities.plan.secret_free`` with the paths ``secret_fed_paths`` finds, the record of earlier deployments'
paths) must leave neither the old nor the new value — nor the transformed value the property held — in the stored
full result, the history summary or the rendered plan. A resource deleted after carrying a secret is covered by
the record of earlier paths.

Nothing is mocked: the ARM engine expands the templates and the local ARM's pure what-if functions compute the
delta (the end-to-end path through the SDK, Temporal, the CLI and the audit is in test_rotated_secret.py).
"""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from activities.plan import secret_free, summarize_what_if
from activities.secret_fed import SecretPathRecord, secret_fed_paths
from activities.validate import expand
from arm_engine import DeploymentScope
from contract.plan_text import plan_documents, render_plan
from local_arm.whatif import materialize, property_delta
from services.secrets import redact_model

SCOPE = DeploymentScope(
    subscription_id="00000000-0000-0000-0000-000000000001",
    resource_group="rg-prop",
    location="westeurope",
    deployment_name="orch-prop",
)
TRANSFORMS = {
    "plain": "parameters('pw')",
    "base64": "base64(parameters('pw'))",
    "upper": "toUpper(parameters('pw'))",
    "concat": "concat('Server=db;Password=', parameters('pw'), ';')",
    "variable": "variables('connection')",
}
PLACES = ["tag", "dotted-tag", "nested-property", "array-setting"]

tokens = st.text(alphabet=string.ascii_letters + string.digits, min_size=12, max_size=40)


def distinct(*values: str) -> None:
    """No generated value inside another (a plain value holding the secret would rightly be masked)."""
    fixed = json.dumps([template(t, p, with_plain="") for t in TRANSFORMS for p in PLACES]) + str(SCOPE)
    assume(all(a not in b for i, a in enumerate(values) for j, b in enumerate(values) if i != j))
    assume(not any(v in fixed for v in values))


def template(transform: str, place: str, *, with_plain: str) -> dict[str, Any]:
    expr = f"[{TRANSFORMS[transform]}]"
    resource: dict[str, Any] = {
        "type": "Microsoft.Web/sites",
        "apiVersion": "2023-12-01",
        "name": "app-prop",
        "location": "[resourceGroup().location]",
        "tags": {"owner": "[parameters('plain')]"},
        "properties": {"httpsOnly": True},
    }
    if place == "tag":
        resource["tags"]["pw"] = expr
    elif place == "dotted-tag":
        resource["tags"]["secret.value"] = expr
    elif place == "nested-property":
        resource["properties"]["siteConfig"] = {"connection": {"value": expr, "kind": "SQL"}}
    else:
        resource["properties"]["siteConfig"] = {
            "appSettings": [
                {"name": "PLAIN", "value": "[parameters('plain')]"},
                {"name": "SECRET", "value": expr},
            ]
        }
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"pw": {"type": "securestring"}, "plain": {"type": "string", "defaultValue": with_plain}},
        "variables": {"connection": "[concat('Password=', parameters('pw'))]"},
        "resources": [resource],
    }


def deployed_body(tpl: dict[str, Any], secret: str) -> dict[str, Any]:
    res = expand(tpl, {"pw": {"value": secret}}, SCOPE).resources[0]
    return {"id": res.id, "name": res.name, "type": res.type, **materialize(res.body)}


def leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in leaves(v)]
    return [value] if isinstance(value, str) else []


def secret_leaves(tpl: dict[str, Any], old: str, new: str) -> set[str]:
    """The values the secret-fed property holds before and after (transformed as the template says)."""
    before, after = deployed_body(tpl, old), deployed_body(tpl, new)
    return {v for v in set(leaves(before)) ^ set(leaves(after)) if len(v) >= 4}


def plan_outputs(doc: dict[str, Any], tpl: dict[str, Any], new: str, store_root: Path) -> str:
    """Everything PLANNING lets out for this what-if: the stored document, the history summary, the rendered plan."""
    paths = secret_fed_paths(tpl, {"pw": {"value": new}}, ["pw"], lambda t, p: expand(t, p, SCOPE))
    paths = SecretPathRecord(store_root).merge(SCOPE.subscription_id, SCOPE.resource_group, paths)
    current = [new]
    stored, secrets = secret_free(doc, paths, current)
    summary = redact_model(summarize_what_if(stored), secrets)
    rendered = render_plan(plan_documents(summary)) + render_plan(stored["properties"]["changes"])
    return json.dumps(stored) + summary.model_dump_json() + rendered


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    old=tokens,
    new=tokens,
    plain=tokens,
    transform=st.sampled_from(sorted(TRANSFORMS)),
    place=st.sampled_from(PLACES),
)
def test_a_rotated_secret_shows_neither_value_on_either_side(
    old: str, new: str, plain: str, transform: str, place: str
) -> None:
    distinct(old, new, plain)
    tpl = template(transform, place, with_plain=plain)
    before = deployed_body(tpl, old)
    after = deployed_body(tpl, new)
    delta = property_delta(before, after)
    change = {"resourceId": before["id"], "changeType": "Modify", "before": before, "after": after, "delta": delta}
    doc = {"status": "Succeeded", "properties": {"changes": [change]}}
    hidden = secret_leaves(tpl, old, new) | {old, new}
    assert any(h in json.dumps(doc) for h in hidden)  # the raw what-if does carry them: the case is real
    with tempfile.TemporaryDirectory() as root:
        out = plan_outputs(doc, tpl, new, Path(root))
    for value in hidden:
        assert value not in out, f"{value!r} ({transform}, {place}) leaked"
    assert plain in out  # a plain value stays readable: masking is by path, not everything


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=tokens, plain=tokens, transform=st.sampled_from(sorted(TRANSFORMS)), place=st.sampled_from(PLACES))
def test_a_deleted_resource_that_carried_a_secret_shows_no_value(
    old: str, plain: str, transform: str, place: str
) -> None:
    """The first deployment fed the secret; the next template drops the resource (Complete mode: Delete). Its
    ``before`` holds the old value, and no current parameter or path of the new template says so — the record of
    the resource group's earlier paths does."""
    distinct(old, plain)
    first = template(transform, place, with_plain=plain)
    with tempfile.TemporaryDirectory() as root:
        plan_outputs({"properties": {"changes": []}}, first, old, Path(root))  # the first deployment's PLANNING
        before = deployed_body(first, old)
        doc = {"properties": {"changes": [{"resourceId": before["id"], "changeType": "Delete", "before": before}]}}
        emptied = {**first, "parameters": {"plain": first["parameters"]["plain"]}, "resources": []}
        emptied.pop("variables")
        paths = secret_fed_paths(emptied, {}, [], lambda t, p: expand(t, p, SCOPE))
        paths = SecretPathRecord(Path(root)).merge(SCOPE.subscription_id, SCOPE.resource_group, paths)
        stored, secrets = secret_free(doc, paths, [])
        summary = redact_model(summarize_what_if(stored), secrets)
        out = json.dumps(stored) + summary.model_dump_json() + render_plan(stored["properties"]["changes"])
    hidden = secret_leaves(first, old, old[::-1] + "x") | {old}  # the other side's values never were in the plan
    assert any(h in json.dumps(doc) for h in hidden)
    for value in hidden:
        assert value not in out, f"{value!r} ({transform}, {place}) leaked from a deleted resource"
    assert plain in out


def test_a_key_vault_reference_and_a_secure_default_are_secret_fed_too() -> None:
    """No secure value in the request — a Key Vault reference (ARM resolves it) or the template's own default —
    and still the properties they feed are found, so their live values are masked."""
    tpl = template("plain", "tag", with_plain="nobody")
    tpl["parameters"]["fallback"] = {"type": "securestring", "defaultValue": "a-default-secret-value"}
    tpl["parameters"]["generated"] = {"type": "securestring", "defaultValue": "[newGuid()]"}
    tpl["resources"][0]["tags"].update(fb="[parameters('fallback')]", gen="[parameters('generated')]")
    reference = {"reference": {"keyVault": {"id": "/subscriptions/x/resourceGroups/kv/providers/"
                                                 "Microsoft.KeyVault/vaults/v"}, "secretName": "pw"}}  # fmt: skip
    paths = secret_fed_paths(tpl, {"pw": reference}, ["pw", "fallback", "generated"], lambda t, p: expand(t, p, SCOPE))
    assert set(paths) == {deployed_body(tpl, "x" * 12)["id"].lower()}
    fed = next(iter(paths.values()))
    assert {("tags", "pw"), ("tags", "fb"), ("tags", "gen")} <= fed and ("tags", "owner") not in fed
