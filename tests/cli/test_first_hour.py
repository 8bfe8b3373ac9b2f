"""A new user's first hour, through the real CLI process (``python starter.py ...``) on the embedded default (a
real Temporal dev server, the local ARM over HTTPS, a worker): encrypted histories read without keys, pipes that
close early, colour and timings, the --wait message, lifecycle commands, secure values without shell history,
wording, and the audit's deletions."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.dev import missing_pieces
from orchestrator.embedded import EmbeddedDefault
from orchestrator.exit_codes import ExitCode

from .conftest import EXAMPLE, REPO

pytestmark = pytest.mark.skipif(bool(missing_pieces()), reason=f"not built yet: {missing_pieces()}")

STARTER = str(REPO / "starter.py")
TEMPLATE = str(EXAMPLE / "azuredeploy.json")
WITHOUT_WEB = str(EXAMPLE / "azuredeploy.without-web.json")
PARAMS = str(EXAMPLE / "azuredeploy.parameters.json")
KEYS = "k1=" + base64.b64encode(b"k" * 32).decode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDefault]:
    # The worker encrypts every payload (keys configured); each CLI call below chooses whether it has the keys.
    embedded = EmbeddedDefault(
        tmp_path_factory.mktemp("first-hour"),
        worker_env={"ORCHESTRATOR_CODEC_KEYS": KEYS, "ORCHESTRATOR_CONFIRMATION_TIMEOUT_SECONDS": "600"},
    )
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


def env_for(stack: EmbeddedDefault, *, keys: bool = True, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ORCHESTRATOR_CODEC_KEYS", "NO_COLOR", "FORCE_COLOR")}
    env["ORCHESTRATOR_STATE_DIR"] = str(stack.state_dir)
    if keys:
        env["ORCHESTRATOR_CODEC_KEYS"] = KEYS
    env.update(extra)
    return env


def cli(
    stack: EmbeddedDefault, *argv: str, keys: bool = True, stdin: str | None = None, timeout: float = 180, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, STARTER, *argv],
        cwd=REPO,
        env=env_for(stack, keys=keys, **env),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def deploy(stack: EmbeddedDefault, rg: str, *extra: str, template: str = TEMPLATE, **env: str) -> Any:
    return cli(stack, "deploy", "--local", "-g", rg, "-l", "eastus", "-t", template, "-p", PARAMS, *extra, **env)


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    for text in (done.stdout, done.stderr):
        assert "Traceback" not in text and "Fatal Python error" not in text, text


@pytest.fixture(scope="module")
def encrypted_deployment(stack: EmbeddedDefault) -> str:
    done = deploy(stack, "fh-encrypted", "--skip-health", "--output", "json")
    assert done.returncode == 0, done.stderr
    workflow_id: str = json.loads(done.stdout)["workflow_id"]
    return workflow_id


# ------------------------------------------------------------------------------------------------ encrypted history


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--local"],
        ["status", "{id}", "--local"],
        ["audit", "{id}", "--local", "--audit-format", "none"],
    ],
    ids=["list", "status", "audit"],
)
def test_reading_an_encrypted_history_without_keys_names_the_configuration(
    stack: EmbeddedDefault, encrypted_deployment: str, argv: list[str]
) -> None:
    done = cli(stack, *[a.format(id=encrypted_deployment) for a in argv], keys=False)
    no_traceback(done)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "encrypted" in done.stderr and "ORCHESTRATOR_CODEC_KEYS" in done.stderr, done.stderr
    assert "no worker answered" not in done.stdout
    # with the keys the same command works
    assert cli(stack, *[a.format(id=encrypted_deployment) for a in argv]).returncode == 0


# ------------------------------------------------------------------------------------------------ pipes


@pytest.mark.parametrize(
    "argv", [["status", "{id}", "--local", "--plan"], ["list", "--local"], ["--help"]], ids=["status", "list", "help"]
)
def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly(
    stack: EmbeddedDefault, encrypted_deployment: str, argv: list[str]
) -> None:
    # `true` exits without reading: every write of the command meets a closed pipe (what `| head -1` does once it
    # has its line), deterministically.
    command = " ".join([sys.executable, STARTER, *[a.format(id=encrypted_deployment) for a in argv]])
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | true"],
        cwd=REPO,
        env=env_for(stack),
        capture_output=True,
        text=True,
        timeout=120,
    )
    no_traceback(done)
    assert "BrokenPipeError" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
