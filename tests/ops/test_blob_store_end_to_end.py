"""The content store across machines, end to end: ``starter.py deploy`` (a CLI process) and ``worker.py`` (another
process) share nothing but an Azure Blob Storage container — Azurite, the Azure Storage emulator, started by the
test on loopback — and each has its own folder (``ORCHESTRATOR_BLOB_DIR``), which stays empty. A deployment with a
template, a plan and a secure parameter completes through the real Temporal dev server and the local ARM over HTTPS
(bench/chaos.py's ``Cluster``: every piece a real process). Nothing is mocked."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bench.chaos import SUBSCRIPTION, Cluster
from client.exit_codes import ExitCode
from contract.naming import workflow_id_for
from harness.secret_template import random_token, secret_template
from services.azure_blob_store import CONNECTION_STRING_ENV, CONTAINER_ENV, AzureBlobStore
from services.content_store import CONTENT_STORE_ENV
from tests.support.azurite import DEV_KEY, Azurite, azurite  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
KEYS = "e2e=" + base64.b64encode(os.urandom(32)).decode()


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any orchestrator or Temporal setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "TEMPORAL_"))}
    env.update(extra)
    return env


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_cli_and_worker_share_only_the_blob_container(tmp_path: Path, azurite: Azurite) -> None:  # noqa: F811
    container = f"e2e-{uuid.uuid4().hex[:10]}"
    store_env = {
        CONTENT_STORE_ENV: "azblob",
        CONNECTION_STRING_ENV: azurite.connection_string,
        CONTAINER_ENV: container,
        "ORCHESTRATOR_CODEC_KEYS": KEYS,
    }
    worker_folder, cli_folder, cli_home = tmp_path / "worker-blobs", tmp_path / "cli-blobs", tmp_path / "cli-home"
    worker_env = {**store_env, "ORCHESTRATOR_BLOB_DIR": str(worker_folder)}
    cluster = Cluster(tmp_path / "cluster", workers=1, worker_env=worker_env)
    template = tmp_path / "in" / "secret.json"
    template.parent.mkdir()
    template.write_text(json.dumps(secret_template(f"st{uuid.uuid4().hex[:12]}")))
    rg, token = "rg-blob-e2e", random_token()
    cli_env = clean_environment(
        **store_env, ORCHESTRATOR_BLOB_DIR=str(cli_folder), HOME=str(cli_home), E2E_PASSWORD=token,
        ORCHESTRATOR_TASK_QUEUE=cluster.task_queue,
    )  # fmt: skip

    def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "starter.py"), *argv], cwd=REPO, env=env or cli_env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip

    import asyncio

    try:
        asyncio.run(cluster.start())
        cli_env["TEMPORAL_ADDRESS"] = cluster.address
        done = cli(
            "deploy", "-g", rg, "-l", "westeurope", "--subscription", SUBSCRIPTION, "-t", str(template),
            "--secure-param-env", "adminPassword=E2E_PASSWORD", "--health-timeout", "20s", "--output", "json",
        )  # fmt: skip
        worker_log = cluster.workers[0].tail(10_000)
        assert done.returncode == ExitCode.OK, done.stderr + done.stdout + worker_log
        result = json.loads(done.stdout)
        assert result["outcome"] == "SUCCEEDED", result
        assert token not in done.stdout + done.stderr + worker_log

        shown = cli("status", workflow_id_for(SUBSCRIPTION, rg), "--plan")
        assert shown.returncode == ExitCode.OK, shown.stderr
        assert "Microsoft.Storage/storageAccounts" in shown.stdout
    finally:
        cluster.stop()

    # The worker said which store it used, and neither side wrote a file: no folder was shared, or used.
    assert f"content store Azure blob container '{container}'" in worker_log
    assert azurite.connection_string not in worker_log and DEV_KEY not in worker_log
    for folder in (worker_folder, cli_folder, cli_home, cluster.blob_dir):
        assert files_under(folder) == [], folder

    # Everything crossed through the container: the template, the sealed secure values, the full what-if, the
    # last-good record and its pointer, the secret-fed paths; the secure value rests only sealed.
    raw = AzureBlobStore(container=container, connection_string=azurite.connection_string)
    names = [b.name for b in raw._client.list_blobs()]
    documents = [n for n in names if n.startswith("sha256/")]
    assert len(documents) >= 4, names
    assert any(n.startswith("named/last-good/") for n in names), names
    assert any(n.startswith("named/secret-fed/") for n in names), names  # where the secret flows, remembered
    for name in names:
        assert token.encode() not in raw._client.download_blob(name).readall(), name
    sealed = [n for n in documents if raw._client.download_blob(n).readall().startswith(b"ORCHSEAL1")]
    assert sealed, "no sealed document in the container"
    raw.close()


def test_bad_store_configuration_stops_cli_and_worker_with_exit_2(tmp_path: Path) -> None:
    """No Temporal, no Azurite needed: the configuration is refused before anything connects or starts."""
    secret = base64.b64encode(os.urandom(64)).decode()
    env = clean_environment(
        **{CONTENT_STORE_ENV: "azblob", CONNECTION_STRING_ENV: f"AccountName=acct;AccountKey={secret}"},
        HOME=str(tmp_path),
    )  # no ORCHESTRATOR_CODEC_KEYS
    worker = subprocess.run(
        [sys.executable, str(REPO / "worker.py"), "--arm-endpoint", "https://127.0.0.1:1"], cwd=REPO, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert worker.returncode == 2, worker.stderr
    assert "ORCHESTRATOR_CODEC_KEYS" in worker.stderr and "Traceback" not in worker.stderr
    assert secret not in worker.stderr + worker.stdout

    bad_kind = subprocess.run(
        [sys.executable, str(REPO / "worker.py")], cwd=REPO, env={**env, CONTENT_STORE_ENV: "blob"},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad_kind.returncode == 2 and f"{CONTENT_STORE_ENV}='blob'" in bad_kind.stderr, bad_kind.stderr

    # The CLI refuses it before connecting to anything (no Temporal server runs here) and starts nothing.
    template = tmp_path / "t.json"
    template.write_text(json.dumps(secret_template("stbadconfig01")))
    deploy = subprocess.run(
        [sys.executable, str(REPO / "starter.py"), "deploy", "-g", "rg", "-l", "westeurope", "--subscription",
         SUBSCRIPTION, "-t", str(template), "--secure-param-env", "adminPassword=HOME"],
        cwd=REPO, env={**env, "TEMPORAL_ADDRESS": "127.0.0.1:1"}, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert deploy.returncode == ExitCode.USAGE, deploy.stderr
    assert "ORCHESTRATOR_CODEC_KEYS" in deploy.stderr and "Traceback" not in deploy.stderr
    assert secret not in deploy.stderr + deploy.stdout and "127.0.0.1:1" not in deploy.stderr
