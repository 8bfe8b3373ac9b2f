"""DEPLOYING: submit the ARM deployment once and follow it to the end, durably.

The ARM deployment name is derived from the workflow run (``contract.naming``), so it is the idempotency key:
every attempt first GETs the deployment by that name. Running → resume polling it (a retried activity, or one a
new worker picked up after a crash, never submits a second PUT); Succeeded → done; absent, Failed or Canceled →
PUT. While polling, the activity heartbeats its progress, so a dead worker is noticed within the heartbeat timeout
and the workflow starts a new attempt that resumes. Cancelling the workflow cancels the ARM deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from temporalio import activity

from contract.models import (
    ActivityName,
    CancelInput,
    Classification,
    DeployInput,
    DeployOutcomeDetails,
    DeployProgress,
    FailureClass,
    RequestRetry,
)
from services.classification import classify_arm_error, retry_after_seconds
from services.config import ArmClients
from services.content_store import BlobStore
from services.secrets import MASK, SECURE_TYPES, redact, redact_model

from .errors import application_error, classified
from .parameters import secret_values, template_and_parameters
from .transient import MAX_IN_PLACE_RETRIES, retry_in_place

MAX_MISSING_POLLS = 5
# Following a submitted deployment only reads it. A read that meets a transient failure (429, 5xx, a dropped
# connection) is tried again in place (activities/transient.py), up to this many times in a row, after ARM's
# Retry-After or the poll interval: one lost GET must not end an attempt that has nothing to redo. The PUT, and any
# failure that is not transient, still end the attempt and go through the workflow's retry schedule, in history.
MAX_FOLLOW_READ_RETRIES = MAX_IN_PLACE_RETRIES
# Following a deployment: the first wait is ARM's Retry-After on the PUT (else FIRST_POLL_SECONDS) and each next one
# doubles up to the configured interval, so a deployment that finishes in seconds is seen in seconds while a long
# one is polled at the configured pace.
FIRST_POLL_SECONDS = 0.5
MIN_POLL_SECONDS = 0.01
TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled"})
RESUBMIT_STATES = frozenset({"failed", "canceled"})


class DeploymentMissing(Exception):
    code = "DeploymentNotFound"  # ENVIRONMENTAL in services.classification


def _doc(model: Any) -> dict[str, Any]:
    if model is None:
        return {}
    if hasattr(model, "as_dict"):
        return dict(model.as_dict())
    return dict(model)


def _state(doc: dict[str, Any]) -> str:
    return str((doc.get("properties") or {}).get("provisioningState") or "")


def _last_heartbeat() -> str | None:
    """What an earlier attempt of this same activity heartbeated (present when the server retried it)."""
    details = activity.info().heartbeat_details
    return str(details[0]) if details else None


def masked_outputs(outputs: dict[str, Any] | None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, out in (outputs or {}).items():
        if isinstance(out, dict):
            secure = str(out.get("type", "")).lower() in SECURE_TYPES
            result[name] = MASK if secure else out.get("value")
        else:
            result[name] = out
    return result


class DeployActivities:
    def __init__(self, clients: ArmClients, store: BlobStore, *, poll_interval: float | None = None) -> None:
        self._clients = clients
        self._store = store
        self._poll_interval = poll_interval

    def _interval(self) -> float:
        """The longest wait between two GETs: the configured interval, short enough to heartbeat in time."""
        interval = self._poll_interval if self._poll_interval is not None else self._clients.config.polling_interval
        hb = activity.info().heartbeat_timeout
        if hb:
            interval = min(interval, max(hb.total_seconds() / 3, MIN_POLL_SECONDS))
        return max(interval, MIN_POLL_SECONDS)

    async def _get(self, inp: DeployInput) -> dict[str, Any] | None:
        ops = self._clients.deployments(inp.request.subscription_id).deployments
        try:
            return _doc(await ops.get(inp.request.resource_group, inp.deployment_name))
        except ResourceNotFoundError:
            return None

    @activity.defn(name=ActivityName.DEPLOY)
    async def deploy(self, inp: DeployInput) -> DeployOutcomeDetails:
        r = inp.request
        name = inp.deployment_name
        ops = self._clients.deployments(r.subscription_id).deployments
        submitted = False
        first_wait: float | None = None
        retried: list[RequestRetry] = []
        async with classified():
            secrets = await asyncio.to_thread(secret_values, self._store, r)  # a blob store reads over the network
        try:
            async with classified(secrets):
                # The name is new with every workflow run, so the first attempt has nothing to find; any later
                # attempt (or one resumed after a crash) looks first.
                resuming = inp.attempt > 1 or inp.resume_token is not None or bool(activity.info().heartbeat_details)
                existing = await self._get(inp) if resuming else None
                state = _state(existing) if existing else ""
                if existing is None or state.lower() in RESUBMIT_STATES:
                    template, parameters = await asyncio.to_thread(template_and_parameters, self._store, r)
                    body = {
                        "properties": {
                            "mode": r.mode.value,
                            "template": template,
                            "parameters": parameters,
                        },
                        "tags": {"orchestrator-workflow": activity.info().workflow_id},
                    }
                    activity.heartbeat(DeployProgress(deployment_name=name, submitted=False))
                    # The poller is not awaited: this activity follows the deployment by GET, the same way it
                    # does when it resumes one submitted by an earlier attempt. ARM's Retry-After on the PUT's
                    # answer sets the first wait.
                    answer: dict[str, float | None] = {}

                    def on_response(response: Any) -> None:
                        answer["retry_after"] = retry_after_seconds(response.http_response.headers)

                    await ops.begin_create_or_update(r.resource_group, name, body, raw_response_hook=on_response)
                    first_wait = answer.get("retry_after")
                    submitted = True
                    activity.logger.info("submitted ARM deployment %s", name)
                else:
                    previous = inp.resume_token or _last_heartbeat()
                    activity.logger.info(
                        "resuming ARM deployment %s (state %s; previous attempt: %s): no second PUT",
                        name,
                        state,
                        previous or "unknown",
                    )
                doc = await self._follow_until_worker_stops(inp, first_wait, retried)
        except asyncio.CancelledError:
            why = activity.cancellation_details()
            if why is not None and why.cancel_requested and not why.worker_shutdown:
                # The workflow was cancelled: so is the ARM deployment.
                await self._cancel_quietly(r.subscription_id, r.resource_group, name)
                raise
            # This worker is stopping (or the attempt timed out): leave the ARM deployment running; the workflow's
            # next attempt, on any worker, resumes following it.
            reason = "the worker is shutting down" if why and why.worker_shutdown else "the attempt ended"
            raise application_error(
                Classification(
                    failure_class=FailureClass.ENVIRONMENTAL,
                    code="WorkerShutdown",
                    message=f"{reason} while following ARM deployment {name}; it keeps running and is resumed",
                )
            ) from None
        props = doc.get("properties") or {}
        state = _state(doc)
        if state.lower() != "succeeded":
            classification = classify_arm_error(props.get("error"), default_code=f"Deployment{state}")
            classification.message = redact(classification.message, secrets)
            raise application_error(classification)
        details = DeployOutcomeDetails(
            deployment_name=name,
            deployment_id=doc.get("id"),
            provisioning_state=state,
            resources=[str(o.get("id")) for o in props.get("outputResources") or [] if o.get("id")],
            outputs=masked_outputs(props.get("outputs")),
            submitted_by_this_attempt=submitted,
            duration=props.get("duration"),
            request_retries=retried,
        )
        return redact_model(details, secrets)

    async def _follow_until_worker_stops(
        self, inp: DeployInput, first_wait: float | None, retried: list[RequestRetry]
    ) -> dict[str, Any]:
        follow = asyncio.ensure_future(self._follow(inp, first_wait, retried))
        stopping = asyncio.ensure_future(activity.wait_for_worker_shutdown())
        try:
            await asyncio.wait({follow, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (follow, stopping):
                if not task.done():
                    task.cancel()
        if follow.done() and not follow.cancelled():
            return follow.result()
        with contextlib.suppress(asyncio.CancelledError):
            await follow
        # A graceful stop (SIGTERM/SIGINT): other activities may use the worker's grace period to finish, but
        # following can take hours, so hand over now: the ARM deployment keeps running and the workflow's next
        # attempt, on another worker, resumes following it (no second PUT).
        raise application_error(
            Classification(
                failure_class=FailureClass.ENVIRONMENTAL,
                code="WorkerShutdown",
                message=f"the worker is shutting down while following ARM deployment {inp.deployment_name}; it keeps "
                "running and is resumed by the next attempt",
            )
        )

    async def _follow(
        self, inp: DeployInput, first_wait: float | None = None, retried: list[RequestRetry] | None = None
    ) -> dict[str, Any]:
        longest = self._interval()
        interval = min(first_wait if first_wait is not None else FIRST_POLL_SECONDS, longest)
        interval = max(interval, MIN_POLL_SECONDS)
        missing = 0
        while True:
            doc = await self._read_while_following(inp, interval, retried)
            if doc is None:
                # Just after a PUT a read may not see the deployment yet; a deployment that stays missing was
                # deleted under us: environmental, the next attempt submits it again.
                missing += 1
                if missing > MAX_MISSING_POLLS:
                    raise DeploymentMissing(f"ARM deployment {inp.deployment_name} is not found while following it")
                await asyncio.sleep(interval)
                continue
            missing = 0
            state = _state(doc)
            activity.heartbeat(
                DeployProgress(deployment_name=inp.deployment_name, submitted=True, provisioning_state=state)
            )
            if state.lower() in TERMINAL_STATES:
                return doc
            await asyncio.sleep(interval)
            interval = min(interval * 2, longest)

    async def _read_while_following(
        self, inp: DeployInput, wait: float, retried: list[RequestRetry] | None = None
    ) -> dict[str, Any] | None:
        def beat() -> None:
            activity.heartbeat(DeployProgress(deployment_name=inp.deployment_name, submitted=True))

        return await retry_in_place(
            lambda: self._get(inp),
            what=f"reading ARM deployment {inp.deployment_name}",
            pause=wait,
            beat=beat,
            beat_every=self._interval(),
            retries=MAX_FOLLOW_READ_RETRIES,
            record=retried,
        )

    async def _cancel_quietly(self, subscription_id: str, resource_group: str, name: str) -> None:
        ops = self._clients.deployments(subscription_id).deployments
        try:
            await asyncio.shield(ops.cancel(resource_group, name))
            activity.logger.info("cancelled ARM deployment %s", name)
        except (HttpResponseError, asyncio.CancelledError) as exc:  # 409: already finished; 404: never submitted
            activity.logger.info("ARM deployment %s not cancelled: %s", name, exc)

    @activity.defn(name=ActivityName.CANCEL_DEPLOYMENT)
    async def cancel_deployment(self, inp: CancelInput) -> DeployProgress:
        """Cancel the ARM deployment if it is still running (used when the workflow is cancelled)."""
        ops = self._clients.deployments(inp.subscription_id).deployments
        async with classified():
            try:
                await ops.cancel(inp.resource_group, inp.deployment_name)
            except HttpResponseError as exc:
                if exc.status_code not in (404, 409):
                    raise
            try:
                doc = _doc(await ops.get(inp.resource_group, inp.deployment_name))
            except ResourceNotFoundError:
                return DeployProgress(deployment_name=inp.deployment_name, submitted=False)
            return DeployProgress(deployment_name=inp.deployment_name, submitted=True, provisioning_state=_state(doc))
