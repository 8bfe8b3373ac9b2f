"""``starter.py status ID`` and ``starter.py list``: where a deployment is, and which deployments exist."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from orchestrator.audit import search_attributes
from orchestrator.blobstore import LocalBlobStore
from orchestrator.cli._common import CommandError, add_target_args, print_json, resolve_target, run_command
from orchestrator.deployments import query_status
from orchestrator.exit_codes import ExitCode
from orchestrator.models import WORKFLOW_NAME, DeploymentStage, DeploymentStatus, RollbackReport
from orchestrator.plan_render import plan_documents, render_plan, summary_line
from orchestrator.rollback import rollback_summary


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "status",
        help="show a deployment's stage, plan, pending confirmation and per-stage attempts",
        description="Show a deployment's current state (the workflow's `status` query).",
    )
    p.add_argument("workflow_id", metavar="ID", help="the deployment's workflow id")
    p.add_argument("--plan", action="store_true", help="also print the full what-if plan")
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
    # Issue 7: filters on the search attributes (docs/AUDIT.md); the server must have them registered.
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
    target = await resolve_target(args, client)
    local = " --local" if target.instance else ""
    handle = target.client.get_workflow_handle(args.workflow_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(
                f"There is no deployment workflow '{args.workflow_id}'. `python starter.py list{local}` shows the "
                "deployments and their ids.",
                ExitCode.USAGE,
            ) from None
        raise CommandError(
            f"Could not read workflow '{args.workflow_id}': {exc.message}.", ExitCode.ENVIRONMENTAL
        ) from None
    workflow_state = description.status.name if description.status else "UNKNOWN"
    try:
        current: DeploymentStatus | None = await query_status(handle)
    except Exception:  # no worker to answer the query: say what Temporal itself knows
        current = None
    if args.output == "json":
        doc: dict[str, Any] = {"workflow_id": args.workflow_id, "workflow_status": workflow_state}
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
            print(
                render_plan(
                    plan_documents(current.plan, LocalBlobStore(target.instance.blob_dir if target.instance else None))
                )
            )
    pending = current.pending_confirmation
    if pending is not None:
        print(f"  {confirmation_wait(pending.asked_at, pending.deadline)} (round {pending.round}):")
        for change in pending.destructive_changes:
            print(f"    - {change.resource_id}")
        print(f"  approve: python starter.py approve {args.workflow_id}{local} --reason '...'")
        print(f"  reject:  python starter.py reject {args.workflow_id}{local} --reason '...'")
        policy = pending.approval_policy
        if policy is not None:
            who = ", ".join(policy.allowed_approvers) if policy.allowed_approvers is not None else "anyone"
            self_ok = "may" if policy.allow_self_approval else "may not"
            print(f"  four eyes: approvers {who}; the initiator {self_ok} approve")
    for refused in current.refused_decisions:
        print(
            f"  refused {refused.decision.value.lower()} by {refused.by} at "
            f"{refused.at.isoformat(timespec='seconds')}: {refused.why}"
        )
    for record in current.confirmations:
        print(f"  {record.decision.value} by {record.by} at {record.at.isoformat(timespec='seconds')}: {record.reason}")
    if current.failure is not None:
        f = current.failure
        cls = f"{f.failure_class.value} " if f.failure_class else ""
        print(f"  failed at {f.stage.value}: {cls}{f.code} after {f.attempts} attempt(s): {f.message}")
    if current.rollback is not None:
        print(f"  {rollback_line(current.rollback)}")
        for stage, progress in current.rollback.stages.items():  # the rollback's own attempts, never added in
            line = f"    rollback {stage.value}: {progress.attempts} attempt(s)"
            if progress.last_error:
                cls = f"{progress.last_error_class.value} " if progress.last_error_class else ""
                line += f", last error {cls}{progress.last_error_code or ''}: {progress.last_error}"
            print(line)
        if current.rollback.state == "AWAITING_PARAMETERS":
            names = " ".join(f"--param {n}" for n in current.rollback.missing_secure_parameters)
            print(f"  provide them: python starter.py rollback-params {args.workflow_id}{local} {names}")
    return int(ExitCode.OK)


def rollback_line(report: RollbackReport) -> str:
    """The finished rollback's summary, or where a running one is."""
    if report.state in ("ROLLED_BACK", "NOT_POSSIBLE", "FAILED"):
        return rollback_summary(report)
    target = report.target_deployment_name or "the last healthy deployment"
    if report.state == "AWAITING_PARAMETERS":
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
    print(
        f"{'WORKFLOW ID':<60} {'STATUS':<11} {'STATE':<21} {'STARTED':<26} {'RESOURCE GROUP':<20} "
        f"{'GIT SHA':<12} INITIATOR"
    )
    for r in rows:
        print(
            f"{r['workflow_id']:<60} {r['status']:<11} {r['state'] or '-':<21} {r['started']:<26} "
            f"{r['resource_group']:<20} {(r['git_sha'] or '-')[:12]:<12} {r['initiator'] or ''}"
        )
    return int(ExitCode.OK)


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
        if not re.fullmatch(r"[0-9A-Za-z._/-]+", git_sha):
            raise CommandError(f"--git-sha {git_sha!r} is not a commit id (letters and digits only).", ExitCode.USAGE)
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
