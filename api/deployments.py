"""What the routes do, apart from HTTP: start a deployment as ``starter.py deploy`` does (the client's helpers, so
the worker gets the same ``DeployRequest``), read one, decide on its plan as a relay, cancel it.

Idempotency (``Idempotency-Key``): a deployment's workflow id is ``deploy-<subscription>-<resource group>`` and the
server refuses a second start while one runs (conflict policy FAIL). The key (hashed with the caller's identity, so
two callers' keys never meet) and a fingerprint of the request are written into the run's memo, atomically with its
start. A retry looks for a run of that workflow id carrying the key: the current run (``describe``, strongly
consistent) and, for a run that has since been followed by others, the runs of the last ``IDEMPOTENCY_WINDOW``
(visibility). Two retries racing each other: one start wins, the other is refused by the server as already started,
reads the winner's memo, finds its own key and answers with the same deployment. Same key, other request: 422.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.events import plan_summary
from api.identity import Authorizer, Principal
from api.models import Decision, DeploymentCreate
from api.problems import Problem
from api.relay import RelayKey
from client.deployments import DeploymentAlreadyRunning, build_deploy_request, query_status, start_deployment
from client.inputs import (
    DeploymentInputs,
    InputError,
    check_parameter_values,
    validate_git_sha,
    validate_location,
    validate_resource_group_name,
    validate_subscription_id,
)
from contract import search_attributes
from contract.approvals import ApprovalStatement, utc_text
from contract.models import (
    SIGNAL_APPROVE,
    SIGNAL_REJECT,
    WORKFLOW_NAME,
    ApprovalSignal,
    DeploymentStage,
    DeploymentStatus,
    DeployRequest,
    WhatIfPlan,
)
from contract.naming import workflow_id_for
from contract.plan_text import plan_documents, render_plan
from services.approvals import sign_relay
from services.content_store import BlobStore
from services.secrets import redact, secret_strings, secure_parameter_names

ENV_BICEP_ROOT = "ORCHESTRATOR_API_BICEP_ROOT"
IDEMPOTENCY_WINDOW = timedelta(hours=24)
IDEMPOTENCY_MEMO = "api_idempotency"
MAX_IDEMPOTENCY_KEY_CHARS = 255
QUERY_SECONDS = 5.0
DECISION_WAIT_SECONDS = 15.0
IDENTITY_SOURCE = "team-api"


@dataclass
class Started:
    workflow_id: str
    run_id: str
    replayed: bool  # an earlier request with the same Idempotency-Key started it


@dataclass
class Target:
    """A deployment the request names: its handle, what Temporal says of it, and where it deploys."""

    handle: WorkflowHandle[Any, Any]
    description: WorkflowExecutionDescription
    subscription_id: str
    resource_group: str
    initiator: str

    @property
    def running(self) -> bool:
        return self.description.status == WorkflowExecutionStatus.RUNNING


def _bad_input(message: str, secrets: list[str]) -> Problem:
    return Problem("invalid-request", redact(message, secrets))


class Deployments:
    def __init__(
        self,
        client: Client,
        store: BlobStore,
        *,
        task_queue: str,
        relay: RelayKey | None,
        bicep_root: Path | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.task_queue = task_queue
        self.relay = relay
        self.bicep_root = bicep_root

    # ------------------------------------------------------------------------------------------------ start

    def target_of(self, body: DeploymentCreate) -> tuple[str, str]:
        """The subscription and resource group a start names, checked as ``deploy`` checks them."""
        try:
            return (
                validate_subscription_id(body.subscription_id, flag="subscription_id").lower(),
                validate_resource_group_name(body.resource_group),
            )
        except InputError as exc:
            raise _bad_input(str(exc), []) from None

    async def start(self, principal: Principal, body: DeploymentCreate, idempotency_key: str | None) -> Started:
        subscription_id, resource_group = self.target_of(body)
        merged = {**body.parameters, **{k: {"value": v} for k, v in body.overrides.items()}}
        bicep = self._bicep_file(body.bicep_path) if body.bicep_path is not None else None
        if body.template is not None:
            secure = secure_parameter_names(body.template) | {n.lower() for n in body.secret_parameters}
        else:  # Bicep: which parameters are secure is known once compiled, so every value is treated as secure
            secure = {name.lower() for name in merged}
        secrets = secret_strings(
            entry["value"] if isinstance(entry, dict) and "value" in entry else entry
            for name, entry in merged.items()
            if name.lower() in secure
        )
        try:
            location = validate_location(body.location)
            git_sha = validate_git_sha(body.git_sha, flag="git_sha") if body.git_sha else None
            check_parameter_values(body.parameters, where="parameters")
        except InputError as exc:
            raise _bad_input(str(exc), secrets) from None
        if body.template is not None:
            declared = {str(k).lower() for k in (body.template.get("parameters") or {})}
            unknown = [n for n in body.secret_parameters if n.lower() not in declared]
            if unknown:
                raise Problem(
                    "invalid-request",
                    f"secret_parameters names {unknown[0]!r}, which the template does not declare (it declares "
                    f"{', '.join(sorted(declared)) or 'none'}); name a declared parameter. Nothing was started.",
                )
            await asyncio.to_thread(self._check_against_template, body, resource_group, location, secrets)
        key_id = fingerprint = None
        if idempotency_key is not None:
            key_id = _key_id(principal, idempotency_key)
            fingerprint = _fingerprint(body, secure)
            wf_id = workflow_id_for(subscription_id, resource_group)
            earlier = await self._run_with_key(wf_id, key_id)
            if earlier is not None:
                return self._replay(earlier, fingerprint)
        if bicep is not None:
            request = await self._bicep_request(principal, body, bicep, subscription_id, resource_group, location)
            request.confirmation_timeout_seconds = body.confirmation_timeout_seconds
            request.git_sha = git_sha
        else:
            assert body.template is not None
            request = await asyncio.to_thread(
                build_deploy_request,
                store=self.store,
                template=body.template,
                subscription_id=subscription_id,
                resource_group=resource_group,
                location=location,
                parameters=body.parameters,
                overrides=body.overrides,
                template_path=body.template_name,
                mode=body.mode,
                allow_warnings=body.allow_warnings,
                no_confirm_deletes=body.no_confirm_deletes,
                skip_health=body.skip_health,
                confirmation_timeout_seconds=body.confirmation_timeout_seconds,
                git_sha=git_sha,
                initiator=principal.name,
                secret_names=body.secret_parameters,
            )
        request.rollback_on_failure = body.rollback_on_failure
        from client.cli.deploy import check_request_size

        try:
            check_request_size(request)
        except InputError as exc:
            raise Problem("request-too-large", str(exc)) from None
        memo = {IDEMPOTENCY_MEMO: {"key": key_id, "request": fingerprint}} if key_id else None
        try:
            handle = await start_deployment(self.client, request, task_queue=self.task_queue, extra_memo=memo)
        except DeploymentAlreadyRunning as busy:
            if key_id is not None and fingerprint is not None:  # a concurrent retry of this request may have won
                earlier = await self._run_with_key(busy.workflow_id, key_id)
                if earlier is not None:
                    return self._replay(earlier, fingerprint)
            raise Problem(
                "resource-group-busy",
                f"A deployment of {resource_group} is running as {busy.workflow_id}; one deployment per resource "
                f"group runs at a time. Follow it (GET /deployments/{busy.workflow_id}/events) and start again when "
                "it ends.",
                deployment=busy.workflow_id,
            ) from None
        except RPCError as exc:
            raise temporal_problem(exc) from None
        return Started(handle.id, handle.result_run_id or "", replayed=False)

    def _bicep_file(self, relative: str) -> Path:
        """The .bicep file a start names: under the Bicep root (after resolving links: no way out of it), a regular
        file. The workers read it (and its modules) at the same path."""
        if self.bicep_root is None:
            raise Problem(
                "invalid-request",
                "bicep_path is not available: this service has no Bicep root (ORCHESTRATOR_API_BICEP_ROOT, a folder "
                "the workers see at the same path). Compile the template (`bicep build main.bicep`) and send the ARM "
                "JSON as template. Nothing was started.",
            )
        root = self.bicep_root.resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or path.suffix.lower() != ".bicep":
            raise Problem(
                "invalid-request",
                f"bicep_path {relative!r} must name a .bicep file under the service's Bicep root, relative to it "
                "(no absolute paths, no `..` or links out of it). Nothing was started.",
            )
        if not path.is_file():
            raise Problem(
                "invalid-request",
                f"bicep_path {relative!r}: there is no such file under the service's Bicep root. Nothing was started.",
            )
        return path

    async def _bicep_request(
        self,
        principal: Principal,
        body: DeploymentCreate,
        bicep: Path,
        subscription_id: str,
        resource_group: str,
        location: str,
    ) -> DeployRequest:
        from client.bicep_deploy import build_bicep_deploy_request

        try:
            request = await asyncio.to_thread(
                build_bicep_deploy_request,
                store=self.store,
                template=str(bicep),
                parameters=None,
                overrides=None,
                entries={**body.parameters, **{k: {"value": v} for k, v in body.overrides.items()}},
                subscription_id=subscription_id,
                resource_group=resource_group,
                location=location,
                mode=body.mode,
                allow_warnings=body.allow_warnings,
                no_confirm_deletes=body.no_confirm_deletes,
                skip_health=body.skip_health,
                initiator=principal.name,
            )
        except InputError as exc:
            raise Problem("invalid-request", f"{exc} Nothing was started.") from None
        request.override_names = sorted(body.overrides)
        return request

    def _check_against_template(
        self, body: DeploymentCreate, resource_group: str, location: str, secrets: list[str]
    ) -> None:
        """The parameter checks ``deploy`` makes offline (unknown names, wrong types), before anything starts."""
        from client.cli._common import CommandError
        from client.cli.deploy import check_against_template

        merged = {**body.parameters, **{k: {"value": v} for k, v in body.overrides.items()}}
        inputs = DeploymentInputs(
            template_path=Path(body.template_name or "template.json"),
            template=body.template or {},
            parameters_path=None,
            parameters=merged,
            overrides=dict(body.overrides),
        )
        try:
            check_against_template(inputs, resource_group=resource_group, location=location)
        except CommandError as exc:
            raise _bad_input(str(exc).replace("--param values", "overrides"), secrets) from None

    async def _run_with_key(self, workflow_id: str, key_id: str) -> dict[str, Any] | None:
        """The run of ``workflow_id`` started with this idempotency key, if any: its ids and the request's
        fingerprint."""
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            description = await handle.describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise temporal_problem(exc) from None
            return None
        found = _memo_key(await description.memo(), workflow_id, description.run_id, key_id)
        if found is not None:
            return found
        since = (datetime.now(UTC) - IDEMPOTENCY_WINDOW).isoformat().replace("+00:00", "Z")
        query = f"WorkflowId = '{workflow_id}' AND StartTime >= '{since}'"
        try:
            async for run in self.client.list_workflows(query=query, limit=100):
                found = _memo_key(await run.memo(), workflow_id, run.run_id, key_id)
                if found is not None:
                    return found
        except RPCError as exc:
            raise temporal_problem(exc) from None
        return None

    def _replay(self, earlier: dict[str, Any], fingerprint: str) -> Started:
        if earlier["request"] != fingerprint:
            raise Problem(
                "idempotency-key-reused",
                "This Idempotency-Key was used for a different request (another template, parameters or options) "
                f"which started deployment {earlier['workflow_id']}; use a new key for a new request. Nothing was "
                "started.",
                deployment=earlier["workflow_id"],
            )
        return Started(earlier["workflow_id"], earlier["run_id"], replayed=True)

    # ------------------------------------------------------------------------------------------------ read

    async def find(self, workflow_id: str, run_id: str | None = None) -> Target:
        """The deployment ``workflow_id`` names (its latest run unless ``run_id``); 404 for anything else."""
        if not workflow_id.strip() or len(workflow_id) > 1000 or any(ord(c) < 32 for c in workflow_id):
            raise Problem("not-found", "That is not a deployment id; GET /deployments lists them.")
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        try:
            description = await handle.describe()
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise Problem(
                    "not-found", f"There is no deployment {workflow_id!r}; GET /deployments lists them."
                ) from None
            raise temporal_problem(exc) from None
        if description.workflow_type != WORKFLOW_NAME:
            raise Problem("not-found", f"There is no deployment {workflow_id!r}; GET /deployments lists them.")
        memo = await description.memo()
        handle = self.client.get_workflow_handle(workflow_id, run_id=description.run_id)
        return Target(
            handle=handle,
            description=description,
            subscription_id=str(memo.get("subscription_id", "")),
            resource_group=str(memo.get("resource_group", "")),
            initiator=str(memo.get("initiator", "")),
        )

    async def status(self, target: Target) -> DeploymentStatus:
        try:
            return await asyncio.wait_for(query_status(target.handle), timeout=QUERY_SECONDS)
        except (TimeoutError, RPCError) as exc:
            raise Problem(
                "temporal-unavailable",
                f"Deployment {target.handle.id} did not answer its status query ({type(exc).__name__}); is a worker "
                "running? Try again when it is.",
                headers={"Retry-After": "5"},
            ) from None

    def plan_document(self, plan: WhatIfPlan | None) -> dict[str, Any] | None:
        return None if plan is None else plan_summary(plan)

    def plan_text(self, plan: WhatIfPlan) -> str:
        return render_plan(plan_documents(plan, self.store))

    def plan_changes(self, plan: WhatIfPlan) -> list[dict[str, Any]]:
        return plan_documents(plan, self.store)

    async def list_rows(
        self, who: Principal, authorizer: Authorizer, query: str, *, resource_group: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Deployments matching the visibility ``query``, newest first, only those ``who`` may read."""
        rows: list[dict[str, Any]] = []
        try:
            async for wf in self.client.list_workflows(query=query, limit=max(limit * 5, 100)):
                memo = await wf.memo()
                group = str(memo.get("resource_group", ""))
                subscription = str(memo.get("subscription_id", ""))
                if resource_group and group.lower() != resource_group.lower():
                    continue
                if not authorizer.allows(who, "reader", subscription, group):
                    continue  # not listed: a reader sees only the resource groups they may read
                attributes = wf.typed_search_attributes
                rows.append(
                    {
                        "id": wf.id,
                        "run_id": wf.run_id,
                        "status": wf.status.name if wf.status else "UNKNOWN",
                        "started": wf.start_time.isoformat(),
                        "closed": wf.close_time.isoformat() if wf.close_time else None,
                        "subscription_id": subscription,
                        "resource_group": group,
                        "initiator": memo.get("initiator"),
                        "template": memo.get("template"),
                        "git_sha": attributes.get(search_attributes.GIT_SHA),
                        "state": attributes.get(search_attributes.DEPLOYMENT_STATE) or memo.get("stage"),
                        "outcome": memo.get("outcome"),
                        "links": links(wf.id),
                    }
                )
                if len(rows) >= limit:
                    break
        except RPCError as exc:
            raise temporal_problem(exc) from None
        return rows

    # ------------------------------------------------------------------------------------------------ decide

    async def decide(self, principal: Principal, target: Target, body: Decision, *, approve: bool) -> dict[str, Any]:
        """Send the caller's decision, attested by the relay key, bound to the plan it names; wait until the
        workflow took or refused it."""
        if not target.running:
            raise Problem(
                "not-running",
                f"Deployment {target.handle.id} is not running, so there is nothing to approve or reject; GET "
                f"/deployments/{target.handle.id} shows how it ended. Nothing was sent.",
            )
        status = await self.status(target)
        pending = status.pending_confirmation
        if status.stage is not DeploymentStage.AWAITING_CONFIRMATION or pending is None:
            raise Problem(
                "not-waiting",
                f"Deployment {target.handle.id} is at {status.stage.value}, not waiting for a decision; approvals and "
                "rejections apply only while a plan that deletes resources waits. Nothing was sent.",
            )
        if body.plan_hash != pending.plan_hash:
            raise Problem(
                "plan-changed",
                f"The decision names plan {body.plan_hash}, but the pending plan (round {pending.round}) is "
                f"{pending.plan_hash}: the plan changed. Read it again (GET /deployments/{target.handle.id}/plan) and "
                "decide on that one. Nothing was sent.",
                pending_plan_hash=pending.plan_hash,
            )
        initiator = (status.transitions[0].by if status.transitions else None) or target.initiator
        why = self_approval_refusal(principal, initiator, status, approving=approve)
        if why is not None:
            raise Problem("four-eyes", why)
        destructive_set = sorted({c.resource_id.lower() for c in pending.destructive_changes})
        statement = proof = None
        if self.relay is not None and pending.plan_hash:
            now = datetime.now(UTC)
            trust = pending.approval_policy.trust if pending.approval_policy is not None else None
            lifetime = min(trust.statement_lifetime_seconds, 900) if trust is not None else 900
            statement = ApprovalStatement(
                workflow_id=target.handle.id,
                run_id=target.description.run_id,
                round=pending.round,
                plan_hash=pending.plan_hash,
                destructive_set=destructive_set,
                decision="approve" if approve else "reject",
                reason=body.reason,
                identity=principal.name,
                issued_at=utc_text(now),
                expires_at=utc_text(now + timedelta(seconds=lifetime)),
            )
            proof = sign_relay(statement, private_key=self.relay.private_key, key_id=self.relay.key_id)
        decision_id = uuid.uuid4().hex
        signal = ApprovalSignal(
            approver=principal.name,
            reason=body.reason,
            destructive_set=destructive_set,
            plan_hash=pending.plan_hash,
            decision_id=decision_id,
            identity_source=IDENTITY_SOURCE if principal.verified else f"{IDENTITY_SOURCE}-development-mode",
            statement=statement,
            proof=proof,
        )
        try:
            await target.handle.signal(SIGNAL_APPROVE if approve else SIGNAL_REJECT, signal)
        except RPCError as exc:
            raise temporal_problem(exc) from None
        from client.cli.approvals import decision_outcome

        outcome, refused_because = await decision_outcome(target.handle, decision_id, counted_as=principal.name)
        if outcome == "refused":
            raise Problem(
                "decision-refused",
                f"The deployment refused this decision: {refused_because}. It was recorded as refused; nothing else "
                "changed.",
                decision_id=decision_id,
            )
        return {
            "deployment": target.handle.id,
            "decision": "approve" if approve else "reject",
            "decision_id": decision_id,
            "outcome": outcome,  # taken, counted (N of M), sent (not processed yet)
            "identity": principal.name,
            "identity_verified": principal.verified,
            "attested_by_relay": self.relay.key_id if statement is not None and self.relay is not None else None,
            "plan_hash": pending.plan_hash,
            "round": pending.round,
        }

    # ------------------------------------------------------------------------------------------------ cancel

    async def cancel(self, target: Target) -> None:
        if not target.running:
            raise Problem(
                "not-running",
                f"Deployment {target.handle.id} is not running, so there is nothing to cancel; GET "
                f"/deployments/{target.handle.id} shows how it ended.",
            )
        try:
            await target.handle.cancel()
        except RPCError as exc:
            raise temporal_problem(exc) from None


def links(workflow_id: str) -> dict[str, str]:
    base = f"/deployments/{workflow_id}"
    return {
        "self": base,
        "events": f"{base}/events",
        "plan": f"{base}/plan",
        "audit": f"{base}/audit",
        "approvals": f"{base}/approvals",
        "rejections": f"{base}/rejections",
        "cancel": f"{base}/cancel",
        "page": f"/ui/deployments/{workflow_id}",
    }


def self_approval_refusal(
    principal: Principal, initiator: str, status: DeploymentStatus, *, approving: bool
) -> str | None:
    """Four eyes at the door: the worker's policy decides, and the service adds its own rule that a signed-in
    (verified) caller never approves the deployment they started unless the worker's policy explicitly allows it.
    The local development mode (one unverified developer) follows the worker's policy alone."""
    pending = status.pending_confirmation
    policy = pending.approval_policy if pending is not None else None
    trust = policy.trust if policy is not None else None
    if trust is not None:
        why = trust.refusal(
            identity=principal.name,
            initiator=initiator,
            approving=approving,
            subscription=status.subscription_id,
            resource_group=status.resource_group,
        )
        if why is not None:
            return f"{why}. The deployment keeps waiting; nothing was sent."
        return None
    if policy is not None and policy.enabled:
        why = policy.refusal(approver=principal.name, initiator=initiator, approving=approving)
        if why is not None:
            return f"{why}. The deployment keeps waiting; nothing was sent."
        return None
    own = principal.name.strip().lower() == initiator.strip().lower()
    allowed = policy is not None and policy.allow_self_approval
    if approving and own and principal.verified and not allowed:
        return (
            f"{principal.name} started this deployment; four eyes: another person must approve it. The deployment "
            "keeps waiting; nothing was sent."
        )
    return None


def _key_id(principal: Principal, key: str) -> str:
    text = "\0".join((principal.issuer, principal.subject, key))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fingerprint(body: DeploymentCreate, secure: set[str]) -> str:
    """What identifies a request for its Idempotency-Key: everything but secure values (the memo keeps only this
    hash, and a hash of a secret would be open to guessing)."""

    def masked(entries: dict[str, Any]) -> dict[str, Any]:
        return {k: ("<secure>" if k.lower() in secure else v) for k, v in entries.items()}

    doc = body.model_dump(mode="json")
    doc["parameters"] = masked(doc["parameters"])
    doc["overrides"] = masked(doc["overrides"])
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _memo_key(memo: Mapping[str, Any], workflow_id: str, run_id: str, key_id: str) -> dict[str, Any] | None:
    entry = memo.get(IDEMPOTENCY_MEMO)
    if isinstance(entry, dict) and entry.get("key") == key_id:
        return {"workflow_id": workflow_id, "run_id": run_id, "request": entry.get("request")}
    return None


def temporal_problem(exc: RPCError) -> Problem:
    """Temporal's trouble, not the caller's: 503 with a Retry-After."""
    return Problem(
        "temporal-unavailable",
        f"The Temporal server did not answer ({exc.status.name if exc.status else 'error'}); try again shortly.",
        headers={"Retry-After": "5"},
    )
