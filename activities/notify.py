"""The notify activity: one attempt to deliver one event to one sink. The event and the sink's name are its input;
the sink (its URL, key or password) is the worker's. The notification workflow retries it on its delivery policy;
a sink's configuration error is not retried."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from contract.notifications import NOTIFY_ACTIVITY, NotifyInput, NotifyResult
from services.notifications.config import Notifier
from services.notifications.delivery import DeliveryError

log = logging.getLogger(__name__)

NOT_CONFIGURED = "NotificationsNotConfigured"
UNDELIVERED = "NotificationUndelivered"
SINK_REFUSED = "NotificationSinkRefused"


class NotifyActivities:
    def __init__(self, notifier: Notifier | None) -> None:
        self._notifier = notifier

    @activity.defn(name=NOTIFY_ACTIVITY)
    async def notify(self, inp: NotifyInput) -> NotifyResult:
        if self._notifier is None:
            raise ApplicationError(
                f"this worker has no notification file (ORCHESTRATOR_NOTIFICATIONS) for sink {inp.sink}; give every "
                "worker of the task queue the same file",
                type=NOT_CONFIGURED,
            )
        attempt = activity.info().attempt
        try:
            delivered = await self._notifier.send(inp.event, inp.sink)
        except DeliveryError as exc:
            log.warning("%s event %s to %s, attempt %d: %s", inp.event.kind.value, inp.event.id, inp.sink, attempt, exc)
            raise ApplicationError(
                str(exc),
                type=UNDELIVERED if exc.retryable else SINK_REFUSED,
                non_retryable=not exc.retryable,
                next_retry_delay=timedelta(seconds=exc.retry_after) if exc.retry_after else None,
            ) from None
        log.info("%s event %s delivered to %s (%s)", inp.event.kind.value, inp.event.id, inp.sink, delivered.detail)
        return NotifyResult(sink=inp.sink, delivered=True, detail=delivered.detail)
