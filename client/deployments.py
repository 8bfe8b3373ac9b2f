"""Starting deployments and reading their results: the functions the CLI (and tests, and benchmarks) call.

One deployment per resource group at a time: the workflow id is derived from subscription and resource group
(``contract.naming.workflow_id_for``) and started with Temporal's conflict policy FAIL, so the server itself
refuses a second start while one runs. ``start_deployment(..., wait=True)`` queues instead: it waits for the
running workflow to close, then starts (and if another waiter won the race, waits again).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    TerminatedError,
    TimeoutError,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError

from contract.models import (
    QUERY_STATUS,
    WORKFLOW_NAME,
    DeploymentMode,
    DeploymentStage,
    DeploymentStatus,
    DeployOutcome,
    DeployRequest,
    DeployResult,
    FailureInfo,
)
from contract.naming import workflow_id_for
from contract.search_attributes import is_missing_attribute_error, missing_attributes_message, start_search_attributes
from services.audit.registration import attributes_registered
from services.content_store import BlobStore, put_json
from services.secrets import secure_parameter_names, store_secure
from services.temporal_client import DEFAULT_TASK_QUEUE

log = logging.getLogger(__name__)


class DeploymentAlreadyRunning(Exception):
    """Another deployment of the same resource group is running; ``workflow_id`` names it."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"a deployment to this resource group is already running as workflow {workflow_id!r}; wait for it "
            f"(`starter.py status {workflow_id}`), or start with --wait to queue behind it"
        )


def build_deploy_request(
    *,
    store: BlobStore,
    template: Mapping[str, Any],
    subscription_id: str,
    resource_group: str,
    location: str,
    parameters: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    template_path: str | None = None,
    parameters_path: str | None = None,
    mode: DeploymentMode = DeploymentMode.INCREMENTAL,
    allow_warnings: bool = False,
    no_confirm_deletes: bool = False,
    skip_health: bool = False,
    confirmation_timeout_seconds: float | None = None,
    git_sha: str | None = None,
    initiator: str = "unknown",
    audit_dir: str | None = None,
    secret_names: Iterable[str] = (),
) -> DeployRequest:
    """Put the template (and secure parameter values) in the content store and return the request.

    ``parameters`` are the parameters-file entries (``{name: {"value": v}}`` or ``{"reference": ...}``);
    ``overrides`` are ``--param`` values (plain values), applied last. Values of parameters the template declares
    secure go to the store, referenced by ``secure_parameters``; only their names enter workflow history.
    """
    merged: dict[str, Any] = {
        k: dict(v) if isinstance(v, Mapping) else {"value": v} for k, v in (parameters or {}).items()
    }
    for key, value in (overrides or {}).items():
        # ARM parameter names are case-insensitive: an override replaces the file's entry whatever its case.
        for existing in [k for k in merged if k.lower() == key.lower()]:
            del merged[existing]
        merged[key] = {"value": value}
    # The template's securestring/secureObject parameters, plus those the user marked (--secret-param).
    secure = secure_parameter_names(template) | {n.lower() for n in secret_names}
    plain = {k: v for k, v in merged.items() if not (k.lower() in secure and "value" in v)}
    secret = {k: v for k, v in merged.items() if k.lower() in secure and "value" in v}
    template_ref = put_json(store, template)
    return DeployRequest(
        subscription_id=subscription_id,
        resource_group=resource_group,
        location=location,
        template=template_ref,
        template_path=template_path,
        template_hash=template_ref.digest,
        parameters=plain,
        secure_parameters=store_secure(store, secret) if secret else None,
        secure_parameter_names=sorted(secret),
        parameters_path=parameters_path,
        override_names=sorted(overrides or {}),
        mode=mode,
        allow_warnings=allow_warnings,
        no_confirm_deletes=no_confirm_deletes,
        skip_health=skip_health,
        confirmation_timeout_seconds=confirmation_timeout_seconds,
        git_sha=git_sha,
        initiator=initiator,
        audit_dir=audit_dir,
    )


def static_summary(request: DeployRequest) -> str:
    template = Path(request.template_path).name if request.template_path else request.template.digest[:12]
    sha = (request.git_sha or "")[:12] or "no git SHA"
    return f"deploy {template} to {request.resource_group} ({request.mode.value}) by {request.initiator} @ {sha}"


def static_details(request: DeployRequest) -> str:
    lines = [
        f"- resource group: `{request.resource_group}` in `{request.location}`",
        f"- subscription: `{request.subscription_id}`",
        f"- template: `{request.template_path or request.template.digest}`",
    ]
    if request.parameters_path:
        lines.append(f"- parameters: `{request.parameters_path}`")
    lines += [
        f"- mode: {request.mode.value}",
        f"- initiator: {request.initiator} (claimed by the starting client)",
        f"- git SHA: `{request.git_sha or '-'}`",
    ]
    return "\n".join(lines)


async def start_deployment(
    client: Client,
    request: DeployRequest,
    *,
    wait: bool = False,
    task_queue: str = DEFAULT_TASK_QUEUE,
    workflow_id: str | None = None,
    on_busy: Callable[[WorkflowHandle[Any, Any]], Awaitable[None]] | None = None,
    extra_memo: Mapping[str, Any] | None = None,
) -> WorkflowHandle[Any, DeployResult]:
    """Start the deployment workflow; raise ``DeploymentAlreadyRunning`` if the resource group is busy, unless
    ``wait``, which queues behind the running deployment (``on_busy`` is told which one, each time it waits).
    ``extra_memo`` joins the run's memo, set atomically with its start (the API's idempotency key)."""
    wf_id = workflow_id or workflow_id_for(request.subscription_id, request.resource_group)
    search_attributes: TypedSearchAttributes | None = None
    if await attributes_registered(client) is not False:
        search_attributes = start_search_attributes(request)
    while True:
        try:
            return await client.start_workflow(
                WORKFLOW_NAME,
                request,
                id=wf_id,
                task_queue=task_queue,
                result_type=DeployResult,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                memo={
                    "subscription_id": request.subscription_id,
                    "resource_group": request.resource_group,
                    "initiator": request.initiator,
                    "template": request.template_path or request.template.digest,
                    **(extra_memo or {}),
                },
                search_attributes=search_attributes,
                # What the Temporal UI shows for this run before anything else (User Metadata): which resource
                # group, template, who and which commit. Markdown; the plan follows in the current details.
                static_summary=static_summary(request),
                static_details=static_details(request),
            )
        except RPCError as exc:
            if search_attributes is None or not is_missing_attribute_error(exc.message):
                raise
            # Degrade, loudly: the deployment runs, but the UI and `workflow list --query` cannot find it by them.
            log.warning(missing_attributes_message(client.namespace, what="starting without search attributes"))
            search_attributes = None
        except WorkflowAlreadyStartedError:
            if not wait:
                raise DeploymentAlreadyRunning(wf_id) from None
            log.info("resource group busy: waiting for workflow %s to finish", wf_id)
            running = client.get_workflow_handle(wf_id)
            if on_busy is not None:
                await on_busy(running)
            with contextlib.suppress(WorkflowFailureError):
                await running.result()


async def result_of(handle: WorkflowHandle[Any, Any]) -> DeployResult:
    """The workflow's ``DeployResult`` whether it completed or failed (a failed deployment carries its result as
    the first detail of the workflow's ApplicationError)."""
    try:
        result = await handle.result()
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.details:
            return DeployResult.model_validate(cause.details[0])
        outcome = DeployOutcome.CANCELLED if isinstance(cause, CancelledError | TerminatedError) else None
        code = type(cause).__name__ if cause else "WorkflowFailed"
        if isinstance(cause, TimeoutError):
            code = "WorkflowTimedOut"
        status: DeploymentStatus | None = None
        with contextlib.suppress(Exception):  # the status is a courtesy here: a worker must be there to answer
            status = await query_status(handle)
        return DeployResult(
            workflow_id=handle.id,
            deployment_name=status.deployment_name if status else "",
            outcome=outcome or DeployOutcome.ENVIRONMENTAL_FAILURE,
            stage=DeploymentStage.FAILED,
            plan=status.plan if status else None,
            confirmations=status.confirmations if status else [],
            transitions=status.transitions if status else [],
            failure=FailureInfo(
                stage=stopped_in(status),
                failure_class=None,
                code=code,
                message=str(cause or err),
            ),
        )
    if isinstance(result, DeployResult):
        return result
    return DeployResult.model_validate(result)


def stopped_in(status: DeploymentStatus | None) -> DeploymentStage:
    """The stage a deployment that ended without a result (cancelled, terminated, timed out) stopped in: the one
    its recorded failure names, else the stage before its move to FAILED (runs recorded before the failure named
    it), else where it is."""
    if status is None:
        return DeploymentStage.FAILED
    if status.failure is not None and status.failure.stage is not DeploymentStage.FAILED:
        return status.failure.stage
    last = status.transitions[-1] if status.transitions else None
    if last is not None and last.stage is DeploymentStage.FAILED and last.previous is not None:
        return last.previous
    return status.stage


async def query_status(handle: WorkflowHandle[Any, Any]) -> DeploymentStatus:
    return await handle.query(QUERY_STATUS, result_type=DeploymentStatus)
