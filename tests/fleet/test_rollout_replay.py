"""Determinism guard for RolloutWorkflow: replay its saved histories (tests/fleet/histories/) against today's code.
A change that would break running rollouts fails here; record a new generation only for a deliberate, versioned
change (``python -m tests.fleet.record_history --tag vN``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from services.temporal_client import data_converter
from workflows.rollout import RolloutWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_rollout_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    replayer = Replayer(workflows=[RolloutWorkflow], data_converter=data_converter())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_every_scenario_has_a_history() -> None:
    stems = {p.name.split(".")[0] for p in HISTORIES}
    assert stems >= {"rings_approval", "halt_in_ring_two", "continue_as_new"}, stems
