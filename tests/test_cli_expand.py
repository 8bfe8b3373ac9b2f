"""`starter.py expand`: what a user sees for a good template, a broken one, and a bad command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import starter
from client.exit_codes import ExitCode

TEMPLATE: dict[str, Any] = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {
        "prefix": {"type": "string"},
        "count": {"type": "int", "defaultValue": 1, "maxValue": 3},
        "adminPassword": {"type": "securestring"},
    },
    "resources": [
        {
            "type": "Microsoft.Storage/storageAccounts",
            "apiVersion": "2023-01-01",
            "name": "[format('{0}{1}', parameters('prefix'), copyIndex())]",
            "location": "[resourceGroup().location]",
            "copy": {"name": "stores", "count": "[parameters('count')]"},
            "properties": {"secret": "[parameters('adminPassword')]"},
        },
        {
            "type": "Microsoft.Web/sites",
            "apiVersion": "2022-09-01",
            "name": "[concat(parameters('prefix'), '-app')]",
            "location": "[resourceGroup().location]",
            "properties": {"blob": "[reference(concat(parameters('prefix'), '0')).primaryEndpoints.blob]"},
        },
    ],
    "outputs": {
        "firstId": {
            "type": "string",
            "value": "[resourceId('Microsoft.Storage/storageAccounts', concat(parameters('prefix'), '0'))]",
        },
        "blob": {"type": "string", "value": "[reference(concat(parameters('prefix'), '0')).primaryEndpoints.blob]"},
        "token": {"type": "securestring", "value": "[concat('tok-', parameters('prefix'))]"},
    },
}

SECRET = "S3cret-Passw0rd!"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    template = tmp_path / "main.json"
    template.write_text(json.dumps(TEMPLATE))
    params = tmp_path / "main.parameters.json"
    params.write_text(json.dumps({"parameters": {"prefix": {"value": "st"}, "adminPassword": {"value": SECRET}}}))
    return template, params


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = starter.main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    template, params = files
    code, out, err = run(
        [
            "expand",
            "-t",
            str(template),
            "-p",
            str(params),
            "--param",
            "count=2",
            "-g",
            "rg1",
            "-l",
            "West Europe",
            "--subscription",
            "22222222-2222-2222-2222-222222222222",
            "--output",
            "json",
        ],
        capsys,
    )
    assert code == ExitCode.OK, err
    report = json.loads(out)
    assert report["parameters"]["count"] == {"type": "int", "source": "override", "value": 2}
    assert report["parameters"]["adminPassword"]["value"] == "*****"
    assert SECRET not in out  # masked in the parameters and wherever the value landed
    base = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg1/providers"
    ids = [r["id"] for r in report["resources"]]
    assert ids == [
        f"{base}/Microsoft.Storage/storageAccounts/st0",
        f"{base}/Microsoft.Storage/storageAccounts/st1",
        f"{base}/Microsoft.Web/sites/st-app",
    ]
    assert report["resources"][0]["location"] == "westeurope"
    assert report["resources"][2]["dependsOn"] == [ids[0]]
    assert report["order"] == ids
    assert report["outputs"]["firstId"] == {"type": "string", "value": ids[0], "deferred": False}
    assert report["outputs"]["blob"]["deferred"] is True
    assert report["outputs"]["token"]["value"] == "*****" and "tok-st" not in out
    assert "reference" in report["outputs"]["blob"]["value"]["deferred"]


def test_text_output(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    template, params = files
    code, out, _ = run(["expand", "-t", str(template), "-p", str(params), "-g", "rg1"], capsys)
    assert code == ExitCode.OK
    assert "Deployment order:" in out and "st-app" in out and "(deferred)" in out
    assert SECRET not in out and "*****" in out


def test_text_output_shows_every_field_the_json_report_has(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/ENGINE.md: sku, kind, tags, identity (and zones, plan), copy and the nested-deployment path are printed
    when present — in text as in JSON, a secret that landed in a tag masked in both."""
    template = json.loads(json.dumps(TEMPLATE))
    store = template["resources"][0]
    store.update(
        sku={"name": "Standard_LRS"},
        kind="StorageV2",
        tags={"env": "dev", "pw": "[parameters('adminPassword')]"},
        identity={"type": "SystemAssigned"},
        zones=["1"],
    )
    path = tmp_path / "main.json"
    path.write_text(json.dumps(template))
    argv = ["expand", "-t", str(path), "--param", "prefix=st", "--param", f"adminPassword={SECRET}", "-g", "rg1"]
    code, text, err = run(argv, capsys)
    assert code == ExitCode.OK, err
    code, doc, err = run([*argv, "--output", "json"], capsys)
    assert code == ExitCode.OK, err
    first = json.loads(doc)["resources"][0]
    assert {"sku", "kind", "tags", "identity", "zones", "copy"} <= set(first)
    block = text.split("Resources (", 1)[1].split("Microsoft.Storage/storageAccounts 'st1'", 1)[0]
    assert 'sku:        {"name": "Standard_LRS"}' in block, block
    assert "kind:       StorageV2" in block
    assert 'tags:       {"env": "dev", "pw": "*****"}' in block
    assert 'identity:   {"type": "SystemAssigned"}' in block and 'zones:      ["1"]' in block
    assert "copy:       stores [0 of 1, parallel]" in block
    assert SECRET not in text and SECRET not in doc


def test_template_errors_exit_1_with_structured_errors(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    template, params = files
    code, out, _ = run(
        [
            "expand",
            "-t",
            str(template),
            "-p",
            str(params),
            "--param",
            "count=9",
            "--param",
            "colour=red",
            "-g",
            "rg1",
            "-o",
            "json",
        ],
        capsys,
    )
    assert code == ExitCode.LOGIC_FAILURE
    errors = json.loads(out)["errors"]
    assert {e["code"] for e in errors} == {"ParameterOutOfRange", "UnknownParameter"}
    code, _, err = run(["expand", "-t", str(template), "-g", "rg1"], capsys)
    assert code == ExitCode.LOGIC_FAILURE
    assert "MissingParameter" in err and "prefix" in err and "Traceback" not in err


def test_malformed_template_is_a_usage_error_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"resources": [,]}')
    code, _, err = run(["expand", "-t", str(bad), "-g", "rg1"], capsys)
    assert code == ExitCode.USAGE and "broken.json" in err and "line 1" in err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["expand", "-t", "{missing}", "-g", "rg1"], "does not exist"),
        (["expand", "-t", "{template}", "-g", "rg1", "--param", "noequals"], "--param 'noequals'"),
        (["expand", "-t", "{template}", "-g", "bad/name"], "-g/--resource-group"),
        (["expand", "-t", "{template}", "-g", "rg1", "-p", "{missing}"], "-p/--parameters"),
        (["expand", "-t", "{template}"], "-g/--resource-group"),
        (["expand", "-t", "{template}", "-g", "rg1", "--output", "yaml"], "--output"),
    ],
)
def test_bad_command_lines_exit_2(
    argv: list[str], fragment: str, files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template, _ = files
    argv = [a.format(missing=tmp_path / "absent.json", template=template) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == ExitCode.USAGE
    assert fragment in err and "Traceback" not in err + out


def test_param_values_are_json_when_they_parse(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    template, params = files
    code, out, _ = run(
        ["expand", "-t", str(template), "-p", str(params), "--param", "prefix=123", "-g", "rg1", "-o", "json"], capsys
    )
    # "123" parses as JSON (an int), which the string parameter rejects: the user sees a type error
    assert code == ExitCode.LOGIC_FAILURE and "ParameterTypeMismatch" in out
    code, out, _ = run(
        ["expand", "-t", str(template), "-p", str(params), "--param", 'prefix="123"', "-g", "rg1", "-o", "json"], capsys
    )
    assert code == ExitCode.OK and json.loads(out)["parameters"]["prefix"]["value"] == "123"


def test_errors_point_at_the_line_in_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = tmp_path / "main.json"
    template.write_text(
        '{\n  "resources": [\n    {\n      "type": "Microsoft.Storage/storageAccounts",\n'
        '      "name": "[variables(\'nope\')]"\n    }\n  ]\n}\n'
    )
    code, out, _ = run(["expand", "-t", str(template), "-g", "rg1", "-o", "json"], capsys)
    assert code == ExitCode.LOGIC_FAILURE
    (error,) = json.loads(out)["errors"]
    assert (error["code"], error["path"], error["line"], error["column"]) == (
        "UndeclaredVariable",
        "resources[0].name",
        5,
        15,
    )


def test_a_number_for_a_string_parameter_explains_the_json_rule(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    template, params = files
    code, _, err = run(["expand", "-t", str(template), "-p", str(params), "--param", "prefix=42", "-g", "rg1"], capsys)
    assert code == ExitCode.LOGIC_FAILURE
    assert "--param prefix" in err and "quote a string" in err
