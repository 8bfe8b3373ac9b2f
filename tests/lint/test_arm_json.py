"""Our own static checks of ARM JSON templates, in the same diagnostic form as the compiler's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.lint import MAX_TEMPLATE_BYTES, DiagnosticLevel, lint_template

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


def _write(tmp_path: Path, text: str, name: str = "azuredeploy.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _template(**sections: object) -> dict:
    return {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "resources": [], **sections}


def test_every_public_corpus_template_passes_the_static_checks(no_compiler: None, quickstarts: Path) -> None:
    failures = {}
    for path in sorted(quickstarts.glob("*/azuredeploy.json")):
        result = lint_template(path)
        if result.error_count:
            failures[path.parent.name] = result.render()
    assert not failures, "\n".join(failures.values())


def test_json_syntax_error_has_line_and_column(no_compiler: None, tmp_path: Path) -> None:
    path = _write(tmp_path, '{\n  "$schema": "x",\n  "resources": [\n    { "type": "a" },\n  ]\n}\n')
    result = lint_template(path)
    assert not result.passed
    [error] = result.errors()
    assert (error.file, error.line, error.col, error.code) == (str(path), 5, 3, "InvalidJson")
    assert result.template is None


def test_comments_are_allowed_and_positions_survive_them(no_compiler: None, tmp_path: Path) -> None:
    text = (
        "// a comment\n{\n  /* block\n  comment */\n"
        f'  "$schema": "{SCHEMA}",\n  "contentVersion": "1.0.0.0",\n'
        '  "resources": [ { "type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01",'
        ' "name": "[concat(\'a\']" } ]\n}\n'
    )
    result = lint_template(_write(tmp_path, text))
    [error] = result.errors()
    assert error.code == "ExpressionSyntaxError"
    assert error.line == 7  # the "name" value, after both comments
    assert "resources[0].name" in error.message


def test_template_shape(no_compiler: None, tmp_path: Path) -> None:
    doc = {
        "$schema": SCHEMA,
        "contentVersion": "1.0",
        "parameters": {"sku": {"type": "text"}, "n": {"defaultValue": 1}},
        "resources": [{"type": "Microsoft.Network/virtualNetworks", "name": "v"}],
        "outputs": {"o": {"value": 1}},
        "resourcez": [],
    }
    path = _write(tmp_path, json.dumps(doc, indent=2))
    result = lint_template(path)
    messages = "\n".join(d.render() for d in result.errors())
    assert "'resourcez' is not a template section" in messages
    assert "'contentVersion' must look like 1.0.0.0" in messages
    assert "parameter 'sku' has type 'text'" in messages
    assert "parameter 'n' has no 'type'" in messages
    assert "lacks 'apiVersion'" in messages
    assert "output 'o' has no 'type'" in messages
    assert all(d.line is not None and d.line > 1 for d in result.errors())
    assert not result.passed


def test_missing_resources_is_an_error(no_compiler: None, tmp_path: Path) -> None:
    result = lint_template(_write(tmp_path, json.dumps({"$schema": SCHEMA, "contentVersion": "1.0.0.0"})))
    assert [d.message for d in result.errors()] == ["required property 'resources' is missing"]


def test_engine_finds_dependency_cycles(no_compiler: None, tmp_path: Path) -> None:
    import arm_engine

    if not hasattr(arm_engine, "expand_template"):
        pytest.skip("arm_engine.expand_template is not built yet; cycles are the engine's check")
    res = {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "location": "eastus"}
    doc = _template(
        resources=[
            {**res, "name": "a", "dependsOn": ["[resourceId('Microsoft.Storage/storageAccounts', 'b')]"]},
            {**res, "name": "b", "dependsOn": ["[resourceId('Microsoft.Storage/storageAccounts', 'a')]"]},
        ]
    )
    result = lint_template(_write(tmp_path, json.dumps(doc, indent=2)), parameters={})
    assert [d.code for d in result.errors()] == ["CircularDependency"]


def test_over_four_megabytes_is_a_logic_failure(no_compiler: None, tmp_path: Path) -> None:
    big = "x" * (MAX_TEMPLATE_BYTES + 1)
    doc = _template(variables={"blob": big})
    result = lint_template(_write(tmp_path, json.dumps(doc)))
    assert not result.passed
    [error] = result.errors()
    assert error.code == "TemplateTooLarge"
    assert "4 MB" in error.message and f"{result.template_size:,}" in error.message
    assert result.template_size is not None and result.template_size > MAX_TEMPLATE_BYTES


def test_just_under_four_megabytes_passes(no_compiler: None, tmp_path: Path) -> None:
    empty = len(json.dumps(_template(variables={"blob": ""}), separators=(",", ":")).encode())
    doc = _template(variables={"blob": "x" * (MAX_TEMPLATE_BYTES - empty)})
    result = lint_template(_write(tmp_path, json.dumps(doc)))
    assert result.template_size == MAX_TEMPLATE_BYTES
    assert result.passed, result.render()


def test_warnings_do_not_exist_for_arm_json_so_allow_warnings_changes_nothing(
    no_compiler: None, tmp_path: Path
) -> None:
    path = _write(tmp_path, json.dumps(_template()))
    assert lint_template(path).passed and lint_template(path, allow_warnings=True).passed
    assert all(d.level != DiagnosticLevel.WARNING for d in lint_template(path).diagnostics)
