"""PLANNING: ARM's what-if through azure-mgmt-resource-deployments. The full result goes to the content store;
history gets a ``WhatIfPlan`` summary: every Delete (what an approval binds to), the other changes up to a bound,
property deltas trimmed, and complete counts."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from temporalio import activity

from contract.models import (
    ActivityName,
    ChangeType,
    PlanChange,
    PropertyChange,
    RequestRetry,
    StageInput,
    WhatIfPlan,
)
from services.classification import classify_arm_error
from services.config import ArmClients
from services.content_store import BlobStore, put_json
from services.secrets import redact, redact_model, secure_parameter_names

from .errors import application_error, classified
from .heartbeat import heartbeating
from .parameters import secret_values, template_and_parameters
from .resource_group import ensure_resource_group
from .secret_fed import SecretPathRecord, SecretPaths, expander, mask_what_if, secret_fed_paths
from .transient import TRANSIENT_PAUSE_SECONDS, retry_in_place
from .validate import scope_for

MAX_SUMMARIZED_CHANGES = 1000  # non-Delete changes kept in the summary; Deletes are always all kept
MAX_DELTA_ENTRIES = 25
MAX_VALUE_CHARS = 200
MAX_SUMMARY_BYTES = 512 * 1024  # well under Temporal's 2 MB payload limit (the status query carries it too)


def _trim_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if len(text) <= MAX_VALUE_CHARS:
        return value
    return text[: MAX_VALUE_CHARS - 1] + "…"


def _property_change(doc: Mapping[str, Any], depth: int = 0) -> PropertyChange:
    children = doc.get("children") or []
    return PropertyChange(
        path=str(doc.get("path", "")),
        change_type=str(doc.get("propertyChangeType", "")),
        before=_trim_value(doc.get("before")),
        after=_trim_value(doc.get("after")),
        children=[_property_change(c, depth + 1) for c in children[:MAX_DELTA_ENTRIES]] if depth < 3 else [],
    )


def _change_type(raw: str) -> ChangeType:
    for ct in ChangeType:
        if ct.value.lower() == raw.lower():
            return ct
    return ChangeType.UNSUPPORTED


def _resource_type(resource_id: str) -> str | None:
    parts = resource_id.split("/providers/")
    if len(parts) < 2:
        return None
    segments = parts[-1].split("/")
    return "/".join([segments[0], *segments[1::2]]) if segments else None


def summarize_what_if(result: Mapping[str, Any], full_result_ref: Any = None) -> WhatIfPlan:
    """A bounded summary of a WhatIfOperationResult document (REST shape, as ``as_dict()`` returns it)."""
    props = result.get("properties") or {}
    raw_changes = props.get("changes") or result.get("changes") or []
    counts: Counter[str] = Counter()
    changes: list[PlanChange] = []
    others = 0
    truncated = False
    for raw in raw_changes:
        ct = _change_type(str(raw.get("changeType", "")))
        counts[ct.value] += 1
        if ct is not ChangeType.DELETE:
            others += 1
            if others > MAX_SUMMARIZED_CHANGES:
                truncated = True
                continue
        resource_id = str(raw.get("resourceId", ""))
        delta = raw.get("delta") or []
        changes.append(
            PlanChange(
                resource_id=resource_id,
                change_type=ct,
                resource_type=raw.get("resourceType") or _resource_type(resource_id),
                delta=[_property_change(d) for d in delta[:MAX_DELTA_ENTRIES]],
                unsupported_reason=raw.get("unsupportedReason"),
            )
        )
    diagnostics = [
        f"{d.get('level', 'Info')}: {d.get('code', '')}: {d.get('message', '')}" for d in props.get("diagnostics") or []
    ]
    plan = WhatIfPlan(
        changes=changes,
        counts=dict(counts),
        full_result=full_result_ref,
        truncated=truncated,
        diagnostics=diagnostics[:50],
    )
    return fit_to_budget(plan)


def fit_to_budget(plan: WhatIfPlan, budget: int = MAX_SUMMARY_BYTES) -> WhatIfPlan:
    """Shrink a summary until its JSON fits ``budget``: first the property deltas of non-Delete changes, then
    those changes themselves, last the deltas of Deletes. Every Delete and every count always stays."""
    if len(plan.model_dump_json()) <= budget:
        return plan
    plan = plan.model_copy(deep=True)
    plan.truncated = True
    for change in plan.changes:
        if change.change_type is not ChangeType.DELETE:
            change.delta = []
    while len(plan.model_dump_json()) > budget:
        keep = [c for c in plan.changes if c.change_type is ChangeType.DELETE]
        others = [c for c in plan.changes if c.change_type is not ChangeType.DELETE]
        if not others:
            break
        plan.changes = keep + others[: len(others) // 2]
    if len(plan.model_dump_json()) > budget:
        for change in plan.changes:
            change.delta = []
    return plan


def secret_free(doc: dict[str, Any], paths: SecretPaths, secrets: list[str]) -> tuple[dict[str, Any], list[str]]:
    """A what-if result with every secret-fed property masked on both sides and every secret string scrubbed
    (the stored full result is what the CLI renders: plan, ``status --plan``), and the strings scrubbed — the
    current secure values and the old ones found on the live side — for the summary that goes to history."""
    doc, old_values = mask_what_if(doc, paths)
    secrets = sorted({*secrets, *old_values}, key=len, reverse=True)
    if secrets:
        doc = json.loads(redact(json.dumps(doc, ensure_ascii=False), secrets))
    return doc, secrets


class PlanActivities:
    def __init__(self, clients: ArmClients, store: BlobStore) -> None:
        self._clients = clients
        self._store = store

    @activity.defn(name=ActivityName.PLAN_DEPLOYMENT)
    async def plan_deployment(self, inp: StageInput) -> WhatIfPlan:
        r = inp.request
        async with classified():
            # Off the event loop: with a blob content store every read is a network round trip.
            secrets = await asyncio.to_thread(secret_values, self._store, r)
        async with classified(secrets):
            template, parameters = await asyncio.to_thread(template_and_parameters, self._store, r)
            body = {
                "properties": {
                    "mode": r.mode.value,
                    "template": template,
                    "parameters": parameters,
                    "whatIfSettings": {"resultFormat": "FullResourcePayloads"},
                }
            }
            deployments = self._clients.deployments(r.subscription_id).deployments

            async def what_if() -> Any:
                poller = await deployments.begin_what_if(r.resource_group, inp.deployment_name, body)
                return await poller.result()

            # Every request of this stage changes nothing (or, for the group, converges), so a transient failure
            # of one is tried again in place rather than costing the attempt (activities/transient.py, R2).
            pause = min(self._clients.config.polling_interval, TRANSIENT_PAUSE_SECONDS)
            retried: list[RequestRetry] = []
            async with heartbeating("what-if", inp.deployment_name):
                group = None
                if inp.ensure_resource_group:
                    group = await retry_in_place(
                        lambda: ensure_resource_group(self._clients, r),
                        what=f"ensuring resource group {r.resource_group}",
                        pause=pause,
                        record=retried,
                    )
                result = await retry_in_place(
                    what_if, what=f"what-if of {inp.deployment_name}", pause=pause, record=retried
                )
            doc = result.as_dict() if hasattr(result, "as_dict") else dict(result)
            # A what-if ARM answered with {"status": "Failed", "error": ...} is returned, not raised (CONTRACT §2).
            if str(doc.get("status", "")).lower() == "failed" or doc.get("error"):
                classification = classify_arm_error(doc.get("error"), default_code="WhatIfFailed")
                classification.message = redact(classification.message, secrets)
                raise application_error(classification)
            # The live side of a Modify or Delete holds values of earlier deployments — a rotated secret's old
            # value too — which no current value matches: mask every property a secure parameter fed, on both sides.
            paths, note = await asyncio.to_thread(self._secret_fed_paths, inp, body["properties"])
            doc, secrets = secret_free(doc, paths, secrets)
            ref = await asyncio.to_thread(put_json, self._store, doc)
            plan = summarize_what_if(doc, ref)
            if note:
                plan.diagnostics.append(note)
            if group is not None:
                plan.resource_group_created = group.created
            plan.request_retries = retried
            return redact_model(plan, secrets)

    def _secret_fed_paths(self, inp: StageInput, properties: Mapping[str, Any]) -> tuple[SecretPaths, str | None]:
        """Where this template's secure parameters flow, merged with where earlier deployments of the resource
        group had them flow (the content store's record), and a diagnostic when the template's could not be found."""
        r = inp.request
        # Declared secure (also a Key Vault reference or a default value) or marked with --secret-param.
        names = secure_parameter_names(properties["template"]) | {n.lower() for n in r.secure_parameter_names}
        note = None
        try:
            paths = secret_fed_paths(properties["template"], properties["parameters"], names, expander(scope_for(inp)))
        except Exception as exc:  # the engine refused a varied value: fall back on the record and value scrubbing
            paths = {}
            note = (
                "Warning: SecretPathsUnknown: where secure parameters flow could not be worked out "
                f"({type(exc).__name__}); only their current values are masked"
            )
        paths = SecretPathRecord(self._store).merge(r.subscription_id, r.resource_group, paths)
        return paths, note
