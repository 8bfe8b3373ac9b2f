"""Logical functions: and, or, not, if, bool, true, false. and/or/if are lazy so a known answer never waits on a
value that only exists after deployment."""

from __future__ import annotations

from typing import Any

from ..errors import IssueCode
from ..values import Deferred
from ._core import FunctionError, Invocation, arg_bool, arm_function, type_name


def _condition(inv: Invocation, value: Any, position: int) -> bool | Deferred:
    if isinstance(value, Deferred):
        return value
    if not isinstance(value, bool):
        raise FunctionError(
            IssueCode.TYPE_ERROR, f"argument {position + 1} of {inv.name}() must be a boolean, got {type_name(value)}"
        )
    return value


@arm_function("and", 2, None, mode="lazy")
def and_(inv: Invocation, nodes: list[Any]) -> Any:
    deferred: Deferred | None = None
    for i, node in enumerate(nodes):
        value = _condition(inv, inv.evaluate(node), i)
        if value is False:
            return False
        if isinstance(value, Deferred):
            deferred = deferred or value
    return inv.deferred(deferred.reason) if deferred else True


@arm_function("or", 2, None, mode="lazy")
def or_(inv: Invocation, nodes: list[Any]) -> Any:
    deferred: Deferred | None = None
    for i, node in enumerate(nodes):
        value = _condition(inv, inv.evaluate(node), i)
        if value is True:
            return True
        if isinstance(value, Deferred):
            deferred = deferred or value
    return inv.deferred(deferred.reason) if deferred else False


@arm_function("not", 1, 1)
def not_(inv: Invocation, args: list[Any]) -> bool:
    return not arg_bool(inv, args, 0)


@arm_function("if", 3, 3, mode="lazy")
def if_(inv: Invocation, nodes: list[Any]) -> Any:
    condition = _condition(inv, inv.evaluate(nodes[0]), 0)
    if isinstance(condition, Deferred):
        return inv.deferred(condition.reason)
    return inv.evaluate(nodes[1] if condition else nodes[2])


@arm_function("bool", 1, 1)
def bool_(inv: Invocation, args: list[Any]) -> bool:
    value = args[0]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        # Documented: 'true' in any letter case is true, every other string is false.
        return value.strip().lower() == "true"
    raise FunctionError(IssueCode.TYPE_ERROR, f"cannot convert a {type_name(value)} to a boolean")


@arm_function("true", 0, 0)
def true_(inv: Invocation, args: list[Any]) -> bool:
    return True


@arm_function("false", 0, 0)
def false_(inv: Invocation, args: list[Any]) -> bool:
    return False
