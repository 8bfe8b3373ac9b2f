"""`deploy --output json` is a stable interface (docs/OUTPUT.md): a schema version, and the page lists exactly the
fields the document has — at every level: the top level, and every nested object at every place it can appear
(walked from the result model's serialization schema, so a field added to any model fails here until documented)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from client.cli.deploy import RESULT_SCHEMA_VERSION, result_document
from contract.models import DeploymentStage, DeployOutcome, DeployResult

DOC = Path(__file__).resolve().parents[2] / "docs" / "OUTPUT.md"


def documented_top_level_fields() -> set[str]:
    text = DOC.read_text()
    section = text.split("## Top-level fields", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))


def documented_objects() -> dict[str, set[str]]:
    """Each ``### `path`, `path` `` section's table fields, under every path its heading names."""
    text = DOC.read_text()
    found: dict[str, set[str]] = {}
    for heading, body in re.findall(r"^### ([^\n]+)\n(.*?)(?=^#{2,3} |\Z)", text, flags=re.M | re.S):
        fields = set(re.findall(r"^\| `([a-z_]+)` \|", body, flags=re.M))
        for path in re.findall(r"`([a-z_.\[\]]+)`", heading):
            assert path not in found, f"{path} is documented twice"
            found[path] = fields
    return found


def printed_objects() -> dict[str, set[str]]:
    """Every object the document can hold, by path (``[]`` for array elements), with its fields."""
    schema = DeployResult.model_json_schema(mode="serialization")
    defs = schema.get("$defs", {})

    def refs(node: Any, array: bool = False) -> list[tuple[str, bool]]:
        if not isinstance(node, dict):
            return []
        out = [(node["$ref"].rsplit("/", 1)[-1], array)] if "$ref" in node else []
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                out += refs(sub, array)
        if "items" in node:
            out += refs(node["items"], True)
        return out

    objects: dict[str, set[str]] = {}

    def walk(node: dict[str, Any], path: str, seen: frozenset[str]) -> None:
        props = node.get("properties") or {}
        if not props:
            return  # an enum or a free-form object (outputs, counts): documented by its field's row
        if path:
            objects[path] = set(props)
        for name, prop in props.items():
            for ref, array in refs(prop):
                if ref not in seen:  # a recursive model (delta children) is the same table
                    walk(defs[ref], f"{path + '.' if path else ''}{name}{'[]' if array else ''}", seen | {ref})

    walk(schema, "", frozenset({"DeployResult"}))
    return objects


def test_the_document_has_a_schema_version() -> None:
    doc = result_document(DeployResult(workflow_id="w", deployment_name="d", outcome=DeployOutcome.SUCCEEDED,
                                       stage=DeploymentStage.COMPLETED))  # fmt: skip
    assert doc["schema_version"] == RESULT_SCHEMA_VERSION == 1
    assert doc["exit_code"] == 0 and doc["change_counts"] == {}


def test_every_field_is_documented_and_every_documented_field_is_printed() -> None:
    doc = result_document(DeployResult(workflow_id="w", deployment_name="d", outcome=DeployOutcome.LOGIC_FAILURE,
                                       stage=DeploymentStage.FAILED))  # fmt: skip
    documented = documented_top_level_fields()
    assert set(doc) - documented == set(), "printed but not in docs/OUTPUT.md"
    assert documented - set(doc) == set(), "documented but not printed"


def test_every_nested_field_is_documented_and_every_documented_one_is_printed() -> None:
    printed = printed_objects()
    documented = documented_objects()
    assert {"plan", "plan.request_retries[]", "failure", "rollback.health_checks.checks[]"} <= set(printed)
    assert set(printed) - set(documented) == set(), "objects printed but without a table in docs/OUTPUT.md"
    assert set(documented) - set(printed) == set(), "tables in docs/OUTPUT.md for objects never printed"
    for path, fields in printed.items():
        assert fields - documented[path] == set(), f"{path}: printed but not in docs/OUTPUT.md"
        assert documented[path] - fields == set(), f"{path}: documented but not printed"
