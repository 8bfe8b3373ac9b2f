"""Fixtures of the CLI tests: one Temporal dev server for the session (started by our own embedded default),
and a way to run ``starter.py`` commands in-process and capture what a user would see."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from client.embedded import EmbeddedDefault
from contract.models import WORKFLOW_NAME
from services.temporal_client import connect

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "storage-and-web"


@dataclass
class CliRun:
    code: int
    out: str
    err: str


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> CliRun:
    """``starter.py ARGV`` in this process."""
    from client import cli

    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return CliRun(code, captured.out, captured.err)


@pytest.fixture(scope="session")
def temporal_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDefault]:
    """A Temporal dev server (no worker, no local ARM) from client.embedded, for the whole session."""
    embedded = EmbeddedDefault(tmp_path_factory.mktemp("dev-server"), worker=False, local_arm=False)
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture
def local_state(temporal_dev: EmbeddedDefault, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point --local commands at the session's dev server."""
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(temporal_dev.state_dir))
    return temporal_dev.state_dir


def count_workflows(embedded: EmbeddedDefault) -> int:
    assert embedded.instance is not None
    address = embedded.instance.temporal_address

    async def count() -> int:
        client = await connect(address=address, namespace="default")
        n = 0
        async for _ in client.list_workflows(query=f"WorkflowType = '{WORKFLOW_NAME}'"):
            n += 1
        return n

    return asyncio.run(count())


def health_deploy_argv(rg: str, *extra: str) -> list[str]:
    """``deploy --local`` of the example with short health timings (the health end-to-end tests add checks)."""
    return [
        "deploy", "--local", "-g", rg, "-l", "eastus",
        "-t", str(EXAMPLE / "azuredeploy.json"), "-p", str(EXAMPLE / "azuredeploy.parameters.json"),
        "--health-timeout", "1s", "--health-interval", "0.3s", *extra,
    ]  # fmt: skip
