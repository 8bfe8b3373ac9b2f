"""Mistakes in an ARM JSON template that ARM itself rejects, caught on this machine by `lint` and `deploy` (the CLI
in-process, nothing started): a property named twice in one object (Python's json keeps the last one silently),
and the engine's checks (unknown functions, undeclared variables) when `lint` has no parameters file but every
parameter has a default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client.cli import main
from client.exit_codes import ExitCode

DUPLICATED = """{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "resources": [
    {
      "type": "Microsoft.Storage/storageAccounts",
      "apiVersion": "2023-05-01",
      "name": "stdup0001",
      "location": "eastus",
      "sku": {"name": "Standard_LRS"},
      "kind": "StorageV2",
      "name": "stdup0002"
    }
  ]
}
"""


def test_lint_refuses_a_property_named_twice_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = tmp_path / "dup.json"
    template.write_text(DUPLICATED)
    assert main(["lint", "-t", str(template)]) == ExitCode.LOGIC_FAILURE
    out = capsys.readouterr().out
    assert f"{template}(12,7) : Error DuplicateProperty: the property 'name' is named twice in one object" in out


def test_deploy_refuses_a_property_named_twice_before_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "no-stack-here"))
    template = tmp_path / "dup.json"
    template.write_text(DUPLICATED)
    code = main(["deploy", "--local", "-g", "rg-dup", "-l", "eastus", "-t", str(template)])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE, err
    assert "names the property 'name' twice in one object (line 12, column 7)" in err and "Traceback" not in err


def test_lint_without_parameters_runs_the_engine_when_every_parameter_has_a_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"prefix": {"type": "string", "defaultValue": "st"}},
        "resources": [
            {
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-05-01",
                "name": "[concat(parameters('prefix'), variables('suffix'))]",
                "location": "[resourceGroup().location]",
                "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
            }
        ],
    }
    path = tmp_path / "defaults.json"
    path.write_text(json.dumps(template, indent=2))
    assert main(["lint", "-t", str(path)]) == ExitCode.LOGIC_FAILURE
    out = capsys.readouterr().out
    assert "suffix" in out and "Error" in out, out
