"""Determinism guard for verified approvals (patch ``verified-decisions``): a saved history of a run under an
approval policy (an unsigned decision refused, a signed approval counted, its replay and a statement for another
round refused, a tampered one refused after its check, a relay-attested approval deciding 2 of 2) replays on
today's workflow code; the histories from before the change replay in test_decision_replay.py,
test_four_eyes_replay.py and tests/workflow/test_replay.py."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from services.temporal_client import data_converter
from workflows.deployment import DeploymentWorkflow

HISTORIES = sorted((Path(__file__).parent / "verified_histories").glob("*.json"))


def workflow_id(path: Path) -> str:
    """The recorded run's own workflow id: the workflow checks that a statement names it, so replaying under another
    id would (rightly) take other decisions."""
    return f"deploy-replay-ver-{path.stem.split('.', 1)[1]}"


def test_there_is_a_verified_history() -> None:
    assert HISTORIES, "run python -m tests.security.record_verified --tag v1"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_verified_history_replays(path: Path) -> None:
    doc = json.loads(path.read_text())
    signals = [e for e in doc["events"] if "workflowExecutionSignaledEventAttributes" in e]
    activities = [
        e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for e in doc["events"]
        if "activityTaskScheduledEventAttributes" in e
    ]
    assert len(signals) == 6 and activities.count("verify_approval") == 3  # ana, the tampered one, bo (relay)
    replayer = Replayer(workflows=[DeploymentWorkflow], data_converter=data_converter())
    result = await replayer.replay_workflow(
        WorkflowHistory.from_json(workflow_id(path), doc), raise_on_replay_failure=False
    )
    assert result.replay_failure is None


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_accepting_a_statement_for_another_round_breaks_replay(path: Path) -> None:
    """Not vacuous: had the statement for another round been taken to verification (the hole), the run's commands
    would differ."""
    doc = json.loads(path.read_text())
    with mock.patch("workflows.deployment.statement_problem", lambda *a, **kw: None):
        replayer = Replayer(
            workflows=[DeploymentWorkflow], data_converter=data_converter(), workflow_runner=UnsandboxedWorkflowRunner()
        )
        result = await replayer.replay_workflow(
            WorkflowHistory.from_json(workflow_id(path), doc), raise_on_replay_failure=False
        )
    assert result.replay_failure is not None
