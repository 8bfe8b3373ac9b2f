"""Comparison functions: deep equality with ARM's type distinctions, ordinal ordering, coalesce."""

from __future__ import annotations

from typing import Any

import pytest

from arm_engine.errors import IssueCode, TemplateError
from tests.support.expressions import SimpleContext, ev


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[equals(1, 1)]", True),
        ("[equals(1, 2)]", False),
        ("[equals('a', 'a')]", True),
        ("[equals('a', 'A')]", False),
        ("[equals(1, true())]", False),
        ("[equals(0, false())]", False),
        ("[equals('1', 1)]", False),
        ("[equals(null(), null())]", True),
        ("[equals(null(), '')]", False),
        ("[equals(createArray(1, 'a'), createArray(1, 'a'))]", True),
        ("[equals(createArray(1, 2), createArray(2, 1))]", False),
        ("[equals(createArray(), createArray())]", True),
        ("[equals(createObject(), createObject())]", True),
        ("[equals(createObject('a', 1, 'b', 2), createObject('b', 2, 'a', 1))]", True),
        ("[equals(createObject('Key', 1), createObject('key', 1))]", True),
        ("[equals(createObject('a', createArray(1)), createObject('a', createArray(true())))]", False),
        ("[greater(10, 5)]", True),
        ("[greater(5, 5)]", False),
        ("[greaterOrEquals(5, 5)]", True),
        ("[less(-1, 0)]", True),
        ("[lessOrEquals(1, 0)]", False),
        ("[greater('b', 'a')]", True),
        ("[greater('A', 'a')]", False),
        ("[less('A', 'a')]", True),
        ("[lessOrEquals('abc', 'abc')]", True),
        ("[coalesce(null(), null(), 'default')]", "default"),
        ("[coalesce(null(), 1)]", 1),
        ("[coalesce(null(), createObject('first', 'x')).first]", "x"),
        ("[coalesce('', 'x')]", ""),
        ("[coalesce(createArray(), createArray(1))]", []),
        ("[coalesce(null(), null())]", None),
    ],
)
def test_comparisons(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


def test_coalesce_of_documented_object() -> None:
    ctx = SimpleContext(parameters={"objectToTest": {"null1": None, "null2": None, "string": "default", "int": 1}})
    assert ev("[coalesce(parameters('objectToTest').null1, parameters('objectToTest').null2, 'x')]", ctx) == "x"
    assert ev("[coalesce(parameters('objectToTest').null1, parameters('objectToTest').int)]", ctx) == 1


@pytest.mark.parametrize(
    "text",
    ["[greater(1, 'a')]", "[less(true(), false())]", "[greater(createArray(), createArray())]", "[less(null(), 1)]"],
)
def test_ordering_needs_two_numbers_or_two_strings(text: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(text)
    assert info.value.first.code == IssueCode.TYPE_ERROR


def test_arity() -> None:
    for text in ("[equals(1)]", "[equals(1, 2, 3)]", "[coalesce()]", "[greater(1)]"):
        with pytest.raises(TemplateError) as info:
            ev(text)
        assert info.value.first.code == IssueCode.WRONG_ARITY
