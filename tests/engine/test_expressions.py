"""The expression language: parsing, escapes, property access, errors with paths, Deferred propagation,
evaluate_value recursion and expression_references."""

from __future__ import annotations

from typing import Any

import pytest

from arm_engine.errors import IssueCode, TemplateError
from arm_engine.evaluator import (
    UNKNOWN,
    evaluate_string,
    evaluate_value,
    expression_references,
    is_expression,
    parse_expression,
)
from arm_engine.expressions import Call, Index, Literal, Property
from arm_engine.values import Deferred
from tests.support.expressions import SimpleContext, ev


def error_of(text: str, ctx: SimpleContext | None = None, path: str = "resources[0].name") -> Any:
    with pytest.raises(TemplateError) as info:
        evaluate_string(text, ctx or SimpleContext(), path)
    return info.value.first


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[a()]", True), ("[[a()]", False), ("plain", False), ("[", False), ("]", False), ("", False), ("[x", False)],
)
def test_is_expression(text: str, expected: bool) -> None:
    assert is_expression(text) is expected


def test_parse_builds_calls_properties_and_indexes() -> None:
    expr = parse_expression("[concat('a', parameters('p').x[0])]")
    assert isinstance(expr, Call) and expr.name == "concat"
    assert expr.args[0] == Literal("a")
    index = expr.args[1]
    assert isinstance(index, Index) and index.index == Literal(0)
    assert isinstance(index.target, Property) and index.target.name == "x"


def test_parse_is_cached() -> None:
    assert parse_expression("[concat('x', 'y')]") is parse_expression("[concat('x', 'y')]")


def test_doubled_quote_escapes_a_quote() -> None:
    assert ev("[concat('it''s', '''')]") == "it's'"


def test_double_bracket_is_a_literal() -> None:
    assert ev("[[concat('a')]") == "[concat('a')]"
    assert ev("[[") == "[["
    assert ev("plain text") == "plain text"
    assert ev("[] not an expression") == "[] not an expression"


def test_whitespace_and_case_insensitive_function_names() -> None:
    assert ev("[ CONCAT ( 'a' ,  'b' ) ]") == "ab"
    assert ev("[toUpper('a')]") == ev("[TOUPPER('a')]") == "A"


def test_negative_integer_literal_and_bare_literals() -> None:
    assert ev("[add(-3, 1)]") == -2
    assert ev("[if(true, 1, 2)]") == 1
    assert ev("[coalesce(null, 'x')]") == "x"


def test_property_access_is_case_insensitive() -> None:
    ctx = SimpleContext(parameters={"Settings": {"SiteConfig": {"AppSettings": [{"Name": "a"}]}}})
    assert ev("[parameters('settings').siteconfig.appSettings[0].name]", ctx) == "a"
    assert ev("[parameters('settings')['SITECONFIG']['appsettings'][0]['NAME']]", ctx) == "a"


def test_exact_key_wins_over_case_insensitive_match() -> None:
    ctx = SimpleContext(parameters={"o": {"a": 1, "A": 2}})
    assert ev("[parameters('o').A]", ctx) == 2
    assert ev("[parameters('o').a]", ctx) == 1


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[concat('a']", IssueCode.EXPRESSION_SYNTAX),
        ("[concat('a)]", IssueCode.EXPRESSION_SYNTAX),
        ("[concat('a') extra]", IssueCode.EXPRESSION_SYNTAX),
        ("[]", IssueCode.EXPRESSION_SYNTAX),
        ("[foo]", IssueCode.EXPRESSION_SYNTAX),
        ("[a.]", IssueCode.EXPRESSION_SYNTAX),
        ("[9223372036854775808]", IssueCode.EXPRESSION_SYNTAX),
        ("[noSuchFunction(1)]", IssueCode.UNKNOWN_FUNCTION),
        ("[concat('a')[5]]", IssueCode.TYPE_ERROR),
        ("[createArray(1)[5]]", IssueCode.INDEX_OUT_OF_RANGE),
        ("[createArray(1)[-1]]", IssueCode.INDEX_OUT_OF_RANGE),
        ("[createObject('a', 1).b]", IssueCode.MISSING_PROPERTY),
        ("[null().b]", IssueCode.MISSING_PROPERTY),
        ("[not(1)]", IssueCode.TYPE_ERROR),
        ("[equals(1)]", IssueCode.WRONG_ARITY),
        ("[if(true, 1)]", IssueCode.WRONG_ARITY),
        ("[ns.fn()]", IssueCode.UNKNOWN_FUNCTION),
        ("[lambda('x', 1)]", IssueCode.TYPE_ERROR),
        ("[lambdaVariables('x')]", IssueCode.INVALID_VALUE),
    ],
)
def test_errors_carry_code_path_and_expression(text: str, code: str) -> None:
    issue = error_of(text)
    assert issue.code == code, issue
    assert issue.path == "resources[0].name"
    assert issue.details.get("expression") == text


def test_unknown_function_is_named() -> None:
    issue = error_of("[concat(frobnicate('x'))]")
    assert "frobnicate" in issue.message
    assert "did you mean 'uniqueString'" in error_of("[uniquestrng('x')]").message


def test_type_error_names_the_function_and_argument() -> None:
    issue = error_of("[substring(1, 0)]")
    assert issue.code == IssueCode.TYPE_ERROR
    assert issue.message.startswith("argument 1 of substring() must be a string, got Integer")


def test_wrong_arity_names_expected_count() -> None:
    issue = error_of("[substring()]")
    assert "substring" in issue.message and "1 to 3" in issue.message


def test_context_errors_get_the_path() -> None:
    issue = error_of("[parameters('missing')]", path="outputs.x.value")
    assert issue.code == IssueCode.UNDECLARED_PARAMETER
    assert issue.path == "outputs.x.value"
    assert issue.details["expression"] == "[parameters('missing')]"


def test_syntax_error_reports_offset() -> None:
    issue = error_of("[concat('a',,)]")
    assert issue.code == IssueCode.EXPRESSION_SYNTAX
    assert issue.details["offset"] == 13  # 1-based in the whole string: the second comma
    assert "[concat('a',,)]"[issue.details["offset"] - 1] == ","


def test_deep_nesting_is_a_template_error_not_a_crash() -> None:
    text = "[" + "concat(" * 400 + "'a'" + ")" * 400 + "]"
    assert error_of(text).code == IssueCode.EXPRESSION_SYNTAX


# ------------------------------------------------------------------ Deferred


def test_deferred_propagates_through_functions_and_access() -> None:
    value = ev("[toUpper(reference('st').primaryEndpoints.blob)]")
    assert isinstance(value, Deferred)
    assert value.expression == "[toUpper(reference('st').primaryEndpoints.blob)]"
    assert value.reason == "not deployed yet"
    assert isinstance(ev("[reference('st')[0]]"), Deferred)
    assert isinstance(ev("[createArray(1, 2)[length(reference('st').x)]]"), Deferred)


def test_deferred_nested_in_an_argument_makes_eager_functions_deferred() -> None:
    assert isinstance(ev("[string(createObject('a', reference('st').x))]"), Deferred)
    assert isinstance(ev("[equals(createArray(reference('st').x), createArray(1))]"), Deferred)


def test_structural_functions_carry_deferred_elements() -> None:
    value = ev("[createArray(1, reference('st').x)]")
    assert value[0] == 1 and isinstance(value[1], Deferred)
    assert ev("[length(createArray(reference('a'), reference('b')))]") == 2
    obj = ev("[union(createObject('a', 1), createObject('b', reference('st').x))]")
    assert obj["a"] == 1 and isinstance(obj["b"], Deferred)


def test_lazy_functions_do_not_wait_for_unneeded_deferred_values() -> None:
    assert ev("[if(equals(1, 2), reference('st').x, 'known')]") == "known"
    assert isinstance(ev("[if(reference('st').flag, 1, 2)]"), Deferred)
    assert ev("[coalesce(null(), 'known', reference('st').x)]") == "known"
    assert isinstance(ev("[coalesce(null(), reference('st').x, 'later')]"), Deferred)
    assert ev("[and(false, reference('st').x)]") is False
    assert ev("[or(true, reference('st').x)]") is True
    assert isinstance(ev("[and(true, reference('st').x)]"), Deferred)


def test_known_reference_is_read_through_the_context() -> None:
    ctx = SimpleContext(resources={"st": {"properties": {"primaryEndpoints": {"blob": "https://b/"}}, "id": "/x"}})
    assert ev("[reference('st').primaryEndpoints.blob]", ctx) == "https://b/"
    assert ev("[reference('st', '2023-01-01', 'Full').id]", ctx) == "/x"
    assert ctx.calls[-1] == ("reference", ("st", "2023-01-01", True))


def test_list_functions_go_to_the_context() -> None:
    ctx = SimpleContext()
    value = ev("[listKeys(resourceId('Microsoft.Storage/storageAccounts', 'sa'), '2023-01-01').keys[0].value]", ctx)
    assert isinstance(value, Deferred)
    name, (target, api, body) = ctx.calls[-1]
    assert name == "listKeys" and target.endswith("/storageAccounts/sa") and api == "2023-01-01" and body is None
    ev("[listAccountSas('sa', '2023-01-01', createObject('signedExpiry', 'x'))]", ctx)
    assert ctx.calls[-1] == ("listAccountSas", ("sa", "2023-01-01", {"signedExpiry": "x"}))


# ------------------------------------------------------------------ evaluate_value


def test_evaluate_value_recurses_with_paths() -> None:
    ctx = SimpleContext(parameters={"p": "v"}, variables={"k": "key"})
    value = {
        "name": "[parameters('p')]",
        "list": [1, "[concat('a', 'b')]", {"x": "[[literal]"}],
        "[variables('k')]": "[add(1, 2)]",
        "plain": True,
    }
    assert evaluate_value(value, ctx, "resources[0]") == {
        "name": "v",
        "list": [1, "ab", {"x": "[literal]"}],
        "key": 3,
        "plain": True,
    }
    assert value["name"] == "[parameters('p')]"  # the input is not modified


def test_evaluate_value_error_path_points_at_the_value() -> None:
    value = {"properties": {"siteConfig": {"appSettings": [{"value": "a"}, {"value": "b"}, {"value": "[bad(]"}]}}}
    with pytest.raises(TemplateError) as info:
        evaluate_value(value, SimpleContext(), "resources[1]")
    assert info.value.first.path == "resources[1].properties.siteConfig.appSettings[2].value"


def test_results_are_not_evaluated_twice() -> None:
    ctx = SimpleContext(parameters={"p": "[concat('not', 'evaluated')]"})
    assert ev("[parameters('p')]", ctx) == "[concat('not', 'evaluated')]"


def test_property_name_expression_must_be_a_string() -> None:
    with pytest.raises(TemplateError) as info:
        evaluate_value({"[add(1, 1)]": 1}, SimpleContext(), "x")
    assert info.value.first.code == IssueCode.TYPE_ERROR


# ------------------------------------------------------------------ user functions


def test_user_defined_functions_see_only_their_parameters() -> None:
    ctx = SimpleContext(
        parameters={"outer": "o"},
        functions={
            "ns.greet": {
                "parameters": [{"name": "who", "type": "string"}],
                "output": {"type": "string", "value": "[format('Hello, {0}!', parameters('who'))]"},
            },
            "ns.twice": {
                "parameters": [{"name": "who", "type": "string"}],
                "output": {"type": "array", "value": ["[ns.greet(parameters('who'))]", "[ns.greet('again')]"]},
            },
            "ns.leak": {"parameters": [], "output": {"type": "string", "value": "[parameters('outer')]"}},
            "ns.vars": {"parameters": [], "output": {"type": "string", "value": "[variables('x')]"}},
        },
    )
    assert ev("[ns.greet('World')]", ctx) == "Hello, World!"
    assert ev("[NS.Twice('a')]", ctx) == ["Hello, a!", "Hello, again!"]
    assert error_of("[ns.leak()]", ctx).code == IssueCode.UNDECLARED_PARAMETER
    assert error_of("[ns.vars()]", ctx).code == IssueCode.FUNCTION_NOT_ALLOWED
    assert error_of("[ns.greet()]", ctx).code == IssueCode.WRONG_ARITY
    assert error_of("[ns.greet(1)]", ctx).code == IssueCode.TYPE_ERROR


# ------------------------------------------------------------------ expression_references


def test_expression_references_lists_calls_with_literal_arguments() -> None:
    refs = expression_references(
        "[reference(resourceId('Microsoft.Storage/storageAccounts', variables('sa')), '2023-01-01').x]"
    )
    assert refs == [
        ("reference", [UNKNOWN, "2023-01-01"]),
        ("resourceid", ["Microsoft.Storage/storageAccounts", UNKNOWN]),
        ("variables", ["sa"]),
    ]
    assert expression_references("[ns.fn(parameters('a'))[0]]") == [("ns.fn", [UNKNOWN]), ("parameters", ["a"])]
    assert expression_references("not an expression") == []
    assert expression_references("[[escaped()]") == []
    with pytest.raises(TemplateError):
        expression_references("[broken(]")
