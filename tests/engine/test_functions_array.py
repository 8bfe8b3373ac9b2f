"""Array functions, including their string and object overloads, empty inputs and Deferred elements."""

from __future__ import annotations

from typing import Any

import pytest

from arm_engine.errors import IssueCode, TemplateError
from arm_engine.values import Deferred
from tests.support.expressions import SimpleContext, ev


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[array('a')]", ["a"]),
        ("[array(createArray(1))]", [1]),
        ("[array(createObject('a', 1))]", [{"a": 1}]),
        ("[createArray()]", []),
        ("[createArray(1, 'a', true, null(), createArray())]", [1, "a", True, None, []]),
        ("[concat()]", ""),
        ("[concat('a', 1, true, 'b')]", "a1Trueb"),
        ("[concat(createArray(1), createArray(), createArray(2, 3))]", [1, 2, 3]),
        ("[contains('OneTwoThree', 'e')]", True),
        ("[contains('OneTwoThree', 'one')]", False),
        ("[contains(createObject('one', 'a'), 'ONE')]", True),
        ("[contains(createObject('one', 'a'), 'two')]", False),
        ("[contains(createArray('one', 'two'), 'two')]", True),
        ("[contains(createArray(1, 2), '1')]", False),
        ("[contains(createArray(createObject('a', 1)), createObject('A', 1))]", True),
        ("[contains(createArray(1), true())]", False),
        ("[empty(createArray())]", True),
        ("[empty(createObject())]", True),
        ("[empty('')]", True),
        ("[empty(null())]", True),
        ("[empty(createArray(null()))]", False),
        ("[empty(' ')]", False),
        ("[first(createArray('one', 'two'))]", "one"),
        ("[first('One Two')]", "O"),
        ("[first(createArray())]", None),
        ("[first('')]", ""),
        ("[last(createArray('one', 'three'))]", "three"),
        ("[last('One Two Three')]", "e"),
        ("[length(createArray('a', 'b', 'c'))]", 3),
        ("[length('One Two Three')]", 13),
        ("[length(createObject('a', 1, 'b', createObject('c', 2)))]", 2),
        ("[length(createArray())]", 0),
        ("[take(createArray('one', 'two', 'three'), 2)]", ["one", "two"]),
        ("[take('on', 5)]", "on"),
        ("[take(createArray(1, 2), 0)]", []),
        ("[take(createArray(1, 2), -3)]", []),
        ("[skip(createArray('one', 'two', 'three'), 2)]", ["three"]),
        ("[skip('one two three', 4)]", "two three"),
        ("[skip(createArray(1, 2), -1)]", [1, 2]),
        ("[skip(createArray(1, 2), 5)]", []),
        ("[indexOf(createArray('a', 'b', 'b'), 'b')]", 1),
        ("[lastIndexOf(createArray('a', 'b', 'b'), 'b')]", 2),
        ("[indexOf(createArray(1, 2), 3)]", -1),
        ("[indexOf(createArray(createArray(1)), createArray(1))]", 0),
        ("[flatten(createArray(createArray(1, 2), createArray(), createArray(createArray(3))))]", [1, 2, [3]]),
        ("[flatten(createArray())]", []),
        ("[distinct(createArray(1, 2, 1, '1', true()))]", [1, 2, "1", True]),
        ("[tryGet(createObject('a', createObject('B', 1)), 'a', 'b')]", 1),
        ("[tryGet(createObject('a', 1), 'missing')]", None),
        ("[tryGet(createArray(1, 2), 5)]", None),
        ("[tryGet(null(), 'a')]", None),
        ("[tryGet('text', 'a')]", None),
        ("[tryGet(createArray(1), 'a')]", None),
        ("[indexFromEnd(createArray(1, 2, 3), 1)]", 3),
        ("[tryIndexFromEnd(createArray(1, 2, 3), 4)]", None),
    ],
)
def test_array_functions(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[concat(createArray(1), 'a')]", IssueCode.TYPE_ERROR),
        ("[concat('a', createArray(1))]", IssueCode.TYPE_ERROR),
        ("[length(1)]", IssueCode.TYPE_ERROR),
        ("[length(null())]", IssueCode.TYPE_ERROR),
        ("[empty(1)]", IssueCode.TYPE_ERROR),
        ("[first(1)]", IssueCode.TYPE_ERROR),
        ("[take(createArray(1), '1')]", IssueCode.TYPE_ERROR),
        ("[contains(1, 1)]", IssueCode.TYPE_ERROR),
        ("[flatten(createArray(1))]", IssueCode.TYPE_ERROR),
        ("[indexFromEnd(createArray(1), 2)]", IssueCode.INDEX_OUT_OF_RANGE),
        ("[indexFromEnd(createArray(1), 0)]", IssueCode.INDEX_OUT_OF_RANGE),
        ("[contains(createArray(1))]", IssueCode.WRONG_ARITY),
        ("[createArray(1)[1]]", IssueCode.INDEX_OUT_OF_RANGE),
    ],
)
def test_array_errors(text: str, code: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(text)
    assert info.value.first.code == code


def test_array_results_do_not_alias_parameter_values() -> None:
    ctx = SimpleContext(parameters={"list": [{"a": 1}]})
    result = ev("[concat(parameters('list'), createArray(2))]", ctx)
    result[0]["a"] = 99
    assert ctx.parameters["list"] == [{"a": 1}]
    direct = ev("[parameters('list')]", ctx)
    direct.append(3)
    assert ctx.parameters["list"] == [{"a": 1}]


def test_deferred_array_argument_makes_the_result_deferred() -> None:
    assert isinstance(ev("[length(reference('x').items)]"), Deferred)
    assert isinstance(ev("[concat(reference('x').items, createArray(1))]"), Deferred)
    assert isinstance(ev("[concat('a', reference('x').name)]"), Deferred)
    assert isinstance(ev("[first(reference('x').items)]"), Deferred)
    mixed = ev("[concat(createArray(1), createArray(reference('x').id))]")
    assert mixed[0] == 1 and isinstance(mixed[1], Deferred)
