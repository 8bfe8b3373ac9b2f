"""A small EvaluationContext for expression tests: fixed parameters and variables, a copy index, and
reference()/list*() answered from a dict or Deferred."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from arm_engine.errors import IssueCode, TemplateError, TemplateIssue
from arm_engine.evaluator import evaluate_string, evaluate_value
from arm_engine.scope import DeploymentScope
from arm_engine.values import Deferred


@dataclass
class SimpleContext:
    parameters: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    copy_indexes: dict[str, int] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    scope: DeploymentScope = field(default_factory=DeploymentScope)
    allow_runtime_functions: bool = False
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def _lookup(self, table: dict[str, Any], name: str) -> tuple[bool, Any]:
        for key, value in table.items():
            if key.lower() == name.lower():
                return True, value
        return False, None

    def parameter(self, name: str) -> Any:
        found, value = self._lookup(self.parameters, name)
        if not found:
            raise TemplateError(TemplateIssue(IssueCode.UNDECLARED_PARAMETER, f"parameter '{name}' is not declared"))
        return value

    def variable(self, name: str) -> Any:
        found, value = self._lookup(self.variables, name)
        if not found:
            raise TemplateError(TemplateIssue(IssueCode.UNDECLARED_VARIABLE, f"variable '{name}' is not declared"))
        return evaluate_value(value, self, f"variables.{name}")

    def copy_index(self, loop_name: str | None) -> int:
        key = loop_name or ""
        if key not in self.copy_indexes:
            raise TemplateError(TemplateIssue(IssueCode.INVALID_TEMPLATE, f"not inside copy loop '{key}'"))
        return self.copy_indexes[key]

    def reference(self, target: str, api_version: str | None, full: bool) -> Any:
        self.calls.append(("reference", (target, api_version, full)))
        found, value = self._lookup(self.resources, target)
        if found:
            return value if full else value.get("properties", {})
        return Deferred(f"[reference('{target}')]", "not deployed yet")

    def list_call(self, function: str, target: str, api_version: str | None, body: Any) -> Any:
        self.calls.append((function, (target, api_version, body)))
        return Deferred(f"[{function}('{target}')]", "list actions run at deployment")

    def resource_info(self, symbolic_name: str) -> dict[str, Any]:
        return {"id": f"/x/{symbolic_name}", "name": symbolic_name, "type": "T/t", "apiVersion": "2020-01-01"}

    def user_function(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.functions.get(f"{namespace}.{name}".lower())

    def deployment(self) -> dict[str, Any]:
        return {"name": self.scope.deployment_name, "properties": {"template": {"contentVersion": "1.0.0.0"}}}


def ev(text: str, ctx: SimpleContext | None = None, path: str = "test") -> Any:
    return evaluate_string(text, ctx or SimpleContext(), path)
