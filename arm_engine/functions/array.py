"""Array functions (several also take strings or objects, as in ARM): concat, contains, createArray, empty,
first/last, indexOf/lastIndexOf, length, take/skip, flatten, distinct, tryGet, indexFromEnd/tryIndexFromEnd.

Most are "shallow": an array may carry Deferred elements through (``createArray(reference('a').id)``) while a
Deferred argument as a whole still makes the result Deferred.
"""

from __future__ import annotations

from typing import Any

from ..errors import IssueCode
from ..values import Deferred
from ._core import (
    FunctionError,
    Invocation,
    arg_int,
    arg_list,
    arm_equals,
    arm_function,
    contains_deferred,
    equality_key,
    get_property,
    is_int,
    to_arm_string,
    type_name,
)


@arm_function("array", 1, 1, mode="shallow")
def array(inv: Invocation, args: list[Any]) -> list[Any]:
    value = args[0]
    if isinstance(value, list):
        return list(value)
    return [value]


@arm_function("createArray", 0, None, mode="aware")
def create_array(inv: Invocation, args: list[Any]) -> list[Any]:
    return list(args)


@arm_function("concat", 0, None, mode="shallow")
def concat(inv: Invocation, args: list[Any]) -> Any:
    if any(isinstance(a, list) for a in args):
        result: list[Any] = []
        for i, a in enumerate(args):
            if a is None:
                continue
            if not isinstance(a, list):
                raise FunctionError(
                    IssueCode.TYPE_ERROR,
                    f"either all or none of the arguments must be arrays; argument {i + 1} is a {type_name(a)}",
                )
            result.extend(a)
        return result
    for a in args:
        found = contains_deferred(a)
        if found is not None:
            return inv.deferred(found.reason)
    return "".join(to_arm_string(a) for a in args)


@arm_function("contains", 2, 2)
def contains(inv: Invocation, args: list[Any]) -> bool:
    container, item = args
    if isinstance(container, str):
        return to_arm_string(item) in container
    if isinstance(container, list):
        return any(arm_equals(x, item) for x in container)
    if isinstance(container, dict):
        if not isinstance(item, str):
            raise FunctionError(IssueCode.TYPE_ERROR, f"an object's keys are strings, got {type_name(item)}")
        return get_property(container, item)[0]
    raise FunctionError(IssueCode.TYPE_ERROR, f"contains() needs a string, array or object, got {type_name(container)}")


@arm_function("empty", 1, 1, mode="shallow")
def empty(inv: Invocation, args: list[Any]) -> bool:
    value = args[0]
    if value is None:
        return True
    if isinstance(value, (str, list, dict)):
        return len(value) == 0
    raise FunctionError(IssueCode.TYPE_ERROR, f"empty() needs a string, array, object or null, got {type_name(value)}")


@arm_function("length", 1, 1, mode="shallow")
def length(inv: Invocation, args: list[Any]) -> int:
    value = args[0]
    if isinstance(value, (str, list, dict)):
        return len(value)
    raise FunctionError(IssueCode.TYPE_ERROR, f"length() needs a string, array or object, got {type_name(value)}")


def _sequence(inv: Invocation, value: Any) -> str | list[Any]:
    if isinstance(value, (str, list)):
        return value
    raise FunctionError(IssueCode.TYPE_ERROR, f"{inv.name}() needs an array or a string, got {type_name(value)}")


@arm_function("first", 1, 1, mode="shallow")
def first(inv: Invocation, args: list[Any]) -> Any:
    seq = _sequence(inv, args[0])
    if not seq:
        return "" if isinstance(seq, str) else None
    return seq[0]


@arm_function("last", 1, 1, mode="shallow")
def last(inv: Invocation, args: list[Any]) -> Any:
    seq = _sequence(inv, args[0])
    if not seq:
        return "" if isinstance(seq, str) else None
    return seq[-1]


@arm_function("take", 2, 2, mode="shallow")
def take(inv: Invocation, args: list[Any]) -> Any:
    seq = _sequence(inv, args[0])
    count = arg_int(inv, args, 1)
    return seq[: max(count, 0)]


@arm_function("skip", 2, 2, mode="shallow")
def skip(inv: Invocation, args: list[Any]) -> Any:
    seq = _sequence(inv, args[0])
    count = arg_int(inv, args, 1)
    return seq[max(count, 0) :]


def _find(inv: Invocation, args: list[Any], from_end: bool) -> int:
    container, item = args
    if isinstance(container, str):
        if not isinstance(item, str):
            raise FunctionError(IssueCode.TYPE_ERROR, f"{inv.name}() of a string looks for a string")
        hay, needle = container.lower(), item.lower()
        return hay.rfind(needle) if from_end else hay.find(needle)
    if isinstance(container, list):
        indexes = range(len(container) - 1, -1, -1) if from_end else range(len(container))
        for i in indexes:
            if arm_equals(container[i], item):
                return i
        return -1
    raise FunctionError(IssueCode.TYPE_ERROR, f"{inv.name}() needs a string or an array, got {type_name(container)}")


@arm_function("indexOf", 2, 2)
def index_of(inv: Invocation, args: list[Any]) -> int:
    return _find(inv, args, from_end=False)


@arm_function("lastIndexOf", 2, 2)
def last_index_of(inv: Invocation, args: list[Any]) -> int:
    return _find(inv, args, from_end=True)


@arm_function("flatten", 1, 1, mode="shallow")
def flatten(inv: Invocation, args: list[Any]) -> list[Any]:
    result: list[Any] = []
    for item in arg_list(inv, args, 0):
        if isinstance(item, Deferred):
            return inv.deferred(item.reason)  # type: ignore[return-value]
        if not isinstance(item, list):
            raise FunctionError(IssueCode.TYPE_ERROR, f"flatten() needs an array of arrays, found a {type_name(item)}")
        result.extend(item)
    return result


@arm_function("distinct", 1, 1)
def distinct(inv: Invocation, args: list[Any]) -> list[Any]:
    result: list[Any] = []
    seen: set[Any] = set()
    for item in arg_list(inv, args, 0):
        key = equality_key(item)
        if key not in seen:
            seen.add(key)
            result.append(item)
    return result


def _index_from_end(inv: Invocation, args: list[Any], strict: bool) -> Any:
    seq = arg_list(inv, args, 0)
    n = arg_int(inv, args, 1)
    if 1 <= n <= len(seq):
        return seq[len(seq) - n]
    if strict:
        raise FunctionError(
            IssueCode.INDEX_OUT_OF_RANGE, f"index {n} from the end is out of range for an array of length {len(seq)}"
        )
    return None


@arm_function("indexFromEnd", 2, 2, mode="shallow")
def index_from_end(inv: Invocation, args: list[Any]) -> Any:
    return _index_from_end(inv, args, strict=True)


@arm_function("tryIndexFromEnd", 2, 2, mode="shallow")
def try_index_from_end(inv: Invocation, args: list[Any]) -> Any:
    return _index_from_end(inv, args, strict=False)


@arm_function("tryGet", 2, None, mode="shallow")
def try_get(inv: Invocation, args: list[Any]) -> Any:
    """tryGet(value, key, ...): null instead of an error when a property or index is missing."""
    value = args[0]
    for key in args[1:]:
        if isinstance(value, Deferred):
            return inv.deferred(value.reason)
        if isinstance(value, dict) and isinstance(key, str):
            found, value = get_property(value, key)
            if not found:
                return None
        elif isinstance(value, list) and is_int(key):
            if not 0 <= key < len(value):
                return None
            value = value[key]
        else:
            return None  # a missing property, an index out of range, or a value of another type
    return value
