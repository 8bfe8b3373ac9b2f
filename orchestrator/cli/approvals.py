"""``starter.py approve ID`` and ``starter.py reject ID``: answer a deployment waiting to delete resources.

They send the workflow's ``approve`` / ``reject`` signal (one JSON object: approver, reason, and the destructive
set the approver saw, which binds the approval to that plan). Any Temporal client can send the same signal; these
commands add a check that the deployment is actually waiting, and show what is about to be deleted.

Identity (four eyes, docs/SECURITY.md): the approver is the OS user. ``--as WHO`` names someone else only where the
worker's policy allows it (``ORCHESTRATOR_ALLOW_APPROVER_OVERRIDE``) or no policy is configured. A decision the
policy would refuse (not an allowed approver, or the initiator approving their own deployment) is refused here
before anything is sent; the workflow enforces the same policy on signals from any other client.
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
from orchestrator.codec import CodecKeyError
from orchestrator.deployments import query_status
from orchestrator.exit_codes import ExitCode
from orchestrator.models import (
    SIGNAL_APPROVE,
    SIGNAL_REJECT,
    ApprovalPolicy,
    ApprovalSignal,
    DeploymentStage,
    DeploymentStatus,
)


def add_parser(subparsers: Any) -> None:
    for name, verb, signal in (
        ("approve", "approve the deletions a waiting deployment's plan makes, and let it deploy", SIGNAL_APPROVE),
        ("reject", "reject a waiting deployment's plan: the deployment fails (exit code 4)", SIGNAL_REJECT),
    ):
        p = subparsers.add_parser(name, help=verb, description=verb[0].upper() + verb[1:] + ".")
        p.add_argument("workflow_id", metavar="ID", help="the deployment's workflow id (printed by deploy and list)")
        p.add_argument("--reason", default="", help="why (recorded in the audit)")
        p.add_argument(
            "--as",
            "--approver",
            dest="approver",
            metavar="WHO",
            default=None,
            help="decide as WHO instead of the OS user; only where the approval policy allows it",
        )
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
    except CodecKeyError:
        raise
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
    approver = decider(args, pending.approval_policy, initiator=_initiator(status))
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


def _initiator(status: DeploymentStatus) -> str:
    first = status.transitions[0] if status.transitions else None
    return (first.by if first is not None else None) or ""


def decider(args: argparse.Namespace, policy: ApprovalPolicy | None, *, initiator: str) -> str:
    """Who this decision is sent as: the OS user, or ``--as`` where the policy allows; refused here (nothing sent)
    when the worker's policy would refuse it anyway."""
    me = current_user()
    approving = args.signal == SIGNAL_APPROVE
    who = args.approver or me
    if policy is None:
        return who
    if args.approver and args.approver.strip().lower() != me.lower() and not policy.allow_approver_override:
        raise CommandError(
            f"--as {args.approver} is not allowed: this deployment's approval policy sends the OS user's identity "
            f"({me}). Decide as yourself, or have {args.approver} run the command. Nothing was sent.",
            ExitCode.USAGE,
        )
    why = policy.refusal(approver=who, initiator=initiator, approving=approving)
    if why is not None:
        raise CommandError(
            f"{'Approval' if approving else 'Rejection'} refused by the approval policy: {why}. The deployment "
            "keeps waiting; ask an allowed approver to run this command. Nothing was sent.",
            ExitCode.USAGE,
        )
    return who
