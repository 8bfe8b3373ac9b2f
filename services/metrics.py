"""Metrics: one Prometheus endpoint per process, serving the product's metrics and the Temporal SDK's together.

How (docs/TELEMETRY.md has the metric table and the reasons):

- An OpenTelemetry ``MeterProvider`` whose reader is the OpenTelemetry Prometheus exporter, on a registry of its
  own; ``render`` gives the text format, ``serve`` answers ``GET /metrics`` on an address, ``metrics_app`` and
  ``render_metrics`` let the team service mount the same text at its ``/metrics``.
- The Temporal runtime records into a ``temporalio.runtime.MetricBuffer`` (durations in seconds); a daemon thread
  drains it every second (and every scrape drains it first) into OpenTelemetry instruments of the same names.
  That brings both the SDK's own metrics (workflow and activity task latencies, pollers, sticky cache …) and the
  workflow's metrics, which it writes through Temporal's replay-safe ``workflow.metric_meter()``
  (``workflows/metrics.py``), to the one endpoint.
- Process-side instruments (the ARM clients' responses and 429s, the service's requests and starts) are
  OpenTelemetry instruments on the same provider.

Nothing is recorded unless the process enabled metrics: ``ORCHESTRATOR_PROMETHEUS_BIND`` (the worker; the CLI never
sets it) or the service calling ``metrics_app``/``enable`` before it connects to Temporal.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy

from contract import metrics as m
from services.telemetry import DEFAULT_SERVICE_NAME, PROMETHEUS_ENV, TelemetryConfigError, TelemetrySettings

log = logging.getLogger(__name__)

METER_NAME = "bicep_orchestrator"
SDK_METER_NAME = "temporalio"
BUFFER_SIZE = 200_000  # updates the Temporal runtime may queue between two drains (dropped, logged, past that)
DRAIN_INTERVAL_SECONDS = 1.0
# The SDK's latencies (seconds) span a millisecond poll to a minutes-long activity.
SDK_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _MetricsServer(ThreadingHTTPServer):
    daemon_threads = True  # a scrape in progress never holds the process at exit


class _MetricsServer6(_MetricsServer):
    address_family = socket.AF_INET6


class ProcessMetrics:
    """The process's meter provider, Prometheus registry and metric-buffered Temporal runtime (one per process:
    ``enable``)."""

    def __init__(self, service_name: str = DEFAULT_SERVICE_NAME) -> None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
        from prometheus_client import CollectorRegistry
        from temporalio.runtime import MetricBuffer, MetricBufferDurationFormat, Runtime, TelemetryConfig

        self.registry = CollectorRegistry(auto_describe=False)
        # Scope labels off: every series would carry otel_scope_* labels that say nothing a dashboard needs.
        reader = PrometheusMetricReader(scope_info_enabled=False, registry=self.registry)
        self.provider = MeterProvider(resource=Resource.create({"service.name": service_name}), metric_readers=[reader])
        self.meter = self.provider.get_meter(METER_NAME)
        self._sdk_meter = self.provider.get_meter(SDK_METER_NAME)
        self.buffer = MetricBuffer(BUFFER_SIZE, MetricBufferDurationFormat.SECONDS)
        # service_name would be the core's own ("temporal-core-sdk") on every series: target_info names the service.
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=self.buffer, attach_service_name=False))
        self._lock = threading.Lock()
        self._bridged: dict[str, Any] = {}
        self._instruments: dict[str, Any] = {}
        self.address: tuple[str, int] | None = None
        self._server: ThreadingHTTPServer | None = None
        threading.Thread(target=self._drain_forever, name="temporal-metrics-drain", daemon=True).start()

    # -- the Temporal runtime's buffer → OpenTelemetry
    def _drain_forever(self) -> None:
        while True:
            time.sleep(DRAIN_INTERVAL_SECONDS)
            try:
                self.drain()
            except Exception:  # nothing may end the thread (and with it every later metric)
                log.exception("draining the Temporal metric buffer failed")

    def drain(self) -> None:
        from temporalio.runtime import BUFFERED_METRIC_KIND_COUNTER, BUFFERED_METRIC_KIND_GAUGE

        failed: list[str] = []
        with self._lock:
            for update in self.buffer.retrieve_updates():
                metric = update.metric
                try:
                    instrument = self._bridged.get(metric.name)
                    if instrument is None:
                        instrument = self._bridged[metric.name] = self._bridge(metric)
                    if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
                        instrument.add(update.value, update.attributes)
                    elif metric.kind == BUFFERED_METRIC_KIND_GAUGE:
                        instrument.set(update.value, update.attributes)
                    else:
                        instrument.record(update.value, update.attributes)
                except Exception as exc:  # one bad update loses itself, never the rest of the batch
                    failed.append(f"{metric.name}: {exc}")
        if failed:
            log.warning("%d metric update(s) could not be recorded, first: %s", len(failed), failed[0])

    def _bridge(self, metric: Any) -> Any:
        from temporalio.runtime import BUFFERED_METRIC_KIND_COUNTER, BUFFERED_METRIC_KIND_GAUGE

        ours = metric.name.startswith("orchestrator_")
        meter = self.meter if ours else self._sdk_meter
        unit = metric.unit or ""
        description = metric.description or ""
        if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
            return meter.create_counter(metric.name, unit=unit, description=description)
        if metric.kind == BUFFERED_METRIC_KIND_GAUGE:
            return meter.create_gauge(metric.name, unit=unit, description=description)
        buckets = m.BUCKETS.get(metric.name, SDK_BUCKETS)
        return meter.create_histogram(metric.name, unit=unit, description=description,
                                      explicit_bucket_boundaries_advisory=buckets)  # fmt: skip

    # -- process-side instruments
    def counter(self, name: str, description: str, unit: str = "") -> Any:
        found = self._instruments.get(name)
        if found is None:
            found = self._instruments[name] = self.meter.create_counter(name, unit=unit, description=description)
        return found

    def histogram(self, name: str, description: str, unit: str = m.SECONDS) -> Any:
        found = self._instruments.get(name)
        if found is None:
            found = self._instruments[name] = self.meter.create_histogram(
                name, unit=unit, description=description, explicit_bucket_boundaries_advisory=m.BUCKETS.get(name)
            )
        return found

    # -- the text format
    def render(self) -> bytes:
        """Every metric of this process in the Prometheus text format (the buffer drained first)."""
        from prometheus_client import generate_latest

        self.drain()
        return generate_latest(self.registry)

    def serve(self, bind: str) -> tuple[str, int]:
        """Answer ``GET /metrics`` on ``bind`` (HOST:PORT) from a daemon thread; returns the address bound."""
        if self._server is not None:
            assert self.address is not None
            return self.address
        host, _, port = bind.rpartition(":")
        host = host.strip("[]")
        render = self.render

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self._reply(404, b"not found: metrics are at /metrics\n", "text/plain; charset=utf-8")
                    return
                self._reply(200, render(), CONTENT_TYPE)

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # a scrape every 15 s is no log line
                return

        server_class = _MetricsServer6 if ":" in host else _MetricsServer
        try:
            server = server_class((host, int(port)), Handler)
        except OSError as exc:
            raise TelemetryConfigError(
                f"{PROMETHEUS_ENV}={bind!r}: cannot serve metrics there ({exc.strerror or exc}): choose a free "
                "address HOST:PORT"
            ) from None
        self._server = server
        self.address = (host, server.server_address[1])
        threading.Thread(target=server.serve_forever, name="metrics-endpoint", daemon=True).start()
        log.info("metrics for Prometheus at http://%s:%d/metrics", host, self.address[1])
        return self.address


_process: ProcessMetrics | None = None
_process_lock = threading.Lock()


def enable(service_name: str | None = None) -> ProcessMetrics:
    """This process records metrics (idempotent). Call it before connecting to Temporal, so the client's runtime
    is the buffered one and the SDK's metrics reach the same endpoint."""
    global _process
    with _process_lock:
        if _process is None:
            _process = ProcessMetrics(service_name or TelemetrySettings.from_environment().service_name)
        return _process


def current() -> ProcessMetrics | None:
    return _process


def serve_from_environment(environ: Mapping[str, str] | None = None) -> ProcessMetrics | None:
    """With ``ORCHESTRATOR_PROMETHEUS_BIND`` set: enable metrics and serve them there (once). Without: the process's
    metrics if something enabled them (the team service), else None. A bad or busy address is a
    ``TelemetryConfigError`` naming the variable."""
    settings = TelemetrySettings.from_environment(environ)
    if settings.prometheus_bind is None:
        return _process
    process = enable(settings.service_name)
    process.serve(settings.prometheus_bind)
    return process


# --------------------------------------------------------------------------------------------- the worker's ARM


THROTTLED_DESCRIPTION = "ARM 429 (throttled) responses, retried or not"


def arm_response(method: str, status: int) -> None:
    process = _process
    if process is None:
        return
    verb = method.upper() if method.upper() in HTTP_METHODS else m.OTHER
    process.counter(m.ARM_RESPONSES, "ARM responses seen by the worker's clients, retries included").add(
        1, {m.LABEL_METHOD: verb, m.LABEL_STATUS_CLASS: m.status_class(status)}
    )
    if status == 429:
        process.counter(m.ARM_THROTTLED, THROTTLED_DESCRIPTION).add(1, {m.LABEL_METHOD: verb})


def arm_series_at_zero() -> None:
    """The 429 series at zero before any ARM request (the worker's ARM clients call it as they are set up), so
    Prometheus' rate()/increase() see the first 429: they cannot see the first sample of a series that appears with
    its first event."""
    process = _process
    if process is not None:
        throttled = process.counter(m.ARM_THROTTLED, THROTTLED_DESCRIPTION)
        for method in m.ARM_METHODS:
            throttled.add(0, {m.LABEL_METHOD: method})


class ArmMetricsPolicy(AsyncHTTPPolicy):
    """An azure-core per-retry policy: counts every ARM response (each retry's too), the 429s apart."""

    async def send(self, request: PipelineRequest) -> PipelineResponse:
        response = await self.next.send(request)
        arm_response(request.http_request.method, response.http_response.status_code)
        return response


# ----------------------------------------------------------------------------------------- the team service


def render_metrics() -> tuple[bytes, str]:
    """(body, content type) of this process's metrics, for a plain ``GET /metrics`` route of the service."""
    return enable().render(), CONTENT_TYPE


def metrics_app() -> ASGIApp:
    """An ASGI app answering with this process's metrics (``app.mount("/metrics", metrics_app())``, or as its own
    server). Enables metrics: call it before the service connects to Temporal."""
    process = enable()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            headers = [(b"allow", b"GET, HEAD"), (b"content-type", b"text/plain; charset=utf-8")]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": b"metrics are read with GET\n"})
            return
        body = await asyncio.to_thread(process.render)
        headers = [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    return app


class RequestMetrics:
    """ASGI middleware counting the service's requests by route template (``/deployments/{id}``, never the path a
    caller sent), method and status, with their duration: ``app.add_middleware(RequestMetrics)``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.process = enable()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response started is answered 500 by the server

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            verb = method if method in HTTP_METHODS else m.OTHER
            labels = {m.LABEL_ROUTE: route, m.LABEL_METHOD: verb}
            self.process.counter(m.API_REQUESTS, "Requests the team service answered").add(
                1, {**labels, m.LABEL_STATUS: str(status)}
            )
            self.process.histogram(m.API_REQUEST_DURATION, "Time to answer a request").record(
                time.perf_counter() - started, labels
            )


def deployment_started() -> None:
    """The service started a deployment (a POST that was not an idempotent replay of an earlier one)."""
    process = _process
    if process is not None:
        process.counter(m.API_DEPLOYMENTS_STARTED, "Deployments started through the team service's API").add(1)
