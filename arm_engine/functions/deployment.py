"""Deployment value functions: parameters(), variables(), deployment(), environment(), deployer()."""

from __future__ import annotations

from typing import Any

from ._core import Invocation, arg_str, arm_function, deep_copy


@arm_function("parameters", 1, 1)
def parameters(inv: Invocation, args: list[Any]) -> Any:
    return inv.ctx.parameter(arg_str(inv, args, 0))


@arm_function("variables", 1, 1)
def variables(inv: Invocation, args: list[Any]) -> Any:
    return inv.ctx.variable(arg_str(inv, args, 0))


@arm_function("deployment", 0, 0)
def deployment(inv: Invocation, args: list[Any]) -> Any:
    return inv.ctx.deployment()


@arm_function("environment", 0, 0)
def environment(inv: Invocation, args: list[Any]) -> Any:
    return deep_copy(inv.ctx.scope.environment)


@arm_function("deployer", 0, 0)
def deployer(inv: Invocation, args: list[Any]) -> Any:
    """Who runs the deployment is known only at deploy time."""
    return inv.deferred("the deploying principal is known only at deployment time")


@arm_function("externalInputs", 1, 1)
def external_inputs(inv: Invocation, args: list[Any]) -> Any:
    """A .bicepparam externalInput(): supplied by the deployment tooling, unknown to a template."""
    arg_str(inv, args, 0)
    return inv.deferred("an external input is supplied at deployment time")
