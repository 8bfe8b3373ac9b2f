"""The engine's one error type.

Every failure the engine reports — a bad template, a bad parameter, a bad expression, a dependency cycle — is a
``TemplateError`` carrying one or more ``TemplateIssue`` records. Callers (the orchestrator's validation stage,
the local ARM, the CLI) show these to users, so each names *where* (a JSON path, and the file when known) and
*what* (a stable code plus a sentence).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TemplateIssue:
    """One problem found in a template or its parameters.

    ``code`` is stable and machine-readable (see ``IssueCode``); ``path`` is a JSON path into the document named
    by ``source`` (``"resources[2].properties.siteConfig"``, ``"parameters.location"``), or ``""`` for the whole
    document.
    """

    code: str
    message: str
    path: str = ""
    source: str | None = None
    line: int | None = None
    column: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, "")}

    def __str__(self) -> str:
        where = self.source or "template"
        if self.line is not None:
            where += f"({self.line},{self.column or 0})"
        if self.path:
            where += f" at {self.path}"
        return f"{where}: {self.code}: {self.message}"


class IssueCode:
    """Stable codes, one place. Logic failures all of them: none is worth a retry."""

    INVALID_JSON = "InvalidJson"
    INVALID_TEMPLATE = "InvalidTemplate"
    EXPRESSION_SYNTAX = "ExpressionSyntaxError"
    UNKNOWN_FUNCTION = "UnknownFunction"
    WRONG_ARITY = "WrongArgumentCount"
    TYPE_ERROR = "TypeMismatch"
    MISSING_PROPERTY = "MissingProperty"
    INDEX_OUT_OF_RANGE = "IndexOutOfRange"
    INVALID_VALUE = "InvalidValue"
    FUNCTION_NOT_ALLOWED = "FunctionNotAllowedHere"
    MISSING_PARAMETER = "MissingParameter"
    UNKNOWN_PARAMETER = "UnknownParameter"
    PARAMETER_TYPE = "ParameterTypeMismatch"
    PARAMETER_NOT_ALLOWED_VALUE = "ParameterValueNotAllowed"
    PARAMETER_OUT_OF_RANGE = "ParameterOutOfRange"
    UNDECLARED_PARAMETER = "UndeclaredParameter"
    UNDECLARED_VARIABLE = "UndeclaredVariable"
    UNDECLARED_RESOURCE = "UndeclaredResource"
    CIRCULAR_DEPENDENCY = "CircularDependency"
    COPY_COUNT = "InvalidCopyCount"
    TOO_MANY_RESOURCES = "TooManyResources"
    PARAMETERS_FILE = "InvalidParametersFile"


class TemplateError(Exception):
    """Raised by every public engine entry point; never any other exception type."""

    def __init__(self, issues: list[TemplateIssue] | TemplateIssue) -> None:
        self.issues: list[TemplateIssue] = [issues] if isinstance(issues, TemplateIssue) else list(issues)
        super().__init__("; ".join(str(i) for i in self.issues) or "template error")

    @property
    def first(self) -> TemplateIssue:
        return self.issues[0]

    def to_dict(self) -> dict[str, Any]:
        return {"errors": [i.to_dict() for i in self.issues]}
