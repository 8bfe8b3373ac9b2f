"""Object functions: createObject, union (deep for objects), intersection, items, objectKeys, shallowMerge,
json, null, and case-insensitive keys."""

from __future__ import annotations

from typing import Any

import pytest

from arm_engine.errors import IssueCode, TemplateError
from tests.support.expressions import SimpleContext, ev


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[createObject()]", {}),
        ("[createObject('a', 1, 'b', createArray(true()), 'c', null())]", {"a": 1, "b": [True], "c": None}),
        ("[createObject('a', 1, 'A', 2)]", {"a": 2}),
        ("[union(createObject('a', 1), createObject())]", {"a": 1}),
        (
            "[union(createObject('one', 'a', 'two', 'b'), createObject('three', 'c', 'two', 'x'))]",
            {"one": "a", "two": "x", "three": "c"},
        ),
        ("[union(createArray(1, 2, 3), createArray(3, 4), createArray(1, 5))]", [1, 2, 3, 4, 5]),
        ("[union(createArray(), createArray())]", []),
        ("[union(null(), createObject('a', 1), null())]", {"a": 1}),
        ("[union(createArray(1), null())]", [1]),
        ("[length(union(range(0, 10000), range(5000, 10000)))]", 15000),
        ("[length(intersection(range(0, 10000), range(5000, 10000)))]", 5000),
        (
            "[union(createArray(1, true(), '1', createObject('A', 1)), createArray(createObject('a', 1), json('1.0')))]",  # noqa: E501
            [1, True, "1", {"A": 1}],
        ),
        ("[union(createArray(1, 1), createArray('1'))]", [1, "1"]),
        ("[intersection(createObject('one', 'a', 'two', 'b'), createObject('one', 'a', 'two', 'z'))]", {"one": "a"}),
        ("[intersection(createArray('one', 'two', 'three'), createArray('two', 'three', 'four'))]", ["two", "three"]),
        ("[intersection(createArray(1, 2), createArray())]", []),
        ("[items(createObject())]", []),
        (
            "[items(createObject('b', 2, 'a', 1, 'C', 3))]",
            [{"key": "a", "value": 1}, {"key": "b", "value": 2}, {"key": "C", "value": 3}],
        ),
        ("[objectKeys(createObject('a', 1, 'b', 2))]", ["a", "b"]),
        ("[objectKeys(createObject())]", []),
        (
            "[shallowMerge(createArray(createObject('a', createObject('x', 1)), createObject('a', createObject('y', 2))))]",  # noqa: E501
            {"a": {"y": 2}},
        ),
        ("[shallowMerge(createArray())]", {}),
        ("[json('null')]", None),
        ('[json(\'{"a": [1, 2.5, true, null, "s"]}\')]', {"a": [1, 2.5, True, None, "s"]}),
        ("[json('\"text\"')]", "text"),
        ("[json('1')]", 1),
        ("[json('[]')]", []),
        ("[null()]", None),
        ("[createObject('Name', 'x').name]", "x"),
        ("[createObject('a', createObject('b', 1))['A']['B']]", 1),
    ],
)
def test_object_functions(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


def test_union_merges_nested_objects_but_replaces_nested_arrays() -> None:
    """The documented example: nested objects merge recursively, nested arrays are replaced."""
    ctx = SimpleContext(
        parameters={
            "first": {"property": {"one": "a", "two": "b", "three": "c1"}, "nestedArray": [1, 2]},
            "second": {"property": {"three": "c2", "four": "d", "five": "e"}, "nestedArray": [3, 4]},
        }
    )
    result = ev("[union(parameters('first'), parameters('second'))]", ctx)
    assert result == {
        "property": {"one": "a", "two": "b", "three": "c2", "four": "d", "five": "e"},
        "nestedArray": [3, 4],
    }
    assert list(result["property"]) == ["one", "two", "three", "four", "five"]  # order preserved
    assert ctx.parameters["first"]["property"]["three"] == "c1"  # inputs untouched


def test_union_of_arrays_of_arrays_does_not_merge_the_inner_arrays() -> None:
    ctx = SimpleContext(parameters={"first": [["one", "two"], ["three"]], "second": [["three"], ["four", "two"]]})
    assert ev("[union(parameters('first'), parameters('second'))]", ctx) == [["one", "two"], ["three"], ["four", "two"]]


def test_documented_json_examples() -> None:
    ctx = SimpleContext(parameters={"testValue": "demo value"})
    assert ev("[empty(json('null'))]") is True
    assert ev("[json(concat('{\"a\": \"', parameters('testValue'), '\"}'))]", ctx) == {"a": "demo value"}
    assert ev("[json('[1,2,3]')]") == [1, 2, 3]
    assert ev("[json('true')]") is True


def test_union_matches_keys_case_insensitively_keeping_the_first_spelling() -> None:
    assert ev("[union(createObject('Tags', createObject('a', 1)), createObject('tags', createObject('b', 2)))]") == {
        "Tags": {"a": 1, "b": 2}
    }


def test_union_later_scalar_replaces_object() -> None:
    assert ev("[union(createObject('a', createObject('x', 1)), createObject('a', 'flat'))]") == {"a": "flat"}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[createObject('a')]", IssueCode.WRONG_ARITY),
        ("[createObject(1, 'a')]", IssueCode.TYPE_ERROR),
        ("[union(createObject(), createArray())]", IssueCode.TYPE_ERROR),
        ("[intersection('a', 'b')]", IssueCode.TYPE_ERROR),
        ("[items(createArray())]", IssueCode.TYPE_ERROR),
        ("[objectKeys('a')]", IssueCode.TYPE_ERROR),
        ("[shallowMerge(createArray(1))]", IssueCode.TYPE_ERROR),
        ("[json('{bad json')]", IssueCode.INVALID_VALUE),
        ("[json('NaN')]", IssueCode.INVALID_VALUE),
        ("[json(1)]", IssueCode.TYPE_ERROR),
        ("[null(1)]", IssueCode.WRONG_ARITY),
        ("[union(createObject())]", IssueCode.WRONG_ARITY),
        ("[intersection(createArray())]", IssueCode.WRONG_ARITY),
        ("[createObject('a', 1).missing]", IssueCode.MISSING_PROPERTY),
        ("[createObject('a', 1)[0]]", IssueCode.TYPE_ERROR),
    ],
)
def test_object_errors(text: str, code: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(text)
    assert info.value.first.code == code


def test_missing_property_message_lists_available_properties() -> None:
    with pytest.raises(TemplateError) as info:
        ev("[createObject('alpha', 1, 'beta', 2).gamma]")
    assert "gamma" in info.value.first.message
    assert "'alpha'" in info.value.first.message and "'beta'" in info.value.first.message
