"""The boundary between the expression evaluator and the template expander.

The evaluator (expressions.py, evaluator.py, functions/) knows the template *language*; everything that depends
on the template being expanded — its parameters, variables, the copy loop being expanded, resource state, user
functions, the scope — it asks through this protocol, which template.py implements.
"""

from __future__ import annotations

from typing import Any, Protocol

from .scope import DeploymentScope


class EvaluationContext(Protocol):
    scope: DeploymentScope
    # utcNow() and newGuid() are allowed only in parameter default values; ARM rejects them elsewhere.
    allow_runtime_functions: bool

    def parameter(self, name: str) -> Any:
        """The parameter's value (case-insensitive name); TemplateError(UndeclaredParameter) if none."""
        ...

    def variable(self, name: str) -> Any:
        """The variable's value, evaluated on first use; TemplateError(UndeclaredVariable) if none."""
        ...

    def copy_index(self, loop_name: str | None) -> int:
        """Current index of the named (or innermost) copy loop; TemplateError if not inside it."""
        ...

    def reference(self, target: str, api_version: str | None, full: bool) -> Any:
        """reference(): target is a resource id, a resource name, or (languageVersion 2.0) a symbolic name.

        Returns the resource's properties (or the full payload when ``full``), or a Deferred when the resource
        is deployed by this template and not yet known.
        """
        ...

    def list_call(self, function: str, target: str, api_version: str | None, body: Any) -> Any: ...

    def resource_info(self, symbolic_name: str) -> dict[str, Any]:
        """languageVersion 2.0 resourceInfo(): {id, name, type, apiVersion} of a symbolic resource."""
        ...

    def user_function(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The declaration of a user-defined function ({"parameters": [...], "output": {...}}), or None."""
        ...

    def deployment(self) -> dict[str, Any]:
        """deployment(): {name, properties: {templateLink?, template: {contentVersion, metadata?}}, ...}."""
        ...
