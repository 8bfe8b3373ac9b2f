"""Determinism guard for DriftCheckWorkflow: replay its saved histories (tests/fleet/histories/drift/) against today's
code. A check recorded before drift was announced and remediated (v1) must replay without either. Record a new
generation only for a deliberate, versioned change (``python -m tests.fleet.record_drift_history --tag vN``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from services.temporal_client import data_converter
from workflows.drift import DriftCheckWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories" / "drift").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_drift_history_replays(path: Path) -> None:
    name, _, tag = path.stem.partition(".")
    # The id the recorder ran it under (v1 predates that rule; nothing in it derives from its id).
    history = WorkflowHistory.from_json(f"drift-replay-{name}-{tag}", json.loads(path.read_text()))
    replayer = Replayer(workflows=[DriftCheckWorkflow], data_converter=data_converter())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_a_check_from_before_notifications_is_kept() -> None:
    assert "configuration_drift.v1" in {p.stem for p in HISTORIES}
