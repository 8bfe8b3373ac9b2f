"""The example pipelines (examples/pipelines/): valid YAML, OIDC login, `--output json`, the what-if plan in the job
summary, and only flags the CLI and the worker really have. The summary scripts embedded in them are run against a
real result document."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import worker
from client.cli import build_parser as cli_parser
from client.cli.deploy import result_document
from contract.models import (
    ChangeType,
    DeploymentStage,
    DeployOutcome,
    DeployResult,
    FailureClass,
    FailureInfo,
    PlanChange,
    StageTransition,
    WhatIfPlan,
)

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = ROOT / "examples" / "pipelines"
GITHUB = PIPELINES / "github-actions.yml"
AZURE = PIPELINES / "azure-pipelines.yml"
CLI_COMMANDS = ("bicep-orchestrator", "starter.py")
WORKER_COMMANDS = ("bicep-orchestrator-worker", "worker.py")


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path.name} is not a YAML mapping"
    return doc


def scripts(path: Path) -> list[str]:
    doc = load(path)
    found = []
    for job in (doc.get("jobs") or {"": doc}).values():
        for step in job.get("steps", []):
            for text in (step.get("run"), step.get("script"), (step.get("inputs") or {}).get("inlineScript")):
                if text:
                    found.append(text)
    return found


def invocations(script: str) -> list[list[str]]:
    """Every orchestrator command line in a shell script, as argv (line continuations joined)."""
    joined = re.sub(r"\\\n\s*", " ", script)
    joined = re.sub(r"<<'PY'.*?\n\s*PY\n", "\n", joined, flags=re.S)  # embedded Python is not shell
    calls = []
    for line in joined.splitlines():
        words = shlex.split(line.split(" > ")[0].split(" >> ")[0].split(" &")[0], comments=True)
        for i, word in enumerate(words):
            if Path(word).name in CLI_COMMANDS + WORKER_COMMANDS:
                calls.append([Path(word).name, *words[i + 1 :]])
    return calls


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def subcommand_parser(name: str) -> argparse.ArgumentParser:
    parser = cli_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert name in sub.choices, f"`{name}` is not a CLI command"
    return sub.choices[name]


@pytest.mark.parametrize("path", [GITHUB, AZURE], ids=["github", "azure"])
def test_every_flag_used_exists(path: Path) -> None:
    calls = [c for s in scripts(path) for c in invocations(s)]
    assert any(c[0] in CLI_COMMANDS and "deploy" in c for c in calls), calls
    assert any(c[0] in WORKER_COMMANDS for c in calls), calls
    for argv in calls:
        flags = [w.split("=", 1)[0] for w in argv[1:] if w.startswith("-")]
        if argv[0] in WORKER_COMMANDS:
            known = option_strings(worker.build_parser())
        else:
            words = [w for w in argv[1:] if not w.startswith("-")]
            known = option_strings(cli_parser())
            if words and words[0] in ("deploy", "status", "approve", "reject", "lint", "expand", "dev"):
                known |= option_strings(subcommand_parser(words[0]))
        unknown = [f for f in flags if f not in known]
        assert not unknown, f"{path.name}: {' '.join(argv)} uses {unknown}, which the parser does not have"
    deploys = [c for c in calls if "deploy" in c]
    for argv in deploys:
        assert "--output" in argv and argv[argv.index("--output") + 1] == "json"
        subcommand_parser("deploy").parse_args([w for w in argv[2:]])  # a complete, valid deploy command line


def test_github_actions_logs_in_with_oidc_and_writes_the_job_summary() -> None:
    doc = load(GITHUB)
    assert doc["permissions"]["id-token"] == "write"
    steps = [s for job in doc["jobs"].values() for s in job["steps"]]
    login = next(s for s in steps if str(s.get("uses", "")).startswith("azure/login@"))
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}  # federated: no client secret
    assert not any("client-secret" in str(s) or "creds" in (s.get("with") or {}) for s in steps)
    assert any("GITHUB_STEP_SUMMARY" in (s.get("run") or "") for s in steps)


def test_azure_pipeline_uses_a_workload_identity_service_connection_and_uploads_a_summary() -> None:
    doc = load(AZURE)
    task = next(s for s in doc["steps"] if s.get("task") == "AzureCLI@2")
    assert task["inputs"]["azureSubscription"] and task["inputs"]["scriptType"] == "bash"
    script = task["inputs"]["inlineScript"]
    assert "##vso[task.uploadsummary]" in script
    assert "TEMPORAL_API_KEY" in task["env"]  # secrets reach a script only when mapped


def sample_result() -> dict[str, Any]:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    result = DeployResult(
        workflow_id="deploy-sub-rg-app",
        deployment_name="orch-rg-app-1",
        outcome=DeployOutcome.LOGIC_FAILURE,
        stage=DeploymentStage.FAILED,
        plan=WhatIfPlan(
            changes=[
                PlanChange(
                    resource_id="/subscriptions/s/resourceGroups/rg-app/providers/Microsoft.Web/sites/web",
                    change_type=ChangeType.CREATE,
                    resource_type="Microsoft.Web/sites",
                ),
                PlanChange(
                    resource_id="/subscriptions/s/resourceGroups/rg-app/providers/Microsoft.Storage/"
                    "storageAccounts/old",
                    change_type=ChangeType.DELETE,
                    resource_type="Microsoft.Storage/storageAccounts",
                ),
            ],
            counts={"Create": 1, "Delete": 1},
        ),
        failure=FailureInfo(
            stage=DeploymentStage.DEPLOYING, failure_class=FailureClass.LOGIC, code="QuotaExceeded", message="quota"
        ),
        transitions=[StageTransition(stage=DeploymentStage.INITIALIZED, at=now)],
    )
    return result_document(result)


def summary_script(path: Path) -> str:
    match = re.search(r"<<'PY'\n(.*?)\n\s*PY\n", path.read_text(), flags=re.S)
    assert match, f"{path.name} has no embedded summary script"
    return textwrap.dedent(match.group(1))


@pytest.mark.parametrize("path", [GITHUB, AZURE], ids=["github", "azure"])
def test_summary_script_renders_the_plan(path: Path, tmp_path: Path) -> None:
    import json

    result = tmp_path / "result.json"
    result.write_text(json.dumps(sample_result()))
    script = tmp_path / "summary.py"
    script.write_text(summary_script(path))
    out = subprocess.run([sys.executable, str(script), str(result)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "## Deployment LOGIC_FAILURE (exit code 1)" in text
    assert "What-if plan: 1 Create, 1 Delete" in text
    assert "| Delete | Microsoft.Storage/storageAccounts |" in text
    assert "QuotaExceeded" in text and "Unknown result schema_version" not in text
    # No result document (the CLI failed before printing one): a note, not a crash.
    result.write_text("")
    out = subprocess.run([sys.executable, str(script), str(result)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "No result document" in out.stdout


@pytest.mark.parametrize("path", [GITHUB, AZURE], ids=["github", "azure"])
def test_summary_script_reports_a_refused_deployment(path: Path, tmp_path: Path) -> None:
    import json

    result = tmp_path / "result.json"
    result.write_text(json.dumps({"error": {"message": "No subscription: pass --subscription", "exit_code": 2}}))
    script = tmp_path / "summary.py"
    script.write_text(summary_script(path))
    out = subprocess.run([sys.executable, str(script), str(result)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "Deployment not started (exit code 2)" in out.stdout and "No subscription" in out.stdout
