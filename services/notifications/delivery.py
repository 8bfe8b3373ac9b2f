"""What every sink shares: the delivery error a failed attempt raises (retried or not), an HTTP POST that follows no
redirect and never names the URL (Slack and Teams URLs are bearer secrets), the approval page link, and the
event in plain lines for chat and e-mail."""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from contract.notifications import NotificationEvent, NotificationKind

USER_AGENT = "bicep-deployment-orchestrator-notifications"
RETRYABLE_STATUS = frozenset({408, 425, 429})
MAX_RETRY_AFTER_SECONDS = 3600.0


class DeliveryError(Exception):
    """One attempt failed. ``retryable``: another attempt may succeed (a 5xx, 429, timeout, refused connection);
    otherwise the sink's configuration is wrong (a 4xx, no STARTTLS, a refused login) and retrying cannot help.
    The message names the sink, never its URL or secret."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class Delivered:
    detail: str  # what the receiver answered, e.g. "HTTP 200"


def approval_link(public_url: str | None, deployment_id: str) -> str | None:
    """The deployment's page on the team service, or None when the worker does not know the service's URL."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/ui/deployments/{quote(deployment_id, safe='')}"


NO_LINK = (
    "no link to the approval page: the worker's ORCHESTRATOR_PUBLIC_URL is not set "
    "(`python starter.py status {id}` shows the deployment)"
)


def detail_lines(event: NotificationEvent) -> list[str]:
    """The event as short plain lines (chat messages and e-mail): what, where, who, the plan's counts, why."""
    if event.kind is NotificationKind.DRIFT:
        return _drift_lines(event)
    lines = [f"Deployment {event.deployment_id} (ARM deployment {event.deployment_name})"]
    lines.append(f"Subscription {event.subscription_id}, resource group {event.resource_group}")
    who = f"Started by {event.initiator or 'unknown'}"
    if event.git_sha:
        who += f" at commit {event.git_sha}"
    lines.append(who)
    if event.plan_counts:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(event.plan_counts.items()) if n)
        lines.append(f"Plan: {counts or 'no changes'}")
    if event.kind is NotificationKind.APPROVAL_NEEDED:
        need = event.required_approvals or 1
        until = f" by {event.deadline:%Y-%m-%d %H:%M} UTC" if event.deadline else ""
        lines.append(f"{event.deletions} resource(s) would be deleted: {need} approval(s) needed{until} "
                     f"(round {event.round or 1})")  # fmt: skip
    if event.failure is not None:
        klass = f"{event.failure.failure_class} " if event.failure.failure_class else ""
        lines.append(f"Failed in {event.failure.stage}: {klass}{event.failure.code}")
    if event.rolled_back_to:
        lines.append(f"Redeployed the last good deployment of {event.rolled_back_to}")
    if event.outcome:
        lines.append(f"Outcome: {event.outcome}")
    return lines


DRIFT_CHANGES = {"Modify": "changed", "Create": "gone (deleted out of band)", "Delete": "added out of band"}


def _drift_lines(event: NotificationEvent) -> list[str]:
    """A drift check's event: which check, what it found (counts per kind of change, never a value), and what was
    done about it."""
    lines = [f"Drift check {event.drift_check_id}: {event.drift_class}"]
    lines.append(f"Subscription {event.subscription_id}, resource group {event.resource_group}")
    lines.append(f"Compared with the last good deployment {event.deployment_name or '(unknown)'}")
    found = ", ".join(f"{n} {DRIFT_CHANGES.get(kind, kind)}" for kind, n in sorted(event.plan_counts.items()) if n)
    if found:
        lines.append(f"Resources: {found}")
    if event.remediation_id:
        lines.append(f"Remediation: deployment {event.remediation_id} started by {event.initiator or 'unknown'}")
    elif event.remediation_problem:
        lines.append(f"Not remediated: {event.remediation_problem}")
    return lines


def link_line(event: NotificationEvent, link: str | None) -> str:
    return f"Approval page: {link}" if link else NO_LINK.format(id=event.deployment_id)


def ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificates checked against the system's CAs, or only ``ca_file``'s when given."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is an answer (an error below), never followed with the body and its signature


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float, context: ssl.SSLContext) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"User-Agent": USER_AGENT, **headers})
    opener = urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=context))
    with opener.open(request, timeout=timeout) as response:
        response.read(65536)
        return int(response.status)


async def post(
    sink: str, url: str, body: bytes, headers: dict[str, str], *, timeout: float, ca_file: Path | None = None
) -> Delivered:
    """POST ``body``; 2xx is delivered, anything else a ``DeliveryError`` naming the sink (never the URL)."""
    try:
        status = await asyncio.to_thread(_post, url, body, headers, timeout, ssl_context(ca_file))
    except urllib.error.HTTPError as exc:
        raise _status_error(sink, exc.code, exc.headers.get("Retry-After") if exc.headers else None) from None
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryError(
            f"sink {sink}: the receiver's TLS certificate is not trusted ({exc.verify_message}); give the sink a "
            "ca_file with its CA",
            retryable=False,
        ) from None
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"sink {sink}: no answer ({type(reason).__name__}: {reason})", retryable=True) from None
    if not 200 <= status < 300:
        raise _status_error(sink, status, None)
    return Delivered(detail=f"HTTP {status}")


def _status_error(sink: str, status: int, retry_after: str | None) -> DeliveryError:
    if 300 <= status < 400:
        return DeliveryError(
            f"sink {sink}: the receiver answered HTTP {status} (a redirect, not followed); configure its final URL",
            retryable=False,
        )
    retryable = status >= 500 or status in RETRYABLE_STATUS
    what = "will retry" if retryable else "not retried: check the sink's URL and secret"
    return DeliveryError(
        f"sink {sink}: the receiver answered HTTP {status} ({what})",
        retryable=retryable,
        retry_after=_retry_after(retry_after) if retryable else None,
    )


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds or as an HTTP date, capped at an hour; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        seconds = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
