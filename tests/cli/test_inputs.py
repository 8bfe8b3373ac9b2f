"""Reading the user's files and flags: every mistake is one clear paragraph naming the input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from client.inputs import (
    InputError,
    load_parameters_file,
    load_template,
    parse_param_override,
    read_deployment_inputs,
    validate_location,
    validate_resource_group_name,
)

TEMPLATE = {"$schema": "x", "contentVersion": "1.0.0.0", "parameters": {}, "resources": []}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_template_names_the_path_and_flag(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        load_template(tmp_path / "nope.json")
    msg = str(exc.value)
    assert "nope.json" in msg and "-t/--template" in msg and "does not exist" in msg


def test_directory_instead_of_template(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        load_template(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of mode bits")
def test_unreadable_parameters_file(tmp_path: Path) -> None:
    p = write(tmp_path / "p.json", '{"parameters": {}}')
    p.chmod(0)
    try:
        with pytest.raises(InputError, match="cannot be read"):
            load_parameters_file(p)
    finally:
        p.chmod(0o600)


def test_read_error_is_reported_without_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path / "p.json", '{"parameters": {}}')

    real_open = os.open

    def refuse(path, *args, **kwargs):  # what the kernel answers a user who may not read the file
        if str(path) == str(p):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(InputError) as exc:
        load_parameters_file(p)
    assert "permission denied" in str(exc.value) and "p.json" in str(exc.value)


def test_bad_json_reports_line_and_column(tmp_path: Path) -> None:
    p = write(tmp_path / "t.json", '{\n  "resources": [],\n  "x": 1,\n}\n')
    with pytest.raises(InputError) as exc:
        load_template(p)
    assert "line 4, column 1" in str(exc.value)
    assert "t.json" in str(exc.value)


def test_comments_are_allowed_and_positions_survive(tmp_path: Path) -> None:
    good = write(tmp_path / "c.json", '// head\n{ /* block\n */ "resources": [], "s": "a//b"}\n')
    assert load_template(good)["s"] == "a//b"
    bad = write(tmp_path / "d.json", '// head\n{ "resources": [] "x": 1}\n')
    with pytest.raises(InputError, match="line 2"):
        load_template(bad)


def test_template_must_be_an_arm_template(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="an array"):
        load_template(write(tmp_path / "a.json", "[]"))
    with pytest.raises(InputError, match="no 'resources'"):
        load_template(write(tmp_path / "b.json", '{"parameters": {}}'))
    with pytest.raises(InputError, match="az bicep build"):
        load_template(write(tmp_path / "main.bicep", "param x string"))


def test_parameters_file_both_shapes(tmp_path: Path) -> None:
    full = write(tmp_path / "full.json", json.dumps({"contentVersion": "1.0.0.0", "parameters": {"a": {"value": 1}}}))
    bare = write(tmp_path / "bare.json", json.dumps({"$schema": "s", "a": {"value": 1}}))
    assert load_parameters_file(full) == {"a": {"value": 1}}
    assert load_parameters_file(bare) == {"a": {"value": 1}}


def test_parameters_file_entry_without_value(tmp_path: Path) -> None:
    p = write(tmp_path / "p.json", json.dumps({"parameters": {"sku": "Standard_LRS"}}))
    with pytest.raises(InputError) as exc:
        load_parameters_file(p)
    assert "'sku'" in str(exc.value) and '"value"' in str(exc.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("count=3", ("count", 3)),
        ("flag=true", ("flag", True)),
        ("name=web01", ("name", "web01")),
        ('tags={"env":"dev"}', ("tags", {"env": "dev"})),
        ("list=[1,2]", ("list", [1, 2])),
        ("empty=", ("empty", "")),
        ('quoted="3"', ("quoted", "3")),
        ("conn=a=b;c=d", ("conn", "a=b;c=d")),
    ],
)
def test_param_value_is_json_when_it_parses(text: str, expected: tuple[str, object]) -> None:
    assert parse_param_override(text) == expected


def test_param_without_equals_is_a_usage_error() -> None:
    with pytest.raises(InputError) as exc:
        parse_param_override("sku")
    assert "--param 'sku'" in str(exc.value) and "NAME=VALUE" in str(exc.value)
    with pytest.raises(InputError, match="nothing before"):
        parse_param_override("=3")


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    t = write(tmp_path / "t.json", json.dumps(TEMPLATE))
    p = write(tmp_path / "p.json", json.dumps({"parameters": {"a": {"value": 1}, "b": {"value": 2}}}))
    inputs = read_deployment_inputs(template=str(t), parameters=str(p), overrides=["b=20", "c=x"])
    assert inputs.parameter_values() == {"a": 1, "b": 20, "c": "x"}


@pytest.mark.parametrize("name", ["rg", "my-rg_1.(test)", "Gruppe-Ä", "a" * 90])
def test_valid_resource_group_names(name: str) -> None:
    assert validate_resource_group_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("", "empty"), ("a" * 91, "at most 90"), ("my rg", "' '"), ("rg/1", "'/'"), ("rg.", "ends with '.'")],
)
def test_invalid_resource_group_names(name: str, fragment: str) -> None:
    with pytest.raises(InputError) as exc:
        validate_resource_group_name(name)
    assert fragment in str(exc.value) and "-g/--resource-group" in str(exc.value)


def test_locations_normalize_like_arm() -> None:
    assert validate_location("East US") == "eastus"
    assert validate_location("westeurope") == "westeurope"


def test_unknown_location_suggests_the_nearest() -> None:
    with pytest.raises(InputError) as exc:
        validate_location("eastuss")
    assert "Did you mean 'eastus" in str(exc.value) and "-l/--location" in str(exc.value)
    with pytest.raises(InputError, match="letters and digits"):
        validate_location("east-us")
