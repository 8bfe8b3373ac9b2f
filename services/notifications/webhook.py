"""The generic webhook: one CloudEvents 1.0 event in structured JSON mode, its exact body signed with HMAC-SHA256
under the sink's key (docs/NOTIFICATIONS.md has the receiver's check)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.notifications import NotificationEvent

from .delivery import Delivered, approval_link, post

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
SIGNATURE_HEADER = "X-Orchestrator-Signature"  # "sha256=<hex HMAC-SHA256 of the body>"
EVENT_ID_HEADER = "X-Orchestrator-Event-Id"  # the CloudEvent's id, for receivers that dedupe before parsing
EVENT_TYPE_PREFIX = "io.bicep-orchestrator.deployment."
SOURCE_PREFIX = "/bicep-orchestrator/deployments/"


def cloud_event(event: NotificationEvent, public_url: str | None) -> dict[str, Any]:
    """The CloudEvent: required attributes (specversion, id, source, type), subject, time, and the event as data
    with the approval page's link (null, with the reason, when the worker does not know the service's URL)."""
    link = approval_link(public_url, event.deployment_id)
    data = event.model_dump(mode="json")
    data["link"] = link
    if link is None:
        data["link_missing"] = "ORCHESTRATOR_PUBLIC_URL is not set on the worker"
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": SOURCE_PREFIX + event.deployment_id,
        "type": EVENT_TYPE_PREFIX + event.kind.value,
        "subject": event.resource_group,
        "time": data["time"],
        "datacontenttype": "application/json",
        "data": data,
    }


def sign(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass
class WebhookSink:
    name: str
    url: str
    key: bytes = field(repr=False)
    ca_file: Path | None = None

    def body(self, event: NotificationEvent, public_url: str | None) -> bytes:
        # Compact and key-sorted: a retry sends byte for byte the same body, so the same signature.
        return json.dumps(cloud_event(event, public_url), sort_keys=True, separators=(",", ":")).encode()

    async def send(self, event: NotificationEvent, *, public_url: str | None, timeout: float) -> Delivered:
        body = self.body(event, public_url)
        headers = {
            "Content-Type": CLOUDEVENTS_CONTENT_TYPE,
            SIGNATURE_HEADER: sign(self.key, body),
            EVENT_ID_HEADER: event.id,
        }
        return await post(self.name, self.url, body, headers, timeout=timeout, ca_file=self.ca_file)
