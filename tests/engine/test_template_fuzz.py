"""Property: whatever JSON a user hands expand_template — as a template or as parameters — the engine answers with
an expansion or a TemplateError, never another exception."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arm_engine import TemplateError
from tests.support.engine_templates import expand

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)

FRAGMENTS = [
    "[parameters('p')]",
    "[variables('v')]",
    "[copyIndex()]",
    "[copyIndex('x')]",
    "[reference('a').x]",
    "[resourceId('Microsoft.Storage/storageAccounts', 'a')]",
    "[concat('a', 'b')]",
    "[length(parameters('p'))]",
    "[if(true(), 1, 'x')]",
    "[listKeys('a', '2020-01-01')]",
    "[format('{0}', copyIndex())]",
    "[[literal",
    "[",
    "a",
    "Microsoft.Storage/storageAccounts",
    "Microsoft.Resources/deployments",
]
fragments = st.sampled_from(FRAGMENTS)
field_values = fragments | json_scalars | st.lists(fragments, max_size=3)


@st.composite
def resources(draw: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "type": draw(
            st.sampled_from(["Microsoft.Storage/storageAccounts", "Microsoft.Resources/deployments"]) | fragments
        ),
        "name": draw(st.sampled_from(["a", "b", "[format('n{0}', copyIndex())]"]) | field_values),
        "apiVersion": "2023-01-01",
    }
    for key in ("properties", "dependsOn", "condition", "copy", "location", "resources", "scope", "existing"):
        if draw(st.booleans()):
            if key == "copy":
                resource[key] = draw(
                    st.fixed_dictionaries({"name": st.sampled_from(["x", "y"]), "count": field_values}) | field_values
                )
            elif key == "properties":
                resource[key] = draw(
                    st.dictionaries(
                        st.sampled_from(["x", "copy", "template", "parameters", "mode"]),
                        field_values | json_values,
                        max_size=3,
                    )
                )
            else:
                resource[key] = draw(field_values)
    return resource


@st.composite
def templates(draw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"resources": draw(st.lists(resources(), max_size=4))}
    if draw(st.booleans()):
        doc["parameters"] = {
            "p": draw(
                st.dictionaries(
                    st.sampled_from(["type", "defaultValue", "allowedValues", "nullable", "$ref"]),
                    field_values,
                    max_size=3,
                )
            )
        }
    if draw(st.booleans()):
        doc["variables"] = draw(st.dictionaries(st.sampled_from(["v", "copy"]), field_values | json_values, max_size=2))
    if draw(st.booleans()):
        doc["outputs"] = draw(
            st.dictionaries(
                st.sampled_from(["o"]),
                st.dictionaries(st.sampled_from(["type", "value", "copy", "condition"]), field_values, max_size=3),
                max_size=1,
            )
        )
    if draw(st.booleans()):
        doc["languageVersion"] = "2.0"
        doc["resources"] = {f"r{i}": r for i, r in enumerate(doc["resources"])}
    return doc


def expand_or_template_error(doc: Any, **kwargs: Any) -> None:
    with contextlib.suppress(TemplateError):
        expand(doc, **kwargs)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(templates(), st.none() | st.dictionaries(st.sampled_from(["p", "q"]), json_values, max_size=2))
def test_random_templates_raise_only_template_errors(doc: dict[str, Any], parameters: Any) -> None:
    expand_or_template_error(doc, parameters=parameters)


@settings(max_examples=100, deadline=None)
@given(json_values, json_values)
def test_random_json_raises_only_template_errors(doc: Any, parameters: Any) -> None:
    expand_or_template_error(doc, parameters=parameters)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_random_text_raises_only_template_errors(text: str) -> None:
    expand_or_template_error(text)
    expand_or_template_error({"resources": []}, parameters=text)
