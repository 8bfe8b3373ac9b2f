"""Object functions: createObject, union (deep for objects, as ARM merges nested objects), intersection,
shallowMerge, items (sorted by key), objectKeys, json, null."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import IssueCode
from ..expressions import INT64_MAX, INT64_MIN
from ..values import Deferred
from ._core import (
    FunctionError,
    Invocation,
    arg_dict,
    arg_list,
    arg_str,
    arm_equals,
    arm_function,
    equality_key,
    get_property,
    type_name,
)


@arm_function("createObject", 0, None, mode="aware")
def create_object(inv: Invocation, args: list[Any]) -> Any:
    if len(args) % 2:
        raise FunctionError(IssueCode.WRONG_ARITY, "createObject() takes key/value pairs: an even number of arguments")
    result: dict[str, Any] = {}
    for i in range(0, len(args), 2):
        if isinstance(args[i], Deferred):
            return inv.deferred(args[i].reason)
        _put(result, arg_str(inv, args, i), args[i + 1])
    return result


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Assign with ARM's case-insensitive keys: an existing key keeps its spelling."""
    if key not in target:
        lowered = key.lower()
        for existing in target:
            if existing.lower() == lowered:
                key = existing
                break
    target[key] = value


def _merge(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in other.items():
        found, current = get_property(result, key)
        if found and isinstance(current, dict) and isinstance(value, dict):
            value = _merge(current, value)
        _put(result, key, value)
    return result


def _same_kind(inv: Invocation, args: list[Any]) -> str:
    if all(isinstance(a, list) for a in args):
        return "array"
    if all(isinstance(a, dict) for a in args):
        return "object"
    kinds = ", ".join(type_name(a) for a in args)
    raise FunctionError(IssueCode.TYPE_ERROR, f"{inv.name}() needs all arrays or all objects, got {kinds}")


@arm_function("union", 2, None, mode="shallow")
def union(inv: Invocation, args: list[Any]) -> Any:
    args = [a for a in args if a is not None]  # null arguments contribute nothing
    if not args:
        return None
    if _same_kind(inv, args) == "array":
        result: list[Any] = []
        seen: set[Any] = set()
        for arr in args:
            for item in arr:
                key = equality_key(item)
                if key not in seen:
                    seen.add(key)
                    result.append(item)
        return result
    merged: dict[str, Any] = {}
    for obj in args:
        merged = _merge(merged, obj)
    return merged


@arm_function("intersection", 2, None)
def intersection(inv: Invocation, args: list[Any]) -> Any:
    if _same_kind(inv, args) == "array":
        others = [{equality_key(x) for x in other} for other in args[1:]]
        result: list[Any] = []
        seen: set[Any] = set()
        for item in args[0]:
            key = equality_key(item)
            if key not in seen and all(key in other for other in others):
                seen.add(key)
                result.append(item)
        return result
    common: dict[str, Any] = {}
    for key, value in args[0].items():
        if all(get_property(o, key)[0] and arm_equals(get_property(o, key)[1], value) for o in args[1:]):
            common[key] = value
    return common


@arm_function("shallowMerge", 1, 1, mode="shallow")
def shallow_merge(inv: Invocation, args: list[Any]) -> Any:
    result: dict[str, Any] = {}
    for item in arg_list(inv, args, 0):
        if isinstance(item, Deferred):
            return inv.deferred(item.reason)
        if not isinstance(item, dict):
            raise FunctionError(
                IssueCode.TYPE_ERROR, f"shallowMerge() needs an array of objects, found {type_name(item)}"
            )
        for key, value in item.items():
            _put(result, key, value)
    return result


@arm_function("items", 1, 1, mode="shallow")
def items(inv: Invocation, args: list[Any]) -> list[dict[str, Any]]:
    obj = arg_dict(inv, args, 0)
    # Sorted by key as .NET's default string order does: letters case-insensitively, lower case first on ties.
    return [{"key": k, "value": obj[k]} for k in sorted(obj, key=lambda k: (k.lower(), k.swapcase()))]


@arm_function("objectKeys", 1, 1, mode="shallow")
def object_keys(inv: Invocation, args: list[Any]) -> list[str]:
    return list(arg_dict(inv, args, 0))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(text: str) -> int | float:
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else float(value)


def parse_json(text: str) -> Any:
    """Strict JSON first; then the leniency of ARM's JSON reader (Newtonsoft): single-quoted strings, unquoted
    property names, comments and trailing commas, as in the documented ``json("{'one': 'a'}")``."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except RecursionError:
        raise FunctionError(IssueCode.INVALID_VALUE, "the JSON is nested too deeply") from None
    except ValueError as exc:
        strict_error = exc
    try:
        return _LenientJson(text).document()
    except (ValueError, RecursionError):
        raise FunctionError(IssueCode.INVALID_VALUE, f"the string is not valid JSON: {strict_error}") from None


class _LenientJson:
    _NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
    _NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
    _ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", "'": "'", '"': '"'}

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def document(self) -> Any:
        value = self.value()
        self.space()
        if self.pos != len(self.text):
            raise ValueError("unexpected text after the JSON value")
        return value

    def space(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            if text[self.pos].isspace():
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise ValueError("unterminated comment")
                self.pos = end + 2
            else:
                break

    def value(self) -> Any:
        self.space()
        if self.pos >= len(self.text):
            raise ValueError("unexpected end of JSON")
        ch = self.text[self.pos]
        if ch == "{":
            return self.obj()
        if ch == "[":
            return self.arr()
        if ch in "'\"":
            return self.string()
        m = self._NUMBER.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            raw = m.group()
            if any(c in raw for c in ".eE"):
                return float(raw)
            return _parse_int(raw)
        m = self._NAME.match(self.text, self.pos)
        if m and m.group() in ("true", "false", "null"):
            self.pos = m.end()
            return {"true": True, "false": False, "null": None}[m.group()]
        raise ValueError(f"unexpected character {ch!r}")

    def string(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise ValueError("unterminated string")
            ch = self.text[self.pos]
            if ch == quote:
                self.pos += 1
                return "".join(out)
            if ch == "\\":
                nxt = self.text[self.pos + 1 : self.pos + 2]
                if nxt == "u":
                    out.append(chr(int(self.text[self.pos + 2 : self.pos + 6], 16)))
                    self.pos += 6
                    continue
                if nxt not in self._ESCAPES:
                    raise ValueError("invalid escape")
                out.append(self._ESCAPES[nxt])
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1

    def obj(self) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        while True:
            self.space()
            if self.text[self.pos : self.pos + 1] == "}":
                self.pos += 1
                return result
            if self.text[self.pos : self.pos + 1] in ("'", '"'):
                key = self.string()
            else:
                m = self._NAME.match(self.text, self.pos)
                if not m:
                    raise ValueError("expected a property name")
                key = m.group()
                self.pos = m.end()
            self.space()
            if self.text[self.pos : self.pos + 1] != ":":
                raise ValueError("expected ':'")
            self.pos += 1
            result[key] = self.value()
            self.space()
            sep = self.text[self.pos : self.pos + 1]
            if sep == ",":
                self.pos += 1
            elif sep != "}":
                raise ValueError("expected ',' or '}'")

    def arr(self) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        while True:
            self.space()
            if self.text[self.pos : self.pos + 1] == "]":
                self.pos += 1
                return result
            result.append(self.value())
            self.space()
            sep = self.text[self.pos : self.pos + 1]
            if sep == ",":
                self.pos += 1
            elif sep != "]":
                raise ValueError("expected ',' or ']'")


@arm_function("json", 1, 1)
def json_(inv: Invocation, args: list[Any]) -> Any:
    return parse_json(arg_str(inv, args, 0))


@arm_function("null", 0, 0)
def null(inv: Invocation, args: list[Any]) -> None:
    return None
