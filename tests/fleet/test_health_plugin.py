"""Custom health checks as plugins: the example package in examples/health-plugin is installed (pip, into a folder
the worker process gets on its PYTHONPATH — never into this venv), then used as a rollout ring's health gate
through the CLI, a worker process and the local ARM. The metric endpoint is a small HTTP server on 127.0.0.1 (the
one thing here that stands in for a team's metrics service). Also: a plugin that is not installed fails as a
declaration error, and a secret the worker passes is never shown."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from contract.health import HealthSpec
from contract.rollout import RingState, RolloutState, RolloutStatus
from harness.localarm import storage_template
from local_arm.testing import FAST, LocalArm, running_local_arm
from services.health.policy import RequestPolicy
from services.health.runner import run_health_checks
from tests.support.fleet import REPO, Fleet

TOKEN = "s3cr3t-metrics-token-7781"
SUB = "00000000-0000-0000-0000-000000000501"


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("plugins")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
         str(REPO / "examples" / "health-plugin")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"pip could not install the example plugin: {proc.stderr[-2000:]}")
    return target


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-plugin"), **FAST)


class Metrics:
    """A metrics endpoint: ``{"error_rate": value}`` for a request with the right bearer token, 401 otherwise."""

    def __init__(self) -> None:
        self.value = 0.01
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ok = self.headers.get("Authorization") == f"Bearer {TOKEN}"
                body = json.dumps({"error_rate": metrics.value} if ok else {"error": "unauthorized"}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics()
    try:
        yield m
    finally:
        m.close()


@pytest.fixture
def fleet(dev_env: Any, local_arm: LocalArm, tmp_path: Path, plugin_dir: Path) -> Iterator[Fleet]:
    f = Fleet(dev_env.client.service_client.config.target_host, local_arm, tmp_path)
    f.env["PYTHONPATH"] = str(plugin_dir)
    f.env["METRICS_TOKEN"] = TOKEN
    f.start_worker()
    try:
        yield f
    finally:
        f.stop()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_plugin_check_gates_a_ring_through_its_bake(fleet: Fleet, metrics: Metrics) -> None:
    tag = uuid.uuid4().hex[:6]
    gates = {"checks": [{"kind": "plugin", "plugin": "json-threshold", "name": "error-rate",
                         "secret_env": ["METRICS_TOKEN"],
                         "settings": {"url": metrics.url, "field": "error_rate", "max": 0.05}}],
             "window_seconds": "2s", "retry_interval_seconds": "0.5s"}  # fmt: skip
    (fleet.tmp / "gates.json").write_text(json.dumps(gates))
    rings = [
        {"name": "canary", "bake": "2s", "gate_interval": "1s", "health_gates": "gates.json",
         "targets": [{"subscription": SUB, "resource_group": f"rg-{tag}-a"}]},
        {"name": "rest", "targets": [{"subscription": SUB, "resource_group": f"rg-{tag}-b"}]},
    ]  # fmt: skip
    path = fleet.rollout_file(f"plug-{tag}", rings, template=storage_template(["stplug0001"]))
    code, out, err = await fleet.cli("rollout", "start", str(path), "--follow", "-o", "json")
    assert code == 0, (err, fleet.log.read_text()[-3000:])
    good = RolloutStatus.model_validate_json(out)
    assert good.state is RolloutState.SUCCEEDED and good.rings[0].gate_checks >= 2

    metrics.value = 0.4  # the canary's error rate climbs: the gate fails, the rest never deploys
    code, out, err = await fleet.cli("rollout", "start", str(path), "--follow", "-o", "json")
    assert code == 1, err
    bad = RolloutStatus.model_validate_json(out)
    assert bad.state is RolloutState.HALTED and bad.rings[0].state is RingState.FAILED
    assert "error_rate is 0.4, above the threshold 0.05" in (bad.rings[0].gate_failure or "")
    assert bad.rings[1].state is RingState.HALTED
    assert TOKEN not in out + err and TOKEN not in json.dumps(gates)


async def _run(spec: HealthSpec) -> Any:
    return await run_health_checks(spec, policy=RequestPolicy(allow_private=True), window_started_at=None)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_plugin_not_installed_on_the_worker_is_a_declaration_error() -> None:
    spec = HealthSpec.model_validate(
        {"checks": [{"kind": "plugin", "plugin": "no-such-plugin", "name": "x"}], "window_seconds": "1s"}
    )
    report = await _run(spec)
    (check,) = report.checks
    assert check.state.value == "failed" and check.declaration_error
    assert "no health check plugin 'no-such-plugin' is installed" in (check.last_error or "")


def test_a_plugin_declaration_is_checked_like_any_check() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not a plugin name"):
        HealthSpec.model_validate({"checks": [{"kind": "plugin", "plugin": "Bad Name"}]})
    with pytest.raises(ValidationError, match="not an environment variable name"):
        HealthSpec.model_validate({"checks": [{"kind": "plugin", "plugin": "p", "secret_env": ["lower"]}]})
    with pytest.raises(ValidationError, match="bytes of JSON"):
        HealthSpec.model_validate({"checks": [{"kind": "plugin", "plugin": "p", "settings": {"x": "y" * 9000}}]})


def test_the_documented_plugin_declaration_is_valid() -> None:
    import re

    doc = (REPO / "docs" / "HEALTH.md").read_text()
    [block] = re.findall(r"```jsonc\n(.*?)```", doc, flags=re.S)
    spec = HealthSpec.model_validate({"checks": [json.loads(block)]})
    assert spec.checks[0].kind == "plugin"
