"""Lambda functions: filter/map/reduce/sort/toObject/groupBy/mapValues, index parameters, closures, and lazy
evaluation of lambda bodies."""

from __future__ import annotations

from typing import Any

import pytest

from arm_engine.errors import IssueCode, TemplateError
from arm_engine.values import Deferred
from tests.support.expressions import SimpleContext, ev

DOGS = [
    {"name": "Evie", "age": 5, "interests": ["Ball", "Frisbee"]},
    {"name": "Casper", "age": 3, "interests": ["Other dogs"]},
    {"name": "Indy", "age": 2, "interests": ["Butter"]},
    {"name": "Kira", "age": 8, "interests": ["Rubs"]},
]
CTX = SimpleContext(parameters={"dogs": DOGS, "ages": {"a": 1, "b": 2}})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[filter(parameters('dogs'), lambda('dog', greaterOrEquals(lambdaVariables('dog').age, 5)))]",
            [DOGS[0], DOGS[3]],
        ),
        ("[filter(range(0, 10), lambda('i', equals(mod(lambdaVariables('i'), 3), 0)))]", [0, 3, 6, 9]),
        ("[filter(createArray(), lambda('i', true()))]", []),
        ("[map(parameters('dogs'), lambda('dog', lambdaVariables('dog').name))]", ["Evie", "Casper", "Indy", "Kira"]),
        (
            "[map(createArray('a', 'b'), lambda('x', 'i', concat(lambdaVariables('x'), string(lambdaVariables('i')))))]",  # noqa: E501
            ["a0", "b1"],
        ),
        ("[map(range(0, 2), lambda('i', createObject('i', lambdaVariables('i'))))]", [{"i": 0}, {"i": 1}]),
        (
            "[reduce(map(parameters('dogs'), lambda('d', lambdaVariables('d').age)), 0, "
            "lambda('cur', 'next', add(lambdaVariables('cur'), lambdaVariables('next'))))]",
            18,
        ),
        ("[reduce(createArray(), 'init', lambda('a', 'b', 'never'))]", "init"),
        (
            "[reduce(createArray(10, 20), 0, lambda('acc', 'x', 'i', add(lambdaVariables('acc'), lambdaVariables('i'))))]",  # noqa: E501
            1,
        ),
        (
            "[map(sort(parameters('dogs'), lambda('a', 'b', less(lambdaVariables('a').age, lambdaVariables('b').age))), "  # noqa: E501
            "lambda('d', lambdaVariables('d').name))]",
            ["Indy", "Casper", "Evie", "Kira"],
        ),
        (
            "[sort(createArray(3, 1, 2), lambda('a', 'b', greater(lambdaVariables('a'), lambdaVariables('b'))))]",
            [3, 2, 1],
        ),
        ("[toObject(parameters('dogs'), lambda('d', lambdaVariables('d').name)).Indy.age]", 2),
        (
            "[toObject(parameters('dogs'), lambda('d', lambdaVariables('d').name), lambda('d', lambdaVariables('d').age))]",  # noqa: E501
            {"Evie": 5, "Casper": 3, "Indy": 2, "Kira": 8},
        ),
        (
            "[groupBy(createArray('foo', 'bar', 'baz'), lambda('x', substring(lambdaVariables('x'), 0, 1)))]",
            {"f": ["foo"], "b": ["bar", "baz"]},
        ),
        ("[mapValues(parameters('ages'), lambda('v', mul(lambdaVariables('v'), 10)))]", {"a": 10, "b": 20}),
        ("[mapValues(createObject(), lambda('v', 1))]", {}),
        # closures: an inner lambda sees the outer lambda's variable
        (
            "[map(createArray(1, 2), lambda('x', map(createArray(10, 20), "
            "lambda('y', add(lambdaVariables('x'), lambdaVariables('y'))))))]",
            [[11, 21], [12, 22]],
        ),
        ("[map(createArray('A'), lambda('X', lambdaVariables('x')))]", ["A"]),
    ],
)
def test_lambdas(text: str, expected: Any) -> None:
    assert ev(text, CTX) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[filter(createArray(1), lambda('x', 1))]", IssueCode.TYPE_ERROR),
        ("[filter(createArray(1), 'notalambda')]", IssueCode.TYPE_ERROR),
        ("[map(createArray(1), lambda('a', 'b', 'c', 1))]", IssueCode.WRONG_ARITY),
        ("[map('abc', lambda('x', 1))]", IssueCode.TYPE_ERROR),
        ("[toObject(createArray(1), lambda('x', lambdaVariables('x')))]", IssueCode.TYPE_ERROR),
        ("[sort(createArray(2, 1), lambda('a', 'b', 'yes'))]", IssueCode.TYPE_ERROR),
        ("[map(createArray(1), lambda('x', lambdaVariables('y')))]", IssueCode.INVALID_VALUE),
        ("[lambda(1, 2)]", IssueCode.TYPE_ERROR),
        ("[lambda('x')]", IssueCode.WRONG_ARITY),
        ("[createArray(lambda('x', 1))]", IssueCode.TYPE_ERROR),
    ],
)
def test_lambda_errors(text: str, code: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(text)
    assert info.value.first.code == code


def test_lambda_bodies_run_only_when_applied() -> None:
    ctx = SimpleContext(parameters={"o": {}})
    assert ev("[map(createArray(), lambda('x', parameters('o').missing))]", ctx) == []
    assert ev("[filter(createArray(1, 2), lambda('x', if(equals(lambdaVariables('x'), 1), true(), false())))]") == [1]


def test_deferred_inside_lambdas() -> None:
    mapped = ev("[map(createArray('a', 'b'), lambda('n', reference(lambdaVariables('n')).id))]")
    assert len(mapped) == 2 and all(isinstance(v, Deferred) for v in mapped)
    assert isinstance(ev("[filter(createArray('a'), lambda('n', reference(lambdaVariables('n')).on))]"), Deferred)
    assert isinstance(ev("[map(reference('x').items, lambda('n', 1))]"), Deferred)
