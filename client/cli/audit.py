"""``starter.py audit ID``: rebuild a deployment's audit record from Temporal's event history and write it.

``deploy`` calls ``write_deployment_audit`` when the workflow ends; ``audit`` does the same for any run still in
the server's retention (the latest run of ID, or ``--run-id``). Both read history only (docs/AUDIT.md).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from client.cli._common import (
    CommandError,
    Target,
    add_target_args,
    check_run_id,
    check_workflow_id,
    local_flag,
    print_json,
    progress,
    resolve_target,
    run_command,
    workflow_read_error,
)
from client.exit_codes import ExitCode
from services.audit.history import NotADeployment, fetch_record
from services.audit.record import AuditRecord
from services.audit.store import DATABASE_NAME, FORMATS, default_audit_dir, deleted_resources, write_record


def add_audit_dir_arguments(parser: Any, *, help_dir: str) -> None:
    parser.add_argument("--audit-dir", help=help_dir)
    parser.add_argument(
        "--audit-format",
        choices=FORMATS,
        default="both",
        help=f"json (one file per deployment), sqlite ({DATABASE_NAME}), both (default) or none",
    )


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "audit",
        help="rebuild a deployment's audit record from Temporal's history and write it (JSON and/or SQLite)",
        description="Rebuild the audit record of a deployment from its Temporal event history alone: request, "
        "stages, plan, approvals, retries with their classification, result, resources and their health, "
        "template hash, Bicep version, workers. Writes <audit-dir>/<ID>.<run>.json and/or <audit-dir>/audit.db.",
    )
    p.add_argument("workflow_id", metavar="ID", help="the deployment's workflow id (see `starter.py list`)")
    p.add_argument("--run-id", help="a particular run of ID (default: the latest)")
    add_audit_dir_arguments(
        p, help_dir="folder that receives the record (default: $ORCHESTRATOR_AUDIT_DIR, else ./audit)"
    )
    add_target_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_command(lambda: audit(args), output=args.output)


async def load_record(target: Target, workflow_id: str, run_id: str | None) -> AuditRecord:
    """The record from history, with what went wrong turned into a message naming the input."""
    local = " --local" if target.instance else ""
    try:
        return await fetch_record(target.client, workflow_id, run_id)
    except RPCError as exc:
        which = "run" if run_id else "workflow"
        shown = f"{workflow_id}' run '{run_id}" if run_id else workflow_id
        raise workflow_read_error(exc, shown, local, what=which) from None
    except NotADeployment as exc:
        raise CommandError(
            f"Workflow '{workflow_id}' is not a deployment ({exc}); give the id of a DeploymentWorkflow.",
            ExitCode.USAGE,
        ) from None
    except ValueError as exc:  # a payload encrypted with a key this machine does not have (services.codec)
        raise CommandError(f"Could not decode the history of '{workflow_id}': {exc}.", ExitCode.USAGE) from None


def _write(record: AuditRecord, audit_dir: str | None, fmt: str) -> list[Path]:
    folder = Path(audit_dir) if audit_dir else default_audit_dir()
    try:
        return write_record(record, folder, fmt=fmt)
    except OSError as exc:
        raise CommandError(
            f"Cannot write the audit record to {folder} ({exc.strerror or exc}). Give a writable --audit-dir.",
            ExitCode.USAGE,
        ) from None


async def audit(args: argparse.Namespace, *, client: Client | None = None) -> int:
    check_workflow_id(args.workflow_id)
    check_run_id(args.run_id)
    target = await resolve_target(args, client)
    record = await load_record(target, args.workflow_id, args.run_id)
    written = _write(record, args.audit_dir, args.audit_format)
    for path in written:
        progress(f"wrote {path}")
    if args.output == "json":
        print_json(record.document())
    else:
        sys.stdout.write(render_record(record))
    return int(ExitCode.OK)


async def write_deployment_audit(
    target: Target, workflow_id: str, run_id: str | None, *, audit_dir: str | None, fmt: str
) -> list[Path]:
    """``deploy``'s last step: the record of the run that just ended. A failure here is reported, never changes
    the deployment's exit code (``starter.py audit ID`` rebuilds it later)."""
    if fmt == "none":
        return []
    try:
        record = await load_record(target, workflow_id, run_id)
        written = _write(record, audit_dir, fmt)
    except Exception as exc:  # the deployment is over: its exit code must not depend on the audit
        again = f"python starter.py audit {shlex.quote(workflow_id)}{local_flag(target)}"
        if run_id:
            again += f" --run-id {run_id}"
        if audit_dir:
            again += f" --audit-dir {shlex.quote(str(audit_dir))}"
        if fmt != "both":
            again += f" --audit-format {fmt}"
        progress(f"warning: the audit record was not written: {exc} Rebuild it with `{again}`.")
        return []
    progress("Audit record: " + ", ".join(str(p) for p in written))
    return written


def render_record(record: AuditRecord) -> str:
    r = record
    lines = [
        f"Deployment {r.deployment_id} (run {r.run_id})",
        f"  requested   {r.timestamp.isoformat(timespec='seconds')} by {r.initiator} from {r.client_identity or '?'}",
        f"  target      resource group {r.resource_group} in subscription {r.subscription_id} ({r.location}, {r.mode})",
        f"  template    {r.template_file or '-'}  {r.template_hash or ''}",
        f"  parameters  {r.parameters_file or '-'}"
        + (
            f" (secure, values not recorded: {', '.join(r.secure_parameter_names)})" if r.secure_parameter_names else ""
        ),
        f"  git sha     {r.git_sha or '-'}",
        f"  bicep       {r.bicep_version or '- (ARM JSON, no compiler)'}; lint {r.linter or '-'}, "
        f"{len(r.lint_warnings)} warning(s)",
        f"  workers     {', '.join(r.worker_identities) or '-'}",
        f"  result      {'succeeded' if r.result.success else 'failed'} at "
        f"{r.result.timestamp.isoformat(timespec='seconds') if r.result.timestamp else '(running)'}: "
        f"{r.result.message}",
    ]
    if r.plan:
        counts = ", ".join(f"{n} {k}" for k, n in sorted((r.plan.get("counts") or {}).items()))
        ref = (r.plan.get("full_result") or {}).get("digest")
        lines.append(f"  plan        {counts or 'no changes'}" + (f" (full what-if: {ref})" if ref else ""))
        for rid in deleted_resources(r):
            lines.append(f"  - Delete    {rid}")
    for a in r.approvals:
        claimed = " (claimed, unverified)" if a.decision in ("APPROVED", "REJECTED") and not a.identity_verified else ""
        lines.append(
            f"  {a.decision.lower():<11} by {a.by}{claimed} at {a.at.isoformat(timespec='seconds')} (round "
            f"{a.round}): {a.reason or '-'}; {len(a.destructive_set)} deletion(s)" + (":" if a.destructive_set else "")
        )
        for rid in a.destructive_set:
            lines.append(f"                - {rid}")
    for refused in r.refused_decisions:
        lines.append(
            f"  refused     {str(refused.get('decision', '')).lower()} by {refused.get('by')} "
            f"({refused.get('kind', 'policy')}): {refused.get('why')}"
        )
    for t in r.retries:
        after = f", retried after {t.backoff_seconds:g} s" if t.retried and t.backoff_seconds is not None else ""
        lines.append(
            f"  failed      {t.stage or '-'} {t.activity} attempt {t.attempt}: {t.failure_class} {t.code}{after}"
        )
    for res in r.resources:
        lines.append(f"  resource    {res.health_status:<10} {res.resource_type}  {res.resource_id}")
    lines.append(f"  events      {len(r.events)} (use --output json for all of them)")
    return "\n".join(lines) + "\n"
