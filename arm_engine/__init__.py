"""A pure-Python ARM template engine: validate parameters, evaluate expressions, expand resources offline.

No network, no Azure SDK, no I/O beyond what the caller passes in. Every failure is a ``TemplateError``.
"""

from __future__ import annotations

from .errors import IssueCode, TemplateError, TemplateIssue
from .model import CopyInfo, ExpandedDeployment, ExpandedResource, OutputValue, ParameterValue
from .scope import DeploymentScope
from .state import ResourceDeployer, ResourceStateView
from .values import Deferred

__all__ = [
    "CopyInfo",
    "Deferred",
    "DeploymentScope",
    "ExpandedDeployment",
    "ExpandedResource",
    "IssueCode",
    "OutputValue",
    "ParameterValue",
    "ResourceDeployer",
    "ResourceStateView",
    "TemplateError",
    "TemplateIssue",
]
