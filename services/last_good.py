"""Rollback: the "last good" record of each resource group, and what a rollback redeploys.

When a deployment COMPLETES with its health verified (VERIFYING_HEALTH ran and passed; ``--skip-health`` does not
count), the workflow records it as the resource group's *last good* deployment: its compiled template and
parameters, in the content store (``services.content_store``), plus a small pointer file per subscription and
resource group. ARM's own deployment history is not used: it is pruned at 800 entries and does not hold secure
values anyway.

Secure parameter values are never kept in plaintext. The recording worker seals them with the codec's key ring
(``ORCHESTRATOR_CODEC_KEYS``/``ORCHESTRATOR_CODEC_KEY_FILE``); without a key ring it keeps only their names
(``unrecoverable_secure_parameters``), and a rollback that needs them stops and asks for them through the
``provide_rollback_parameters`` signal (``provide_rollback_parameters`` below) instead of deploying without them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from contract.health import HealthSpec, HttpCheck
from contract.health_targets import redact_url
from contract.models import (
    SIGNAL_ROLLBACK_PARAMETERS,
    BlobRef,
    DeployRequest,
    LastGoodDeployment,
    RecordLastGoodInput,
    RollbackParametersSignal,
    RollbackReport,
    RollbackState,
)
from services.content_store import BlobStore, get_json, open_json, put_json, seal_json

LAST_GOOD_DIR = "last-good"


class LastGoodStore:
    """The last-good pointer of each resource group: the named record ``last-good/<sha256(sub/rg)>.json`` of the
    content store (a file under the folder, a blob in the container) holding the ``BlobRef`` of the record (the
    record itself is a content-addressed document). Replaced atomically."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store

    def _pointer(self, subscription_id: str, resource_group: str) -> str:
        key = hashlib.sha256(f"{subscription_id.lower()}/{resource_group.lower()}".encode()).hexdigest()
        return f"{LAST_GOOD_DIR}/{key}.json"

    def save(self, record: LastGoodDeployment) -> BlobRef:
        ref = put_json(self._store, record.model_dump(mode="json"))
        pointer = json.dumps(ref.model_dump(mode="json")).encode()
        self._store.put_named(self._pointer(record.subscription_id, record.resource_group), pointer)
        return ref

    def load(self, subscription_id: str, resource_group: str) -> LastGoodDeployment | None:
        data = self._store.get_named(self._pointer(subscription_id, resource_group))
        if data is None:
            return None
        ref = BlobRef.model_validate_json(data)
        return LastGoodDeployment.model_validate(get_json(self._store, ref))


def split_parameters(request: DeployRequest, store: BlobStore, key_ring: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plain, secure) parameter entries of a request as deployed. A .bicepparam deployment keeps every value
    behind ``secure_parameters``; only the names its template declares secure are secure."""
    plain = dict(request.parameters)
    secure: dict[str, Any] = {}
    if request.secure_parameters is not None:
        secure_names = {n.lower() for n in request.secure_parameter_names}
        for name, entry in dict(open_json(store, request.secure_parameters, key_ring)).items():
            (secure if name.lower() in secure_names else plain)[name] = entry
    return plain, secure


def last_good_record(inp: RecordLastGoodInput, store: BlobStore, key_ring: Any) -> LastGoodDeployment:
    """The record of a deployment that completed healthy; secure values sealed with ``key_ring`` or, without one,
    listed as unrecoverable (never stored in plaintext by us)."""
    request = inp.request
    plain, secure = split_parameters(request, store, key_ring)
    sealed: BlobRef | None = None
    unrecoverable: list[str] = []
    if secure:
        if key_ring is not None:
            sealed = seal_json(store, secure, key_ring)
        else:
            unrecoverable = sorted(secure)
    health, sealed_health = request.health, None
    if key_ring is not None and request.health.checks:
        # Declarations carry secrets (an Authorization header, a SAS query, user:password@): sealed like secure
        # parameters; the record itself keeps a redacted copy, so the store holds no plaintext secret.
        sealed_health = seal_json(store, request.health.model_dump(mode="json"), key_ring)
        health = redacted_health_spec(request.health)
    return LastGoodDeployment(
        subscription_id=request.subscription_id,
        resource_group=request.resource_group,
        location=request.location,
        workflow_id=inp.workflow_id,
        deployment_name=inp.deployment_name,
        completed_at=inp.completed_at,
        template=request.template,
        template_hash=request.template.digest,
        template_path=request.template_path,
        parameters=plain,
        secure_parameters=sealed,
        secure_parameter_names=sorted(secure),
        unrecoverable_secure_parameters=unrecoverable,
        mode=request.mode,
        health=health,
        sealed_health=sealed_health,
        resources=list(inp.resources),
        git_sha=request.git_sha,
        initiator=request.initiator,
    )


def redacted_health_spec(spec: HealthSpec) -> HealthSpec:
    """``spec`` with every part that may be secret replaced: header values, URL query strings, fragments and
    credentials (``redact_url``), and the expected body text."""
    checks = []
    for check in spec.checks:
        if isinstance(check, HttpCheck):
            check = check.model_copy(
                update={
                    "url": redact_url(check.url),
                    "headers": {name: "<redacted>" for name in check.headers},
                    "body_contains": None if check.body_contains is None else "<redacted>",
                }
            )
        checks.append(check)
    return spec.model_copy(update={"checks": checks})


def open_last_good(record: LastGoodDeployment, store: BlobStore, key_ring: Any) -> LastGoodDeployment:
    """The record as a rollback needs it: its sealed health checks opened (``BlobKeyMissingError`` without the
    key that sealed them)."""
    if record.sealed_health is None:
        return record
    health = HealthSpec.model_validate(open_json(store, record.sealed_health, key_ring))
    return record.model_copy(update={"health": health})


async def provide_rollback_parameters(
    client: Any,
    workflow_id: str,
    values: Mapping[str, Any],
    *,
    store: BlobStore,
    provided_by: str,
    key_ring: Any = None,
) -> RollbackParametersSignal:
    """Answer a rollback that waits for secure values: store them sealed (with ``key_ring``, else the store's local
    key) and signal their reference. ``values`` maps names to plain values."""
    entries = {name: {"value": value} for name, value in values.items()}
    ref = seal_json(store, entries, key_ring)  # without a key ring: the store's local key, never plaintext
    signal = RollbackParametersSignal(provided_by=provided_by, names=sorted(entries), secure_parameters=ref)
    await client.get_workflow_handle(workflow_id).signal(SIGNAL_ROLLBACK_PARAMETERS, signal)
    return signal


def rollback_summary(report: RollbackReport) -> str:
    """One line for the CLI: what the rollback did."""
    target = f"{report.target_workflow_id}'s deployment {report.target_deployment_name}"
    if report.state is RollbackState.ROLLED_BACK:
        return f"rolled back: redeployed {target} as ARM deployment {report.deployment_name}; it is healthy"
    if report.state is RollbackState.NOT_POSSIBLE:
        return f"rollback not possible: {report.note}"
    if report.failure is not None:
        failure = report.failure
        return f"rollback of {target} failed at {failure.stage.value}: {failure.code}: {failure.message}"
    return f"rollback of {target}: {report.state}"
