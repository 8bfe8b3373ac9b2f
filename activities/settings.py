"""The per-worker settings, handed to the workflow by a local activity so that they are recorded in history."""

from __future__ import annotations

from temporalio import activity

from contract.models import ActivityName, StageInput, WorkerSettings


class SettingsActivities:
    def __init__(self, settings: WorkerSettings) -> None:
        self._settings = settings

    @activity.defn(name=ActivityName.RESOLVE_SETTINGS)
    async def resolve_settings(self, inp: StageInput) -> WorkerSettings:
        return self._settings
