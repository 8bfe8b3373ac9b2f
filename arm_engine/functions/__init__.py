"""The ARM template function library, one module per family; importing this package registers them all."""

from __future__ import annotations

from . import array, cidr, comparison, date, deployment, logical, numeric, object, resource, string
from . import lambda_ as _lambda  # "lambda" is a keyword; the module is lambda_.py
from ._core import REGISTRY, FunctionError, FunctionSpec, Invocation, LambdaValue

__all__ = [
    "REGISTRY",
    "FunctionError",
    "FunctionSpec",
    "Invocation",
    "LambdaValue",
    "_lambda",
    "array",
    "cidr",
    "comparison",
    "date",
    "deployment",
    "logical",
    "numeric",
    "object",
    "resource",
    "string",
]
