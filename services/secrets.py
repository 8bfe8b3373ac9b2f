"""Secret handling in one place: the mask, collecting the strings a secret value holds, redacting them from text and
models, and storing secure values sealed in the content store.

Every path that may echo a secure value (an ARM error message, a what-if delta, a CLI error) goes through
``redact``/``redact_model`` with the strings ``secret_strings`` collected; secure values at rest go through
``store_secure``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from arm_engine.model import SECRET_MASK
from services.codec import KeyRing
from services.content_store import BlobRef, BlobStore, seal_json

MASK = SECRET_MASK  # what a masked value reads as everywhere: the engine, the CLI, history and the audit
SECURE_TYPES = frozenset({"securestring", "secureobject"})  # parameter and output types ARM never echoes
MIN_SECRET_LENGTH = 4  # shorter strings are too common to mask inside other text ("true", "1")


def secret_strings(values: Iterable[object], *, min_length: int = MIN_SECRET_LENGTH) -> list[str]:
    """Every string (at least ``min_length`` characters) inside secret values, longest first: what ``redact``
    masks. Non-string scalars are collected as text and in their JSON form."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, str):
            if len(value) >= min_length:
                found.add(value)
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)
        elif value is not None and not isinstance(value, bool):
            text = str(value)
            if len(text) >= min_length:
                found.add(text)
                found.add(json.dumps(value))

    for value in values:
        walk(value)
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and its JSON-escaped form) replaced by the mask."""
    for secret in secrets:
        for form in {secret, json.dumps(secret, ensure_ascii=False)[1:-1]}:
            if form and form in text:
                text = text.replace(form, MASK)
    return text


ModelT = TypeVar("ModelT", bound=BaseModel)


def redact_model(model: ModelT, secrets: list[str]) -> ModelT:
    """The model with every secret value masked wherever it appears (compared in its JSON-escaped form)."""
    if not secrets:
        return model
    text = model.model_dump_json()
    redacted = text
    for secret in secrets:  # only the JSON-escaped form: a raw form could cut an escape sequence in half
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
        if escaped in redacted:
            redacted = redacted.replace(escaped, MASK)
    return type(model).model_validate_json(redacted) if redacted != text else model


def store_secure(store: BlobStore, values: Mapping[str, Any]) -> BlobRef:
    """Secure values go to the content store sealed: with the codec's key ring when one is configured, else with
    the store's local key. Never in plaintext, and never under a digest of the plaintext (which history would
    carry, open to a dictionary attack)."""
    return seal_json(store, dict(values), KeyRing.from_environment())


def secure_parameter_names(template: Mapping[str, Any]) -> set[str]:
    """Lower-cased names of the template's securestring/secureObject parameters."""
    declared = template.get("parameters") or {}
    if not isinstance(declared, Mapping):
        return set()
    return {
        str(name).lower()
        for name, decl in declared.items()
        if isinstance(decl, Mapping) and str(decl.get("type", "")).lower() in SECURE_TYPES
    }
