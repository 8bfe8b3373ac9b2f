"""Acceptance (issue 7): a deployment with a securestring parameter whose value is a random 32-character token, and
a plain string parameter marked with --secret-param, through the embedded default (real Temporal dev server, local
ARM over HTTPS, worker process) with payload encryption keys and console tracing configured, driven by the CLI as a
user runs it. Neither token occurs — byte for byte — in `temporal workflow show --output json`, the worker's log
(with its exported spans), the CLI's output (with its spans), the content store, or the audit files; through the
codec server the plan is readable."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.embedded import EmbeddedDefault, temporal_binary
from harness.secret_template import random_token, secret_template
from tests.support.history_text import payload_bytes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keys() -> str:
    return f"k1={base64.b64encode(os.urandom(32)).decode()}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, keys: str) -> Iterator[EmbeddedDefault]:
    """The embedded default, started with codec keys and console tracing in its environment (the worker and the
    codec server inherit them)."""
    patch = {"ORCHESTRATOR_CODEC_KEYS": keys, "ORCHESTRATOR_OTEL_TRACES": "console", "ORCHESTRATOR_APPROVERS": "bo"}
    saved = {k: os.environ.get(k) for k in patch}
    os.environ.update(patch)
    embedded = EmbeddedDefault(tmp_path_factory.mktemp("secure-stack"))
    try:
        embedded.start()
        yield embedded
    finally:
        embedded.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_tokens_appear_nowhere_and_the_codec_server_shows_the_plan(
    stack: EmbeddedDefault, keys: str, tmp_path: Path
) -> None:
    instance = stack.instance
    assert instance is not None and instance.codec_endpoint, "keys are configured: a codec server must run"
    password, owner = random_token(), random_token()
    account = "st" + uuid.uuid4().hex[:12]
    template = tmp_path / "main.json"
    template.write_text(json.dumps(secret_template(account)))
    params = tmp_path / "main.parameters.json"
    params.write_text(json.dumps({"parameters": {"adminPassword": {"value": password}, "ownerTag": {"value": owner}}}))
    audit_dir = tmp_path / "audit"
    env = {
        **os.environ,
        "ORCHESTRATOR_STATE_DIR": str(stack.state_dir),
        "ORCHESTRATOR_CODEC_KEYS": keys,
        "ORCHESTRATOR_OTEL_TRACES": "console",
    }
    argv = [
        sys.executable, "starter.py", "deploy", "--local", "-g", f"rg-sec-{uuid.uuid4().hex[:8]}", "-l", "westeurope",
        "-t", str(template), "-p", str(params), "--secret-param", "ownerTag", "--output", "json",
    ]  # fmt: skip
    help_text = subprocess.run([sys.executable, "starter.py", "deploy", "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=60).stdout  # fmt: skip
    if "--audit-dir" in help_text:
        argv += ["--audit-dir", str(audit_dir)]
    cli = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=180)
    assert cli.returncode == 0, cli.stderr.decode()[-3000:]
    result = json.loads(cli.stdout)
    workflow_id = result["workflow_id"]
    assert result["outcome"] == "SUCCEEDED"
    tokens = [password.encode(), owner.encode()]

    def clean(what: str, data: bytes) -> None:
        for token in tokens:
            assert token not in data, f"a secret token occurs in {what}"

    clean("the CLI's stdout", cli.stdout)
    clean("the CLI's stderr", cli.stderr)
    assert b"StartWorkflow:DeploymentWorkflow" in cli.stderr  # the CLI's spans were exported there

    temporal = temporal_binary()
    show = [temporal, "workflow", "show", "--address", instance.temporal_address, "--namespace", "default",
            "--workflow-id", workflow_id, "--output", "json"]  # fmt: skip
    raw = subprocess.run(show, capture_output=True, timeout=60)
    assert raw.returncode == 0, raw.stderr
    clean("temporal workflow show --output json", raw.stdout)
    clean("the payloads of temporal workflow show", payload_bytes(raw.stdout))
    assert b"binary/encrypted" in raw.stdout or base64.b64encode(b"binary/encrypted") in raw.stdout
    assert b"Microsoft.Storage/storageAccounts" not in raw.stdout + payload_bytes(raw.stdout)  # ciphertext only

    decoded = subprocess.run([*show, "--codec-endpoint", instance.codec_endpoint], capture_output=True, timeout=60)
    assert decoded.returncode == 0, decoded.stderr
    plain = payload_bytes(decoded.stdout)
    clean("temporal workflow show through the codec server", decoded.stdout + plain)
    assert b"Microsoft.Storage/storageAccounts" in plain  # the plan is readable with the codec server
    assert account.encode() in plain and b'"change_type":"Create"' in plain

    worker_log = (stack.state_dir / "worker.log").read_bytes()
    clean("the worker's log", worker_log)
    assert b"Stage:PLANNING" in worker_log and b"deployment.resource_group" in worker_log  # spans were exported

    blobs = stack.state_dir / "blobs"
    stored = [p for p in blobs.rglob("*") if p.is_file()]
    assert stored
    for path in stored:
        clean(f"the content store ({path.name})", path.read_bytes())

    audit_files = [p for p in audit_dir.rglob("*") if p.is_file()] if audit_dir.exists() else []
    for path in audit_files:
        clean(f"the audit file {path.name}", path.read_bytes())
    rebuilt = subprocess.run(
        [sys.executable, "starter.py", "audit", workflow_id, "--local", "--audit-dir", str(tmp_path / "rebuilt")],
        cwd=ROOT, env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    written = {p.suffix for p in (tmp_path / "rebuilt").rglob("*") if p.is_file()}
    assert {".json", ".db"} <= written, written  # the audit JSON and audit.db were written and searched
    clean("starter.py audit's output", rebuilt.stdout + rebuilt.stderr)
    for path in (tmp_path / "rebuilt").rglob("*"):
        if path.is_file():
            clean(f"the rebuilt audit file {path.name}", path.read_bytes())


def test_cli_under_four_eyes_asks_another_person_and_refuses_self_approval(stack: EmbeddedDefault, keys: str) -> None:
    """The worker allows only 'bo' (ORCHESTRATOR_APPROVERS): the deploying user is told another person must approve,
    their own `approve` (and `--as bo`) is refused before anything is sent, and bo's approval deploys."""
    import threading
    import time

    instance = stack.instance
    assert instance is not None
    env = {**os.environ, "ORCHESTRATOR_STATE_DIR": str(stack.state_dir), "ORCHESTRATOR_CODEC_KEYS": keys}
    example = ROOT / "examples" / "storage-and-web"
    rg = f"rg-4eyes-{uuid.uuid4().hex[:8]}"
    base = [sys.executable, "starter.py", "deploy", "--local", "-g", rg, "-l", "westeurope",
            "-p", str(example / "azuredeploy.parameters.json")]  # fmt: skip
    first = subprocess.run([*base, "-t", str(example / "azuredeploy.json")], cwd=ROOT, env=env, capture_output=True,
                           timeout=180)  # fmt: skip
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    proc = subprocess.Popen(
        [*base, "-t", str(example / "azuredeploy.without-web.json"), "--mode", "Complete"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any("python starter.py approve " in line for line in lines):
            assert proc.poll() is None, "".join(lines)[-2000:]
            assert time.monotonic() < deadline, "".join(lines)[-2000:]
            time.sleep(0.1)
        text = "".join(lines)
        assert "Four eyes: you started this deployment, so another person must approve it (bo)" in text
        command = next(line for line in lines if "python starter.py approve " in line)
        workflow_id = command.split("python starter.py approve ", 1)[1].split()[0]

        own = subprocess.run([sys.executable, "starter.py", "approve", workflow_id, "--local"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert (
            own.returncode == 2 and "not among the allowed approvers" in own.stderr and "Nothing was sent" in own.stderr
        )
        posing = subprocess.run([sys.executable, "starter.py", "approve", workflow_id, "--local", "--as", "bo"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert posing.returncode == 2 and "--as bo is not allowed" in posing.stderr

        signal = subprocess.run(
            [temporal_binary(), "workflow", "signal", "--address", instance.temporal_address, "--namespace",
             "default", "--workflow-id", workflow_id, "--name", "approve",
             "--input", json.dumps({"approver": "bo", "reason": "web app retired"})],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert signal.returncode == 0, signal.stderr
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(lines)[-2000:]
    assert "Resource changes: 1 to delete" in out
