"""`deploy --output json` is a stable interface (docs/OUTPUT.md): a schema version, and the page lists exactly the
top-level fields the document has."""

from __future__ import annotations

import re
from pathlib import Path

from client.cli.deploy import RESULT_SCHEMA_VERSION, result_document
from contract.models import DeploymentStage, DeployOutcome, DeployResult

DOC = Path(__file__).resolve().parents[2] / "docs" / "OUTPUT.md"


def documented_top_level_fields() -> set[str]:
    text = DOC.read_text()
    section = text.split("## Top-level fields", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))


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
