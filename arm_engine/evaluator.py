"""Evaluate ARM template expressions against an EvaluationContext.

Public API (the template expander calls these):

- ``is_expression(text)``: ``"[...]"`` and not starting with ``"[["``.
- ``parse_expression(text, path="")``: the AST, or TemplateError(ExpressionSyntaxError) naming ``path``.
- ``evaluate_string(text, ctx, path)``: an expression string is evaluated; ``"[[..."`` becomes the literal
  ``"[..."``; any other string comes back unchanged.
- ``evaluate_value(value, ctx, path)``: recursive over dicts and lists (expression keys are evaluated too); paths
  grow like ``properties.siteConfig.appSettings[2].value``. The ``copy`` property is the expander's business.
- ``expression_references(text)``: without evaluating, every function call in an expression, outermost first,
  in source order, as ``(name, args)`` where ``name`` is lower-case (``"ns.fn"`` for user functions) and each
  argument is its literal value when the argument is a literal string/int/bool/null and ``UNKNOWN`` otherwise.
  ``"[reference(variables('x')).id]"`` gives ``[("reference", [UNKNOWN]), ("variables", ["x"])]``. Strings that
  are not expressions give ``[]``; a syntax error raises TemplateError.

Values that only exist after deployment are ``Deferred``; any function given a Deferred argument returns a
Deferred for its own text, except the lazy ones that do not need it (``if`` with a known condition, ``coalesce``
with an earlier known non-null value, ``and``/``or`` that short-circuit). Every failure is a TemplateError
carrying the JSON path and the expression text.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any, Final

from . import functions as _functions  # noqa: F401  (registers the library)
from .context import EvaluationContext
from .errors import IssueCode, TemplateError, TemplateIssue
from .expressions import (
    Call,
    Expr,
    ExpressionSyntaxError,
    Index,
    Literal,
    Property,
    is_escaped_literal,
    is_expression,
    parse_body,
    parse_expression,
)
from .functions._core import (
    REGISTRY,
    FunctionError,
    Invocation,
    LambdaValue,
    contains_deferred,
    get_property,
    is_int,
    type_name,
)
from .values import Deferred

__all__ = [
    "UNKNOWN",
    "evaluate_expression",
    "evaluate_string",
    "evaluate_value",
    "expression_references",
    "is_expression",
    "parse_expression",
]


class _Unknown:
    """Marker for a non-literal argument in ``expression_references``."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()

# The safety net's message: an engine bug surfaced as a TemplateError rather than a bare Python exception.
INTERNAL_ERROR_PREFIX = "internal error while evaluating:"


class _Evaluation:
    """One top-level expression being evaluated: its context, path, text and the lambda variables in scope."""

    __slots__ = ("ctx", "lambda_scope", "new_guids", "path", "text")

    def __init__(self, ctx: EvaluationContext, path: str, text: str) -> None:
        self.ctx = ctx
        self.path = path
        self.text = text
        self.lambda_scope: dict[str, Any] = {}
        self.new_guids = 0  # newGuid() calls so far: each gets its own value

    def fail(self, code: str, message: str) -> TemplateError:
        return TemplateError(
            TemplateIssue(code, f"{message} (in {self.text!r})", self.path, details={"expression": self.text})
        )

    def eval(self, node: Expr) -> Any:
        kind = type(node)
        if kind is Literal:
            return node.value  # type: ignore[union-attr]
        if kind is Call:
            return self.call(node)  # type: ignore[arg-type]
        if kind is Property:
            return self.member(self.eval(node.target), node.name, node.text)  # type: ignore[union-attr]
        if kind is Index:
            target = self.eval(node.target)  # type: ignore[union-attr]
            index = self.eval(node.index)  # type: ignore[union-attr]
            return self.index(target, index, node.text)  # type: ignore[union-attr]
        raise self.fail(IssueCode.EXPRESSION_SYNTAX, f"unsupported expression node {kind.__name__}")

    def member(self, target: Any, name: str, text: str) -> Any:
        if isinstance(target, Deferred):
            return Deferred(f"[{text}]", target.reason)
        if isinstance(target, dict):
            found, value = get_property(target, name)
            if not found:
                available = ", ".join(f"'{k}'" for k in list(target)[:20]) or "none"
                raise self.fail(
                    IssueCode.MISSING_PROPERTY,
                    f"the property '{name}' does not exist; available properties are {available}",
                )
            return value
        if target is None:
            raise self.fail(IssueCode.MISSING_PROPERTY, f"cannot read property '{name}' of null")
        raise self.fail(IssueCode.TYPE_ERROR, f"cannot read property '{name}' of a {type_name(target)}")

    def index(self, target: Any, index: Any, text: str) -> Any:
        if isinstance(target, Deferred) or isinstance(index, Deferred):
            reason = target.reason if isinstance(target, Deferred) else index.reason
            return Deferred(f"[{text}]", reason)
        if isinstance(target, list):
            if not is_int(index):
                raise self.fail(IssueCode.TYPE_ERROR, f"an array index must be an integer, got {type_name(index)}")
            if not 0 <= index < len(target):
                raise self.fail(
                    IssueCode.INDEX_OUT_OF_RANGE,
                    f"index {index} is out of range for an array of length {len(target)}",
                )
            return target[index]
        if isinstance(target, dict):
            if not isinstance(index, str):
                raise self.fail(IssueCode.TYPE_ERROR, f"an object is indexed by a string, got {type_name(index)}")
            return self.member(target, index, text)
        if target is None:
            raise self.fail(IssueCode.MISSING_PROPERTY, f"cannot index null with {index!r}")
        raise self.fail(IssueCode.TYPE_ERROR, f"a {type_name(target)} cannot be indexed")

    def call(self, node: Call) -> Any:
        if node.namespace is not None:
            return self.call_user_function(node)
        spec = REGISTRY.get(node.key)
        if spec is None:
            if node.key.startswith("list"):
                spec = REGISTRY["list"]
            else:
                raise self.fail(IssueCode.UNKNOWN_FUNCTION, _unknown_function_message(node.name))
        arity = _arity_problem(node, spec)
        if arity is not None:
            raise self.fail(IssueCode.WRONG_ARITY, arity)
        inv = Invocation(self, node)
        try:
            if spec.mode == "lazy":
                return spec.impl(inv, list(node.args))
            args = [self.eval(a) for a in node.args]
            if spec.mode == "eager":
                for a in args:
                    found = contains_deferred(a)
                    if found is not None:
                        return Deferred(f"[{node.text}]", found.reason)
            elif spec.mode == "shallow":
                for a in args:
                    if isinstance(a, Deferred):
                        return Deferred(f"[{node.text}]", a.reason)
            return spec.impl(inv, args)
        except FunctionError as exc:
            message = exc.message if f"{node.name}(" in exc.message else f"{node.name}(): {exc.message}"
            raise self.fail(exc.code, message) from None

    def call_lambda(self, fn: LambdaValue, values: tuple[Any, ...], caller: str) -> Any:
        if len(fn.params) > len(values):
            raise FunctionError(
                IssueCode.WRONG_ARITY,
                f"the lambda passed to {caller}() takes {len(fn.params)} parameter(s); at most {len(values)} allowed",
            )
        saved = self.lambda_scope
        scope = dict(fn.scope)
        for name, value in zip(fn.params, values, strict=False):
            scope[name.lower()] = value
        self.lambda_scope = scope
        try:
            return self.eval(fn.body)
        finally:
            self.lambda_scope = saved

    def call_user_function(self, node: Call) -> Any:
        namespace = node.namespace or ""
        decl = self.ctx.user_function(namespace, node.name)
        if decl is None:
            raise self.fail(
                IssueCode.UNKNOWN_FUNCTION, f"the user-defined function '{namespace}.{node.name}' is not declared"
            )
        params = decl.get("parameters") or []
        if len(params) != len(node.args):
            raise self.fail(
                IssueCode.WRONG_ARITY,
                f"the function '{namespace}.{node.name}' expects {len(params)} argument(s) but got {len(node.args)}",
            )
        args = [self.eval(a) for a in node.args]
        for a in args:
            found = contains_deferred(a)
            if found is not None:
                return Deferred(f"[{node.text}]", found.reason)
        values: dict[str, Any] = {}
        for param, value in zip(params, args, strict=True):
            values[str(param.get("name", "")).lower()] = value
            _check_declared_type(self, param, value, f"{namespace}.{node.name}")
        output = decl.get("output") or {}
        if "value" not in output:
            raise self.fail(IssueCode.INVALID_TEMPLATE, f"the function '{namespace}.{node.name}' has no output value")
        inner = _UserFunctionContext(self.ctx, values, f"{namespace}.{node.name}")
        result = evaluate_value(output["value"], inner, self.path)
        _check_declared_type(self, output, result, f"{namespace}.{node.name}")
        return result


_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "securestring": lambda v: isinstance(v, str),
    "int": is_int,
    "bool": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "secureobject": lambda v: isinstance(v, dict),
}


def _check_declared_type(ev: _Evaluation, decl: dict[str, Any], value: Any, function: str) -> None:
    declared = str(decl.get("type", "")).lower()
    check = _TYPE_CHECKS.get(declared)
    if check is None or value is None or isinstance(value, Deferred) or decl.get("nullable"):
        return
    if not check(value):
        what = f"parameter '{decl['name']}'" if "name" in decl else "output"
        raise ev.fail(IssueCode.TYPE_ERROR, f"{function}: {what} expects {declared}, got {type_name(value)}")


def _arity_problem(node: Call, spec: Any) -> str | None:
    argc = len(node.args)
    if argc >= spec.min_args and (spec.max_args is None or argc <= spec.max_args):
        return None
    if spec.max_args is None:
        expected = f"at least {spec.min_args}"
    elif spec.min_args == spec.max_args:
        expected = str(spec.min_args)
    else:
        expected = f"{spec.min_args} to {spec.max_args}"
    return f"the template function '{node.name}' expects {expected} argument(s) but got {argc}"


def calls_in(expr: Expr) -> Iterator[Call]:
    """Every function call in a parsed expression, outer calls before the calls in their arguments."""
    if isinstance(expr, Call):
        yield expr
        for arg in expr.args:
            yield from calls_in(arg)
    elif isinstance(expr, Property):
        yield from calls_in(expr.target)
    elif isinstance(expr, Index):
        yield from calls_in(expr.target)
        yield from calls_in(expr.index)


def call_problems(expr: Expr) -> list[tuple[str, str]]:
    """Unknown template functions and wrong argument counts anywhere in a parsed expression — what evaluation would
    report one at a time, found without evaluating (the lint gate lists every one)."""
    found: list[tuple[str, str]] = []
    for node in calls_in(expr):
        if node.namespace is not None:
            continue
        spec = REGISTRY.get(node.key) or (REGISTRY["list"] if node.key.startswith("list") else None)
        if spec is None:
            found.append((IssueCode.UNKNOWN_FUNCTION, _unknown_function_message(node.name)))
        else:
            arity = _arity_problem(node, spec)
            if arity is not None:
                found.append((IssueCode.WRONG_ARITY, arity))
    return found


def _unknown_function_message(name: str) -> str:
    names = {spec.name.lower(): spec.name for spec in REGISTRY.values()}
    close = difflib.get_close_matches(name.lower(), list(names), n=1, cutoff=0.75)
    hint = f"; did you mean '{names[close[0]]}'?" if close else "; see the ARM template function reference"
    return f"the template function '{name}' is not valid{hint}"


class _UserFunctionContext:
    """What a user-defined function's body may see: its own parameters and other user functions, nothing else."""

    def __init__(self, outer: EvaluationContext, values: dict[str, Any], function: str) -> None:
        self.outer = outer
        self.values = values
        self.function = function
        self.scope = outer.scope
        self.allow_runtime_functions = False

    def _not_here(self, what: str) -> TemplateError:
        return TemplateError(
            TemplateIssue(IssueCode.FUNCTION_NOT_ALLOWED, f"{what} cannot be used inside user function {self.function}")
        )

    def parameter(self, name: str) -> Any:
        key = name.lower()
        if key not in self.values:
            raise TemplateError(
                TemplateIssue(
                    IssueCode.UNDECLARED_PARAMETER,
                    f"the user function {self.function} has no parameter '{name}'",
                )
            )
        return self.values[key]

    def variable(self, name: str) -> Any:
        raise self._not_here(f"variables('{name}')")

    def copy_index(self, loop_name: str | None) -> int:
        raise self._not_here("copyIndex()")

    def reference(self, target: str, api_version: str | None, full: bool) -> Any:
        raise self._not_here("reference()")

    def list_call(self, function: str, target: str, api_version: str | None, body: Any) -> Any:
        raise self._not_here(f"{function}()")

    def resource_info(self, symbolic_name: str) -> dict[str, Any]:
        raise self._not_here("resourceInfo()")

    def user_function(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.outer.user_function(namespace, name)

    def deployment(self) -> dict[str, Any]:
        return self.outer.deployment()


def _with_path(exc: TemplateError, path: str, text: str) -> TemplateError:
    issues = []
    changed = False
    for issue in exc.issues:
        if not issue.path and path:
            details = dict(issue.details)
            details.setdefault("expression", text)
            issue = TemplateIssue(issue.code, issue.message, path, issue.source, issue.line, issue.column, details)
            changed = True
        issues.append(issue)
    return TemplateError(issues) if changed else exc


def evaluate_expression(expr: Expr, ctx: EvaluationContext, path: str, text: str) -> Any:
    """Evaluate an already parsed expression (``text`` is its source, for messages and Deferred values)."""
    ev = _Evaluation(ctx, path, text)
    try:
        result = ev.eval(expr)
        if isinstance(result, Deferred):
            return result if result.expression == text else Deferred(text, result.reason)
        return _export(ev, result)
    except TemplateError as exc:
        raise _with_path(exc, path, text) from None
    except FunctionError as exc:
        raise ev.fail(exc.code, exc.message) from None
    except RecursionError:
        raise ev.fail(IssueCode.INVALID_VALUE, "the expression recurses too deeply") from None
    except Exception as exc:  # a safety net: callers must only ever see TemplateError
        raise ev.fail(IssueCode.INVALID_VALUE, f"{INTERNAL_ERROR_PREFIX} {type(exc).__name__}: {exc}") from None


def _export(ev: _Evaluation, value: Any) -> Any:
    """A fresh copy of a result (never the context's own parameter or variable objects), with no lambda in it."""
    if isinstance(value, dict):
        return {k: _export(ev, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_export(ev, v) for v in value]
    if isinstance(value, LambdaValue):
        raise ev.fail(IssueCode.TYPE_ERROR, "a lambda can only be passed to a function that takes one")
    return value


def evaluate_string(text: str, ctx: EvaluationContext, path: str) -> Any:
    """The value of one JSON string of a template: an expression's result, an unescaped literal, or the text."""
    if not is_expression(text):
        if is_escaped_literal(text):
            return text[1:]
        return text
    try:
        expr = parse_body(text[1:-1])
    except ExpressionSyntaxError:
        parse_expression(text, path)  # raises the structured error
        raise
    return evaluate_expression(expr, ctx, path, text)


def _child_path(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}['{key}']"


def evaluate_value(value: Any, ctx: EvaluationContext, path: str) -> Any:
    """Evaluate every expression inside a JSON value, returning a new value (the input is not modified)."""
    try:
        return _evaluate_value(value, ctx, path)
    except RecursionError:
        raise TemplateError(
            TemplateIssue(IssueCode.INVALID_TEMPLATE, "the value is nested too deeply to evaluate", path)
        ) from None


def _evaluate_value(value: Any, ctx: EvaluationContext, path: str) -> Any:
    if isinstance(value, str):
        if not value or value[0] != "[":
            return value
        return evaluate_string(value, ctx, path)
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            new_key: Any = key
            if isinstance(key, str) and key[:1] == "[" and (is_expression(key) or is_escaped_literal(key)):
                new_key = evaluate_string(key, ctx, _child_path(path, key))
                if isinstance(new_key, Deferred):
                    new_key = new_key.expression
                elif not isinstance(new_key, str):
                    raise TemplateError(
                        TemplateIssue(
                            IssueCode.TYPE_ERROR,
                            f"a property name expression must give a string, got {type_name(new_key)}",
                            _child_path(path, key),
                            details={"expression": key},
                        )
                    )
            result[new_key] = _evaluate_value(item, ctx, _child_path(path, str(new_key)))
        return result
    if isinstance(value, list):
        return [_evaluate_value(item, ctx, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def expression_references(text: str, path: str = "") -> list[tuple[str, list[Any]]]:
    """Every function call in an expression with its literal arguments, without evaluating (see module doc)."""
    if not is_expression(text):
        return []
    return [
        (
            f"{node.namespace}.{node.name}".lower() if node.namespace else node.key,
            [a.value if isinstance(a, Literal) else UNKNOWN for a in node.args],
        )
        for node in calls_in(parse_expression(text, path))
    ]
