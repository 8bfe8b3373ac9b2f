"""Reassembling a request's parameters inside an activity: the plain ones from the request, the secure values
from the content store. The result lives only in activity memory, never in a payload."""

from __future__ import annotations

from typing import Any

from orchestrator.blobstore import BlobStore, get_json
from orchestrator.models import DeployRequest


def deployment_parameters(store: BlobStore, request: DeployRequest) -> dict[str, Any]:
    """ARM's ``properties.parameters``: ``{name: {"value": v} | {"reference": ...}}``, secure values included."""
    params: dict[str, Any] = dict(request.parameters)
    if request.secure_parameters is not None:
        params.update(get_json(store, request.secure_parameters))
    return params


def load_template(store: BlobStore, request: DeployRequest) -> dict[str, Any]:
    template = get_json(store, request.template)
    if not isinstance(template, dict):
        raise ValueError(f"the stored template {request.template.digest} is not a JSON object")
    return template
