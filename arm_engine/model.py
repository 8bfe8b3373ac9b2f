"""What the engine returns: plain dataclasses, JSON-ready through ``to_dict``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .values import Deferred

SECRET_MASK = "*****"


@dataclass
class ParameterValue:
    name: str
    type: str  # as declared, lower-cased: string, securestring, int, bool, object, secureobject, array
    value: Any
    source: Literal["default", "file", "override", "reference"] = "file"

    @property
    def secure(self) -> bool:
        return self.type in ("securestring", "secureobject")

    def display_value(self) -> Any:
        return SECRET_MASK if self.secure else self.value


@dataclass
class CopyInfo:
    name: str
    index: int
    count: int
    mode: Literal["parallel", "serial"] = "parallel"
    batch_size: int | None = None


@dataclass
class ExpandedResource:
    """One concrete resource after conditions, copy loops and nested deployments are applied."""

    id: str
    type: str  # full type, child types included: Microsoft.Network/virtualNetworks/subnets
    api_version: str
    name: str  # full name: vnet1/subnet1
    location: str | None
    properties: Any
    # Every top-level field of the resource, evaluated (name, type, apiVersion, location, sku, kind, tags,
    # identity, zones, plan, properties, ...), without the template-only keys (copy, condition, dependsOn,
    # comments, resources, existing). This is the body a PUT would carry.
    body: dict[str, Any]
    depends_on: list[str] = field(default_factory=list)  # resource ids
    existing: bool = False  # an `existing` reference, not deployed
    symbolic_name: str | None = None
    copy: CopyInfo | None = None
    # Names of enclosing nested deployments, outermost first ([] at the top level).
    deployment_path: list[str] = field(default_factory=list)
    source_path: str = (
        ""  # JSON path in the template, e.g. resources[3] or resources[2].properties.template.resources[0]
    )

    @property
    def has_deferred_values(self) -> bool:
        return _contains_deferred(self.body)


@dataclass
class OutputValue:
    type: str
    value: Any  # a Deferred when it needs resource state the caller's view did not have
    deferred: bool = False


@dataclass
class ExpandedDeployment:
    parameters: dict[str, ParameterValue]
    resources: list[ExpandedResource]
    order: list[str]  # resource ids, dependencies first
    outputs: dict[str, OutputValue]
    skipped: list[str] = field(default_factory=list)  # ids of resources whose condition was false

    def resource(self, resource_id: str) -> ExpandedResource | None:
        key = resource_id.lower()
        return next((r for r in self.resources if r.id.lower() == key), None)


def _contains_deferred(value: Any) -> bool:
    if isinstance(value, Deferred):
        return True
    if isinstance(value, dict):
        return any(_contains_deferred(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_deferred(v) for v in value)
    return False
