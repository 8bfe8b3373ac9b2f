"""The per-worker settings, handed to the workflow by a local activity so that they are recorded in history."""

from __future__ import annotations

import logging
from pathlib import Path

from temporalio import activity

from contract.models import ActivityName, StageInput, WorkerSettings
from services.approvals import PolicyError, load_policy

log = logging.getLogger(__name__)


class SettingsActivities:
    """``approval_policy_path``: the approval policy file (verified approvals), read again for each new deployment so
    an edited policy applies to the next run without a restart; a file that became unusable keeps the last good
    policy (logged), never none."""

    def __init__(self, settings: WorkerSettings, approval_policy_path: Path | None = None) -> None:
        self._settings = settings
        self._policy_path = approval_policy_path

    @activity.defn(name=ActivityName.RESOLVE_SETTINGS)
    async def resolve_settings(self, inp: StageInput) -> WorkerSettings:
        if self._policy_path is not None and self._settings.approval.trust is not None:
            try:
                trust = load_policy(self._policy_path)
            except PolicyError as exc:
                log.warning("approval policy not reloaded, keeping the last good one: %s", exc)
            else:
                approval = self._settings.approval.model_copy(update={"trust": trust})
                self._settings = self._settings.model_copy(update={"approval": approval})
        return self._settings
