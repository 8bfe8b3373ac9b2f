"""Comparison functions. equals is deep and case-sensitive for strings (Bicep's case-insensitive ``=~`` compiles
to equals(toLower(a), toLower(b))); greater/less compare numbers, or strings ordinally."""

from __future__ import annotations

from typing import Any

from ..errors import IssueCode
from ..values import Deferred
from ._core import FunctionError, Invocation, arm_equals, arm_function, is_number, type_name


@arm_function("coalesce", 1, None, mode="aware")
def coalesce(inv: Invocation, args: list[Any]) -> Any:
    for value in args:
        if isinstance(value, Deferred):
            return inv.deferred(value.reason)
        if value is not None:
            return value
    return None


@arm_function("equals", 2, 2)
def equals(inv: Invocation, args: list[Any]) -> Any:
    return arm_equals(args[0], args[1])


def _order(inv: Invocation, args: list[Any]) -> int:
    a, b = args
    if is_number(a) and is_number(b):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    raise FunctionError(
        IssueCode.TYPE_ERROR,
        f"{inv.name}() compares two integers or two strings, got {type_name(a)} and {type_name(b)}",
    )


@arm_function("greater", 2, 2)
def greater(inv: Invocation, args: list[Any]) -> bool:
    return _order(inv, args) > 0


@arm_function("greaterOrEquals", 2, 2)
def greater_or_equals(inv: Invocation, args: list[Any]) -> bool:
    return _order(inv, args) >= 0


@arm_function("less", 2, 2)
def less(inv: Invocation, args: list[Any]) -> bool:
    return _order(inv, args) < 0


@arm_function("lessOrEquals", 2, 2)
def less_or_equals(inv: Invocation, args: list[Any]) -> bool:
    return _order(inv, args) <= 0
