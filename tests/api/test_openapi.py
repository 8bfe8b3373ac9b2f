"""The OpenAPI document checked into docs/ is the one the service serves: changing a route or a body without
regenerating it (``python -m api.openapi > docs/openapi.json``) fails here. (That the running service serves this
document at /openapi.json is checked by the end-to-end tests.)"""

from __future__ import annotations

from pathlib import Path

from api.openapi import document, text

CHECKED_IN = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_checked_in_document_matches_the_routes() -> None:
    assert CHECKED_IN.read_text(encoding="utf-8") == text(), (
        "docs/openapi.json is out of date: run `python -m api.openapi > docs/openapi.json`"
    )


def test_every_route_of_the_brief_is_documented_with_problem_details() -> None:
    doc = document()
    expected = {
        ("post", "/deployments"), ("get", "/deployments"), ("get", "/deployments/{deployment_id}"),
        ("get", "/deployments/{deployment_id}/plan"), ("get", "/deployments/{deployment_id}/audit"),
        ("get", "/deployments/{deployment_id}/events"), ("post", "/deployments/{deployment_id}/approvals"),
        ("post", "/deployments/{deployment_id}/rejections"), ("post", "/deployments/{deployment_id}/cancel"),
        ("get", "/healthz"),
    }  # fmt: skip
    found = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert expected <= found
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert "application/problem+json" in op["responses"]["default"]["content"], path
