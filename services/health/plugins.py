"""Custom health checks as plugins (docs/HEALTH.md, "Plugin checks").

A plugin is an installed Python package that registers a callable under the entry-point group
``bicep_orchestrator.health_checks`` (the entry point's name is what a declaration's ``plugin`` names)::

    [project.entry-points."bicep_orchestrator.health_checks"]
    json-threshold = "orchestrator_threshold_check:check"

The callable is ``async def check(ctx: PluginContext) -> str | None`` (or a plain function, run in a thread): it
returns to pass (optionally a note for the report) and raises to fail the attempt — ``PluginCheckFailed`` for an
expected failure (its message is the report's last error), anything else is reported with its type. The runner
retries failed attempts within the convergence window like any check, and bounds each attempt by the check's
timeout. Secrets reach a plugin only through ``ctx.secrets``: the values of the worker environment variables the
declaration names in ``secret_env`` — never through the declaration, so never in history. A plugin does its own
I/O: the worker's request policy for http/tcp checks does not apply to it.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from contract.health import PLUGIN_ENTRY_POINT_GROUP, PluginCheck


class PluginCheckFailed(Exception):
    """Raised by a plugin for a check that did not pass; the message goes to the report."""


@dataclass(frozen=True)
class PluginContext:
    settings: Mapping[str, Any]  # the declaration's settings, {outputs.*} substituted
    outputs: Mapping[str, Any]  # the deployment's outputs (plain values)
    resources: Sequence[str]  # ids of the deployed resources
    timeout: float  # seconds this attempt may take (the runner cancels it after)
    secrets: Mapping[str, str] = field(default_factory=dict)  # secret_env name -> value, from the worker


def installed_plugins() -> dict[str, Any]:
    """Entry points of the group, by name (the installed packages' metadata, read on each call)."""
    return {ep.name: ep for ep in entry_points(group=PLUGIN_ENTRY_POINT_GROUP)}


def load_plugin(name: str) -> Callable[..., Any]:
    """The plugin's callable; ``LookupError`` naming what is installed when it is not."""
    found = installed_plugins()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise LookupError(
            f"no health check plugin '{name}' is installed on this worker (entry-point group "
            f"{PLUGIN_ENTRY_POINT_GROUP}; installed: {known})"
        )
    fn = found[name].load()
    if not callable(fn):
        raise LookupError(f"the health check plugin '{name}' is not callable")
    return fn


def secrets_for(check: PluginCheck, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    missing = [n for n in check.secret_env if n not in env]
    if missing:
        raise LookupError(f"the worker has no environment variable {', '.join(missing)} (secret_env of the check)")
    return {n: env[n] for n in check.secret_env}


async def call_plugin(fn: Callable[..., Any], ctx: PluginContext) -> str | None:
    if inspect.iscoroutinefunction(fn):
        result = await fn(ctx)
    else:
        result = await asyncio.to_thread(fn, ctx)
    return None if result is None else str(result)[:500]
