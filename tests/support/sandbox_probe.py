"""Test-only workflows for the worker's sandbox runner (``worker.LeanSandboxedWorkflowRunner``): one that tries
what the sandbox must keep from workflow code (the host's clock, files), one that runs an activity so payloads of
several serialization contexts (workflow, activity) cross the data converter."""

from __future__ import annotations

import datetime
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

PROBE_ACTIVITY = "sandbox-probe-echo"


@activity.defn(name=PROBE_ACTIVITY)
async def echo(text: str) -> str:
    return f"echo: {text}"


@workflow.defn
class HostAccessProbeWorkflow:
    """Returns, for each thing workflow code must not reach, whether the sandbox refused it."""

    @workflow.run
    async def run(self) -> dict[str, bool]:
        refused: dict[str, bool] = {}
        try:
            datetime.datetime.now()
            refused["clock"] = False
        except RestrictedWorkflowAccessError:
            refused["clock"] = True
        try:
            open("/etc/hostname").close()  # the call itself is what is probed
            refused["open"] = False
        except RestrictedWorkflowAccessError:
            refused["open"] = True
        return refused


@workflow.defn
class ActivityProbeWorkflow:
    @workflow.run
    async def run(self, text: str) -> str:
        first = await workflow.execute_activity(PROBE_ACTIVITY, text, start_to_close_timeout=timedelta(seconds=30))
        workflow.upsert_memo({"first": first})
        local = await workflow.execute_local_activity(
            PROBE_ACTIVITY, first, start_to_close_timeout=timedelta(seconds=30)
        )
        return str(local)
