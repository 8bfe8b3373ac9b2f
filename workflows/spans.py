"""Stage spans from workflow code (``contract.spans`` names them)."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping

from contract.spans import STAGE_SPAN_PREFIX

_TRACING_MODULE = "temporalio.contrib.opentelemetry"


def stage_span(name: str, attributes: Mapping[str, str | int | float | bool]) -> None:
    """One completed span for a stage attempt. Replay-safe (the interceptor skips replays); a no-op when the worker
    has no TracingInterceptor. Callers pass names, ids and codes only — never values.

    The OpenTelemetry integration is looked up, not imported: a worker that traces has loaded it (its interceptor
    comes from there), and one that does not — and every CLI start — pays nothing for it."""
    tracing = sys.modules.get(_TRACING_MODULE)
    if tracing is None or tracing.TracingWorkflowInboundInterceptor._from_context() is None:
        return
    from temporalio.contrib.opentelemetry.workflow import completed_span

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        completed_span(STAGE_SPAN_PREFIX + name, attributes=dict(attributes))
