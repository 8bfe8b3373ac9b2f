"""Reassembling a request's parameters inside an activity: the plain ones from the request, the secure values
from the content store. The result lives only in activity memory, never in a payload."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel

from contract.models import DeployRequest
from services.codec import KeyRing
from services.content_store import BlobStore, get_json, open_json


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
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if len(value) >= 4:
                found.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif value is not None and not isinstance(value, bool):
            text = str(value)
            if len(text) >= 4:
                found.add(text)

    for entry in secure_parameters(store, request).values():
        walk(entry.get("value") if isinstance(entry, dict) else entry)
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


MASK = "*****"


ModelT = TypeVar("ModelT", bound=BaseModel)


def redact_model(model: ModelT, secrets: list[str]) -> ModelT:
    """The model with every secret value masked wherever it appears (compared in its JSON-escaped form)."""
    if not secrets:
        return model
    text = model.model_dump_json()
    changed = False
    for secret in secrets:
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
        if escaped in text:
            text = text.replace(escaped, MASK)
            changed = True
    return type(model).model_validate_json(text) if changed else model
