"""Logical functions: strict booleans, documented bool() conversions, lazy if/and/or."""

from __future__ import annotations

from typing import Any

import pytest

from arm_engine.errors import IssueCode, TemplateError
from arm_engine.values import Deferred
from tests.support.expressions import SimpleContext, ev


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[and(bool('true'), bool('false'))]", False),
        ("[or(bool('true'), bool('false'))]", True),
        ("[not(bool('true'))]", False),
        ("[and(true(), true(), true())]", True),
        ("[or(false(), false(), false())]", False),
        ("[bool('true')]", True),
        ("[bool('trUe')]", True),
        ("[bool('false')]", False),
        ("[bool('anything else')]", False),
        ("[bool(1)]", True),
        ("[bool(2)]", True),
        ("[bool(-1)]", True),
        ("[bool(0)]", False),
        ("[bool(true())]", True),
        ("[if(true(), 'yes', 'no')]", "yes"),
        ("[if(false(), 'yes', createObject('a', 1))]", {"a": 1}),
        ("[if(equals(1, 1), null(), 1)]", None),
        ("[true()]", True),
        ("[false()]", False),
    ],
)
def test_logical(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


def test_if_evaluates_only_the_chosen_branch() -> None:
    ctx = SimpleContext(parameters={"o": {}})
    # The untaken branch would fail: ARM evaluates if() lazily, which templates rely on.
    assert ev("[if(empty(parameters('o')), 'none', parameters('o').missing)]", ctx) == "none"
    assert ev("[and(false(), parameters('o').missing)]", ctx) is False
    assert ev("[or(true(), parameters('o').missing)]", ctx) is True
    with pytest.raises(TemplateError):
        ev("[if(not(empty(parameters('o'))), 'none', parameters('o').missing)]", ctx)


def test_deferred_condition_defers_the_result() -> None:
    value = ev("[if(reference('x').enabled, 'a', 'b')]")
    assert isinstance(value, Deferred)
    assert value.expression == "[if(reference('x').enabled, 'a', 'b')]"
    assert isinstance(ev("[not(reference('x').enabled)]"), Deferred)
    assert isinstance(ev("[or(false(), reference('x').enabled)]"), Deferred)


@pytest.mark.parametrize(
    "text", ["[not('true')]", "[and(1, true())]", "[or(false(), 'x')]", "[if('true', 1, 2)]", "[bool(createArray())]"]
)
def test_non_boolean_is_a_type_error(text: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(text)
    assert info.value.first.code == IssueCode.TYPE_ERROR


def test_and_or_need_two_arguments() -> None:
    for text in ("[and(true())]", "[or(true())]", "[not()]", "[true(1)]"):
        with pytest.raises(TemplateError) as info:
            ev(text)
        assert info.value.first.code == IssueCode.WRONG_ARITY
