"""Determinism guard: replay saved histories (tests/workflow/histories/) against today's workflow code. A change
that would break workflows already running fails here; record new histories only for a deliberate, versioned
change (``python -m tests.workflow.record_history``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from services.temporal_client import data_converter
from worker import LeanSandboxedWorkflowRunner
from workflows.deployment import DeploymentWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("runner", ["temporalio's sandbox", "the worker's sandbox"])
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays(path: Path, runner: str) -> None:
    history = WorkflowHistory.from_json(recorded_workflow_id(path), json.loads(path.read_text()))
    # The worker replays evicted runs with its own runner (worker.LeanSandboxedWorkflowRunner): both must replay.
    options = {"workflow_runner": LeanSandboxedWorkflowRunner()} if runner == "the worker's sandbox" else {}
    replayer = Replayer(workflows=[DeploymentWorkflow], data_converter=data_converter(), **options)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def recorded_workflow_id(path: Path) -> str:
    """The id the recorder ran ``<scenario>.<tag>.json`` under: replay must see it, as a worker always does (the
    notification events' ids, so the child workflow ids, derive from it)."""
    name, _, tag = path.stem.partition(".")
    return f"deploy-replay-{name}-{tag}" if tag else path.stem


def test_there_is_a_history_to_replay() -> None:
    assert HISTORIES, "tests/workflow/histories/ holds no history; run python -m tests.workflow.record_history"
