"""Parameter validation: the shapes users hand in, defaults, types, constraints, user-defined types — and every
problem reported at once, naming the parameter and the file, never a secret."""

from __future__ import annotations

from typing import Any

import pytest

from arm_engine import Deferred, IssueCode, TemplateError
from tests.support.engine_templates import expand, expand_error, template


def params_template(**declared: Any) -> dict[str, Any]:
    outputs = {name: {"type": "object", "value": f"[createObject('v', parameters('{name}'))]"} for name in declared}
    return template([], parameters=declared, outputs=outputs)


def values(result: Any) -> dict[str, Any]:
    return {name: p.value for name, p in result.parameters.items()}


class TestShapes:
    DOC = params_template(a={"type": "string"}, b={"type": "int", "defaultValue": 3})

    @pytest.mark.parametrize(
        "given",
        [
            {"$schema": "x", "contentVersion": "1.0.0.0", "parameters": {"a": {"value": "x"}}},
            {"parameters": {"a": {"value": "x"}}},
            {"a": {"value": "x"}},
            {"a": "x"},
            '{"$schema": "x", "contentVersion": "1.0.0.0", "parameters": {"a": {"value": "x"}}}',
        ],
    )
    def test_accepted_shapes(self, given: Any) -> None:
        result = expand(self.DOC, parameters=given)
        assert values(result) == {"a": "x", "b": 3}
        assert result.parameters["a"].source == "file" and result.parameters["b"].source == "default"

    def test_overrides_win_and_names_are_case_insensitive(self) -> None:
        result = expand(self.DOC, parameters={"A": {"value": "file"}}, overrides={"a": "cli", "B": 7})
        assert values(result) == {"a": "cli", "b": 7}
        assert result.parameters["a"].source == "override"

    def test_malformed_parameters_text(self) -> None:
        issue = expand_error(self.DOC, parameters='{"parameters": ', parameters_source="p.json").first
        assert issue.code == IssueCode.INVALID_JSON and issue.source == "p.json"

    def test_null_value_takes_the_default(self) -> None:
        assert values(expand(self.DOC, parameters={"a": "x", "b": None}))["b"] == 3


class TestErrorsAreCollected:
    def test_missing_unknown_and_mistyped_together(self) -> None:
        doc = params_template(
            required={"type": "string"}, count={"type": "int"}, ok={"type": "bool", "defaultValue": True}
        )
        exc = expand_error(
            doc,
            parameters={"count": {"value": "three"}, "extra": {"value": 1}},
            parameters_source="dev.parameters.json",
            template_source="main.json",
        )
        codes = {i.code: i for i in exc.issues}
        assert set(codes) == {IssueCode.MISSING_PARAMETER, IssueCode.PARAMETER_TYPE, IssueCode.UNKNOWN_PARAMETER}
        assert "required" in codes[IssueCode.MISSING_PARAMETER].message
        assert codes[IssueCode.MISSING_PARAMETER].source == "main.json"
        assert codes[IssueCode.PARAMETER_TYPE].path == "parameters.count"
        assert codes[IssueCode.PARAMETER_TYPE].source == "dev.parameters.json"
        unknown = codes[IssueCode.UNKNOWN_PARAMETER]
        assert "extra" in unknown.message and "dev.parameters.json" in unknown.message

    def test_parameters_file_for_another_template(self) -> None:
        doc = params_template(siteName={"type": "string"}, sku={"type": "string", "defaultValue": "F1"})
        exc = expand_error(
            doc,
            parameters={"vmName": {"value": "a"}, "adminPassword": {"value": "b"}, "vnet": {"value": "c"}},
            parameters_source="vm.parameters.json",
        )
        assert len(exc.issues) == 1
        issue = exc.first
        assert issue.code == IssueCode.PARAMETERS_FILE and issue.source == "vm.parameters.json"
        assert "another template" in issue.message

    def test_one_typo_is_an_unknown_parameter_not_a_wrong_file(self) -> None:
        doc = params_template(siteName={"type": "string"}, sku={"type": "string", "defaultValue": "F1"})
        exc = expand_error(doc, parameters={"siteName": {"value": "a"}, "skuu": {"value": "b"}})
        assert [i.code for i in exc.issues] == [IssueCode.UNKNOWN_PARAMETER]
        assert "Did you mean 'sku'?" in exc.first.message


class TestConstraints:
    @pytest.mark.parametrize(
        ("decl", "value", "code"),
        [
            (
                {"type": "string", "allowedValues": ["Standard_LRS", "Premium_LRS"]},
                "Basic",
                IssueCode.PARAMETER_NOT_ALLOWED_VALUE,
            ),
            ({"type": "array", "allowedValues": ["a", "b"]}, ["a", "c"], IssueCode.PARAMETER_NOT_ALLOWED_VALUE),
            ({"type": "int", "minValue": 1, "maxValue": 5}, 0, IssueCode.PARAMETER_OUT_OF_RANGE),
            ({"type": "int", "minValue": 1, "maxValue": 5}, 6, IssueCode.PARAMETER_OUT_OF_RANGE),
            ({"type": "string", "minLength": 3}, "ab", IssueCode.PARAMETER_OUT_OF_RANGE),
            ({"type": "array", "maxLength": 1}, [1, 2], IssueCode.PARAMETER_OUT_OF_RANGE),
            ({"type": "int"}, True, IssueCode.PARAMETER_TYPE),
            ({"type": "bool"}, "true", IssueCode.PARAMETER_TYPE),
            ({"type": "object"}, [], IssueCode.PARAMETER_TYPE),
            ({"type": "array"}, {}, IssueCode.PARAMETER_TYPE),
            ({"type": "string"}, None, IssueCode.PARAMETER_TYPE),
        ],
    )
    def test_violations(self, decl: dict[str, Any], value: Any, code: str) -> None:
        issue = expand_error(params_template(p=decl), parameters={"p": {"value": value}}).first
        assert issue.code == code and "'p'" in issue.message

    @pytest.mark.parametrize(
        ("decl", "value"),
        [
            ({"type": "String", "allowedValues": ["Standard_LRS"]}, "standard_lrs"),  # types and values: any case
            ({"type": "int", "minValue": 1, "maxValue": 5}, 5),
            ({"type": "array", "allowedValues": ["a", "b"]}, ["b", "a"]),
            ({"type": "string", "nullable": True}, None),
            ({"type": "object"}, {}),
            ({"type": "array"}, []),
        ],
    )
    def test_accepted(self, decl: dict[str, Any], value: Any) -> None:
        assert values(expand(params_template(p=decl), parameters={"p": {"value": value}}))["p"] == value

    def test_nullable_without_value_is_null(self) -> None:
        assert values(expand(params_template(p={"type": "object", "nullable": True})))["p"] is None

    def test_secure_values_never_appear_in_messages(self) -> None:
        doc = params_template(pw={"type": "securestring", "minLength": 30, "allowedValues": ["x" * 30]})
        exc = expand_error(doc, parameters={"pw": {"value": "hunter2-secret"}})
        assert all("hunter2" not in str(i) for i in exc.issues)
        result = expand(params_template(pw={"type": "secureString"}), parameters={"pw": "hunter2-secret"})
        assert result.parameters["pw"].secure and result.parameters["pw"].display_value() == "*****"


class TestDefaults:
    def test_expression_defaults_reading_other_parameters_and_scope(self) -> None:
        doc = params_template(
            suffix={"type": "string", "defaultValue": "[uniqueString(resourceGroup().id)]"},
            name={"type": "string", "defaultValue": "[format('st{0}', parameters('suffix'))]"},
            location={"type": "string", "defaultValue": "[resourceGroup().location]"},
        )
        got = values(expand(doc))
        assert got["name"] == "st" + got["suffix"] and len(got["suffix"]) == 13
        assert got["location"] == "westeurope"

    def test_default_may_not_use_variables_or_reference(self) -> None:
        doc = params_template(p={"type": "string", "defaultValue": "[variables('v')]"})
        doc["variables"] = {"v": "x"}
        issue = expand_error(doc).first
        assert issue.code == IssueCode.FUNCTION_NOT_ALLOWED and issue.path == "parameters.p.defaultValue"

    def test_default_cycle(self) -> None:
        doc = params_template(
            a={"type": "string", "defaultValue": "[parameters('b')]"},
            b={"type": "string", "defaultValue": "[parameters('a')]"},
        )
        assert expand_error(doc).first.code == IssueCode.INVALID_TEMPLATE

    def test_a_default_of_the_wrong_type(self) -> None:
        issue = expand_error(params_template(n={"type": "int", "defaultValue": "five"})).first
        assert issue.code == IssueCode.PARAMETER_TYPE and issue.path == "parameters.n.defaultValue"


class TestKeyVaultReference:
    def test_reference_passes_through_unresolved(self) -> None:
        doc = params_template(pw={"type": "securestring"})
        ref = {
            "keyVault": {"id": "/subscriptions/x/resourceGroups/y/providers/Microsoft.KeyVault/vaults/kv"},
            "secretName": "pw",
        }
        result = expand(doc, parameters={"parameters": {"pw": {"reference": ref}}})
        assert result.parameters["pw"].source == "reference" and result.parameters["pw"].value == ref
        assert isinstance(result.outputs["pw"].value, Deferred) or isinstance(result.outputs["pw"].value["v"], Deferred)


class TestUserDefinedTypes:
    DOC = template(
        [],
        definitions={
            "subnet": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "prefix": {"type": "string"},
                    "delegation": {"type": "string", "nullable": True},
                },
                "additionalProperties": False,
            },
            "subnets": {"type": "array", "items": {"$ref": "#/definitions/subnet"}},
            "tier": {"type": "string", "allowedValues": ["Basic", "Premium"]},
        },
        parameters={
            "subnets": {"$ref": "#/definitions/subnets"},
            "tiers": {"type": "object", "additionalProperties": {"$ref": "#/definitions/tier"}, "defaultValue": {}},
        },
    )

    def test_valid_value(self) -> None:
        subnets = [{"name": "a", "prefix": "10.0.0.0/24"}, {"name": "b", "prefix": "10.0.1.0/24", "delegation": "x"}]
        result = expand(self.DOC, parameters={"subnets": subnets, "tiers": {"web": "Premium"}})
        assert result.parameters["subnets"].value == subnets and result.parameters["subnets"].type == "array"

    @pytest.mark.parametrize(
        ("given", "fragment"),
        [
            ({"subnets": [{"name": "a"}]}, "prefix"),
            ({"subnets": [{"name": "a", "prefix": "p", "colour": "red"}]}, "colour"),
            ({"subnets": [{"name": "", "prefix": "p"}]}, "[0].name"),
            ({"subnets": [{"name": "a", "prefix": 1}]}, "[0].prefix"),
            ({"subnets": [], "tiers": {"web": "Gold"}}, "Gold"),
        ],
    )
    def test_invalid_values_name_the_property(self, given: dict[str, Any], fragment: str) -> None:
        exc = expand_error(self.DOC, parameters=given)
        assert isinstance(exc, TemplateError)
        assert any(fragment in i.message for i in exc.issues), [str(i) for i in exc.issues]

    def test_dangling_ref(self) -> None:
        doc = template([], parameters={"p": {"$ref": "#/definitions/nothing"}})
        assert expand_error(doc, parameters={"p": 1}).first.code == IssueCode.INVALID_TEMPLATE
