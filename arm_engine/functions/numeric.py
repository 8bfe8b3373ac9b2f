"""Numeric functions with ARM's 64-bit integer semantics: overflow is an error, div/mod truncate toward zero
(C#), and copyIndex() asks the expander for the current loop index."""

from __future__ import annotations

import math
from typing import Any

from ..errors import IssueCode
from ._core import (
    FunctionError,
    Invocation,
    arg_int,
    arg_str,
    arm_function,
    check_int64,
    is_int,
    is_number,
    type_name,
)


def _operands(inv: Invocation, args: list[Any]) -> tuple[Any, Any]:
    a, b = args
    for i, v in enumerate((a, b)):
        if not is_number(v):
            raise FunctionError(
                IssueCode.TYPE_ERROR, f"argument {i + 1} of {inv.name}() must be an integer, got {type_name(v)}"
            )
    return a, b


def _result(value: Any) -> Any:
    if isinstance(value, float):
        return value
    return check_int64(value)


@arm_function("add", 2, 2)
def add(inv: Invocation, args: list[Any]) -> Any:
    a, b = _operands(inv, args)
    return _result(a + b)


@arm_function("sub", 2, 2)
def sub(inv: Invocation, args: list[Any]) -> Any:
    a, b = _operands(inv, args)
    return _result(a - b)


@arm_function("mul", 2, 2)
def mul(inv: Invocation, args: list[Any]) -> Any:
    a, b = _operands(inv, args)
    return _result(a * b)


def _truncated_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


@arm_function("div", 2, 2)
def div(inv: Invocation, args: list[Any]) -> Any:
    a, b = _operands(inv, args)
    if b == 0:
        raise FunctionError(IssueCode.INVALID_VALUE, "division by zero")
    if is_int(a) and is_int(b):
        return check_int64(_truncated_div(a, b))
    return a / b


@arm_function("mod", 2, 2)
def mod(inv: Invocation, args: list[Any]) -> Any:
    a, b = _operands(inv, args)
    if b == 0:
        raise FunctionError(IssueCode.INVALID_VALUE, "division by zero")
    if is_int(a) and is_int(b):
        return a - b * _truncated_div(a, b)
    return math.fmod(a, b)


def _numbers(inv: Invocation, args: list[Any]) -> list[Any]:
    values: list[Any] = []
    for a in args:  # integers, integer arrays, or a mix of both
        values.extend(a if isinstance(a, list) else [a])
    if not values:
        raise FunctionError(IssueCode.INVALID_VALUE, f"{inv.name}() needs at least one number")
    for v in values:
        if not is_number(v):
            raise FunctionError(
                IssueCode.TYPE_ERROR, f"{inv.name}() takes integers or an integer array, got {type_name(v)}"
            )
    return list(values)


@arm_function("min", 1, None)
def min_(inv: Invocation, args: list[Any]) -> Any:
    return min(_numbers(inv, args))


@arm_function("max", 1, None)
def max_(inv: Invocation, args: list[Any]) -> Any:
    return max(_numbers(inv, args))


@arm_function("int", 1, 1)
def int_(inv: Invocation, args: list[Any]) -> int:
    value = args[0]
    if is_int(value):
        result: int = value
        return result
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise FunctionError(IssueCode.INVALID_VALUE, f"{value} cannot be converted to an integer")
        return check_int64(round(value))
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not digits.isascii() or not digits.isdigit():
            raise FunctionError(IssueCode.INVALID_VALUE, f"the string {value!r} is not an integer")
        return check_int64(int(text), "the value")
    raise FunctionError(IssueCode.TYPE_ERROR, f"cannot convert a {type_name(value)} to an integer")


@arm_function("float", 1, 1)
def float_(inv: Invocation, args: list[Any]) -> float:
    value = args[0]
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise FunctionError(IssueCode.INVALID_VALUE, f"the string {value!r} is not a number") from None
        if math.isnan(result) or math.isinf(result):
            raise FunctionError(IssueCode.INVALID_VALUE, f"the string {value!r} is not a finite number")
        return result
    raise FunctionError(IssueCode.TYPE_ERROR, f"cannot convert a {type_name(value)} to a float")


@arm_function("range", 2, 2)
def range_(inv: Invocation, args: list[Any]) -> list[int]:
    start = arg_int(inv, args, 0)
    count = arg_int(inv, args, 1)
    if count < 0 or count > 10000:
        raise FunctionError(IssueCode.INVALID_VALUE, f"range() count must be between 0 and 10000, got {count}")
    if start + count > 2147483647 or start < -2147483648:
        raise FunctionError(IssueCode.INVALID_VALUE, "range() start + count must not exceed 2147483647")
    return list(range(start, start + count))


@arm_function("copyIndex", 0, 2)
def copy_index(inv: Invocation, args: list[Any]) -> int:
    loop: str | None = None
    offset = 0
    if len(args) == 2:
        loop = arg_str(inv, args, 0)
        offset = arg_int(inv, args, 1)
    elif len(args) == 1:
        if isinstance(args[0], str):
            loop = args[0]
        else:
            offset = arg_int(inv, args, 0)
    return check_int64(inv.ctx.copy_index(loop) + offset)
