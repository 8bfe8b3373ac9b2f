"""The corpus sequence through the SDK: validate → what-if (all Create) → create (Succeeded, outputs present) →
what-if again (no Create, Delete or Modify). Parameters come from each sample's azuredeploy.parameters.json with
GEN-* placeholders replaced by tests/engine/corpus_support.py (the engine tests' substitution, reused here).
"""

from __future__ import annotations

import json
import re
from typing import Any

from azure.core.exceptions import HttpResponseError

from harness.corpus import UPSTREAM, Sample, substitute
from local_arm.testing import LocalArm

LOCATION = "westus2"
PINNED_TIME = "20260101T000000Z"
PREREQUISITE_GROUPS = ("rg-prereq", "rg-network", "rg-vault", "rg-identity")


def sample_body(sample: Sample) -> dict[str, Any]:
    template = json.loads(sample.template_path.read_text(encoding="utf-8-sig"))
    parameters: dict[str, Any] = {}
    if sample.parameters_path.exists():
        doc = json.loads(sample.parameters_path.read_text(encoding="utf-8-sig"))
        parameters = {name: substitute(entry, sample.folder, name) for name, entry in doc.get("parameters", {}).items()}
    declared = {k.lower(): k for k in template.get("parameters", {})}
    # Deployed inline (not from a templateLink), a template's artifacts location must be passed explicitly — as
    # `az deployment group create --template-file` users do.
    if "_artifactslocation" in declared and not any(k.lower() == "_artifactslocation" for k in parameters):
        parameters[declared["_artifactslocation"]] = {"value": f"{UPSTREAM}/{sample.source_path}/"}
    # A parameter defaulting to utcNow() changes with every deployment, so a redeploy would rightly plan a Modify;
    # pin it, as a repeatable pipeline does.
    for name, spec in (template.get("parameters") or {}).items():
        default = spec.get("defaultValue") if isinstance(spec, dict) else None
        if isinstance(default, str) and "utcnow(" in default.lower() and name not in parameters:
            parameters[name] = {"value": PINNED_TIME}
    return {"properties": {"mode": "Incremental", "template": template, "parameters": parameters}}


def rg_name(sample: Sample) -> str:
    return ("rg-" + re.sub(r"[^-\w._()]", "-", sample.folder))[:90]


def run_sequence(arm: LocalArm, client: Any, resource_client: Any, sample: Sample) -> str | None:
    """None when the whole sequence passes, else the first failing step and why."""
    rg = rg_name(sample)
    name = "corpus"
    body = sample_body(sample)
    resource_client.resource_groups.create_or_update(rg, {"location": LOCATION})
    # Upstream CI deploys prerequisites first; corpus_support names their resource groups (GET-PREREQ-*, GEN-VNET-...).
    for prereq in PREREQUISITE_GROUPS:
        resource_client.resource_groups.create_or_update(prereq, {"location": LOCATION})
    try:
        client.deployments.begin_validate(rg, name, body).result()
    except HttpResponseError as exc:
        return f"validate: {_err(exc)}"
    plan = client.deployments.begin_what_if(rg, name, body).result()
    if plan.status != "Succeeded":
        return f"what-if: {plan.error.code}: {plan.error.message}"
    not_create = [c for c in plan.properties.changes if c.change_type != "Create"]
    if not_create:
        return f"first what-if: {_kind(not_create[0].change_type)} for {not_create[0].resource_id}"
    try:
        result = client.deployments.begin_create_or_update(rg, name, body).result()
    except HttpResponseError as exc:
        return f"create: {_err(exc)}"
    if result.properties.provisioning_state != "Succeeded":
        return f"create: provisioningState {result.properties.provisioning_state}"
    declared_outputs = body["properties"]["template"].get("outputs") or {}
    missing = [o for o in declared_outputs if o not in (result.properties.outputs or {})]
    if missing and not all(_conditional(declared_outputs[o]) for o in missing):
        return f"create: outputs missing {missing}"
    again = client.deployments.begin_what_if(rg, name, body).result()
    if again.status != "Succeeded":
        return f"second what-if: {again.error.code}: {again.error.message}"
    changed = [c for c in again.properties.changes if c.change_type in ("Create", "Delete", "Modify")]
    if changed:
        c = changed[0]
        detail = [d.path for d in (c.delta or [])][:3]
        return f"second what-if: {_kind(c.change_type)} for {c.resource_id} {detail}"
    return None


def _kind(change_type: Any) -> str:
    return str(getattr(change_type, "value", change_type))


def _conditional(output: Any) -> bool:
    return isinstance(output, dict) and "condition" in output


def _err(exc: HttpResponseError) -> str:
    if exc.error is not None:
        inner = exc.error.details[0].message if exc.error.details else ""
        return f"{exc.error.code}: {exc.error.message} {inner}".strip()
    return str(exc)
