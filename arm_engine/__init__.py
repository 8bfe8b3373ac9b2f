"""A pure-Python ARM template engine: validate parameters, evaluate expressions, expand resources offline.

No network, no Azure SDK, no I/O beyond what the caller passes in. Every failure is a ``TemplateError``.
"""

from __future__ import annotations

from .errors import IssueCode, TemplateError, TemplateIssue
from .json_source import parse_json
from .model import CopyInfo, ExpandedDeployment, ExpandedResource, OutputValue, ParameterValue
from .parameters import read_parameters_document
from .scope import DeploymentScope
from .state import ResourceDeployer, ResourceStateView
from .template import expand_template
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
    "expand_template",
    "parse_json",
    "read_parameters_document",
]
