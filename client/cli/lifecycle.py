"""``starter.py cancel ID`` and ``starter.py follow ID``: stop a running deployment, or re-attach to one.

``cancel`` cancels the workflow; the workflow's cancellation path cancels the ARM deployment when one is running
(``DeploymentWorkflow._on_cancelled``), so this waits for the workflow to end and reports how. ``follow`` picks up
a deployment's progress where ``deploy`` left it (after Ctrl-C, or from another terminal) and exits with the
deployment's own exit code, as ``deploy`` would have.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from client.cli._common import (
    OUTCOME_EXIT_CODES,
    CommandError,
    Target,
    add_target_args,
    open_store,
    print_json,
    progress,
    resolve_target,
    run_command,
)
from client.cli.deploy import follow as follow_progress
from client.cli.deploy import report
from client.deployments import result_of
from client.exit_codes import ExitCode
from contract.models import DeploymentStage

CANCEL_WAIT_SECONDS = 120.0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cancel",
        help="cancel a running deployment (and its ARM deployment, if one is running)",
        description="Cancel a running deployment workflow. When it is DEPLOYING, the ARM deployment is cancelled "
        "too. Waits until the workflow has ended and says how. Exit 0 once cancelled, 2 for an unknown id or a "
        "deployment that is not running, 3 when the server cannot be reached.",
    )
    p.add_argument("workflow_id", metavar="ID", help="the deployment's workflow id (printed by deploy and list)")
    p.add_argument("--no-wait", action="store_true", help="request the cancellation and return at once")
    add_target_args(p)
    p.set_defaults(run=run_cancel)

    p = subparsers.add_parser(
        "follow",
        help="re-attach to a deployment's progress (after Ctrl-C) and exit with its exit code",
        description="Follow a deployment as `deploy` does — stages, the plan, the confirmation prompt or the "
        "approve commands — until it ends, then print the result and exit with the deployment's exit code "
        "(0-5, see `deploy --help`). A deployment that has ended already is reported at once.",
    )
    p.add_argument("workflow_id", metavar="ID", help="the deployment's workflow id (printed by deploy and list)")
    add_target_args(p)
    p.set_defaults(run=run_follow)


def run_cancel(args: argparse.Namespace) -> int:
    return run_command(lambda: cancel(args), output=args.output)


def run_follow(args: argparse.Namespace) -> int:
    return run_command(lambda: follow(args), output=args.output)


async def _existing(target: Target, workflow_id: str) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionStatus]:
    local = " --local" if target.instance else ""
    if not workflow_id.strip():
        raise CommandError("The deployment id is empty: give the workflow id deploy and list print.", ExitCode.USAGE)
    handle = target.client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise CommandError(
                f"There is no deployment workflow '{workflow_id}'. `python starter.py list{local}` shows the "
                "deployments and their ids.",
                ExitCode.USAGE,
            ) from None
        raise CommandError(f"Could not read workflow '{workflow_id}': {exc.message}.", ExitCode.ENVIRONMENTAL) from None
    status = description.status or WorkflowExecutionStatus.RUNNING
    # Address this run from now on (a later run with the same id must not be cancelled or followed by mistake).
    return target.client.get_workflow_handle(workflow_id, run_id=description.run_id), status


async def cancel(args: argparse.Namespace, *, client: Client | None = None) -> int:
    target = await resolve_target(args, client)
    local = " --local" if target.instance else ""
    handle, state = await _existing(target, args.workflow_id)
    if state != WorkflowExecutionStatus.RUNNING:
        raise CommandError(
            f"Deployment '{args.workflow_id}' is not running (it is {state.name}), so there is nothing to cancel. "
            f"`python starter.py status {args.workflow_id}{local}` shows how it ended.",
            ExitCode.USAGE,
        )
    await handle.cancel()
    progress(f"Cancellation requested for deployment {args.workflow_id} (run {handle.run_id}).")
    if args.no_wait:
        if args.output == "json":
            print_json({"workflow_id": args.workflow_id, "run_id": handle.run_id, "cancel_requested": True})
        return int(ExitCode.OK)
    try:
        result = await asyncio.wait_for(result_of(handle), timeout=CANCEL_WAIT_SECONDS)
    except TimeoutError:
        raise CommandError(
            f"Deployment '{args.workflow_id}' has not ended {CANCEL_WAIT_SECONDS:.0f} s after the cancellation "
            f"request (is a worker running?). It ends once a worker handles it; `python starter.py status "
            f"{args.workflow_id}{local}` shows where it is.",
            ExitCode.ENVIRONMENTAL,
        ) from None
    if args.output == "json":
        print_json(
            {"workflow_id": args.workflow_id, "run_id": handle.run_id, "outcome": result.outcome.value, "ended": True}
        )
    else:
        # The stage it was in when the cancellation arrived: the one before its final transition.
        stages = [t.stage for t in result.transitions]
        was_at = stages[-2] if len(stages) >= 2 else None
        at = f" at {was_at.value}" if was_at is not None else ""
        print(f"Deployment {args.workflow_id} ended: {result.outcome.value}{at}.")
        if was_at is DeploymentStage.DEPLOYING:
            print(f"  the ARM deployment {result.deployment_name or '-'} was cancelled with it")
    return int(ExitCode.OK)


async def follow(args: argparse.Namespace, *, client: Client | None = None) -> int:
    target = await resolve_target(args, client)
    handle, _state = await _existing(target, args.workflow_id)
    progress(f"Following deployment {args.workflow_id} (run {handle.run_id}); Ctrl-C stops following, not it.")
    store = open_store(target)
    result = await follow_progress(handle, target, store=store, output=args.output)
    code = report(result, output=args.output, target=target)
    return int(OUTCOME_EXIT_CODES.get(result.outcome, ExitCode(code)))
