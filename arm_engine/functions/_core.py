"""The function registry and the value helpers every family shares (ARM's types, equality, JSON rendering).

ARM values are JSON values: str, int (64-bit), bool (distinct from int), float (from json() only), list, dict,
None. Object keys compare case-insensitively on lookup, as in ARM.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from ..errors import IssueCode
from ..expressions import INT64_MAX, INT64_MIN
from ..values import Deferred

if TYPE_CHECKING:
    from ..context import EvaluationContext
    from ..expressions import Call, Expr


class FunctionError(Exception):
    """Raised by function implementations; the evaluator adds the JSON path and the expression text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Invocation:
    """What a function implementation sees of the evaluation: the context, its own call, lazy evaluation."""

    __slots__ = ("evaluation", "node")

    def __init__(self, evaluation: Any, node: Call) -> None:
        self.evaluation = evaluation
        self.node = node

    @property
    def ctx(self) -> EvaluationContext:
        ctx: EvaluationContext = self.evaluation.ctx
        return ctx

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def text(self) -> str:
        return self.node.text

    def evaluate(self, node: Expr) -> Any:
        return self.evaluation.eval(node)

    def call_lambda(self, fn: Any, *values: Any) -> Any:
        if not isinstance(fn, LambdaValue):
            raise FunctionError(IssueCode.TYPE_ERROR, f"{self.name}() expects a lambda, got {type_name(fn)}")
        return self.evaluation.call_lambda(fn, values, self.name)

    def deferred(self, reason: str = "") -> Deferred:
        return Deferred(f"[{self.node.text}]", reason)


Mode = Literal["eager", "shallow", "aware", "lazy"]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """``mode``: eager — any Deferred anywhere in the arguments makes the result Deferred; shallow — only a
    top-level Deferred argument does (the function carries nested ones along, e.g. createArray); aware — the
    function sees Deferred arguments itself; lazy — it receives the unevaluated argument nodes."""

    name: str
    impl: Callable[[Invocation, list[Any]], Any]
    min_args: int
    max_args: int | None
    mode: Mode


REGISTRY: dict[str, FunctionSpec] = {}


def arm_function(
    name: str, min_args: int = 0, max_args: int | None = None, *, mode: Mode = "eager"
) -> Callable[[Callable[[Invocation, list[Any]], Any]], Callable[[Invocation, list[Any]], Any]]:
    def register(impl: Callable[[Invocation, list[Any]], Any]) -> Callable[[Invocation, list[Any]], Any]:
        REGISTRY[name.lower()] = FunctionSpec(name, impl, min_args, max_args, mode)
        return impl

    return register


@dataclass(frozen=True, slots=True)
class LambdaValue:
    """A lambda(...) argument: evaluated only when a lambda-taking function applies it."""

    params: tuple[str, ...]
    body: Expr
    scope: dict[str, Any]
    text: str


# ---------------------------------------------------------------- types


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, float)


def type_name(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, LambdaValue):
        return "Lambda"
    if isinstance(value, Deferred):
        return "Deferred"
    return type(value).__name__


def _bad(inv: Invocation, index: int, expected: str, value: Any) -> FunctionError:
    return FunctionError(
        IssueCode.TYPE_ERROR,
        f"argument {index + 1} of {inv.name}() must be {expected}, got {type_name(value)}",
    )


def arg_str(inv: Invocation, args: list[Any], index: int) -> str:
    value = args[index]
    if not isinstance(value, str):
        raise _bad(inv, index, "a string", value)
    return value


def arg_int(inv: Invocation, args: list[Any], index: int) -> int:
    value = args[index]
    if not is_int(value):
        raise _bad(inv, index, "an integer", value)
    result: int = value
    return result


def arg_bool(inv: Invocation, args: list[Any], index: int) -> bool:
    value = args[index]
    if not isinstance(value, bool):
        raise _bad(inv, index, "a boolean", value)
    return value


def arg_list(inv: Invocation, args: list[Any], index: int) -> list[Any]:
    value = args[index]
    if not isinstance(value, list):
        raise _bad(inv, index, "an array", value)
    return value


def arg_dict(inv: Invocation, args: list[Any], index: int) -> dict[str, Any]:
    value = args[index]
    if not isinstance(value, dict):
        raise _bad(inv, index, "an object", value)
    return value


def check_int64(value: int, what: str = "the result") -> int:
    """ARM integers are 64-bit; Python's are not, so every arithmetic result is checked."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise FunctionError(IssueCode.INVALID_VALUE, f"{what} {value} overflows a 64-bit integer")
    return value


# ---------------------------------------------------------------- values


def get_property(obj: dict[str, Any], name: str) -> tuple[bool, Any]:
    """Case-insensitive lookup (exact match first), as ARM resolves object properties."""
    if name in obj:
        return True, obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if key.lower() == lowered:
            return True, value
    return False, None


def arm_equals(a: Any, b: Any) -> bool:
    """Deep JSON equality: ints and bools are distinct; object keys compare case-insensitively."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(arm_equals(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        if len(a) != len(b):
            return False
        for key, value in a.items():
            found, other = get_property(b, key)
            if not found or not arm_equals(value, other):
                return False
        return True
    if a is None and b is None:
        return True
    if isinstance(a, Deferred) and isinstance(b, Deferred):
        return a == b
    return False


def equality_key(value: Any) -> Any:
    """A hashable key with ``equality_key(a) == equality_key(b)`` exactly when ``arm_equals(a, b)`` (keys
    compared case-insensitively), so union/distinct/intersection run in linear time on big arrays."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if value is None:
        return ("z",)
    if isinstance(value, list):
        return ("l", tuple(equality_key(v) for v in value))
    if isinstance(value, dict):
        return ("d", frozenset((str(k).lower(), equality_key(v)) for k, v in value.items()))
    if isinstance(value, Deferred):
        return ("x", value.expression, value.reason)
    return ("o", id(value))


def to_json(value: Any) -> str:
    """Compact JSON as ARM renders objects and arrays in strings (no spaces)."""
    return json.dumps(_jsonable(value), separators=(",", ":"), ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Deferred):
        return value.expression
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return value


def format_float(value: float) -> str:
    """.NET's default (shortest round-trip) rendering of a double: integral values without a decimal point, and
    scientific notation from 1E+15 up and from 1E-05 down (Python's repr switches at 1e16)."""
    if math.isnan(value) or math.isinf(value):
        return "NaN" if math.isnan(value) else ("-∞" if value < 0 else "∞")
    if value == 0:
        return "0"
    _, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    sci_exponent = len(text) - 1 + exponent
    sign = "-" if value < 0 else ""
    if sci_exponent >= 15 or sci_exponent < -4:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        exp_sign = "-" if sci_exponent < 0 else "+"
        return f"{sign}{mantissa}E{exp_sign}{abs(sci_exponent):02d}"
    if exponent >= 0:
        return sign + text + "0" * exponent
    point = len(text) + exponent
    if point > 0:
        return f"{sign}{text[:point]}.{text[point:]}"
    return f"{sign}0.{'0' * -point}{text}"


def to_arm_string(value: Any) -> str:
    """How ARM turns a value into text in string(), concat() and format(): .NET-style booleans, compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return to_json(value)
    if isinstance(value, Deferred):
        return value.expression
    raise FunctionError(IssueCode.TYPE_ERROR, f"a {type_name(value)} cannot be converted to a string")


def contains_deferred(value: Any) -> Deferred | None:
    if isinstance(value, Deferred):
        return value
    if isinstance(value, list):
        for item in value:
            found = contains_deferred(item)
            if found is not None:
                return found
    elif isinstance(value, dict):
        for item in value.values():
            found = contains_deferred(item)
            if found is not None:
                return found
    return None


def deep_copy(value: Any) -> Any:
    """Copy JSON containers so results never alias template or parameter values."""
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value
