"""Failures end to end through the CLI: a logic failure at ARM halts at once with exit 1, an environmental one is
retried and ends with exit 3. The local ARM injects them; the worker's retry schedule is shortened."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.embedded import EmbeddedDefault
from client.exit_codes import ExitCode
from tests.support.cli_env import EXAMPLE, run_cli

LOGIC_RG = "e2e-logic-rg"
ENV_RG = "e2e-env-rg"


@pytest.fixture(scope="module")
def faulty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDefault]:
    state = tmp_path_factory.mktemp("faulty")
    config = state / "local-arm-config.json"
    config.write_text(
        json.dumps(
            {
                "faults": [
                    # ARM refuses the storage account's name: a logic failure (the template is wrong)
                    {
                        "kind": "preflight_failure",
                        "path": f"/resourceGroups/{LOGIC_RG}/",
                        "code": "AccountNameInvalid",
                        "resource_type": "Microsoft.Storage/storageAccounts",
                    },
                    # every request to this resource group meets a 503: environmental, retried, then exit 3
                    {"kind": "error", "path": f"/resourceGroups/{ENV_RG}", "status": 503},
                ]
            }
        )
    )
    retries = {
        "ORCHESTRATOR_RETRY_INITIAL_SECONDS": "0.2",
        "ORCHESTRATOR_RETRY_BACKOFF_COEFFICIENT": "1.0",
        "ORCHESTRATOR_RETRY_MAXIMUM_RETRIES": "2",
        "ORCHESTRATOR_CONFIRMATION_TIMEOUT_SECONDS": "3",
    }
    embedded = EmbeddedDefault(state / "state", worker_env=retries, local_arm_config=config)
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


def deploy(
    rg: str, state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys, *extra: str, template: str = "azuredeploy.json"
) -> tuple[int, dict, str]:
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(state_dir))
    argv = [
        "deploy", "--local", "-g", rg, "-l", "eastus", "--skip-health", "--output", "json",
        "-t", str(EXAMPLE / template), "-p", str(EXAMPLE / "azuredeploy.parameters.json"), *extra,
    ]  # fmt: skip
    result = run_cli(argv, capsys)
    return result.code, json.loads(result.out) if result.out.strip() else {}, result.err


def test_logic_failure_at_arm_exits_1(faulty_stack: EmbeddedDefault, monkeypatch, capsys) -> None:
    code, doc, err = deploy(LOGIC_RG, faulty_stack.state_dir, monkeypatch, capsys)
    assert code == ExitCode.LOGIC_FAILURE, err
    assert doc["outcome"] == "LOGIC_FAILURE" and doc["exit_code"] == 1
    assert doc["failure"]["failure_class"] == "LOGIC"
    assert doc["failure"]["attempts"] == 1  # halted on its first attempt
    assert "AccountNameInvalid" in json.dumps(doc["failure"])


def test_environmental_failure_exits_3_after_retries(faulty_stack: EmbeddedDefault, monkeypatch, capsys) -> None:
    code, doc, err = deploy(ENV_RG, faulty_stack.state_dir, monkeypatch, capsys)
    assert code == ExitCode.ENVIRONMENTAL, err
    assert doc["outcome"] == "ENVIRONMENTAL_FAILURE" and doc["exit_code"] == 3
    assert doc["failure"]["failure_class"] == "ENVIRONMENTAL"
    assert doc["failure"]["attempts"] == 3  # the first try and the 2 retries configured for this worker
    # Each failed attempt that was retried is reported on stderr while it happens, classified, with the next try.
    assert "[PLANNING] attempt 1 failed, ENVIRONMENTAL ServiceUnavailable" in err, err
    assert "[PLANNING] attempt 2 failed, ENVIRONMENTAL ServiceUnavailable" in err, err
    assert "trying again" in err


def test_not_confirmed_in_time_exits_4(faulty_stack: EmbeddedDefault, monkeypatch, capsys) -> None:
    code, _doc, err = deploy("e2e-timeout-rg", faulty_stack.state_dir, monkeypatch, capsys)
    assert code == ExitCode.OK, err
    code, doc, err = deploy(
        "e2e-timeout-rg", faulty_stack.state_dir, monkeypatch, capsys, "--mode", "Complete",
        template="azuredeploy.without-web.json",
    )  # fmt: skip
    assert code == ExitCode.REJECTED, err
    assert doc["outcome"] == "NOT_CONFIRMED" and doc["exit_code"] == 4
    assert "python starter.py approve" in err  # it told how to approve while it waited
