"""``starter.py status ID`` and ``starter.py list``: where a deployment is, and which deployments exist."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from client.cli import colour
from client.cli._common import (
    CommandError,
    add_target_args,
    approve_commands,
    check_workflow_id,
    open_store,
    print_json,
    require_deployment,
    resolve_target,
    run_command,
    workflow_read_error,
)
from client.deployments import query_status
from client.exit_codes import ExitCode
from client.inputs import InputError, validate_git_sha
from contract import search_attributes
from contract.approvals import summary_of
from contract.models import WORKFLOW_NAME, DeploymentStage, DeploymentStatus, RollbackReport, RollbackState
from contract.plan_text import plan_documents, render_plan, summary_line
from services.classification import retried_within_stage
from services.codec import CodecKeyError
from services.last_good import rollback_summary


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "status",
        help="show a deployment's stage, plan, pending confirmation and per-stage attempts",
        description="Show a deployment's current state (the workflow's `status` query).",
    )
    p.add_argument("workflow_id", metavar="ID", help="the deployment's workflow id")
    p.add_argument("--plan", action="store_true", help="also print the full what-if plan")
    p.add_argument(
        "--wait-for",
        type=str.upper,
        choices=[s.value for s in DeploymentStage],
        metavar="STAGE",
        help="first wait until the deployment reaches STAGE (e.g. AWAITING_CONFIRMATION before approving from a "
        "script); exit 2 if it ends without reaching it, 3 after --wait-timeout",
    )
    p.add_argument(
        "--wait-timeout", type=float, default=600.0, metavar="SECONDS", help="give up waiting after this long"
    )
    add_target_args(p)
    p.set_defaults(run=run_status)

    p = subparsers.add_parser(
        "list",
        help="list recent deployments (newest first), by resource group, git SHA, state and start time",
        description="List deployment workflows, newest first. --git-sha and --state use the search attributes "
        "GitSha and DeploymentState (registered by the embedded default; on a cluster see docs/OPERATIONS.md).",
    )
    p.add_argument("-g", "--resource-group", help="only deployments of this resource group")
    p.add_argument("--running", action="store_true", help="only deployments still running")
    # filters on the search attributes (docs/AUDIT.md); the server must have them registered.
    p.add_argument("--git-sha", help="only deployments of this commit (the full SHA, as recorded)")
    p.add_argument(
        "--state",
        type=str.upper,
        choices=[s.value for s in DeploymentStage],
        metavar="STAGE",
        help="only deployments whose current stage is STAGE (COMPLETED, FAILED, AWAITING_CONFIRMATION, ...)",
    )
    p.add_argument("--since", help="only deployments started at or after this time (ISO 8601, or 30m, 6h, 7d ago)")
    p.add_argument("--until", help="only deployments started before this time (ISO 8601, or 30m, 6h, 7d ago)")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default %(default)s)")
    add_target_args(p)
    p.set_defaults(run=run_list)


def run_status(args: argparse.Namespace) -> int:
    return run_command(lambda: status(args), output=args.output)


def run_list(args: argparse.Namespace) -> int:
    return run_command(lambda: list_deployments(args), output=args.output)


async def status(args: argparse.Namespace, *, client: Client | None = None) -> int:
    check_workflow_id(args.workflow_id)
    target = await resolve_target(args, client)
    local = " --local" if target.instance else ""
    handle = target.client.get_workflow_handle(args.workflow_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        raise workflow_read_error(exc, args.workflow_id, local) from None
    require_deployment(description, args.workflow_id, local)
    if getattr(args, "wait_for", None):
        description = await _wait_for_stage(handle, args.workflow_id, DeploymentStage(args.wait_for), args, local)
    workflow_state = description.status.name if description.status else "UNKNOWN"
    try:
        current: DeploymentStatus | None = await query_status(handle)
    except CodecKeyError:
        raise
    except Exception:  # no worker to answer the query: say what Temporal itself knows
        current = None
    if args.output == "json":
        doc: dict[str, Any] = {
            "workflow_id": args.workflow_id,
            "run_id": description.run_id,
            "workflow_status": workflow_state,
        }
        if current is not None:
            doc.update(current.model_dump(mode="json"))
        print_json(doc)
        return int(ExitCode.OK)
    print(f"Deployment {args.workflow_id}: workflow {workflow_state}")
    print(f"  started {description.start_time:%Y-%m-%d %H:%M:%S %Z}" if description.start_time else "  started ?")
    if current is None:
        print("  (no worker answered the status query; start one to see the stage)")
        return int(ExitCode.OK)
    print(f"  resource group {current.resource_group} in subscription {current.subscription_id}")
    print(f"  ARM deployment {current.deployment_name or '-'}")
    print(f"  stage {current.stage.value}" + (f" ({current.outcome.value})" if current.outcome else ""))
    for stage, progress in current.stages.items():
        line = f"    {stage.value}: {progress.attempts} attempt(s)"
        if progress.last_error:
            cls = f"{progress.last_error_class.value} " if progress.last_error_class else ""
            line += f", last error {cls}{progress.last_error_code or ''}: {progress.last_error}"
        if progress.retry_at is not None:
            line += f"; next attempt at {progress.retry_at.isoformat(timespec='seconds')}"
        print(line)
    if current.plan is not None:
        print(f"  plan: {summary_line(current.plan.counts)}")
        if args.plan:
            rendered = render_plan(plan_documents(current.plan, open_store(target)))
            print(colour.plan(rendered, sys.stdout))
    pending = current.pending_confirmation
    if pending is not None:
        print(f"  {confirmation_wait(pending.asked_at, pending.deadline)} (round {pending.round}):")
        for change in pending.destructive_changes:
            print(f"    - {change.resource_id}")
        if pending.plan_hash:
            print(f"  plan {pending.plan_hash}: a decision must name it (the commands below do)")
        print(f"  approve: python starter.py approve {args.workflow_id}{local} --reason '...'")
        destructive = sorted({c.resource_id.lower() for c in pending.destructive_changes})
        print(f"       or: {approve_commands(target, args.workflow_id, destructive, pending.plan_hash)[1]}")
        print(f"  reject:  python starter.py reject {args.workflow_id}{local} --reason '...'")
        policy = pending.approval_policy
        if policy is not None and policy.trust is not None:
            trust = policy.trust
            print(
                f"  approval policy {trust.digest()[:19]}… ({trust.source or 'worker'}): proofs "
                f"{', '.join(trust.accepted_proofs)}; {len(pending.approved_by)} of {pending.required_approvals} "
                f"approval(s) so far" + (f" ({', '.join(pending.approved_by)})" if pending.approved_by else "")
            )
        elif policy is not None:
            who = ", ".join(policy.allowed_approvers) if policy.allowed_approvers is not None else "anyone"
            self_ok = "may" if policy.allow_self_approval else "may not"
            print(f"  four eyes: approvers {who}; the initiator {self_ok} approve")
    if current.initiator_verification is not None:
        print(f"  initiator {current.initiator_verification.identity}: {summary_of(current.initiator_verification)}")
    if current.refused_total > len(current.refused_decisions):
        print(f"  {current.refused_total} decisions refused; the latest {len(current.refused_decisions)}:")
    for refused in current.refused_decisions:
        print(
            f"  refused {refused.decision.value.lower()} by {refused.by} at "
            f"{refused.at.isoformat(timespec='seconds')} [{refused.kind}]: {refused.why}"
        )
    for record in current.confirmations:
        print(f"  {record.decision.value} by {record.by} at {record.at.isoformat(timespec='seconds')}: {record.reason}")
        for evidence in record.decisions:  # under an approval policy: each decision and how its identity is known
            print(f"    {evidence.decision} by {evidence.identity}: {summary_of(evidence.verification)}")
        if not record.decisions and record.decision.value in ("APPROVED", "REJECTED"):
            print(f"    identity {'verified' if record.identity_verified else 'unverified (claimed)'}")
    if current.failure is not None:
        f = current.failure
        cls = f"{f.failure_class.value} " if f.failure_class else ""
        print(f"  failed at {f.stage.value}: {cls}{f.code} after {f.attempts} attempt(s): {f.message}")
        within = retried_within_stage(f.code)
        if within:
            print(f"  not retried again: {within}")
    if current.rollback is not None:
        print(f"  {rollback_line(current.rollback)}")
        for stage, progress in current.rollback.stages.items():  # the rollback's own attempts, never added in
            line = f"    rollback {stage.value}: {progress.attempts} attempt(s)"
            if progress.last_error:
                cls = f"{progress.last_error_class.value} " if progress.last_error_class else ""
                line += f", last error {cls}{progress.last_error_code or ''}: {progress.last_error}"
            print(line)
        if current.rollback.state is RollbackState.AWAITING_PARAMETERS:
            names = " ".join(f"--param {n}" for n in current.rollback.missing_secure_parameters)
            print(f"  provide them: python starter.py rollback-params {args.workflow_id}{local} {names}")
    return int(ExitCode.OK)


async def _wait_for_stage(
    handle: Any, workflow_id: str, stage: DeploymentStage, args: argparse.Namespace, local: str
) -> Any:
    """Poll the workflow id's latest run until it is at ``stage``; the describe() of that moment. A run that had
    ended before this command started is an earlier deployment: its successor (started by a `deploy` still on its
    way, e.g. in the background) is waited for, up to the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, args.wait_timeout)
    began = datetime.now(UTC)
    while True:
        description = await handle.describe()
        try:
            current: DeploymentStatus | None = await asyncio.wait_for(query_status(handle), timeout=5)
        except CodecKeyError:
            raise
        except Exception:  # no worker yet: keep waiting
            current = None
        if current is not None and current.stage == stage:
            return description
        running = description.status is not None and description.status.name == "RUNNING"
        earlier = description.close_time is not None and description.close_time < began
        if not running and not earlier:
            ended = current.stage.value if current is not None else description.status.name
            raise CommandError(
                f"Deployment '{workflow_id}' ended ({ended}) without reaching {stage.value}. "
                f"`python starter.py status {workflow_id}{local}` shows how.",
                ExitCode.USAGE,
            )
        if loop.time() > deadline:
            where = current.stage.value if current is not None else "unknown (no worker answered)"
            if earlier:
                where += ", and no new run started"
            raise CommandError(
                f"Deployment '{workflow_id}' did not reach {stage.value} within {args.wait_timeout:g} s (it is at "
                f"{where}).",
                ExitCode.ENVIRONMENTAL,
            )
        await asyncio.sleep(0.5)


def rollback_line(report: RollbackReport) -> str:
    """The finished rollback's summary, or where a running one is."""
    if report.state in (RollbackState.ROLLED_BACK, RollbackState.NOT_POSSIBLE, RollbackState.FAILED):
        return rollback_summary(report)
    target = report.target_deployment_name or "the last healthy deployment"
    if report.state is RollbackState.AWAITING_PARAMETERS:
        missing = ", ".join(report.missing_secure_parameters)
        return f"rollback to {target} waits for secure parameter value(s) it could not recover: {missing}"
    return f"rolling back to {target}: {report.state}"


async def list_deployments(args: argparse.Namespace, *, client: Client | None = None) -> int:
    if args.limit < 1:
        raise CommandError(f"--limit {args.limit} must be at least 1.", ExitCode.USAGE)
    query = list_query(args)  # usage errors before connecting
    target = await resolve_target(args, client)
    rows: list[dict[str, Any]] = []
    try:
        async for wf in target.client.list_workflows(query=query, limit=max(args.limit * 5, 100)):
            memo = await wf.memo()
            rg = str(memo.get("resource_group", ""))
            if args.resource_group and rg.lower() != args.resource_group.lower():
                continue
            attributes = wf.typed_search_attributes
            rows.append(
                {
                    "workflow_id": wf.id,
                    "run_id": wf.run_id,
                    "status": wf.status.name if wf.status else "UNKNOWN",
                    "started": wf.start_time.isoformat(timespec="seconds"),
                    "closed": wf.close_time.isoformat(timespec="seconds") if wf.close_time else None,
                    "resource_group": rg,
                    "subscription_id": memo.get("subscription_id"),
                    "initiator": memo.get("initiator"),
                    "template": memo.get("template"),
                    "git_sha": attributes.get(search_attributes.GIT_SHA),
                    "state": attributes.get(search_attributes.DEPLOYMENT_STATE) or memo.get("stage"),
                    "outcome": memo.get("outcome") or _outcome_from_status(wf.status.name if wf.status else ""),
                }
            )
            if len(rows) >= args.limit:
                break
    except RPCError as exc:
        if search_attributes.is_missing_attribute_error(exc.message):
            raise CommandError(
                search_attributes.missing_attributes_message(
                    target.namespace, what="cannot filter by --git-sha/--state"
                ),
                ExitCode.ENVIRONMENTAL,
            ) from None
        raise CommandError(
            f"The Temporal server refused the list query ({exc.message}).", ExitCode.ENVIRONMENTAL
        ) from None
    if args.output == "json":
        print_json(rows)
        return int(ExitCode.OK)
    if not rows:
        print("No deployments found.")
        return int(ExitCode.OK)
    # STATUS is Temporal's (a rejected deployment is a FAILED workflow), STATE the last stage, OUTCOME what came of
    # it (SUCCEEDED, REJECTED, NOT_CONFIRMED, LOGIC_FAILURE, ...); RUN ID tells the runs of one resource group apart.
    print(
        f"{'WORKFLOW ID':<60} {'RUN ID':<36} {'STATUS':<11} {'STATE':<21} {'OUTCOME':<21} {'STARTED':<25} "
        f"{'RESOURCE GROUP':<20} {'GIT SHA':<12} INITIATOR"
    )
    for r in rows:
        print(
            f"{r['workflow_id']:<60} {r['run_id']:<36} {r['status']:<11} {r['state'] or '-':<21} "
            f"{r['outcome'] or '-':<21} {r['started']:<25} {r['resource_group']:<20} {(r['git_sha'] or '-')[:12]:<12} "
            f"{r['initiator'] or ''}"
        )
    return int(ExitCode.OK)


def _outcome_from_status(status: str) -> str | None:
    """For runs whose memo predates the outcome field: what Temporal's own status says, where it is unambiguous."""
    return {"COMPLETED": "SUCCEEDED", "CANCELED": "CANCELLED", "TERMINATED": "TERMINATED"}.get(status)


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(text: str, flag: str, *, now: datetime | None = None) -> datetime:
    """``2026-11-28T10:00:00Z``, ``2026-11-28`` (UTC) or a span ago: ``30m``, ``6h``, ``7d``."""
    value = text.strip()
    match = _RELATIVE.match(value.lower())
    if match:
        return (now or datetime.now(UTC)) - timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"{flag} {text!r} is not a time: give ISO 8601 (2026-11-28T10:00:00Z, 2026-11-28) or a span ago "
            "(30m, 6h, 7d).",
            ExitCode.USAGE,
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def list_query(args: argparse.Namespace) -> str:
    """The visibility query of ``list``: Temporal's SQL-like list filter (the same one `temporal workflow list
    --query` takes)."""
    clauses = [f"WorkflowType = '{WORKFLOW_NAME}'"]
    if args.running:
        clauses.append("ExecutionStatus = 'Running'")
    git_sha = getattr(args, "git_sha", None)
    if git_sha:
        try:  # the same rule deploy applies, so every recorded SHA can be listed
            git_sha = validate_git_sha(git_sha)
        except InputError as exc:
            raise CommandError(str(exc), ExitCode.USAGE) from None
        clauses.append(f"{search_attributes.GIT_SHA.name} = '{git_sha}'")
    if getattr(args, "state", None):
        clauses.append(f"{search_attributes.DEPLOYMENT_STATE.name} = '{args.state}'")
    since = parse_when(args.since, "--since") if getattr(args, "since", None) else None
    until = parse_when(args.until, "--until") if getattr(args, "until", None) else None
    if since and until and since >= until:
        raise CommandError(f"--since {args.since!r} is not before --until {args.until!r}.", ExitCode.USAGE)
    if since:
        clauses.append(f"StartTime >= '{since.astimezone(UTC).isoformat().replace('+00:00', 'Z')}'")
    if until:
        clauses.append(f"StartTime < '{until.astimezone(UTC).isoformat().replace('+00:00', 'Z')}'")
    return " AND ".join(clauses)


def _span(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def confirmation_wait(asked_at: datetime, deadline: datetime, *, now: datetime | None = None) -> str:
    """ "waiting for confirmation for 4m 10s; expires 2026-… (in 55m 50s)" — the reminder ``status`` prints."""
    now = now or datetime.now(UTC)
    waited = (now - asked_at).total_seconds()
    left = (deadline - now).total_seconds()
    expiry = deadline.isoformat(timespec="seconds")
    tail = f"in {_span(left)}" if left > 0 else "expired; the deployment fails as not confirmed"
    return f"waiting for confirmation for {_span(waited)}; expires {expiry} ({tail})"
