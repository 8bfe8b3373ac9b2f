"""VERIFYING_HEALTH: every deployed resource must exist and report provisioningState Succeeded (or none, for
types without one). Issue 6 extends this with real health probes; the activity's contract stays the same."""

from __future__ import annotations

import asyncio
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from temporalio import activity

from orchestrator.blobstore import BlobStore
from orchestrator.config import ArmClients
from orchestrator.models import ActivityName, HealthReport, StageInput, VerifyInput

from .errors import classified
from .heartbeat import heartbeating
from .parameters import deployment_parameters, load_template
from .validate import expand, scope_for

HEALTHY_STATES = frozenset({"", "succeeded", "ready", "running", "created"})


class HealthActivities:
    def __init__(self, clients: ArmClients, store: BlobStore, *, concurrency: int = 8) -> None:
        self._clients = clients
        self._store = store
        self._concurrency = concurrency

    async def _api_versions(self, inp: VerifyInput) -> dict[str, str]:
        """Resource id (lower-cased) → the apiVersion the template used for it."""
        template = load_template(self._store, inp.request)
        params = deployment_parameters(self._store, inp.request)
        stage = StageInput(request=inp.request, deployment_name=inp.deployment_name)
        try:
            expanded = await asyncio.to_thread(expand, template, params, scope_for(stage))
        except Exception:  # the template deployed, so this should not happen; fall back to provider lookups
            return {}
        return {r.id.lower(): r.api_version for r in expanded.resources}

    async def _provider_api_version(self, subscription_id: str, resource_id: str) -> str | None:
        parts = resource_id.split("/providers/")[-1].split("/")
        namespace, types = parts[0], parts[1::2]
        try:
            provider = await self._clients.resources(subscription_id).providers.get(namespace)
        except HttpResponseError:
            return None
        wanted = "/".join(types).lower()
        for rt in provider.resource_types or []:
            if (rt.resource_type or "").lower() == wanted and rt.api_versions:
                return str(rt.api_versions[0])
        return None

    @activity.defn(name=ActivityName.VERIFY_HEALTH)
    async def verify_health(self, inp: VerifyInput) -> HealthReport:
        sub = inp.request.subscription_id
        report = HealthReport()
        async with classified():
            versions = await self._api_versions(inp)
            resources = self._clients.resources(sub).resources
            semaphore = asyncio.Semaphore(self._concurrency)

            async def check(resource_id: str) -> tuple[str, str | None]:
                async with semaphore:
                    api = versions.get(resource_id.lower()) or await self._provider_api_version(sub, resource_id)
                    if api is None:
                        return resource_id, "no api-version known for this resource type"
                    try:
                        res: Any = await resources.get_by_id(resource_id, api_version=api)
                    except ResourceNotFoundError:
                        return resource_id, "NotFound"
                    props = getattr(res, "properties", None) or {}
                    state = str(props.get("provisioningState", "")) if isinstance(props, dict) else ""
                    return resource_id, None if state.lower() in HEALTHY_STATES else state

            async with heartbeating("verify-health", inp.deployment_name):
                results = await asyncio.gather(*(check(i) for i in inp.resources))
            for resource_id, problem in results:
                if problem is None:
                    report.healthy.append(resource_id)
                else:
                    report.unhealthy[resource_id] = problem
        return report
