"""Determinism guard for the decision hardening (patch ``decision-records``): a saved history with malformed and
oversized decisions, an unbound round-1 approval, a refused unbound round-2 approval, a bound approval and a late
reject replays on today's workflow code; and the older four-eyes history (no such patch) still replays with its
decisions handled the old way (tests/security/test_four_eyes_replay.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from services.temporal_client import data_converter
from workflows.deployment import DeploymentWorkflow

HISTORIES = sorted((Path(__file__).parent / "decision_histories").glob("*.json"))


def test_there_is_a_decision_history() -> None:
    assert HISTORIES, "run python -m tests.security.record_decisions --tag v1"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_decision_history_replays(path: Path) -> None:
    doc = json.loads(path.read_text())
    signals = [e for e in doc["events"] if "workflowExecutionSignaledEventAttributes" in e]
    assert len(signals) == 10  # 6 malformed/oversized, unbound ok, unbound refused, bound ok, late
    replayer = Replayer(workflows=[DeploymentWorkflow], data_converter=data_converter())
    result = await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, doc), raise_on_replay_failure=False)
    assert result.replay_failure is None


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_accepting_the_unbound_round_two_decision_breaks_replay(path: Path) -> None:
    """The replay is not vacuous: had round 2's plain form been accepted (the hole), the run's commands would
    differ. Unsandboxed, so the patched method is the one the replayed workflow runs."""
    doc = json.loads(path.read_text())
    original = DeploymentWorkflow._refuse

    def accept_unbound(self: DeploymentWorkflow, decision: Any, **kw: Any) -> None:
        if kw["kind"] == "unbound":
            self._decision = (decision, kw["signal"], "unbound")
            return
        original(self, decision, **kw)

    with mock.patch.object(DeploymentWorkflow, "_refuse", accept_unbound):
        replayer = Replayer(
            workflows=[DeploymentWorkflow], data_converter=data_converter(), workflow_runner=UnsandboxedWorkflowRunner()
        )
        result = await replayer.replay_workflow(
            WorkflowHistory.from_json(path.stem, doc), raise_on_replay_failure=False
        )
    assert result.replay_failure is not None
