"""Stage spans from workflow code (``contract.spans`` names them)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from temporalio.contrib.opentelemetry import TracingWorkflowInboundInterceptor
from temporalio.contrib.opentelemetry.workflow import completed_span

from contract.spans import STAGE_SPAN_PREFIX


def stage_span(name: str, attributes: Mapping[str, str | int | float | bool]) -> None:
    """One completed span for a stage attempt. Replay-safe (the interceptor skips replays); a no-op when the worker
    has no TracingInterceptor. Callers pass names, ids and codes only — never values."""
    if TracingWorkflowInboundInterceptor._from_context() is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        completed_span(STAGE_SPAN_PREFIX + name, attributes=dict(attributes))
