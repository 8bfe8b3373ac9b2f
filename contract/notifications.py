"""Notifications: the events a deployment announces (approval needed, completed, failed, rolled back) and a drift
check announces (drift), where each goes (the worker's routing: sink names, event kinds, subscription and resource
group patterns) and how delivery is retried.

What crosses into history is only this: the event (names, ids, counts, codes — never a parameter value, never a
sink's URL or key) and the names of the sinks it goes to. The sinks themselves, with their secrets, live on the
worker (``services/notifications``).

Delivery is at least once: a retry after a lost answer sends the same event again, always with the same ``id``
(``event_id``: from the workflow id, the first run id of the chain, the kind and the round), so a receiver that
keeps the ids it has handled sees each event once. docs/NOTIFICATIONS.md.
"""

from __future__ import annotations

import fnmatch
import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

NOTIFICATION_WORKFLOW_NAME = "DeploymentNotification"
NOTIFY_ACTIVITY = "notify"
# The uuid5 namespace of event ids (fixed forever: changing it would give an event already announced a new id).
EVENT_ID_NAMESPACE = uuid.UUID("0d6c5f0e-5b0f-4c3e-9a51-7f3f2a1c9e42")


class NotificationKind(StrEnum):
    APPROVAL_NEEDED = "approval_needed"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    DRIFT = "drift"  # a drift check found configuration or destructive drift (docs/FLEET.md)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


def event_id(workflow_id: str, first_run_id: str, kind: NotificationKind, round_number: int | None = None) -> str:
    """The event's stable id: the same for every retry and replay (and across continue-as-new, which keeps the first
    run id), different for every deployment (a resource group's workflow id is reused) and every approval round."""
    parts = [workflow_id, first_run_id, kind.value]
    if round_number is not None:
        parts.append(str(round_number))
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "\n".join(parts)))


class NotificationFailure(_Model):
    """Why a deployment failed, as far as a notification tells it: the stage, the class and the code. The message is
    left out: an ARM message may quote a parameter value; the approval page shows it to those allowed to see it."""

    stage: str
    failure_class: str | None = None
    code: str


class NotificationEvent(_Model):
    """One event, as every sink receives it (a sink renders it: CloudEvent, Slack blocks, Adaptive Card, e-mail)."""

    id: str
    kind: NotificationKind
    time: datetime
    deployment_id: str  # the workflow id; the approval page is {public url}/ui/deployments/{deployment_id}
    run_id: str
    deployment_name: str
    subscription_id: str
    resource_group: str
    stage: str
    outcome: str | None = None
    initiator: str = ""
    git_sha: str | None = None
    template_hash: str | None = None
    plan_counts: dict[str, int] = Field(default_factory=dict)  # change type -> number of resources
    deletions: int = 0
    # approval needed
    round: int | None = None
    plan_hash: str | None = None
    required_approvals: int | None = None
    deadline: datetime | None = None
    # failed / rolled back
    failure: NotificationFailure | None = None
    rolled_back_to: str | None = None  # the workflow id whose deployment was redeployed
    # drift (``deployment_id`` is then the resource group's deployment workflow id, whose page shows its last
    # deployment; ``plan_counts`` the drifted resources per what-if change type: Modify, Create = gone, Delete =
    # added out of band)
    drift_class: str | None = None  # "configuration drift" or "destructive drift"
    drift_check_id: str | None = None  # the drift check's workflow id (`drift status` lists it)
    remediation_id: str | None = None  # --remediate: the deployment started to put the last good state back
    remediation_problem: str | None = None  # --remediate: why no deployment was started

    def headline(self) -> str:
        """One line for subjects and chat titles."""
        where = f"{self.resource_group} ({self.subscription_id})"
        if self.kind is NotificationKind.APPROVAL_NEEDED:
            return f"Approval needed: {self.deletions} deletion(s) in {where}"
        if self.kind is NotificationKind.COMPLETED:
            return f"Deployment completed: {where}"
        if self.kind is NotificationKind.ROLLED_BACK:
            return f"Deployment rolled back: {where}"
        if self.kind is NotificationKind.FAILED:
            code = f" ({self.failure.code})" if self.failure else ""
            return f"Deployment failed{code}: {where}"
        if self.kind is NotificationKind.DRIFT:
            return f"{(self.drift_class or 'drift').capitalize()}: {where}"
        return f"{self.kind.value}: {where}"


class SinkRoute(_Model):
    """Which events one sink receives: kinds, and optional glob patterns (``fnmatch``, case-insensitive as Azure
    names are) on the subscription id and the resource group; an empty pattern list matches everything."""

    name: str
    kinds: list[NotificationKind] = Field(default_factory=lambda: [k for k in NotificationKind])
    subscriptions: list[str] = Field(default_factory=list)
    resource_groups: list[str] = Field(default_factory=list)

    def matches(self, event: NotificationEvent) -> bool:
        return (
            event.kind in self.kinds
            and _any_match(self.subscriptions, event.subscription_id)
            and _any_match(self.resource_groups, event.resource_group)
        )


def _any_match(patterns: list[str], value: str) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)


class DeliveryPolicy(_Model):
    """How each (event, sink) delivery is retried: exponential from ``initial_interval_seconds`` up to
    ``maximum_interval_seconds``, each attempt at most ``attempt_timeout_seconds``, given up after
    ``give_up_after_seconds`` (then logged as undelivered)."""

    initial_interval_seconds: float = 2.0
    maximum_interval_seconds: float = 300.0
    attempt_timeout_seconds: float = 30.0
    give_up_after_seconds: float = 24 * 3600.0


class NotificationRouting(_Model):
    """The worker's routing, carried in ``WorkerSettings`` (so in history): names and patterns only, no secret."""

    sinks: list[SinkRoute] = Field(default_factory=list)
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)

    def sinks_for(self, event: NotificationEvent) -> list[str]:
        return [s.name for s in self.sinks if s.matches(event)]


class NotificationRequest(_Model):
    """The input of the notification workflow: one event and the sinks it goes to."""

    event: NotificationEvent
    sinks: list[str]
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)


class NotifyInput(_Model):
    """The notify activity's input: the event and one sink's name (the activity finds the sink, with its secret,
    in the worker's configuration)."""

    event: NotificationEvent
    sink: str


class NotifyResult(_Model):
    sink: str
    delivered: bool = True
    detail: str = ""  # e.g. "HTTP 200", "250 accepted"


class NotificationReport(_Model):
    """The notification workflow's result: one entry per sink."""

    event_id: str
    results: list[NotifyResult] = Field(default_factory=list)


def notification_workflow_id(event: NotificationEvent) -> str:
    """One notification workflow per event: starting it again (a reset re-running the moment) finds it exists."""
    return f"notify-{event.id}"
