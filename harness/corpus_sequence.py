"""The corpus sequence through the SDK: validate → what-if (all Create) → create (Succeeded, outputs present) →
what-if again (no Create, Delete or Modify). Parameters come from each sample's azuredeploy.parameters.json with
GEN-* placeholders replaced by harness/corpus.py (the engine tests' substitution, reused here).

Values a deployment takes from its own moment are the one exception to "no Modify". ARM re-evaluates a parameter's
utcNow() (or newGuid()) default on every deployment and what-if ("When you redeploy and don't provide a value for
the parameter, the function is reevaluated", Microsoft Learn, ARM template date functions), so the redeploy of a
template whose *nested* template defaults a parameter to it (the outer template cannot pin it) rightly plans a
Modify of whatever derives from it — unless both happen to fall in the same second. The sequence tells those
changes apart instead of hoping for that second: a planned change passes only when a what-if at a much later
moment (the local ARM's ``clock_offset``) plans a *different* value for the same property, i.e. the value follows
the clock; a change that stays the same at any moment is a real difference and fails the sample.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import HttpResponseError

from harness.corpus import UPSTREAM, Sample, substitute
from local_arm.testing import LocalArm

LOCATION = "westus2"
PINNED_TIME = "20260101T000000Z"
PREREQUISITE_GROUPS = ("rg-prereq", "rg-network", "rg-vault", "rg-identity")
# How much later the probing what-if looks: 400 days, an hour, a minute and a second, so that every field of any
# date format (year, month, day, hour, minute, second) differs.
PROBE_OFFSET = 400 * 86400 + 3600 + 60 + 1


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


@dataclass
class _Replanned:
    """The redeploy's what-if planned changes (``changes``: its whole list): judged afterwards by whether they
    follow the clock."""

    rg: str
    body: dict[str, Any]
    changes: list[Any]


def run_corpus(arm: LocalArm, samples: Iterable[Sample], workers: int = 6) -> dict[str, str | None]:
    """The sequence for every sample, ``workers`` at a time against one local ARM: {folder: None when it passes,
    else the first failing step and why}. Redeploy plans with changes are judged once all have run (the probing
    what-if needs the server's clock moved, which must not shift the others' deployments)."""
    client, resources = arm.deployments_client(), arm.resource_client()
    samples = list(samples)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        first = list(pool.map(lambda s: _sequence(client, resources, s), samples))
    outcomes: dict[str, str | None] = {}
    replanned: dict[str, _Replanned] = {}
    for sample, outcome in zip(samples, first, strict=True):
        if isinstance(outcome, _Replanned):
            replanned[sample.folder] = outcome
        else:
            outcomes[sample.folder] = outcome
    if replanned:
        arm.admin.configure(clock_offset=PROBE_OFFSET)
        try:
            for folder, plan in replanned.items():
                outcomes[folder] = _judge_replan(client, plan)
        finally:
            arm.admin.configure(clock_offset=0)
    return {s.folder: outcomes[s.folder] for s in samples}


def _sequence(client: Any, resource_client: Any, sample: Sample) -> str | _Replanned | None:
    rg = rg_name(sample)
    name = "corpus"
    body = sample_body(sample)
    resource_client.resource_groups.create_or_update(rg, {"location": LOCATION})
    # Upstream CI deploys prerequisites first; harness/corpus.py names their groups (GET-PREREQ-*, GEN-VNET-...).
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
    if any(_kind(c.change_type) in _CHANGES for c in again.properties.changes):
        return _Replanned(rg, body, list(again.properties.changes))
    return None


def _judge_replan(client: Any, plan: _Replanned) -> str | None:
    """None when every change the redeploy's what-if planned follows the clock (a what-if PROBE_OFFSET later plans a
    different value for it, or a different resource id), else the first change that does not."""
    probe = client.deployments.begin_what_if(plan.rg, "corpus", plan.body).result()
    if probe.status != "Succeeded":
        return f"what-if {PROBE_OFFSET} s later: {probe.error.code}: {probe.error.message}"
    # A resource that nested deployments declare more than once has a change per declaration, in the same order.
    later: dict[str, list[Any]] = {}
    for c in probe.properties.changes or []:
        later.setdefault(c.resource_id.lower(), []).append(c)
    for c in plan.changes:
        kind = _kind(c.change_type)
        same_id = later.get(c.resource_id.lower())
        other = same_id.pop(0) if same_id else None
        if kind not in _CHANGES:
            continue
        if kind == "Create" and (other is None or _kind(other.change_type) != "Create"):
            continue  # the resource's id follows the clock: a new one every deployment
        if kind == "Modify" and other is not None and _kind(other.change_type) == "Modify":
            now, then = _leaves(c.delta or []), _leaves(other.delta or [])
            if all(then.get(path, _ABSENT) != value for path, value in now.items()):
                continue
            steady = [".".join(path) for path, value in now.items() if then.get(path, _ABSENT) == value]
            return f"second what-if: Modify for {c.resource_id} {steady[:3]}"
        detail = [d.path for d in (c.delta or [])][:3]
        return f"second what-if: {kind} for {c.resource_id} {detail}"
    return None


_ABSENT = object()
_CHANGES = ("Create", "Delete", "Modify")


def _leaves(delta: list[Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """{path: (change type, before, after)} of every leaf property change of a what-if delta."""
    out: dict[tuple[str, ...], Any] = {}
    for d in delta:
        path = (*prefix, str(d.path))
        if d.children:
            out.update(_leaves(d.children, path))
        else:
            before, after = json.dumps(d.before, sort_keys=True), json.dumps(d.after, sort_keys=True)
            out[path] = (_kind(d.property_change_type), before, after)
    return out


def _kind(change_type: Any) -> str:
    return str(getattr(change_type, "value", change_type))


def _conditional(output: Any) -> bool:
    return isinstance(output, dict) and "condition" in output


def _err(exc: HttpResponseError) -> str:
    if exc.error is not None:
        inner = exc.error.details[0].message if exc.error.details else ""
        return f"{exc.error.code}: {exc.error.message} {inner}".strip()
    return str(exc)
