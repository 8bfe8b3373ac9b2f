"""Attacks through the CLI as a user runs it, against the embedded default (real Temporal dev server, local ARM
over HTTPS, worker process) whose worker requires approval by 'bo' (ORCHESTRATOR_APPROVERS) and has no payload
encryption keys:

- `deploy --mode Complete --no-confirm-deletes` must not bypass the four-eyes policy (exit 2, naming it);
- `LOGNAME=bo USER=bo starter.py approve` must not approve as bo: the CLI's identity is the OS account;
- a secure parameter must be neither recoverable from `temporal workflow show` (no unsalted digest of the value to
  run a dictionary against) nor in plaintext in the content store."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.cli._common import current_user
from client.embedded import EmbeddedDefault, temporal_binary
from harness.secret_template import secret_template
from services.content_store import canonical_json

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "storage-and-web"
SCRUBBED = ("ORCHESTRATOR_CODEC_KEYS", "ORCHESTRATOR_CODEC_KEY_FILE", "ORCHESTRATOR_ALLOW_SKIP_CONFIRMATION")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDefault]:
    saved = {k: os.environ.get(k) for k in (*SCRUBBED, "ORCHESTRATOR_APPROVERS")}
    for k in SCRUBBED:
        os.environ.pop(k, None)
    os.environ["ORCHESTRATOR_APPROVERS"] = "bo"
    embedded = EmbeddedDefault(tmp_path_factory.mktemp("attack-stack"))
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


def env_for(stack: EmbeddedDefault, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    return env | {"ORCHESTRATOR_STATE_DIR": str(stack.state_dir)} | extra


def starter(stack: EmbeddedDefault, *argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "starter.py", *argv], cwd=ROOT, env=env_for(stack, **extra),
                          capture_output=True, text=True, timeout=180)  # fmt: skip


def deploy_args(rg: str, template: str, *more: str) -> list[str]:
    return ["deploy", "--local", "-g", rg, "-l", "westeurope", "-t", str(EXAMPLE / template),
            "-p", str(EXAMPLE / "azuredeploy.parameters.json"), *more]  # fmt: skip


def resources(stack: EmbeddedDefault, rg: str) -> set[str]:
    """The resource group's resources, read from the local ARM with the Azure SDK."""
    from azure.mgmt.resource.resources import ResourceManagementClient

    from local_arm.testing import LocalArmCredential

    inst = stack.instance
    assert inst is not None and inst.arm_endpoint and inst.arm_ca_file
    with ResourceManagementClient(LocalArmCredential(), inst.subscription_id, base_url=inst.arm_endpoint,
                                  connection_verify=inst.arm_ca_file) as client:  # fmt: skip
        return {r.id for r in client.resources.list_by_resource_group(rg)}


def test_no_confirm_deletes_does_not_bypass_the_four_eyes_policy(stack: EmbeddedDefault) -> None:
    rg = f"rg-skip-{uuid.uuid4().hex[:8]}"
    first = starter(stack, *deploy_args(rg, "azuredeploy.json"))
    assert first.returncode == 0, first.stderr[-2000:]
    before = resources(stack, rg)
    skip = starter(stack, *deploy_args(rg, "azuredeploy.without-web.json", "--mode", "Complete",
                                      "--no-confirm-deletes"))  # fmt: skip
    assert skip.returncode == 2, skip.stdout + skip.stderr[-2000:]
    text = skip.stdout + skip.stderr
    assert "ORCHESTRATOR_APPROVERS" in text and "--no-confirm-deletes is refused" in text, text
    assert "Traceback" not in text
    assert resources(stack, rg) == before and len(before) > 1  # nothing was deleted


def test_environment_variables_do_not_make_the_cli_someone_else(stack: EmbeddedDefault) -> None:
    instance = stack.instance
    assert instance is not None
    rg = f"rg-env-{uuid.uuid4().hex[:8]}"
    assert starter(stack, *deploy_args(rg, "azuredeploy.json")).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "starter.py", *deploy_args(rg, "azuredeploy.without-web.json", "--mode", "Complete")],
        cwd=ROOT, env=env_for(stack), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
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
        command = next(line for line in lines if "python starter.py approve " in line)
        workflow_id = command.split("python starter.py approve ", 1)[1].split()[0]

        me = current_user()
        assert me != "bo"
        posing = starter(stack, "approve", workflow_id, "--local", LOGNAME="bo", USER="bo", USERNAME="bo")
        assert posing.returncode == 2, posing.stdout + posing.stderr
        assert f"'{me}' is not among the allowed approvers" in posing.stderr and "Nothing was sent" in posing.stderr

        status = json.loads(starter(stack, "status", workflow_id, "--local", "--output", "json").stdout)
        assert status["stage"] == "AWAITING_CONFIRMATION" and status["confirmations"] == []
        # The initiator withdraws the change (a self-rejection is allowed): the deployment ends, nothing deleted.
        withdraw = starter(stack, "reject", workflow_id, "--local", "--reason", "withdrawn")
        assert withdraw.returncode == 0, withdraw.stdout + withdraw.stderr
        assert proc.wait(timeout=120) == 4
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    audit = json.loads(starter(stack, "audit", workflow_id, "--local", "--output", "json").stdout)
    assert audit["identities_verified"] is False
    assert [(a["decision"], a["by"], a["identity_verified"]) for a in audit["approvals"]] == [("REJECTED", me, False)]


def test_a_secure_value_is_not_recoverable_from_history_nor_plaintext_at_rest(
    stack: EmbeddedDefault, tmp_path: Path
) -> None:
    instance = stack.instance
    assert instance is not None
    password = "Summer2026!"
    template = tmp_path / "main.json"
    template.write_text(json.dumps(secret_template("st" + uuid.uuid4().hex[:12])))
    rg = f"rg-secret-{uuid.uuid4().hex[:8]}"
    done = starter(stack, "deploy", "--local", "-g", rg, "-l", "westeurope", "-t", str(template),
                   "--param", f"adminPassword={password}", "--output", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    workflow_id = json.loads(done.stdout)["workflow_id"]
    show = subprocess.run([temporal_binary(), "workflow", "show", "--address", instance.temporal_address,
                           "--namespace", "default", "--workflow-id", workflow_id, "--output", "json"],
                          capture_output=True, timeout=60)  # fmt: skip
    assert show.returncode == 0
    history = show.stdout
    from tests.support.history_text import payload_bytes

    everything = history + payload_bytes(history)
    # A dictionary attack: hash every candidate document the starter could have stored, look for it in history.
    for guess in ("Password1", "Winter2026!", password, "Summer2026"):
        for doc in ({"adminPassword": {"value": guess}}, {"adminpassword": {"value": guess}}):
            digest = hashlib.sha256(canonical_json(doc)).hexdigest().encode()
            assert digest not in everything, f"history confirms the guess {guess!r}"
    assert password.encode() not in everything
    blob_dir = Path(instance.blob_dir)
    files = [p for p in blob_dir.rglob("*") if p.is_file()]
    assert files and not any(password.encode() in p.read_bytes() for p in files)
    assert (blob_dir / "local-seal.key").stat().st_mode & 0o077 == 0
