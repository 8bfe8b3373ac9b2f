"""Reassembling a request's parameters inside an activity: the plain ones from the request, the secure values
from the content store. The result lives only in activity memory, never in a payload."""

from __future__ import annotations

from typing import Any

from contract.models import DeployRequest
from services.codec import KeyRing
from services.content_store import BlobStore, get_json, open_json
from services.secrets import secret_strings


def deployment_parameters(store: BlobStore, request: DeployRequest) -> dict[str, Any]:
    """ARM's ``properties.parameters``: ``{name: {"value": v} | {"reference": ...}}``, secure values included."""
    params: dict[str, Any] = dict(request.parameters)
    params.update(secure_parameters(store, request))
    return params


def secure_parameters(store: BlobStore, request: DeployRequest) -> dict[str, Any]:
    """The secure parameter entries (opened with the codec's key ring when the starter sealed them)."""
    if request.secure_parameters is None:
        return {}
    values = open_json(store, request.secure_parameters, KeyRing.from_environment())
    return dict(values) if isinstance(values, dict) else {}


def load_template(store: BlobStore, request: DeployRequest) -> dict[str, Any]:
    template = get_json(store, request.template)
    if not isinstance(template, dict):
        raise ValueError(f"the stored template {request.template.digest} is not a JSON object")
    return template


def secret_values(store: BlobStore, request: DeployRequest) -> list[str]:
    """Every string inside the secure parameter values (longest first), to scrub from anything an activity returns
    or raises: ARM and the engine may echo a value in an error message or a what-if delta."""
    if request.secure_parameters is None:
        return []
    entries = secure_parameters(store, request).values()
    return secret_strings(entry.get("value") if isinstance(entry, dict) else entry for entry in entries)


def template_and_parameters(store: BlobStore, request: DeployRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """The template and the parameters as ARM takes them, in one call an activity runs off the event loop (with a
    blob content store each read is a network round trip)."""
    return load_template(store, request), deployment_parameters(store, request)
