"""Metrics through the production path: a ``worker.py`` process (with ``--prometheus-bind``) against the real Temporal
dev server and the local ARM over HTTPS runs five deployments — one throttled once by ARM (a 429, then retried), one
whose deletions are approved after a wait, one plain, one whose deletions are rejected, one cancelled while it
waits — and its endpoint is scraped over HTTP and parsed with prometheus_client's parser. The Grafana dashboard in
deploy/grafana/ is checked against that scrape (and a team service app's): every metric a panel queries must be one
really exported; and a real Prometheus, which scraped both while the deployments ran, evaluates every panel's query
(skipped, saying why, where Prometheus is not installed: ``make prometheus``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from client.deployments import query_status, result_of, start_deployment
from contract.models import (
    SIGNAL_APPROVE,
    SIGNAL_REJECT,
    ApprovalSignal,
    DeploymentMode,
    DeploymentStage,
    DeploymentStatus,
    DeployOutcome,
    DeployResult,
)
from harness.localarm import example_parameters, example_template, request_for
from local_arm.admin import Fault
from services.temporal_client import connect
from tests.support.metrics_scrape import Scrape, scrape

pytestmark = pytest.mark.timeout(300)
on_session_loop = pytest.mark.asyncio(loop_scope="session")

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "bicep-orchestrator.json"
APPROVAL_DELAY = 1.5  # seconds the approver of the second deployment takes
WORKER_ENV = {
    "ORCHESTRATOR_RETRY_INITIAL_SECONDS": "0.2",
    "ORCHESTRATOR_ARM_POLL_INTERVAL_SECONDS": "0.05",
    "ORCHESTRATOR_HEARTBEAT_TIMEOUT_SECONDS": "5",
    "ORCHESTRATOR_GRACEFUL_SHUTDOWN_SECONDS": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WorkerRun:
    url: str
    subscription_id: str
    results: dict[str, DeployResult]
    statuses: dict[str, DeploymentStatus]
    throttled_by_arm: int  # 429s the local ARM answered (its own request counters)
    scrape: Scrape
    after_queries: Scrape  # scraped again after every finished run was queried (its history replayed)


async def wait_stage(handle: Any, stage: DeploymentStage, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (await query_status(handle)).stage is not stage:
        assert time.monotonic() < deadline, f"{handle.id} never reached {stage.value}"
        await asyncio.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class WorkerProcess:
    metrics_port: int
    task_queue: str
    blob_dir: Path
    address: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def worker_process(dev_env, local_arm, tmp_path_factory) -> AsyncIterator[WorkerProcess]:
    """``worker.py --prometheus-bind`` on a free loopback port, against the dev server and the local ARM."""
    root = tmp_path_factory.mktemp("metrics")
    port = free_port()
    started = WorkerProcess(port, f"metrics-{uuid.uuid4().hex[:8]}", root / "blobs",
                            dev_env.client.service_client.config.target_host)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "TEMPORAL_", "OTEL_"))}
    env.update(WORKER_ENV)
    argv = [sys.executable, "worker.py", "--address", started.address, "--task-queue", started.task_queue,
            "--arm-endpoint", local_arm.endpoint, "--arm-ca-file", local_arm.ca_file, "--arm-credential", "local",
            "--blob-dir", str(started.blob_dir), "--prometheus-bind", f"127.0.0.1:{port}"]  # fmt: skip
    log = root / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "worker on task queue" not in log.read_text(errors="replace"):
            assert worker.poll() is None, f"worker.py exited:\n{log.read_text(errors='replace')[-3000:]}"
            assert time.monotonic() < deadline, f"worker.py did not start:\n{log.read_text(errors='replace')[-3000:]}"
            await asyncio.sleep(0.1)
        yield started
    finally:
        stop(worker)


@pytest.fixture(scope="module")
def prometheus(worker_process: WorkerProcess, service_port: int, tmp_path_factory) -> Iterator[str | None]:
    """A real Prometheus (Debian's package; ``make prometheus``) scraping the worker and the service every second,
    started before anything is deployed so rates have samples; None where it is not installed."""
    binary = shutil.which("prometheus")
    if binary is None:
        yield None
        return
    root = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = root / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: worker, static_configs: [{{targets: ['127.0.0.1:{worker_process.metrics_port}']}}]}}\n"
        f"  - {{job_name: service, static_configs: [{{targets: ['127.0.0.1:{service_port}']}}]}}\n"
    )
    argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]  # fmt: skip
    log = root / "prometheus.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(argv, cwd=root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    api = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # ready, and both targets scraped successfully
            with contextlib.suppress(OSError, ValueError, KeyError):
                with urllib.request.urlopen(f"{api}/api/v1/targets", timeout=5) as response:
                    targets = json.loads(response.read())["data"]["activeTargets"]
                if len(targets) == 2 and all(t["health"] == "up" for t in targets):
                    break
            assert server.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, f"Prometheus never scraped both targets:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield api
    finally:
        stop(server)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def worker_run(worker_process: WorkerProcess, local_arm, prometheus: str | None) -> AsyncIterator[WorkerRun]:
    address, task_queue, blob_dir = worker_process.address, worker_process.task_queue, worker_process.blob_dir
    client = await connect(address=address, namespace="default")
    rg = f"rg-metrics-{uuid.uuid4().hex[:8]}"
    full = request_for(local_arm, blob_dir, rg, example_template(), parameters=example_parameters())

    def smaller() -> Any:
        return request_for(local_arm, blob_dir, rg, example_template("azuredeploy.without-web.json"),
                           parameters=example_parameters(), mode=DeploymentMode.COMPLETE)  # fmt: skip

    results: dict[str, DeployResult] = {}
    statuses: dict[str, DeploymentStatus] = {}
    before = local_arm.admin.counters().count(status=429)
    # 1. ARM throttles the deployment PUT once: a 429 the worker's ARM client sees, a DEPLOYING retry.
    local_arm.admin.add_faults(Fault.throttle(operation="Deployments_CreateOrUpdate", path=rg, count=1))
    try:
        handle = await start_deployment(client, full, task_queue=task_queue)
        results["throttled"] = await result_of(handle)
        statuses["throttled"] = await query_status(handle)
    finally:
        local_arm.admin.clear_faults()
    throttled_by_arm = local_arm.admin.counters().count(status=429) - before
    # 2. Complete mode deletes the web app: approved after APPROVAL_DELAY.
    handle = await start_deployment(client, smaller(), task_queue=task_queue)
    await wait_stage(handle, DeploymentStage.AWAITING_CONFIRMATION)
    await asyncio.sleep(APPROVAL_DELAY)
    await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="bo", reason="web app retired"))
    results["approved"] = await result_of(handle)
    # 3. The web app back; 4. its deletion rejected.
    results["plain"] = await result_of(await start_deployment(client, full, task_queue=task_queue))
    handle = await start_deployment(client, smaller(), task_queue=task_queue)
    await wait_stage(handle, DeploymentStage.AWAITING_CONFIRMATION)
    await handle.signal(SIGNAL_REJECT, ApprovalSignal(approver="bo", reason="keep the web app"))
    results["rejected"] = await result_of(handle)
    # 5. Cancelled while it waits for a decision.
    handle = await start_deployment(client, smaller(), task_queue=task_queue)
    await wait_stage(handle, DeploymentStage.AWAITING_CONFIRMATION)
    await handle.cancel()
    results["cancelled"] = await result_of(handle)
    url = f"http://127.0.0.1:{worker_process.metrics_port}/metrics"
    first = await asyncio.to_thread(scrape, url)
    # A query of a closed run replays its whole history on the worker: nothing may be counted again.
    for result in results.values():
        await query_status(client.get_workflow_handle(result.workflow_id))
    await asyncio.sleep(1.5)  # past the bridge's drain interval
    again = await asyncio.to_thread(scrape, url)
    yield WorkerRun(url, local_arm.subscription_id, results, statuses, throttled_by_arm, first, again)


@on_session_loop
async def test_the_runs_went_as_planned(worker_run: WorkerRun) -> None:
    outcomes = {k: r.outcome for k, r in worker_run.results.items()}
    assert outcomes == {
        "throttled": DeployOutcome.SUCCEEDED,
        "approved": DeployOutcome.SUCCEEDED,
        "plain": DeployOutcome.SUCCEEDED,
        "rejected": DeployOutcome.REJECTED,
        "cancelled": DeployOutcome.CANCELLED,
    }, {k: r.failure for k, r in worker_run.results.items()}
    assert worker_run.throttled_by_arm == 1


@on_session_loop
async def test_outcomes_are_counted_once_by_outcome_stage_and_subscription(worker_run: WorkerRun) -> None:
    s, sub = worker_run.scrape, worker_run.subscription_id
    name = "orchestrator_deployments_total"
    assert s.value(name, outcome="SUCCEEDED", final_stage="COMPLETED", subscription_id=sub) == 3
    assert s.value(name, outcome="REJECTED", final_stage="FAILED", subscription_id=sub) == 1
    assert s.value(name, outcome="CANCELLED", final_stage="FAILED", subscription_id=sub) == 1
    assert s.value(name) == 5
    # No deployment id, resource group or workflow id became a label.
    for labels in s.labels_of(name):
        assert set(labels) <= {"outcome", "final_stage", "subscription_id", "namespace", "task_queue", "workflow_type"}
    # Replaying every history (the status queries of closed runs) counted nothing again.
    for key in worker_run.scrape.samples:
        if key[0].startswith("orchestrator_"):
            assert worker_run.after_queries.samples.get(key) == worker_run.scrape.samples[key], key


@on_session_loop
async def test_stage_attempt_durations_are_histograms_per_stage(worker_run: WorkerRun) -> None:
    s = worker_run.scrape
    count = "orchestrator_stage_attempt_duration_seconds_count"
    assert s.families["orchestrator_stage_attempt_duration_seconds"] == "histogram"
    assert s.value(count, stage="VALIDATING_PARAMETERS", result="succeeded") == 5
    assert s.value(count, stage="LINTING", result="succeeded") == 5
    # The approved run plans twice (again after the approval); the rejected and cancelled ones never deploy.
    assert s.value(count, stage="PLANNING", result="succeeded") == 6
    assert s.value(count, stage="DEPLOYING", result="succeeded") == 3
    assert s.value(count, stage="DEPLOYING", result="failed") >= 1  # the throttled attempt
    assert s.value("orchestrator_stage_attempt_duration_seconds_sum", stage="DEPLOYING") > 0
    inf = s.value("orchestrator_stage_attempt_duration_seconds_bucket", stage="LINTING", le="+Inf")
    assert inf == 5


@on_session_loop
async def test_retries_carry_their_class_and_code(worker_run: WorkerRun) -> None:
    s = worker_run.scrape
    deploying = worker_run.statuses["throttled"].stages[DeploymentStage.DEPLOYING]
    assert deploying.last_error_code  # the classified failure the workflow retried
    retried = s.labels_of("orchestrator_stage_retries_total")
    assert {"stage": "DEPLOYING", "failure_class": "ENVIRONMENTAL", "code": deploying.last_error_code} in [
        {k: v for k, v in labels.items() if k in ("stage", "failure_class", "code")} for labels in retried
    ]
    assert s.value("orchestrator_stage_retries_total", stage="DEPLOYING") == deploying.failures


@on_session_loop
async def test_arm_429s_are_counted_as_arm_answered_them(worker_run: WorkerRun) -> None:
    s = worker_run.scrape
    assert s.value("orchestrator_arm_throttled_total", method="PUT") == worker_run.throttled_by_arm == 1
    assert s.value("orchestrator_arm_responses_total", status_class="4xx") >= 1
    assert s.value("orchestrator_arm_responses_total", status_class="2xx") > 10


@on_session_loop
async def test_approval_wait_is_measured_to_the_decision(worker_run: WorkerRun) -> None:
    s = worker_run.scrape
    approved = s.value("orchestrator_approval_wait_seconds_sum", decision="APPROVED")
    assert s.value("orchestrator_approval_wait_seconds_count", decision="APPROVED") == 1
    assert APPROVAL_DELAY <= approved < 60
    assert s.value("orchestrator_approval_wait_seconds_count", decision="REJECTED") == 1


@on_session_loop
async def test_the_sdk_metrics_share_the_endpoint(worker_run: WorkerRun) -> None:
    names = worker_run.scrape.sample_names
    assert any(n.startswith("temporal_workflow_") for n in names), sorted(names)
    assert any(n.startswith("temporal_activity_") for n in names), sorted(names)
    assert 'service_name="bicep-orchestrator"' in worker_run.scrape.text  # target_info names the service


# -------------------------------------------------------------------------------------------- the team service

# The team service is being built beside this (api/); this app mounts services.metrics the way docs/TELEMETRY.md
# tells the service to: the request middleware, GET /metrics as a plain route and the ASGI app mounted.
SERVICE_APP = """
import sys
import uvicorn
from fastapi import FastAPI, Response
from services import metrics

app = FastAPI()
app.add_middleware(metrics.RequestMetrics)
app.mount("/asgi-metrics", metrics.metrics_app())

@app.get("/metrics")
def scrape() -> Response:
    body, content_type = metrics.render_metrics()
    return Response(body, media_type=content_type)

@app.post("/deployments", status_code=202)
def start() -> dict:
    metrics.deployment_started()
    return {"id": "deploy-1"}

@app.get("/deployments/{deployment_id}")
def show(deployment_id: str) -> dict:
    return {"id": deployment_id}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@pytest.fixture(scope="module")
def service_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    log = tmp_path_factory.mktemp("service") / "service.log"
    with open(log, "wb") as out:
        service = subprocess.Popen([sys.executable, "-c", SERVICE_APP, str(port)], cwd=REPO, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/deployments/warm-up", timeout=5):
                    break
            except OSError:
                assert service.poll() is None, log.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                time.sleep(0.1)
        yield port
    finally:
        stop(service)


@pytest.fixture(scope="module")
def service_scrape(service_port: int, prometheus: str | None) -> Scrape:
    base = f"http://127.0.0.1:{service_port}"
    for path in ("/deployments/deploy-a", "/deployments/deploy-b"):
        urllib.request.urlopen(f"{base}{path}", timeout=5).close()
    urllib.request.urlopen(urllib.request.Request(f"{base}/deployments", data=b"{}", method="POST"), timeout=5).close()
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(f"{base}/no/such/secret-path", timeout=5)
    mounted = scrape(f"{base}/asgi-metrics/")
    assert "orchestrator_api_requests_total" in mounted.sample_names
    return scrape(f"{base}/metrics")


def test_the_service_counts_requests_by_route_template_and_starts(service_scrape: Scrape) -> None:
    s = service_scrape
    requests = "orchestrator_api_requests_total"
    # warm-up, deploy-a and deploy-b: one route, never the ids a caller sent.
    assert s.value(requests, route="/deployments/{deployment_id}", method="GET", status="200") == 3
    assert s.value(requests, route="/deployments", method="POST", status="202") == 1
    assert s.value(requests, route="unmatched", status="404") == 1
    assert "deploy-a" not in s.text and "secret-path" not in s.text
    assert s.value("orchestrator_api_deployments_started_total") == 1
    assert s.value("orchestrator_api_request_duration_seconds_count", route="/deployments") == 1


# ------------------------------------------------------------------------------------------------ the dashboard

_METRIC_IN_PROMQL = re.compile(r"\b(orchestrator_[a-z0-9_]+|temporal_[a-z0-9_]+)\b")


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels_of(board: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return found


@on_session_loop
async def test_every_dashboard_query_names_a_metric_the_product_exports(
    worker_run: WorkerRun, service_scrape: Scrape
) -> None:
    exported = worker_run.scrape.sample_names | service_scrape.sample_names
    board = dashboard()
    queried: set[str] = set()
    for panel in panels_of(board):
        for target in panel.get("targets", []):
            names = set(_METRIC_IN_PROMQL.findall(target["expr"]))
            assert names, f"panel {panel['title']!r}: {target['expr']!r} names no metric of ours"
            assert names <= exported, f"panel {panel['title']!r} queries metrics nobody exports: {names - exported}"
            queried |= names
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            names = set(_METRIC_IN_PROMQL.findall(variable["definition"]))
            assert names and names <= exported, variable["name"]
    # Each metric the issue asks for has a panel.
    for wanted in ("orchestrator_deployments_total", "orchestrator_stage_attempt_duration_seconds_bucket",
                   "orchestrator_stage_retries_total", "orchestrator_approval_wait_seconds_bucket",
                   "orchestrator_arm_throttled_total"):  # fmt: skip
        assert wanted in queried, wanted


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["title"] and board["uid"] and isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels_of(board)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    for panel in panels_of(board):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]


def test_the_worker_refuses_a_busy_metrics_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "TEMPORAL_"))}
        proc = subprocess.run([sys.executable, "worker.py", "--prometheus-bind", f"127.0.0.1:{port}"], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "ORCHESTRATOR_PROMETHEUS_BIND" in proc.stderr and "Traceback" not in proc.stderr


# Grafana's variables as a dashboard user would have them: every subscription and task queue; windows wide enough
# to hold the whole run on a loaded machine (Grafana's own $__rate_interval is 4 scrape intervals, 1m at 15 s).
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "15m", "$subscription": ".*", "$task_queue": ".*"}


def prometheus_query(api: str, expr: str) -> dict[str, Any]:
    url = f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as err:  # 400: the expression does not parse
        return dict(json.loads(err.read()))


@on_session_loop
async def test_prometheus_evaluates_every_dashboard_query_to_data(
    worker_run: WorkerRun, service_scrape: Scrape, prometheus: str | None
) -> None:
    """What a user opening the dashboard sees: each panel's query, run by a real Prometheus that scraped the worker
    and the service while the deployments ran, parses and returns series with numbers (not an empty panel)."""
    if prometheus is None:
        pytest.skip(
            "Prometheus is not installed (`make prometheus` installs Debian's package): queries checked by name"
        )
    await asyncio.sleep(2.5)  # two more scrapes after the service's last request
    board = dashboard()
    for panel in panels_of(board):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            answer = prometheus_query(prometheus, expr)
            assert answer["status"] == "success", f"panel {panel['title']!r}: {expr}: {answer.get('error')}"
            values = [float(series["value"][1]) for series in answer["data"]["result"]]
            assert values, f"panel {panel['title']!r} finds no series: {expr}"
            if "approval_wait_seconds_bucket" in expr:
                # One approval and one rejection in this run: rate() never sees a series' first observation, and
                # a histogram's series cannot be made at zero beforehand (docs/TELEMETRY.md, "First events").
                continue
            assert any(not math.isnan(v) for v in values), f"panel {panel['title']!r} shows no data: {expr}"
    # The series made at zero beforehand: the first rejection, cancellation and 429 of this worker are seen.
    for expr in ('sum(increase(orchestrator_deployments_total{outcome="REJECTED"}[10m]))',
                 'sum(increase(orchestrator_deployments_total{outcome="CANCELLED"}[10m]))',
                 "sum(increase(orchestrator_arm_throttled_total[10m]))"):  # fmt: skip
        [series] = prometheus_query(prometheus, expr)["data"]["result"]
        assert float(series["value"][1]) > 0.5, expr
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"]).groups()  # type: ignore[union-attr]
        url = f"{prometheus}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": metric})
        with urllib.request.urlopen(url, timeout=10) as response:
            assert json.loads(response.read())["data"], variable["name"]
