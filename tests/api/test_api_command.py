"""``starter.py api`` as a user runs it, and the embedded default's API (``dev`` and ``demo --keep-running`` start
it): real processes, the local development mode, exit codes, and no process left behind when it stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from client.cli._common import current_user
from client.embedded import EmbeddedDefault, _pid_alive, worker_environment
from harness.localarm import example_parameters, example_template
from local_arm.tls import ensure_certificates
from tests.support.api_env import SCRUBBED, sse_events
from tests.support.notification_receivers import WEBHOOK_KEY, HttpReceiver, http_receiver

ROOT = Path(__file__).resolve().parents[2]


def _api(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "starter.py"), "api", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )


def test_the_development_mode_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    done = _api("--dev", "--bind", "0.0.0.0", "--port", "0", "--state-dir", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "--bind 0.0.0.0" in done.stderr and "loopback" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_bad_port_is_a_usage_error() -> None:
    done = _api("--dev", "--port", "70000")
    assert done.returncode == 2 and "--port 70000" in done.stderr and "Traceback" not in done.stderr


def _production_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A clean environment (no orchestrator or Temporal setting of this shell) with ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "TEMPORAL_"))}
    env["HOME"] = str(tmp_path)
    env.update(settings)
    return env


def test_production_mode_without_sign_in_or_role_map_refuses_to_start_naming_the_variable(tmp_path: Path) -> None:
    """Outside --dev the service needs OpenID Connect settings and a role map; each missing or bad one stops it
    with exit 2 and a message naming the variable, before it connects to anything or listens."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not used: the settings are refused before any fetch\n")
    good_ca = ensure_certificates(tmp_path / "tls").ca_file
    role_map = tmp_path / "roles.yaml"
    role_map.write_text("grants:\n  - {claim: Deployments.Approve, roles: [approver], scopes: ['*/*']}\n")
    oidc = {
        "ORCHESTRATOR_OIDC_ISSUER": "https://127.0.0.1:9/tenant/v2.0",
        "ORCHESTRATOR_OIDC_AUDIENCE": "api://bicep-orchestrator",
        "ORCHESTRATOR_OIDC_CA_FILE": str(good_ca),
    }
    cases = [
        ({}, "ORCHESTRATOR_OIDC_ISSUER is not set"),
        ({**oidc, "ORCHESTRATOR_OIDC_AUDIENCE": ""}, "ORCHESTRATOR_OIDC_AUDIENCE is not set"),
        ({**oidc, "ORCHESTRATOR_OIDC_CA_FILE": str(ca)}, "ORCHESTRATOR_OIDC_CA_FILE="),  # not a PEM bundle
        (oidc, "ORCHESTRATOR_ROLE_MAP is not set"),
        ({**oidc, "ORCHESTRATOR_ROLE_MAP": str(tmp_path / "missing.yaml")}, "no such role map file"),
        (
            {**oidc, "ORCHESTRATOR_ROLE_MAP": str(role_map), "ORCHESTRATOR_OIDC_CLIENT_ID": "approval-page"},
            "ORCHESTRATOR_OIDC_REDIRECT_URI is not set",
        ),
        (
            {**oidc, "ORCHESTRATOR_ROLE_MAP": str(role_map), "ORCHESTRATOR_OIDC_CLIENT_ID": "approval-page",
             "ORCHESTRATOR_OIDC_REDIRECT_URI": "https://team.example/auth/callback"},
            "does not end in /ui/sign-in/callback",
        ),
        (  # the callback under the public URL unless named: an http public URL off loopback is refused
            {**oidc, "ORCHESTRATOR_ROLE_MAP": str(role_map), "ORCHESTRATOR_OIDC_CLIENT_ID": "approval-page",
             "ORCHESTRATOR_PUBLIC_URL": "http://team.example"},
            "ORCHESTRATOR_OIDC_REDIRECT_URI='http://team.example/ui/sign-in/callback' is not an https URL",
        ),
        (
            {**oidc, "ORCHESTRATOR_ROLE_MAP": str(role_map), "ORCHESTRATOR_OIDC_CLIENT_ID": "approval-page",
             "ORCHESTRATOR_OIDC_REDIRECT_URI": "https://team.example/ui/sign-in/callback",
             "ORCHESTRATOR_API_SESSION_KEY": "c2hvcnQ="},
            "ORCHESTRATOR_API_SESSION_KEY is not base64 of 32 bytes",
        ),
        ({**oidc, "ORCHESTRATOR_ROLE_MAP": str(role_map)}, "no relay key: set ORCHESTRATOR_API_RELAY_KEY_FILE"),
    ]  # fmt: skip
    for settings, expected in cases:
        done = _api("--port", "0", env=_production_env(tmp_path, **settings))
        assert done.returncode == 2, (settings, done.stderr)
        assert expected in done.stderr and "The service was not started" in done.stderr, (settings, done.stderr)
        assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.fixture(scope="module")
def hook() -> Iterator[HttpReceiver]:
    """A webhook receiver the embedded worker notifies (every event)."""
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def embedded_with_api(tmp_path_factory: pytest.TempPathFactory, hook: HttpReceiver):  # type: ignore[no-untyped-def]
    saved = {k: os.environ.pop(k, None) for k in (*SCRUBBED, "ORCHESTRATOR_PUBLIC_URL")}
    folder = tmp_path_factory.mktemp("embedded-api")
    config = folder / "notifications.yaml"
    config.write_text(f"sinks:\n  - {{name: hook, type: webhook, url: '{hook.url}', secret_env: HOOK_KEY}}\n")
    worker_env = {"ORCHESTRATOR_NOTIFICATIONS": str(config), "HOOK_KEY": WEBHOOK_KEY}
    embedded = EmbeddedDefault(folder / "state", api=True, worker_env=worker_env)
    try:
        embedded.start()
        yield embedded
    finally:
        embedded.stop()
        for key, value in saved.items():
            if value is not None:
                os.environ[key] = value


def test_the_embedded_default_serves_the_api_in_development_mode(
    embedded_with_api: EmbeddedDefault, hook: HttpReceiver
) -> None:
    instance = embedded_with_api.instance
    assert instance is not None and instance.api_url and instance.api_url.startswith("http://127.0.0.1:")
    recorded = json.loads((embedded_with_api.state_dir / "dev.json").read_text())
    assert recorded["api_url"] == instance.api_url and "api" in recorded["pids"]
    with httpx.Client(base_url=instance.api_url, timeout=120) as http:
        assert http.get("/healthz").json() == {"status": "ok", "temporal": True}
        body = {
            "subscription_id": instance.subscription_id,
            "resource_group": f"api-dev-{uuid.uuid4().hex[:8]}",
            "location": "eastus",
            "template": example_template(),
            "parameters": example_parameters(),
            "skip_health": True,
        }
        started = http.post("/deployments", json=body)  # no token: nobody signs in in this mode
        assert started.status_code == 201, started.text
        deployment = started.json()["id"]
        with http.stream("GET", f"/deployments/{deployment}/events") as stream:
            events = sse_events(stream)
        assert events[-1]["event"] == "result" and events[-1]["data"]["outcome"] == "SUCCEEDED"
        state = http.get(f"/deployments/{deployment}").json()
        assert state["initiator"] == current_user()  # the configured identity (default: the OS account)
        # A proxy on this machine forwarding someone else's request: the development mode refuses it.
        forwarded = http.get("/deployments", headers={"X-Forwarded-For": "203.0.113.7"})
        assert forwarded.status_code == 403 and forwarded.headers["content-type"] == "application/problem+json"
        # The worker's notifications link to this API's approval page (ORCHESTRATOR_PUBLIC_URL set for it), and the
        # link opens the deployment's page.
        hook.wait_for(1, 60)
        [event] = [r.json() for r in hook.requests if r.json()["data"]["deployment_id"] == deployment]
        link = event["data"]["link"]
        assert link == f"{instance.api_url}/ui/deployments/{deployment}", event["data"]
        page = http.get(link)
        assert page.status_code == 200 and "COMPLETED" in page.text


def test_a_taken_port_is_an_environmental_failure(embedded_with_api: EmbeddedDefault) -> None:
    instance = embedded_with_api.instance
    assert instance is not None and instance.api_url
    port = instance.api_url.rpartition(":")[2]
    env = {**os.environ, **worker_environment(instance)}
    done = _api("--dev", "--port", port, "--state-dir", str(embedded_with_api.state_dir), env=env)
    assert done.returncode == 3, done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr


def test_stopping_the_embedded_default_stops_the_api(tmp_path: Path) -> None:
    embedded = EmbeddedDefault(tmp_path / "state", api=True, worker=False, local_arm=False)
    instance = embedded.start()
    api = next(c.process for c in embedded.children if c.name == "api")
    try:
        assert httpx.get(f"{instance.api_url}/healthz", timeout=10).status_code == 200
    finally:
        embedded.stop()
    assert api.returncode == 0  # SIGTERM: a clean stop, exit code 0
    assert not _pid_alive(api.pid)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{instance.api_url}/healthz", timeout=5)


def test_dev_prints_the_api_url_and_dev_stop_leaves_nothing_running(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["ORCHESTRATOR_STATE_DIR"] = str(state)

    def starter(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "starter.py"), *argv],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip

    started = starter("dev", "--detach", "--state-dir", str(state))
    try:
        assert started.returncode == 0, started.stderr
        line = next(line for line in started.stdout.splitlines() if line.strip().startswith("API "))
        url = line.split()[1]
        assert url.startswith("http://127.0.0.1:") and "development mode" in line
        assert httpx.get(f"{url}/healthz", timeout=10).json()["temporal"] is True
        pids = json.loads((state / "dev.json").read_text())["pids"]
    finally:
        stopped = starter("dev", "--stop", "--state-dir", str(state))
    assert stopped.returncode == 0, stopped.stderr
    assert not any(_pid_alive(pid) for pid in pids.values()), pids


def test_demo_keep_running_prints_the_api_url_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    import signal
    import time

    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["ORCHESTRATOR_STATE_DIR"] = str(state)
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "starter.py"), "demo", "--keep-running", "--state-dir", str(state)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    pids: dict[str, int] = {}
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 180
        line = ""
        while time.monotonic() < deadline and "keeps running" not in line:
            line = demo.stdout.readline()
            assert line or demo.poll() is None, "demo ended before it kept running"
        assert "API: http://127.0.0.1:" in line, line
        url = line.split("API: ", 1)[1].split()[0].rstrip(",")
        assert httpx.get(f"{url}/healthz", timeout=10).json()["temporal"] is True
        pids = json.loads((state / "dev.json").read_text())["pids"]
        assert "api" in pids
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    assert pids and not any(_pid_alive(pid) for pid in pids.values()), pids
