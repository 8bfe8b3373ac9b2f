"""VERIFYING_HEALTH, first half: every deployed resource must exist, report provisioningState Succeeded (or none,
for types without one) and, where Resource Health covers its type, be Available (``activities/resource_health.py``).
The user's declared checks follow (``activities/health_checks.py``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from temporalio import activity

from contract.models import ActivityName, HealthReport, RequestRetry, StageInput, VerifyInput
from services.config import ArmClients
from services.content_store import BlobStore

from .errors import classified
from .heartbeat import heartbeating
from .parameters import template_and_parameters
from .resource_health import ProviderLookupFailed, availability_of, provider_api_version, resource_health_client
from .transient import TRANSIENT_PAUSE_SECONDS, retry_in_place
from .validate import expand, scope_for

HEALTHY_STATES = frozenset({"", "succeeded", "ready", "running", "created"})
NO_API_VERSION = "no api-version known for this resource type"
FINAL_STATES = frozenset({"failed", "canceled", "cancelled", "notfound"})  # waiting will not change these


class HealthActivities:
    def __init__(self, clients: ArmClients, store: BlobStore, *, concurrency: int = 8) -> None:
        self._clients = clients
        self._store = store
        self._concurrency = concurrency

    async def _api_versions(self, inp: VerifyInput) -> dict[str, str]:
        """Resource id (lower-cased) → the apiVersion the template used for it."""
        template, params = await asyncio.to_thread(template_and_parameters, self._store, inp.request)
        stage = StageInput(request=inp.request, deployment_name=inp.deployment_name)
        try:
            expanded = await asyncio.to_thread(expand, template, params, scope_for(stage))
        except Exception:  # the template deployed, so this should not happen; fall back to provider lookups
            return {}
        return {r.id.lower(): r.api_version for r in expanded.resources}

    async def _provider_api_version(
        self, subscription_id: str, resource_id: str, retried: list[RequestRetry]
    ) -> str | None:
        providers = self._clients.resources(subscription_id).providers
        pause = min(self._clients.config.polling_interval, TRANSIENT_PAUSE_SECONDS)

        def get_provider(namespace: str) -> Any:
            return retry_in_place(
                lambda: providers.get(namespace), what=f"reading provider {namespace}", pause=pause, record=retried
            )

        return await provider_api_version(get_provider, resource_id)

    @activity.defn(name=ActivityName.VERIFY_HEALTH)
    async def verify_health(self, inp: VerifyInput) -> HealthReport:
        """Each resource must report provisioningState Succeeded and, where Resource Health covers its type, be
        Available (Unknown passes with a note). Transitional states (Updating, Creating, ...) and
        Unavailable/Degraded are re-read every retry interval until the health window closes; Failed, Canceled and
        NotFound end that resource's wait at once."""
        sub = inp.request.subscription_id
        spec = inp.request.health
        # One convergence window for the whole stage: it began when the workflow entered VERIFYING_HEALTH (also
        # for a retried attempt), and the declared checks after this wait get only what is left of it.
        elapsed = max(0.0, time.time() - inp.window_started_at) if inp.window_started_at else 0.0
        deadline = time.monotonic() + max(0.0, self._window(spec.window_seconds) - elapsed)
        interval = min(spec.retry_interval_seconds, 5.0)
        report = HealthReport()
        async with classified():
            versions = await self._api_versions(inp)
            resources = self._clients.resources(sub).resources
            semaphore = asyncio.Semaphore(self._concurrency)

            async def read_state(resource_id: str) -> str | None:
                """None: healthy provisioningState; else the state (or the problem)."""
                async with semaphore:
                    try:
                        api = versions.get(resource_id.lower()) or await self._provider_api_version(
                            sub, resource_id, report.request_retries
                        )
                    except ProviderLookupFailed as exc:
                        return str(exc)  # no answer yet: read again within the window, like a transitional state
                    if api is None:
                        return NO_API_VERSION
                    try:
                        res: Any = await retry_in_place(
                            lambda: resources.get_by_id(resource_id, api_version=api),
                            what=f"reading {resource_id}",
                            pause=min(interval, TRANSIENT_PAUSE_SECONDS),
                            record=report.request_retries,
                        )
                    except ResourceNotFoundError:
                        return "NotFound"
                props = getattr(res, "properties", None) or {}
                state = str(props.get("provisioningState", "")) if isinstance(props, dict) else ""
                return None if state.lower() in HEALTHY_STATES else state

            async def check(health: Any, resource_id: str) -> tuple[str, str | None, str | None]:
                """(id, problem or None, note or None), waiting out transitional states within the window."""
                try:
                    return await wait_for(health, resource_id)
                finally:
                    waiting.pop(resource_id, None)

            async def wait_for(health: Any, resource_id: str) -> tuple[str, str | None, str | None]:
                started = time.monotonic()
                while True:
                    problem = await read_state(resource_id)
                    if problem is None:
                        async with semaphore:
                            available = await retry_in_place(
                                lambda: availability_of(health, resource_id),
                                what=f"reading the availability of {resource_id}",
                                pause=min(interval, TRANSIENT_PAUSE_SECONDS),
                                record=report.request_retries,
                            )
                        report.availability[resource_id] = available.state or "NotSupported"
                        if available.tolerated:
                            note = None
                            if available.state is not None and available.state.lower() == "unknown":
                                note = "Resource Health reports Unknown (tolerated)"
                            return resource_id, None, note
                        problem = f"{available.state} in Resource Health" + (
                            f" ({available.summary})" if available.summary else ""
                        )
                    elif problem.lower() in FINAL_STATES or problem == NO_API_VERSION:
                        return resource_id, problem, None
                    if time.monotonic() + interval >= deadline:
                        waited = time.monotonic() - started
                        return resource_id, f"{problem} (still after {waited:.0f} s)", None
                    waiting[resource_id] = problem  # in the heartbeat: a following CLI shows what it waits for
                    await asyncio.sleep(interval)

            waiting: dict[str, str] = {}  # resource id -> the state being waited out; heartbeated as it changes
            async with (
                # the first beat once the first reads are in: it tells a following CLI what is being waited for
                heartbeating("verify-health", inp.deployment_name, waiting, first_after=min(interval * 1.5, 2.0)),
                resource_health_client(self._clients, sub) as health,
            ):
                results = await asyncio.gather(*(check(health, i) for i in inp.resources))
            for resource_id, problem, note in results:
                if problem is None:
                    report.healthy.append(resource_id)
                else:
                    report.unhealthy[resource_id] = problem
                if note:
                    report.notes[resource_id] = note
        return report

    def _window(self, window_seconds: float) -> float:
        """The health window, cut to fit the activity's own start-to-close timeout (with a margin to report)."""
        timeout = activity.info().start_to_close_timeout
        if timeout:
            return max(0.0, min(window_seconds, timeout.total_seconds() - 15.0))
        return window_seconds
