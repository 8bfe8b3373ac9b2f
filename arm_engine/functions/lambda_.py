"""Lambda functions: lambda() builds a value that filter/map/reduce/sort/toObject/groupBy/mapValues apply
lazily; lambdaVariables() reads a lambda parameter. Lambdas may take an index as their last parameter
(map(items, lambda('x', 'i', ...))), as Bicep's (item, index) => ... compiles."""

from __future__ import annotations

import functools
from typing import Any

from ..errors import IssueCode
from ..values import Deferred
from ._core import (
    FunctionError,
    Invocation,
    LambdaValue,
    arg_dict,
    arg_list,
    arm_function,
    type_name,
)


@arm_function("lambda", 2, None, mode="lazy")
def lambda_(inv: Invocation, nodes: list[Any]) -> LambdaValue:
    params: list[str] = []
    for node in nodes[:-1]:
        name = inv.evaluate(node)
        if not isinstance(name, str) or not name:
            raise FunctionError(IssueCode.TYPE_ERROR, "lambda() parameter names must be non-empty string literals")
        params.append(name)
    return LambdaValue(tuple(params), nodes[-1], inv.evaluation.lambda_scope, inv.text)


@arm_function("lambdaVariables", 1, 1)
def lambda_variables(inv: Invocation, args: list[Any]) -> Any:
    name = args[0]
    scope: dict[str, Any] = inv.evaluation.lambda_scope
    if not isinstance(name, str) or name.lower() not in scope:
        raise FunctionError(IssueCode.INVALID_VALUE, f"there is no lambda variable {name!r} in scope")
    return scope[name.lower()]


@arm_function("filter", 2, 2, mode="shallow")
def filter_(inv: Invocation, args: list[Any]) -> Any:
    result = []
    for i, item in enumerate(arg_list(inv, args, 0)):
        keep = inv.call_lambda(args[1], item, i)
        if isinstance(keep, Deferred):
            return inv.deferred(keep.reason)
        if not isinstance(keep, bool):
            raise FunctionError(IssueCode.TYPE_ERROR, f"the filter lambda must return a boolean, got {type_name(keep)}")
        if keep:
            result.append(item)
    return result


@arm_function("map", 2, 2, mode="shallow")
def map_(inv: Invocation, args: list[Any]) -> list[Any]:
    return [inv.call_lambda(args[1], item, i) for i, item in enumerate(arg_list(inv, args, 0))]


@arm_function("reduce", 3, 3, mode="shallow")
def reduce_(inv: Invocation, args: list[Any]) -> Any:
    acc = args[1]
    for i, item in enumerate(arg_list(inv, args, 0)):
        acc = inv.call_lambda(args[2], acc, item, i)
    return acc


@arm_function("sort", 2, 2, mode="shallow")
def sort_(inv: Invocation, args: list[Any]) -> Any:
    items = arg_list(inv, args, 0)
    fn = args[1]

    def before(a: Any, b: Any) -> bool:
        answer = inv.call_lambda(fn, a, b)
        if isinstance(answer, Deferred):
            raise _DeferredSort(answer)
        if not isinstance(answer, bool):
            raise FunctionError(IssueCode.TYPE_ERROR, f"the sort lambda must return a boolean, got {type_name(answer)}")
        return answer

    def compare(a: Any, b: Any) -> int:
        if before(a, b):
            return -1
        if before(b, a):
            return 1
        return 0

    try:
        return sorted(items, key=functools.cmp_to_key(compare))
    except _DeferredSort as exc:
        return inv.deferred(exc.value.reason)


class _DeferredSort(Exception):
    def __init__(self, value: Deferred) -> None:
        self.value = value


def _key(inv: Invocation, value: Any) -> str | Deferred:
    if isinstance(value, (str, Deferred)):
        return value
    raise FunctionError(
        IssueCode.TYPE_ERROR, f"the key lambda of {inv.name}() must return a string, got {type_name(value)}"
    )


@arm_function("toObject", 2, 3, mode="shallow")
def to_object(inv: Invocation, args: list[Any]) -> Any:
    result: dict[str, Any] = {}
    for item in arg_list(inv, args, 0):
        key = _key(inv, inv.call_lambda(args[1], item))
        if isinstance(key, Deferred):
            return inv.deferred(key.reason)
        result[key] = inv.call_lambda(args[2], item) if len(args) > 2 else item
    return result


@arm_function("groupBy", 2, 3, mode="shallow")
def group_by(inv: Invocation, args: list[Any]) -> Any:
    result: dict[str, list[Any]] = {}
    for item in arg_list(inv, args, 0):
        key = _key(inv, inv.call_lambda(args[1], item))
        if isinstance(key, Deferred):
            return inv.deferred(key.reason)
        value = inv.call_lambda(args[2], item) if len(args) > 2 else item
        result.setdefault(key, []).append(value)
    return result


@arm_function("mapValues", 2, 2, mode="shallow")
def map_values(inv: Invocation, args: list[Any]) -> dict[str, Any]:
    return {k: inv.call_lambda(args[1], v) for k, v in arg_dict(inv, args, 0).items()}
