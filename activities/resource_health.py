"""Resource Health through azure-mgmt-resourcehealth: ``availabilityStatuses/current`` of one resource.

Resource Health covers a published list of resource types; for the others Azure answers an error (422, or 404/400
from older front ends), which is read here as "not supported" (None), not as a failure. A client lives for one
activity execution (``async with resource_health_client(...)``), built from the worker's ARM settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import AsyncioRequestsTransport

from services.config import ArmClients

AVAILABLE = "Available"
UNKNOWN = "Unknown"
_NOT_SUPPORTED_STATUSES = frozenset({400, 404, 422})


@dataclass(frozen=True)
class Availability:
    """``state`` is Available/Unavailable/Degraded/Unknown, or None when Resource Health does not cover the type."""

    state: str | None
    summary: str = ""

    @property
    def tolerated(self) -> bool:
        """Available passes; Unknown passes with a note; no Resource Health for the type passes too."""
        return self.state is None or self.state.lower() in (AVAILABLE.lower(), UNKNOWN.lower())


def resource_health_client(clients: ArmClients, subscription_id: str) -> Any:
    """An ``azure.mgmt.resourcehealth.aio.ResourceHealthMgmtClient`` on the worker's ARM endpoint and credential
    (use it with ``async with``)."""
    from azure.mgmt.resourcehealth.aio import ResourceHealthMgmtClient

    from services.metrics import ArmMetricsPolicy

    config = clients.config
    verify: bool | str = str(config.ca_file) if config.ca_file else True
    return ResourceHealthMgmtClient(
        clients.credential,
        subscription_id,
        base_url=config.endpoint,
        transport=AsyncioRequestsTransport(connection_verify=verify),
        retry_total=config.sdk_retries,
        per_retry_policies=[ArmMetricsPolicy()],  # its responses and 429s count with the other ARM clients'
    )


async def availability_of(client: Any, resource_id: str) -> Availability:
    """The resource's current availability. Other errors (throttling after the SDK's retries, 5xx) propagate."""
    try:
        status = await client.availability_statuses.get_by_resource(resource_id)
    except ResourceNotFoundError:
        return Availability(None, "Resource Health does not know this resource")
    except HttpResponseError as err:
        if err.status_code in _NOT_SUPPORTED_STATUSES:
            code = err.error.code if err.error is not None else err.status_code
            return Availability(None, f"Resource Health does not support this resource type ({code})")
        raise
    props = status.properties
    state = getattr(props, "availability_state", None) if props is not None else None
    state = getattr(state, "value", state)  # an AvailabilityStateValues member, or a string the enum lacks
    summary = str(getattr(props, "summary", None) or "") if props is not None else ""
    return Availability(str(state) if state else UNKNOWN, summary)


class ProviderLookupFailed(Exception):
    """The resource provider could not be read (5xx, throttled, no answer): no answer about api-versions, so the
    caller must try again later and never remember it as "none known"."""


async def provider_api_version(get_provider: Callable[[str], Awaitable[Any]], resource_id: str) -> str | None:
    """The first api-version the resource provider lists for the resource's type (``get_provider`` is
    ``providers.get`` of a resources client, possibly wrapped), or None when the provider does not exist or lists
    none for the type. A failed read raises ``ProviderLookupFailed``."""
    tail = resource_id.split("/providers/")[-1].split("/")
    namespace, wanted = tail[0], "/".join(tail[1::2]).lower()
    try:
        provider = await get_provider(namespace)
    except ResourceNotFoundError:
        return None  # no such provider namespace: an answer
    except HttpResponseError as err:
        raise ProviderLookupFailed(
            f"the resource provider {namespace} could not be read ({err.status_code} {err.reason or ''}".rstrip()
            + "); trying again"
        ) from None
    except (ServiceRequestError, ServiceResponseError) as err:
        raise ProviderLookupFailed(
            f"the resource provider {namespace} could not be read ({type(err).__name__}); trying again"
        ) from None
    for rt in provider.resource_types or []:
        if (rt.resource_type or "").lower() == wanted and rt.api_versions:
            return str(rt.api_versions[0])
    return None
