"""Determinism guard for the four-eyes change (patch ``four-eyes``): saved histories with refused and accepted
approvals replay on today's workflow code, with every refusal still refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from services.temporal_client import data_converter
from workflows.deployment import DeploymentWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_is_a_four_eyes_history() -> None:
    assert HISTORIES, "tests/security/histories/ is empty; run python -m tests.security.record_four_eyes --tag v1"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_four_eyes_history_replays(path: Path) -> None:
    doc = json.loads(path.read_text())
    history = WorkflowHistory.from_json(path.stem, doc)
    signals = [e for e in doc["events"] if "workflowExecutionSignaledEventAttributes" in e]
    assert len(signals) == 3  # two refused, one accepted: the saved run exercised the policy
    replayer = Replayer(workflows=[DeploymentWorkflow], data_converter=data_converter())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
