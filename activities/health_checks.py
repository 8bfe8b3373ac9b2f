"""VERIFYING_HEALTH, second half: the user's declared health checks (``services.health``), run after the
provisioningState check of ``activities/health.py``.

The activity returns a ``HealthCheckReport`` whether or not the checks pass: retrying is the runner's job, within
the convergence window, so the workflow reads ``report.healthy`` and fails the stage itself (with
``report.summary()``) rather than retrying the activity. It heartbeats the live state of every check; a retried
attempt (after a worker crash) finds the window's start in its heartbeat details and uses only what is left of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from temporalio import activity

from contract.health import (
    HEALTH_CHECK_ACTIVITY,
    HealthCheckInput,
    HealthCheckReport,
    HealthProgress,
    health_activity_timeouts,
)
from services.health.bundles import load_ca_bundles
from services.health.policy import RequestPolicy
from services.health.probes import ProbeFailure, ResourceStateReader
from services.health.runner import run_health_checks

from .errors import classified
from .resource_health import ProviderLookupFailed, availability_of, provider_api_version

__all__ = [
    "RUN_HEALTH_CHECKS",
    "ArmResourceStateReader",
    "HealthCheckActivities",
    "HealthCheckInput",
    "health_activity_timeouts",
]

RUN_HEALTH_CHECKS = HEALTH_CHECK_ACTIVITY


class ArmResourceStateReader:
    """provisioningState through the ARM SDK's ``resources.get_by_id``; the api-version comes from the deployed
    template when the caller knows it, else from the resource provider's registration (newest first)."""

    def __init__(
        self,
        resources_client: Any,
        *,
        api_versions: Mapping[str, str] | None = None,
        health_client: Any = None,
    ) -> None:
        self._client = resources_client
        self._health = health_client
        self._api_versions = {k.lower(): v for k, v in (api_versions or {}).items()}
        self._provider_versions: dict[str, str | None] = {}

    async def provisioning_state(self, resource_id: str) -> str:
        api = self._api_versions.get(resource_id.lower()) or await self._provider_api_version(resource_id)
        if api is None:
            return "Unknown (no api-version known for this resource type)"
        try:
            resource = await self._client.resources.get_by_id(resource_id, api_version=api)
        except ResourceNotFoundError:
            return "NotFound"
        props = getattr(resource, "properties", None)
        state = props.get("provisioningState") if isinstance(props, dict) else None
        return str(state) if state else "Succeeded"  # types without a provisioningState exist once they answer

    async def availability_state(self, resource_id: str) -> str | None:
        """Resource Health through azure-mgmt-resourcehealth; None when the type is not covered (or no client)."""
        if self._health is None:
            return None
        try:
            return (await availability_of(self._health, resource_id)).state
        except HttpResponseError as err:  # throttled or failing after the SDK's retries: try again next attempt
            raise ProbeFailure(
                f"Resource Health of {resource_id} could not be read: {err.reason or err.status_code}"
            ) from None

    async def _provider_api_version(self, resource_id: str) -> str | None:
        """Only answers are cached: a lookup that failed (a 503, a throttle) is a failed attempt of the check,
        which reads the provider again next time — never "no api-version known" for the rest of the window."""
        tail = resource_id.split("/providers/")[-1].split("/")
        key = f"{tail[0]}/{'/'.join(tail[1::2])}".lower()
        if key not in self._provider_versions:
            try:
                self._provider_versions[key] = await provider_api_version(self._client.providers.get, resource_id)
            except ProviderLookupFailed as exc:
                raise ProbeFailure(str(exc)) from None
        return self._provider_versions[key]


class HealthCheckActivities:
    """``resources_client(subscription_id)`` returns an async ``ResourceManagementClient`` for arm checks (the
    worker passes ``ArmClients.resources``); without it, arm checks fail saying no reader is configured."""

    def __init__(
        self,
        resources_client: Any = None,
        *,
        resource_health: Any = None,
        heartbeat_every: float = 5.0,
        policy: RequestPolicy | None = None,
        store: Any = None,
    ) -> None:
        self._resources_client = resources_client
        # subscription id -> an async ResourceHealthMgmtClient (used with ``async with``), for availability=on
        self._resource_health = resource_health
        self._heartbeat_every = heartbeat_every
        # What checks may reach (services/health/policy.py); the worker builds it from its environment.
        self._policy = policy or RequestPolicy()
        self._store = store  # the content store, where deploy put the checks' CA bundles

    @activity.defn(name=RUN_HEALTH_CHECKS)
    async def run_health_checks(self, inp: HealthCheckInput) -> HealthCheckReport:
        spec = inp.spec
        if self._store is not None:
            async with classified():
                spec = await asyncio.to_thread(load_ca_bundles, spec, self._store)
        # The window began when the workflow entered VERIFYING_HEALTH (shared with the resource-state wait and
        # kept across attempts), or — for a caller that does not say — with the first attempt's heartbeat.
        started_at = inp.window_started_at or _window_start(activity.info().heartbeat_details) or time.time()
        async with contextlib.AsyncExitStack() as stack:
            health_client = None
            if self._resource_health is not None and any(getattr(c, "availability", False) for c in spec.checks):
                health_client = await stack.enter_async_context(self._resource_health(inp.subscription_id))
            reader: ResourceStateReader | None = None
            if self._resources_client is not None:
                reader = ArmResourceStateReader(
                    self._resources_client(inp.subscription_id),
                    api_versions=inp.api_versions,
                    health_client=health_client,
                )
            return await self._run(inp, spec, started_at, reader)

    async def _run(
        self, inp: HealthCheckInput, spec: Any, started_at: float, reader: ResourceStateReader | None
    ) -> HealthCheckReport:
        progress = HealthProgress(started_at=started_at, report=HealthCheckReport(window_seconds=spec.window_seconds))

        def on_progress(report: HealthCheckReport) -> None:
            nonlocal progress
            progress = HealthProgress(started_at=started_at, report=report)
            activity.heartbeat(progress)

        async def keep_heartbeating() -> None:
            # Attempts can be long (a 60 s timeout); the heartbeat must not wait for them.
            while True:
                activity.heartbeat(progress)
                await asyncio.sleep(self._heartbeat_every)

        ticker = asyncio.create_task(keep_heartbeating())
        try:
            report = await run_health_checks(
                spec,
                outputs=inp.outputs,
                output_resource_ids=inp.resources,
                arm_reader=reader,
                on_progress=on_progress,
                policy=self._policy,
                window_started_at=started_at,
                resume=inp.resume or _previous_report(activity.info().heartbeat_details),
            )
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        activity.logger.info(
            "health checks of %s: %s", inp.deployment_name, "healthy" if report.healthy else report.summary()
        )
        return report


def _previous_report(details: Any) -> HealthCheckReport | None:
    for item in details or ():
        if isinstance(item, HealthProgress):
            return item.report
        if isinstance(item, Mapping) and isinstance(item.get("report"), Mapping):
            return HealthCheckReport.model_validate(item["report"])
    return None


def _window_start(details: Any) -> float | None:
    """When the window began, from a previous attempt's heartbeat (None on the first attempt)."""
    for item in details or ():
        if isinstance(item, HealthProgress):
            return item.started_at
        if isinstance(item, Mapping) and isinstance(item.get("started_at"), int | float):
            return float(item["started_at"])
    return None
