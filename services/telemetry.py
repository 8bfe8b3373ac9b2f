"""OpenTelemetry tracing and Prometheus runtime metrics — off unless configured, so nothing is printed by default.

Configuration (worker, CLI and the embedded default read the same variables; ``worker.py`` also has flags):

- ``ORCHESTRATOR_OTEL_TRACES`` = ``console`` (spans as JSON on stderr) or ``otlp`` (to an OTLP collector; the
  standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_HEADERS``
  variables apply, and ``OTEL_EXPORTER_OTLP_PROTOCOL`` = ``grpc`` (default) or ``http/protobuf``). Needs the
  ``otlp`` extra: ``pip install 'bicep-deployment-orchestrator[otlp]'``. Unset or ``none``: no tracing.
- ``OTEL_SERVICE_NAME``: the service name on every span (default ``bicep-orchestrator``).
- ``ORCHESTRATOR_PROMETHEUS_BIND`` = ``127.0.0.1:9464`` (read by ``worker.py`` only): the worker's metrics, served
  for Prometheus at ``http://ADDRESS/metrics`` — the product's (deployment outcomes, stage attempt durations,
  retries, approval wait, ARM responses and 429s) and the Temporal SDK's (task latencies, pollers, sticky cache, …)
  on one endpoint (``services.metrics``; docs/TELEMETRY.md).

With tracing on, ``temporalio.contrib.opentelemetry.TracingInterceptor`` is added to the client (the worker uses
the client's interceptors too), so starting a workflow, each workflow run, signal, query and activity is a span,
and the workflow adds one span per stage attempt (``stage_span``) with the attributes ``deployment.*`` below.
Attributes carry names, ids, counts and classifications only — never a parameter value.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from temporalio.contrib.opentelemetry import TracingInterceptor

TRACES_ENV = "ORCHESTRATOR_OTEL_TRACES"
PROMETHEUS_ENV = "ORCHESTRATOR_PROMETHEUS_BIND"
SERVICE_NAME_ENV = "OTEL_SERVICE_NAME"
DEFAULT_SERVICE_NAME = "bicep-orchestrator"
TRACER_NAME = "bicep_orchestrator"


class TelemetryConfigError(ValueError):
    """A telemetry setting is unusable; the message names it and what to do."""


@dataclass(frozen=True)
class TelemetrySettings:
    traces: str | None = None  # "console" | "otlp" | None
    prometheus_bind: str | None = None
    service_name: str = DEFAULT_SERVICE_NAME

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> TelemetrySettings:
        env = os.environ if environ is None else environ
        traces = (env.get(TRACES_ENV) or "").strip().lower() or None
        if traces == "none":
            traces = None
        if traces not in (None, "console", "otlp"):
            raise TelemetryConfigError(
                f"{TRACES_ENV}={env.get(TRACES_ENV)!r} is not a trace exporter: use 'console', 'otlp' or leave it unset"
            )
        bind = (env.get(PROMETHEUS_ENV) or "").strip() or None
        if bind is not None:
            host, sep, port = bind.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise TelemetryConfigError(
                    f"{PROMETHEUS_ENV}={bind!r} must be HOST:PORT, e.g. 127.0.0.1:9464 (the Prometheus scrape address)"
                )
        return cls(traces=traces, prometheus_bind=bind, service_name=env.get(SERVICE_NAME_ENV) or DEFAULT_SERVICE_NAME)


_interceptor: Any = None  # the process's TracingInterceptor, once tracing is configured
_provider: Any = None  # the TracerProvider configured from the environment


def tracer_provider(exporter: Any, *, service_name: str = DEFAULT_SERVICE_NAME, batch: bool = True) -> Any:
    """A TracerProvider exporting to ``exporter`` (``SimpleSpanProcessor`` when ``batch`` is False: tests)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return provider


def _exporter(kind: str, environ: Mapping[str, str]) -> Any:
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr)
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    try:
        # importlib keeps mypy independent of whether the optional [otlp] extra is installed.
        transport = "http" if protocol.startswith("http") else "grpc"
        module = importlib.import_module(f"opentelemetry.exporter.otlp.proto.{transport}.trace_exporter")
    except ImportError:
        raise TelemetryConfigError(
            f"{TRACES_ENV}=otlp needs the OTLP exporter: pip install 'bicep-deployment-orchestrator[otlp]' "
            "(opentelemetry-exporter-otlp)"
        ) from None
    return module.OTLPSpanExporter()


def tracing_interceptor(provider: Any) -> Any:
    """The Temporal TracingInterceptor writing to ``provider``. Workflow spans are created even when the starter
    did not trace (the Temporal CLI, the UI), so every stage has its span."""
    return TracingInterceptor(provider.get_tracer(TRACER_NAME), always_create_workflow_spans=True)


def use_tracer_provider(provider: Any) -> Any:
    """Trace this process's Temporal clients (and workers) into ``provider``; returns the interceptor. Tests call
    it with an in-memory exporter's provider; ``reset_tracing`` undoes it."""
    global _interceptor
    _interceptor = tracing_interceptor(provider)
    return _interceptor


def reset_tracing() -> None:
    global _interceptor
    _interceptor = None


def flush_tracing(timeout_millis: int = 5000) -> None:
    """Export what the batch holds (call before ``os._exit``: the CLI's ``exit_now`` skips atexit handlers)."""
    if _interceptor is not None:
        provider = getattr(_interceptor.tracer, "_tracer_provider", None) or _provider
        if provider is not None:
            provider.force_flush(timeout_millis)


def client_interceptors(environ: Mapping[str, str] | None = None) -> list[Any]:
    """The interceptors ``temporal_client.connect`` adds: the TracingInterceptor when tracing is configured."""
    global _interceptor
    if _interceptor is None:
        env = os.environ if environ is None else environ
        settings = TelemetrySettings.from_environment(env)
        if settings.traces is None:
            return []
        # Console: export as each span ends (the CLI leaves with os._exit, which would lose a batch).
        provider = tracer_provider(
            _exporter(settings.traces, env), service_name=settings.service_name, batch=settings.traces != "console"
        )
        import atexit

        atexit.register(provider.shutdown)  # flush the batch on a normal exit
        global _provider
        _provider = provider
        _interceptor = tracing_interceptor(provider)
    return [_interceptor]


def temporal_runtime() -> Any:
    """The Temporal ``Runtime`` of a process that records metrics (``services.metrics``: the worker with
    ``ORCHESTRATOR_PROMETHEUS_BIND``, the team service), whose buffer is bridged to the process's one Prometheus
    endpoint; else None (the SDK's default runtime: a CLI command serves no metrics, nor takes the worker's
    address). One per process: every client shares it."""
    from services import metrics

    process = metrics.current()
    return process.runtime if process is not None else None


# ------------------------------------------------------------------------------------------ inside the workflow
