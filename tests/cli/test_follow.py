"""Following a deployment when nothing answers: the CLI says why it waits, and Ctrl-C leaves the workflow alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from client.cli import build_parser
from client.cli import deploy as deploy_command
from client.embedded import EmbeddedDefault
from services.temporal_client import connect
from tests.support.cli_env import EXAMPLE


async def test_no_worker_hint_then_interrupt(
    temporal_dev: EmbeddedDefault, local_state: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert temporal_dev.instance is not None
    monkeypatch.setattr(deploy_command, "NO_WORKER_HINT_SECONDS", 0.5)
    monkeypatch.setattr(deploy_command, "QUERY_TIMEOUT_SECONDS", 0.5)
    client = await connect(address=temporal_dev.instance.temporal_address, namespace="default")
    queue = "no-worker-here"
    original = (local_state / "dev.json").read_text()
    monkeypatch.setattr(temporal_dev.instance, "task_queue", queue)
    (local_state / "dev.json").write_text(temporal_dev.instance.to_json())
    try:
        await _interrupted_deploy(client, queue, capsys)
    finally:
        (local_state / "dev.json").write_text(original)


async def _interrupted_deploy(client, queue: str, capsys) -> None:
    args = build_parser().parse_args(
        ["deploy", "--local", "-g", "follow-rg", "-l", "eastus", "-t", str(EXAMPLE / "azuredeploy.json"),
         "-p", str(EXAMPLE / "azuredeploy.parameters.json")]
    )  # fmt: skip
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(deploy_command.deploy(args, client=client), timeout=4)
    err = capsys.readouterr().err
    assert f"is one polling task queue '{queue}'" in err
    assert "The deployment continues in workflow deploy-" in err
    wf_id = err.split("continues in workflow ", 1)[1].split(":", 1)[0]
    handle = client.get_workflow_handle(wf_id)
    description = await handle.describe()
    assert description.status is not None and description.status.name == "RUNNING"  # untouched by Ctrl-C
    await handle.terminate(reason="test cleanup")
