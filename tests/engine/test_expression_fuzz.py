"""Property tests: random expression strings (from a grammar and raw text) and random JSON values go through
evaluate_value; only TemplateError may come out, and results are plain JSON values or Deferred."""

from __future__ import annotations

import contextlib
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arm_engine.errors import TemplateError
from arm_engine.evaluator import INTERNAL_ERROR_PREFIX as INTERNAL
from arm_engine.evaluator import evaluate_value, expression_references
from arm_engine.functions import REGISTRY
from arm_engine.values import Deferred
from tests.support.expressions import SimpleContext

FUNCTION_NAMES = [*sorted({spec.name for spec in REGISTRY.values()} - {"newGuid", "utcNow"}), "listKeys", "nope"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)

literal = (
    st.integers(-(2**64), 2**64).map(str)
    | st.text(alphabet=string.ascii_letters + " ,'[]()./{}:0-9", max_size=8).map(
        lambda s: "'" + s.replace("'", "''") + "'"
    )
    | st.sampled_from(["true", "null", "'Microsoft.Storage/storageAccounts'", "'{0:D3}'", "'P1D'", "'10.0.0.0/16'"])
)


def _call(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    call = st.builds(
        lambda name, args: f"{name}({', '.join(args)})",
        st.sampled_from(FUNCTION_NAMES),
        st.lists(children, max_size=4),
    )
    access = st.builds(lambda target, prop: f"{target}.{prop}", children, st.sampled_from(["a", "id", "name", "x"]))
    index = st.builds(lambda target, i: f"{target}[{i}]", children, children)
    lam = st.builds(lambda body: f"lambda('x', {body})", children)
    return call | call | access | index | lam | st.just("lambdaVariables('x')")


grammar_expressions = st.recursive(literal, _call, max_leaves=10).map(lambda body: f"[{body}]")
raw_text = st.text(alphabet=string.printable, max_size=40) | st.text(max_size=20).map(lambda s: f"[{s}]")

CTX = SimpleContext(
    parameters={"a": 1, "s": "text", "o": {"x": [1, 2]}, "l": [1, "a"]},
    variables={"v": "[parameters('s')]"},
    copy_indexes={"": 0},
)


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str, Deferred)):
        return True
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _check(value: Any) -> None:
    try:
        result = evaluate_value(value, CTX, "fuzz")
    except TemplateError as exc:
        _assert_deliberate(exc)
        return
    assert _is_plain(result), result


def _assert_deliberate(exc: TemplateError) -> None:
    """A structured error the engine meant to raise, not its safety net wrapping a Python exception."""
    assert exc.issues
    for issue in exc.issues:
        assert issue.code and issue.message
        assert INTERNAL not in issue.message, issue.message


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(grammar_expressions)
def test_grammar_expressions_only_raise_template_errors(text: str) -> None:
    _check(text)
    with contextlib.suppress(TemplateError):
        expression_references(text)


@FUZZ
@given(raw_text)
def test_raw_text_only_raises_template_errors(text: str) -> None:
    _check(text)
    _check({text: [text]})


@FUZZ
@given(json_values, st.lists(grammar_expressions, max_size=3))
def test_json_documents_with_expressions(value: Any, expressions: list[str]) -> None:
    _check({"value": value, "expressions": expressions, "nested": {"k": expressions[:1]}})


@FUZZ
@given(st.sampled_from(FUNCTION_NAMES), st.lists(json_values, max_size=4))
def test_functions_applied_to_random_json_parameters(name: str, values: list[Any]) -> None:
    ctx = SimpleContext(parameters={f"p{i}": v for i, v in enumerate(values)})
    args = ", ".join(f"parameters('p{i}')" for i in range(len(values)))
    try:
        result = evaluate_value(f"[{name}({args})]", ctx, "fuzz")
    except TemplateError as exc:
        _assert_deliberate(exc)
        return
    assert _is_plain(result)
