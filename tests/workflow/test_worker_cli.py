"""worker.py refuses bad configuration with a message naming the setting (exit 2) and an unreachable Temporal
server with one naming the address and the fix (exit 3)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_worker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "worker.py"), *args], capture_output=True, text=True, timeout=60, cwd=REPO
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_plain_http_arm_endpoint_is_a_usage_error() -> None:
    proc = run_worker("--arm-endpoint", "http://127.0.0.1:8080")
    assert proc.returncode == 2
    assert "https://" in proc.stderr and "--arm-endpoint" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_ca_file_is_a_usage_error(tmp_path) -> None:
    proc = run_worker("--arm-endpoint", "https://127.0.0.1:8443", "--arm-ca-file", str(tmp_path / "ca.pem"))
    assert proc.returncode == 2 and "ca.pem" in proc.stderr and "Traceback" not in proc.stderr


def test_unreachable_temporal_names_the_address() -> None:
    address = f"127.0.0.1:{free_port()}"
    proc = run_worker("--address", address, "--arm-endpoint", "https://127.0.0.1:8443", "--arm-credential", "local")
    assert proc.returncode == 3
    assert address in proc.stderr and "TEMPORAL_ADDRESS" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unusable_health_request_policy_is_a_usage_error() -> None:
    import os

    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "worker.py"),
            "--arm-endpoint",
            "https://127.0.0.1:8443",
            "--arm-credential",
            "local",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "ORCHESTRATOR_HEALTH_METHODS": "GET;DELETE"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "ORCHESTRATOR_HEALTH_METHODS" in proc.stderr and "Traceback" not in proc.stderr
