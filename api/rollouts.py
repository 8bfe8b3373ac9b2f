"""The team API's fleet rollouts (docs/API.md, docs/FLEET.md): plan or start a rollout from a rollout document, read
its state, pause, resume and abort it — what ``starter.py rollout plan|start|status|pause|resume|abort`` do, through
the same helpers (``client.rollout_file`` checks the document, ``client.cli.rollout`` starts the workflows).

A rollout touches many resource groups, so every operation needs its role on every target: deployer to start,
pause, resume and abort, reader to plan and to read. The document names its template, parameters and health files;
over HTTP they come inline in ``files`` (name → JSON document), never as paths on the service's disk.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations (local Annotated aliases) at
# runtime, as in api/app.py.
import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deployments import Deployments, temporal_problem
from api.identity import Authorizer, Principal, Role
from api.problems import Problem
from client.inputs import InputError, validate_git_sha
from contract.models import MAX_REASON_CHARS
from contract.rollout import (
    QUERY_ROLLOUT_STATUS,
    ROLLOUT_WORKFLOW_NAME,
    SIGNAL_ABORT,
    SIGNAL_APPROVE_RING,
    SIGNAL_PAUSE,
    SIGNAL_RESUME,
    AbortSignal,
    ApproveRingSignal,
    RingState,
    RolloutRequest,
    RolloutStatus,
    ring_round,
    rollout_workflow_id,
)
from services.secrets import redact, secret_strings, secure_parameter_names

QUERY_SECONDS = 5.0
DECISION_WAIT_SECONDS = 15.0
IDENTITY_SOURCE = "team-api"


class RolloutCreate(BaseModel):
    """A rollout document and the documents it names."""

    model_config = ConfigDict(extra="forbid")

    rollout: dict[str, Any] = Field(
        description="the rollout file's fields as JSON (docs/FLEET.md): name, template, parameters, mode, location, "
        "health, rings; template, parameters and every health file name an entry of files"
    )
    files: dict[str, Any] = Field(
        default_factory=dict,
        description="name → JSON document: the ARM template, the parameters file, health files (names of 1-100 "
        "letters, digits, '.', '_', '-'; no folders)",
    )
    action: Literal["plan", "start"] = Field(
        default="start",
        description="plan: what-if of every target, nothing deployed (reader on every target); start: the rollout "
        "workflow rollout-<name> (deployer on every target)",
    )
    git_sha: str | None = Field(default=None, max_length=64, description="commit the template comes from")


class RingApproval(BaseModel):
    """An approval of a ring that waits for one, named by the ring's plan hash (GET /rollouts/{id})."""

    model_config = ConfigDict(extra="forbid")

    plan_hash: str = Field(max_length=80, description="the ring's plan hash, as GET /rollouts/{id} shows it")
    reason: str = Field(default="", max_length=MAX_REASON_CHARS, description="why (recorded with the approval)")


class AbortBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=MAX_REASON_CHARS, description="why, for the record")


def rollout_links(rollout_id: str) -> dict[str, str]:
    base = f"/rollouts/{rollout_id}"
    return {"self": base, "pause": f"{base}/pause", "resume": f"{base}/resume", "abort": f"{base}/abort"}


def _targets(rings: Any) -> list[tuple[str, str]]:
    return [(t.subscription_id, t.resource_group) for ring in rings for t in ring.targets]


def _document_secrets(body: RolloutCreate) -> list[str]:
    """The values of the parameters the template declares secure, as given in files (kept out of every message)."""
    template = body.files.get(str(body.rollout.get("template")))
    parameters = body.files.get(str(body.rollout.get("parameters")))
    if not isinstance(template, dict) or not isinstance(parameters, dict):
        return []
    secure = secure_parameter_names(template)
    entries = parameters.get("parameters") if isinstance(parameters.get("parameters"), dict) else parameters
    return secret_strings(
        entry.get("value") if isinstance(entry, dict) else entry
        for name, entry in (entries or {}).items()
        if str(name).lower() in secure
    )


def _checked_request(body: RolloutCreate, svc: Deployments, who: Principal) -> RolloutRequest:
    """The document checked as ``rollout plan|start`` checks a file, its template stored, the request built."""
    from client.rollout_file import build_rollout_request, check_rollout_document

    secrets = _document_secrets(body)
    try:
        git_sha = validate_git_sha(body.git_sha, flag="git_sha") if body.git_sha else None
        with tempfile.TemporaryDirectory(prefix="rollout-document-") as folder:
            checked = check_rollout_document(body.rollout, body.files, Path(folder))
            return build_rollout_request(
                checked, store=svc.store, initiator=who.name, git_sha=git_sha, preview_only=body.action == "plan"
            )
    except InputError as exc:
        raise Problem("invalid-request", redact(f"{exc} Nothing was started.", secrets)) from None


def rollouts_router(
    service: Callable[[], Deployments],
    principal: Callable[..., Awaitable[Principal]],
    authorizer: Authorizer,
) -> APIRouter:
    """The routes, with the app's service, sign-in and authorization injected (``create_app`` mounts them)."""
    router = APIRouter(tags=["rollouts"])
    Caller = Annotated[Principal, Depends(principal)]
    Service = Annotated[Deployments, Depends(service)]

    def require_all(who: Principal, role: Role, targets: list[tuple[str, str]], what: str) -> None:
        for subscription_id, resource_group in targets:
            if not authorizer.allows(who, role, subscription_id, resource_group):
                raise Problem(
                    "forbidden",
                    f"{what} needs the {role} role on every target; {who.name} does not hold it for resource group "
                    f"{resource_group} in subscription {subscription_id}. Ask its owners for it. Nothing was changed.",
                    required_role=role,
                )

    async def find(svc: Deployments, rollout_id: str) -> tuple[WorkflowHandle[Any, Any], RolloutStatus, bool]:
        """The rollout (its latest run), its state and whether it is running; 404 for anything that is not one."""
        missing = Problem(
            "not-found", f"There is no rollout {rollout_id[:200]!r}; rollout ids look like rollout-<name>."
        )
        if not rollout_id.startswith("rollout-") or len(rollout_id) > 200 or any(ord(c) < 33 for c in rollout_id):
            raise missing
        handle = svc.client.get_workflow_handle(rollout_id, result_type=RolloutStatus)
        try:
            description = await handle.describe()
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise missing from None
            raise temporal_problem(exc) from None
        if description.workflow_type != ROLLOUT_WORKFLOW_NAME:
            raise missing
        handle = svc.client.get_workflow_handle(rollout_id, run_id=description.run_id, result_type=RolloutStatus)
        running = description.status == WorkflowExecutionStatus.RUNNING
        try:
            if running:
                status = await asyncio.wait_for(
                    handle.query(QUERY_ROLLOUT_STATUS, result_type=RolloutStatus), timeout=QUERY_SECONDS
                )
            else:
                status = await asyncio.wait_for(handle.result(follow_runs=False), timeout=QUERY_SECONDS)
        except (TimeoutError, RPCError) as exc:
            raise Problem(
                "temporal-unavailable",
                f"Rollout {rollout_id} did not answer its status query ({type(exc).__name__}): is a worker running? "
                "Try again shortly.",
                headers={"Retry-After": "5"},
            ) from None
        except Exception:  # a rollout that failed (not halted: a halt is a result) has no status to show
            raise Problem(
                "not-running", f"Rollout {rollout_id} ended without a result; its history in Temporal says why."
            ) from None
        return handle, status, running

    @router.post(
        "/rollouts",
        status_code=201,
        summary="plan or start a rollout from a rollout document",
        responses={201: {"description": "started: the rollout (start) or its plan (plan), read with GET"}},
    )
    async def create(body: RolloutCreate, who: Caller, svc: Service) -> JSONResponse:
        from client.cli.rollout import start_plan_workflow, start_rollout_workflow

        request = await asyncio.to_thread(_checked_request, body, svc, who)
        targets = [(t.subscription_id, t.resource_group) for ring in request.rings for t in ring.targets]
        planning = body.action == "plan"
        require_all(who, "reader" if planning else "deployer", targets, "A rollout plan" if planning else "A rollout")
        try:
            if planning:
                handle = await start_plan_workflow(svc.client, request, task_queue=svc.task_queue)
            else:
                handle = await start_rollout_workflow(svc.client, request, task_queue=svc.task_queue)
        except WorkflowAlreadyStartedError:
            wf_id = rollout_workflow_id(request.name)
            raise Problem(
                "rollout-running",
                f"Rollout {request.name} is already running as {wf_id} (GET /rollouts/{wf_id}); abort it first to "
                "start it again. Nothing was started.",
            ) from None
        except RPCError as exc:
            raise temporal_problem(exc) from None
        return JSONResponse(
            {
                "id": handle.id,
                "run_id": handle.result_run_id,
                "action": body.action,
                "targets": len(targets),
                "links": rollout_links(handle.id),
            },
            status_code=201,
            headers={"Location": f"/rollouts/{handle.id}"},
        )

    @router.get("/rollouts/{rollout_id}", summary="a rollout's state: rings, targets, their deployments")
    async def read(rollout_id: str, who: Caller, svc: Service) -> JSONResponse:
        handle, status, running = await find(svc, rollout_id)
        require_all(who, "reader", _targets(status.rings), "Reading a rollout")
        document = status.model_dump(mode="json")
        document.update({"running": running, "run_id": handle.run_id, "links": rollout_links(handle.id)})
        return JSONResponse(document)

    async def signal(rollout_id: str, who: Principal, svc: Deployments, name: str, arg: Any = None) -> JSONResponse:
        handle, status, running = await find(svc, rollout_id)
        require_all(who, "deployer", _targets(status.rings), f"To {name} a rollout")
        if not running:
            raise Problem("not-running", f"Rollout {rollout_id} has ended ({status.state.value}); nothing to {name}.")
        sent = {"pause": SIGNAL_PAUSE, "resume": SIGNAL_RESUME, "abort": SIGNAL_ABORT}[name]
        try:
            await (handle.signal(sent, arg) if arg is not None else handle.signal(sent))
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise Problem("not-running", f"Rollout {rollout_id} has just ended; nothing to {name}.") from None
            raise temporal_problem(exc) from None
        return JSONResponse({"id": handle.id, "sent": name, "links": rollout_links(handle.id)}, status_code=202)

    @router.post("/rollouts/{rollout_id}/pause", status_code=202, summary="start no further target or ring")
    async def pause(rollout_id: str, who: Caller, svc: Service) -> JSONResponse:
        return await signal(rollout_id, who, svc, "pause")

    @router.post("/rollouts/{rollout_id}/resume", status_code=202, summary="continue a paused rollout")
    async def resume(rollout_id: str, who: Caller, svc: Service) -> JSONResponse:
        return await signal(rollout_id, who, svc, "resume")

    @router.post(
        "/rollouts/{rollout_id}/abort", status_code=202, summary="stop the rollout: no further target or ring starts"
    )
    async def abort(rollout_id: str, who: Caller, svc: Service, body: AbortBody | None = None) -> JSONResponse:
        reason = body.reason if body is not None else ""
        return await signal(rollout_id, who, svc, "abort", AbortSignal(by=who.name, reason=reason))

    @router.post(
        "/rollouts/{rollout_id}/rings/{ring}/approvals",
        tags=["decisions"],
        summary="approve a ring that waits (named by its plan hash), attested by the service's relay key",
    )
    async def approve_ring(rollout_id: str, ring: str, body: RingApproval, who: Caller, svc: Service) -> JSONResponse:
        handle, status, running = await find(svc, rollout_id)
        index = next((i for i, r in enumerate(status.rings) if r.name == ring), None)
        if index is None:
            raise Problem("not-found", f"Rollout {rollout_id} has no ring {ring[:100]!r}; GET /rollouts/{rollout_id}.")
        waiting = status.rings[index]
        require_all(who, "approver", _targets([waiting]), "Approving a ring")
        if not running or waiting.state is not RingState.AWAITING_APPROVAL:
            raise Problem(
                "not-waiting",
                f"Ring {ring} of rollout {rollout_id} is {waiting.state.value}, not waiting for approval. Nothing was "
                "sent.",
            )
        if body.plan_hash != waiting.plan_hash:
            raise Problem(
                "plan-changed",
                f"The approval names plan {body.plan_hash}, but ring {ring} waits with plan {waiting.plan_hash}; read "
                f"GET /rollouts/{rollout_id} again and approve that one. Nothing was sent.",
                pending_plan_hash=waiting.plan_hash,
            )
        if who.verified and who.name.strip().lower() == status.initiator.strip().lower():
            raise Problem(
                "four-eyes",
                f"{who.name} started rollout {rollout_id}; another person must approve its rings. The ring keeps "
                "waiting; nothing was sent.",
            )
        statement = proof = None
        if svc.relay is not None and waiting.plan_hash and status.first_run_id:
            from datetime import UTC, datetime, timedelta

            from contract.approvals import ApprovalStatement, utc_text
            from services.approvals import sign_relay

            now = datetime.now(UTC)
            lifetime = min(waiting.statement_lifetime_seconds or 900, 900)
            statement = ApprovalStatement(
                workflow_id=handle.id, run_id=status.first_run_id, round=ring_round(index),
                plan_hash=waiting.plan_hash, destructive_set=[], decision="approve", reason=body.reason,
                identity=who.name, issued_at=utc_text(now), expires_at=utc_text(now + timedelta(seconds=lifetime)),
            )  # fmt: skip
            proof = sign_relay(statement, private_key=svc.relay.private_key, key_id=svc.relay.key_id)
        refused_before, counted_before = len(waiting.refused_approvals), len(waiting.approvals)
        signal = ApproveRingSignal(
            ring=ring, by=who.name, plan_hash=waiting.plan_hash, statement=statement, proof=proof
        )
        try:
            await handle.signal(SIGNAL_APPROVE_RING, signal)
        except RPCError as exc:
            raise temporal_problem(exc) from None
        outcome, now_status = await _ring_outcome(handle, index, refused_before, counted_before)
        after = now_status.rings[index] if now_status is not None else waiting
        if outcome == "refused":
            raise Problem(
                "decision-refused",
                f"The rollout refused this approval: {after.refused_approvals[-1]}. It was recorded as refused; "
                "nothing else changed.",
            )
        return JSONResponse(
            {
                "rollout": handle.id,
                "ring": ring,
                "outcome": outcome,
                "approvals": [e.identity for e in after.approvals],
                "required_approvals": after.required_approvals,
                "links": rollout_links(handle.id),
            }
        )

    return router


async def _ring_outcome(
    handle: WorkflowHandle[Any, Any], index: int, refused_before: int, counted_before: int
) -> tuple[str, RolloutStatus | None]:
    """Whether the workflow took the approval (the ring approved), counted it (one of N), refused it, or has not
    said yet within DECISION_WAIT_SECONDS ("sent")."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DECISION_WAIT_SECONDS
    status: RolloutStatus | None = None
    while loop.time() < deadline:
        try:
            status = await handle.query(QUERY_ROLLOUT_STATUS, result_type=RolloutStatus)
        except RPCError:
            await asyncio.sleep(0.3)
            continue
        ring = status.rings[index]
        if len(ring.refused_approvals) > refused_before:
            return "refused", status
        if ring.approved_by is not None or ring.state is not RingState.AWAITING_APPROVAL:
            return "taken", status
        if len(ring.approvals) > counted_before:
            return "counted", status
        await asyncio.sleep(0.2)
    return "sent", status
