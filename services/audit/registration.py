"""Does the Temporal server know the deployment search attributes? Asked once per server and namespace, before the
first start, so a server without them gets a deployment without them (and a warning naming the fix) rather than a
refused start — or, on servers that create the run before refusing it (the time-skipping test server), a
half-started one."""

from __future__ import annotations

import logging

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from contract.search_attributes import NAMES, missing_attributes_message

log = logging.getLogger(__name__)

_known: dict[tuple[str, str], bool | None] = {}


async def attributes_registered(client: Client) -> bool | None:
    """True: all registered; False: some missing, or the server has no operator API; None: could not tell (e.g.
    a key without operator rights) — then start with them and let the server decide."""
    key = (client.service_client.config.target_host, client.namespace)
    if key in _known:
        return _known[key]
    answer: bool | None
    try:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as exc:
        answer = False if exc.status == RPCStatusCode.UNIMPLEMENTED else None
    else:
        answer = all(name in response.custom_attributes for name in NAMES)
    if answer is False:
        log.warning(missing_attributes_message(client.namespace, what="starting deployments without search attributes"))
    _known[key] = answer
    return answer
