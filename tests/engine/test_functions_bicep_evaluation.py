"""Real-engine ground truth from Azure/bicep v0.46.1's src/Bicep.Core.IntegrationTests (EvaluationTests.cs,
UserDefinedFunctionTests.cs, SpreadTests.cs): those tests compile Bicep and evaluate the template with the ARM
deployment engine library (TemplateEvaluator), asserting the outputs below. The Bicep expressions are rewritten
here as the ARM expressions Bicep emits for them; the expected values are the engine's."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.expressions import SimpleContext, ev

L = "lambdaVariables"

DOGGOS = ["Evie", "Casper", "Indy", "Kira"]
PARAMS: dict[str, Any] = {
    "doggos": DOGGOS,
    "numbers": [0, 1, 2, 3],
    "inputString": "FOOBAR",
    "inputArray": ["FOO", "BAR"],
    "inputObj": {
        "ghiKey": "ghiValue",
        "defKey": "defValue",
        "abcKey": "abcValue",
        "123Key": "123Value",
        "GHIKey": "GHIValue",
        "DEFKey": "DEFValue",
        "ABCKey": "ABCValue",
        "456Key": "456Value",
    },
    "obj": {"foo": [{"bar": "baz"}]},
    "sortByObjectKey": [
        {"key": 124, "name": "Second"},
        {"key": 298, "name": "Third"},
        {"key": 24, "name": "First"},
        {"key": 1232, "name": "Fourth"},
    ],
}

CASES: list[tuple[str, Any]] = [
    # Basic_arithmetic_expressions_are_evaluated_successfully
    ("[add(1, 3)]", 4),
    ("[mul(add(1, 3), 5)]", 20),
    ("[mod(mul(add(1, 3), 5), 7)]", 6),
    ("[div(mod(mul(add(1, 3), 5), 7), 11)]", 0),
    ("[sub(div(mod(mul(add(1, 3), 5), 7), 11), 13)]", -13),
    # String_expressions_are_evaluated_successfully: interpolation renders objects and arrays single-quoted
    (
        "[format('>{0}<>{1}<>{2}<>{3}<>{4}<', false(), 12948, 'hello!', createObject('a', 'b', '!c', 2), "
        "createArray(true(), 2893, 'abc'))]",
        ">False<>12948<>hello!<>{'a':'b','!c':2}<>[true,2893,'abc']<",
    ),
    # Comparisons_are_evaluated_correctly
    ("[less(123, 456)]", True),
    ("[lessOrEquals(123, 456)]", True),
    ("[greater(123, 456)]", False),
    ("[greaterOrEquals(123, 456)]", False),
    ("[equals(123, 456)]", False),
    ("[not(true())]", False),
    ("[and(true(), false())]", False),
    ("[or(true(), false())]", True),
    ("[coalesce(null(), 123)]", 123),
    # Items_function_evaluation_works: digits first, then case-insensitive, lower case first on ties
    (
        "[map(items(parameters('inputObj')), lambda('item', lambdaVariables('item').key))]",
        ["123Key", "456Key", "abcKey", "ABCKey", "defKey", "DEFKey", "ghiKey", "GHIKey"],
    ),
    (
        "[map(items(parameters('inputObj')), lambda('item', lambdaVariables('item').value))]",
        ["123Value", "456Value", "abcValue", "ABCValue", "defValue", "DEFValue", "ghiValue", "GHIValue"],
    ),
    # Join_function_evaluation_works
    ("[join(createArray('abc', 'def', 'ghi'), '')]", "abcdefghi"),
    ("[join(createArray('abc', 'def', 'ghi'), ',')]", "abc,def,ghi"),
    ("[join(createArray('I', 'love', 'Bicep'), ' ')]", "I love Bicep"),
    # indexof_contains_function_evaluation_works
    ("[indexOf(parameters('inputString'), 'foo')]", 0),
    ("[indexOf(parameters('inputString'), 'FOO')]", 0),
    ("[indexOf(parameters('inputString'), 'bar')]", 3),
    ("[indexOf(parameters('inputString'), 'BAR')]", 3),
    ("[contains(parameters('inputString'), 'foo')]", False),
    ("[contains(parameters('inputString'), 'FOO')]", True),
    ("[contains(parameters('inputString'), 'bar')]", False),
    ("[contains(parameters('inputString'), 'BAR')]", True),
    ("[indexOf(parameters('inputArray'), 'foo')]", -1),
    ("[indexOf(parameters('inputArray'), 'FOO')]", 0),
    ("[indexOf(parameters('inputArray'), 'bar')]", -1),
    ("[indexOf(parameters('inputArray'), 'BAR')]", 1),
    ("[indexOf(parameters('inputArray'), false())]", -1),
    ("[indexOf(parameters('inputArray'), 123)]", -1),
    ("[contains(parameters('inputArray'), 'foo')]", False),
    ("[contains(parameters('inputArray'), 'FOO')]", True),
    ("[contains(parameters('inputArray'), 'BAR')]", True),
    ("[contains(parameters('inputArray'), false())]", False),
    ("[contains(parameters('inputArray'), 123)]", False),
    # List_comprehension_function_evaluation_works
    (f"[map(parameters('doggos'), lambda('i', format('Hello {{0}}!', {L}('i'))))]", [f"Hello {d}!" for d in DOGGOS]),
    (f"[filter(parameters('numbers'), lambda('i', equals(0, mod({L}('i'), 2))))]", [0, 2]),
    (
        f"[map(filter(parameters('numbers'), lambda('i', contains(filter(parameters('numbers'), "
        f"lambda('j', equals(0, mod({L}('j'), 2)))), {L}('i')))), lambda('x', parameters('doggos')[{L}('x')]))]",
        ["Evie", "Indy"],
    ),
    ("[flatten(createArray(createArray(0, 1), createArray(2, 3), createArray(4, 5)))]", [0, 1, 2, 3, 4, 5]),
    ("[flatten(createArray())]", []),
    (f"[map(createArray(), lambda('foo', format('Hi {{0}}!', {L}('foo'))))]", []),
    (
        f"[map(range(0, length(parameters('doggos'))), lambda('i', createObject('i', {L}('i'), "
        f"'doggo', parameters('doggos')[{L}('i')], "
        f"'greeting', format('Ahoy, {{0}}!', parameters('doggos')[{L}('i')]))))]",
        [{"i": i, "doggo": d, "greeting": f"Ahoy, {d}!"} for i, d in enumerate(DOGGOS)],
    ),
    (
        f"[flatten(map(range(1, 3), lambda('i', createArray(mul({L}('i'), 2), add(mul({L}('i'), 2), 1)))))]",
        [2, 3, 4, 5, 6, 7],
    ),
    (f"[filter(createArray('abc', 'def', 'ghi'), lambda('foo', equals('def', {L}('foo'))))]", ["def"]),
    (f"[sort(createArray(8, 3, 10, -13, 5), lambda('x', 'y', less({L}('x'), {L}('y'))))]", [-13, 3, 5, 8, 10]),
    (f"[sort(createArray('ghi', 'abc', 'def'), lambda('x', 'y', less({L}('x'), {L}('y'))))]", ["abc", "def", "ghi"]),
    (
        f"[sort(createArray('ghi', 'abc', 'def'), lambda('x', 'y', greater({L}('x'), {L}('y'))))]",
        ["ghi", "def", "abc"],
    ),
    (
        f"[map(sort(parameters('sortByObjectKey'), lambda('x', 'y', less(int({L}('x').key), int({L}('y').key)))), "
        f"lambda('o', {L}('o').name))]",
        ["First", "Second", "Third", "Fourth"],
    ),
    (f"[sort(createArray(), lambda('x', 'y', less(int({L}('x')), int({L}('y')))))]", []),
    (
        f"[reduce(createArray('abc', 'def', 'ghi'), '', lambda('cur', 'next', concat({L}('cur'), {L}('next'))))]",
        "abcdefghi",
    ),
    (f"[reduce(range(1, 5), 1, lambda('cur', 'next', mul({L}('cur'), {L}('next'))))]", 120),
    (
        f"[reduce(createArray(createObject('foo', 123), createObject('bar', 456), createObject('baz', 789)), "
        f"createObject(), lambda('cur', 'next', union({L}('cur'), {L}('next'))))]",
        {"foo": 123, "bar": 456, "baz": 789},
    ),
    (f"[reduce(createArray(), 0, lambda('cur', 'next', {L}('cur')))]", 0),
    (
        f"[toObject(createArray(123, 456, 789), lambda('i', format('{{0}}', div({L}('i'), 100))))]",
        {"1": 123, "4": 456, "7": 789},
    ),
    (
        f"[toObject(parameters('numbers'), lambda('i', format('{{0}}', {L}('i'))), lambda('i', createObject("
        f"'isEven', equals(mod({L}('i'), 2), 0), 'isGreaterThan2', greater({L}('i'), 2))))]",
        {
            "0": {"isEven": True, "isGreaterThan2": False},
            "1": {"isEven": False, "isGreaterThan2": False},
            "2": {"isEven": True, "isGreaterThan2": False},
            "3": {"isEven": False, "isGreaterThan2": True},
        },
    ),
    # Safe_dereferences_are_evaluated_successfully (a.?b -> tryGet, a[?i] -> tryGet)
    ("[tryGet(parameters('obj'), 'foo')[0].bar]", "baz"),
    ("[tryGet(tryGet(tryGet(parameters('obj'), 'fizz'), 0), 'bar')]", None),
    ("[tryGet(parameters('obj').foo, 0).bar]", "baz"),
    ("[tryGet(tryGet(parameters('obj').foo, 10), 'bar')]", None),
    # SpreadTests.Spread_operator_results_in_correct_codegen (the ARM text is the test's own expected codegen)
    (
        "[shallowMerge(createArray(createObject('foo', 'foo'), createObject('bar', flatten(createArray("
        "createArray(1), createArray(2, 3), createArray(4)))), createObject('baz', 'baz')))]",
        {"foo": "foo", "bar": [1, 2, 3, 4], "baz": "baz"},
    ),
    # New_functions_are_evaluated_correctly
    (
        f"[filter(createArray('a', 'b', 'c', 'd'), lambda('item', 'i', equals(mod({L}('i'), 2), 0)))]",
        ["a", "c"],
    ),
    (
        f"[reduce(createArray('abc', 'def', 'ghi'), '', lambda('cur', 'next', 'i', if(equals(mod({L}('i'), 2), 0), "
        f"concat({L}('cur'), {L}('next')), {L}('cur'))))]",
        "abcghi",
    ),
    (f"[mapValues(createObject('a', 123, 'b', 456), lambda('val', mul({L}('val'), 2)))]", {"a": 246, "b": 912}),
    ("[objectKeys(createObject('a', 123, 'b', 456))]", ["a", "b"]),
    ("[shallowMerge(createArray(createObject('a', 123), createObject('b', 456)))]", {"a": 123, "b": 456}),
    (
        "[groupBy(createArray(createObject('type', 'a', 'value', 123), createObject('type', 'b', 'value', 456), "
        f"createObject('type', 'a', 'value', 789)), lambda('arg', {L}('arg').type))]",
        {
            "a": [{"type": "a", "value": 123}, {"type": "a", "value": 789}],
            "b": [{"type": "b", "value": 456}],
        },
    ),
    (
        "[groupBy(createArray(createObject('type', 'a', 'value', 123), createObject('type', 'b', 'value', 456), "
        f"createObject('type', 'a', 'value', 789)), lambda('arg', {L}('arg').type), lambda('arg', {L}('arg').value))]",
        {"a": [123, 789], "b": [456]},
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_engine_evaluation(text: str, expected: Any) -> None:
    result = ev(text, SimpleContext(parameters=PARAMS))
    assert result == expected
    assert type(result) is type(expected)


def _udf(params: list[tuple[str, str]], output_type: str, value: Any) -> dict[str, Any]:
    return {"parameters": [{"name": n, "type": t} for n, t in params], "output": {"type": output_type, "value": value}}


FUNCTIONS = {
    "__bicep.buildurl": _udf(
        [("https", "bool"), ("hostname", "string"), ("path", "string")],
        "string",
        "[format('{0}://{1}{2}', if(parameters('https'), 'https', 'http'), parameters('hostname'), "
        "if(empty(parameters('path')), '', format('/{0}', parameters('path'))))]",
    ),
    "__bicep.joinwithspace": _udf([("values", "array")], "string", "[join(parameters('values'), ' ')]"),
    "__bicep.greet": _udf(
        [("names", "array")], "string", "[format('Hi, {0}!', __bicep.joinWithSpace(parameters('names')))]"
    ),
    "__bicep.replacemultiple": _udf(
        [("value", "string"), ("input", "object")],
        "string",
        f"[reduce(map(items(parameters('input')), lambda('i', createObject('key', {L}('i').key, 'value', "
        f"{L}('i').value, 'replaced', ''))), createObject('replaced', parameters('value')), lambda('cur', 'next', "
        f"createObject('replaced', replace({L}('cur').replaced, {L}('next').key, {L}('next').value)))).replaced]",
    ),
    "__bicep.iseven": _udf([("i", "int")], "bool", "[equals(mod(parameters('i'), 2), 0)]"),
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[__bicep.buildUrl(true(), 'google.com', 'search')]", "https://google.com/search"),
        ("[__bicep.greet(createArray('Anthony', 'Martin'))]", "Hi, Anthony Martin!"),
        (
            "[__bicep.replaceMultiple('Hi, $firstName $lastName!', "
            "createObject('$firstName', 'Anthony', '$lastName', 'Martin'))]",
            "Hi, Anthony Martin!",
        ),
        (
            f"[map(createArray('Evie', 'Casper', 'Lady Lechuga'), lambda('dog', 'i', "
            f"format('{{0}} {{1}}!', if(__bicep.isEven({L}('i')), 'Hi', 'Ahoy'), {L}('dog'))))]",
            ["Hi Evie!", "Ahoy Casper!", "Hi Lady Lechuga!"],
        ),
    ],
)
def test_engine_evaluation_of_user_defined_functions(text: str, expected: Any) -> None:
    assert ev(text, SimpleContext(functions=FUNCTIONS)) == expected
