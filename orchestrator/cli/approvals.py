"""``starter.py approve ID`` and ``starter.py reject ID``: answer a deployment waiting to delete resources.

They send the workflow's ``approve`` / ``reject`` signal (one JSON object: approver, reason, and the destructive
set the approver saw, which binds the approval to that plan). Any Temporal client can send the same signal; these
commands add a check that the deployment is actually waiting, and show what is about to be deleted.
"""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from orchestrator.cli._common import (
    CommandError,
    add_target_args,
    current_user,
    print_json,
    progress,
    resolve_target,
    run_command,
)
from orchestrator.deployments import query_status
from orchestrator.exit_codes import ExitCode
from orchestrator.models import SIGNAL_APPROVE, SIGNAL_REJECT, ApprovalSignal, DeploymentStage, DeploymentStatus


def add_parser(subparsers: Any) -> None:
    for name, verb, signal in (
        ("approve", "approve the deletions a waiting deployment's plan makes, and let it deploy", SIGNAL_APPROVE),
        ("reject", "reject a waiting deployment's plan: the deployment fails (exit code 4)", SIGNAL_REJECT),
    ):
        p = subparsers.add_parser(name, help=verb, description=verb[0].upper() + verb[1:] + ".")
        p.add_argument("workflow_id", metavar="ID", help="the deployment's workflow id (printed by deploy and list)")
        p.add_argument("--reason", default="", help="why (recorded in the audit)")
        p.add_argument("--approver", default=None, help="who decides (default: the OS user)")
        add_target_args(p)
        p.set_defaults(run=run, signal=signal)


def run(args: argparse.Namespace) -> int:
    return run_command(lambda: decide(args), output=args.output)


async def pending_status(handle: WorkflowHandle[Any, Any], workflow_id: str, local: str) -> DeploymentStatus:
    """The status of a deployment that waits for confirmation; a one-paragraph error otherwise."""
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(
                f"There is no deployment workflow '{workflow_id}'. `python starter.py list{local}` shows the "
                "deployments and their ids.",
                ExitCode.USAGE,
            ) from None
        raise CommandError(f"Could not read workflow '{workflow_id}': {exc.message}.", ExitCode.ENVIRONMENTAL) from None
    if description.status != WorkflowExecutionStatus.RUNNING:
        state = description.status.name if description.status else "unknown"
        raise CommandError(
            f"Deployment '{workflow_id}' is not running (it is {state}), so there is nothing to approve or reject. "
            f"`python starter.py status {workflow_id}{local}` shows how it ended.",
            ExitCode.USAGE,
        )
    try:
        status = await query_status(handle)
    except Exception as exc:
        raise CommandError(
            f"Deployment '{workflow_id}' did not answer its status query ({exc}); is a worker running? "
            "Try again when it is.",
            ExitCode.ENVIRONMENTAL,
        ) from None
    if status.stage != DeploymentStage.AWAITING_CONFIRMATION or status.pending_confirmation is None:
        raise CommandError(
            f"Deployment '{workflow_id}' is not waiting for confirmation (it is at {status.stage.value}); "
            "approve and reject apply only while a plan that deletes resources waits. Nothing was sent.",
            ExitCode.USAGE,
        )
    return status


async def decide(args: argparse.Namespace, *, client: Client | None = None) -> int:
    target = await resolve_target(args, client)
    local = " --local" if target.instance else ""
    handle = target.client.get_workflow_handle(args.workflow_id)
    status = await pending_status(handle, args.workflow_id, local)
    pending = status.pending_confirmation
    assert pending is not None
    destructive_set = sorted({c.resource_id.lower() for c in pending.destructive_changes})
    approver = args.approver or current_user()
    verb = "Approving" if args.signal == SIGNAL_APPROVE else "Rejecting"
    progress(f"{verb} the deletion of {len(destructive_set)} resource(s) in deployment {args.workflow_id}:")
    for change in pending.destructive_changes:
        progress(f"  - {change.resource_id}")
    await handle.signal(
        args.signal, ApprovalSignal(approver=approver, reason=args.reason, destructive_set=destructive_set)
    )
    if args.output == "json":
        print_json(
            {
                "workflow_id": args.workflow_id,
                "signal": args.signal,
                "approver": approver,
                "reason": args.reason,
                "destructive_set": destructive_set,
            }
        )
    else:
        done = "Approved" if args.signal == SIGNAL_APPROVE else "Rejected"
        print(f"{done} by {approver}: deployment {args.workflow_id} (round {pending.round}).")
    return int(ExitCode.OK)
