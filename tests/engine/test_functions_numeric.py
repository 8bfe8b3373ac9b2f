"""Numeric functions with ARM's 64-bit integers: overflow, truncating div/mod, conversions, copyIndex."""

from __future__ import annotations

from typing import Any

import pytest

from arm_engine.errors import IssueCode, TemplateError
from tests.support.expressions import SimpleContext, ev

MAX = 9223372036854775807
MIN = -9223372036854775808


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[add(5, 3)]", 8),
        ("[sub(7, 3)]", 4),
        ("[mul(-4, 3)]", -12),
        ("[div(8, 3)]", 2),
        ("[div(-7, 2)]", -3),
        ("[div(7, -2)]", -3),
        ("[mod(7, 3)]", 1),
        ("[mod(-7, 2)]", -1),
        ("[mod(7, -2)]", 1),
        ("[min(createArray(0, 3, 2, 5, 4))]", 0),
        ("[min(0, 3, 2, 5, 4)]", 0),
        ("[max(createArray(0, 3, 2, 5, 4))]", 5),
        ("[max(-1)]", -1),
        ("[max(1, createArray(7, 2), 3)]", 7),
        ("[int('4')]", 4),
        ("[int(' -12 ')]", -12),
        ("[int(7)]", 7),
        ("[int('9223372036854775807')]", MAX),
        ("[float('3.0')]", 3.0),
        ("[float(2)]", 2.0),
        ("[range(1, 3)]", [1, 2, 3]),
        ("[range(5, 0)]", []),
        ("[range(-2, 2)]", [-2, -1]),
        (f"[add({MAX}, 0)]", MAX),
        (f"[sub({MIN + 1}, 1)]", MIN),
        ("[add(-9223372036854775808, 1)]", MIN + 1),
    ],
)
def test_numeric(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (f"[add({MAX}, 1)]", IssueCode.INVALID_VALUE),
        (f"[sub({MIN}, 1)]", IssueCode.INVALID_VALUE),
        (f"[mul({MAX}, 2)]", IssueCode.INVALID_VALUE),
        (f"[div({MIN}, -1)]", IssueCode.INVALID_VALUE),
        ("[int('9223372036854775808')]", IssueCode.INVALID_VALUE),
        ("[9223372036854775808]", IssueCode.EXPRESSION_SYNTAX),
        ("[div(1, 0)]", IssueCode.INVALID_VALUE),
        ("[mod(1, 0)]", IssueCode.INVALID_VALUE),
        ("[add(1, '1')]", IssueCode.TYPE_ERROR),
        ("[add(true(), 1)]", IssueCode.TYPE_ERROR),
        ("[int('1.5')]", IssueCode.INVALID_VALUE),
        ("[int('abc')]", IssueCode.INVALID_VALUE),
        ("[int(true())]", IssueCode.TYPE_ERROR),
        ("[float('x')]", IssueCode.INVALID_VALUE),
        ("[min(createArray())]", IssueCode.INVALID_VALUE),
        ("[max('a', 'b')]", IssueCode.TYPE_ERROR),
        ("[range(0, 10001)]", IssueCode.INVALID_VALUE),
        ("[range(0, -1)]", IssueCode.INVALID_VALUE),
        ("[range(2147483647, 1)]", IssueCode.INVALID_VALUE),
        ("[add(1)]", IssueCode.WRONG_ARITY),
    ],
)
def test_numeric_errors(text: str, code: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(text)
    assert info.value.first.code == code


def test_copy_index_offsets_and_named_loops() -> None:
    ctx = SimpleContext(copy_indexes={"": 2, "vmLoop": 5})
    assert ev("[copyIndex()]", ctx) == 2
    assert ev("[copyIndex(1)]", ctx) == 3
    assert ev("[copyIndex('vmLoop')]", ctx) == 5
    assert ev("[copyIndex('vmLoop', 10)]", ctx) == 15
    assert ev("[format('vm{0:D3}', copyIndex(1))]", ctx) == "vm003"
    with pytest.raises(TemplateError):
        ev("[copyIndex('otherLoop')]", ctx)
    with pytest.raises(TemplateError) as info:
        ev("[copyIndex(1, 2)]", ctx)
    assert info.value.first.code == IssueCode.TYPE_ERROR
