"""``starter.py rollout plan|start|status|pause|resume|abort|approve``: one template to many resource groups, ring by
ring (docs/FLEET.md). The rollout runs as ``RolloutWorkflow`` (id ``rollout-<name>``); each target is an ordinary
child deployment (``deploy-<subscription>-<rg>``) that ``status``, ``approve``, ``follow`` and ``audit`` take as
they would any deployment."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any, TextIO

from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from client.cli._common import (
    CommandError,
    Target,
    add_target_args,
    check_workflow_id,
    current_user,
    local_flag,
    open_store,
    print_json,
    progress,
    resolve_target,
    run_command,
    store_write_error,
    workflow_read_error,
)
from client.exit_codes import ExitCode
from contract.rollout import (
    QUERY_ROLLOUT_STATUS,
    ROLLOUT_WORKFLOW_NAME,
    SIGNAL_ABORT,
    SIGNAL_APPROVE_RING,
    SIGNAL_PAUSE,
    SIGNAL_RESUME,
    AbortSignal,
    ApproveRingSignal,
    PlanCounts,
    RingProgress,
    RingState,
    RolloutInput,
    RolloutRequest,
    RolloutState,
    RolloutStatus,
    rollout_workflow_id,
)

HELP = "roll a template out to many resource groups ring by ring: plan, start, status, pause, resume, abort, approve"
FOLLOW_POLL_SECONDS = 2.0
# `rollout start --follow` and `rollout status`: how the rollout ended, as an exit code.
STATE_EXIT_CODES = {
    RolloutState.SUCCEEDED: ExitCode.OK,
    RolloutState.HALTED: ExitCode.LOGIC_FAILURE,
    RolloutState.ABORTED: ExitCode.REJECTED,
}


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rollout",
        help=HELP,
        description="Fleet rollouts (docs/FLEET.md): the rollout file names the template, the parameters and the "
        "targets (subscription, resource group, location, overrides) in ordered rings with max_parallel, bake, "
        "health gates, approval and on_failure. Exit codes: 0 ok (plan: nothing changes), 1 halted (plan: a what-if "
        "failed), 2 bad input, 3 Temporal unreachable, 4 aborted, 6 (plan) something changes.",
    )
    sub = p.add_subparsers(dest="rollout_command", metavar="ACTION")
    sub.required = True

    q = sub.add_parser("plan", help="what-if of every target, summarised per ring (nothing is deployed)")
    q.add_argument("file", metavar="FILE", help="the rollout file (YAML or JSON)")
    add_target_args(q)
    q.set_defaults(run=run_plan)

    q = sub.add_parser("start", help="start the rollout (workflow rollout-<name>)")
    q.add_argument("file", metavar="FILE", help="the rollout file (YAML or JSON)")
    q.add_argument("--follow", action="store_true", help="wait for the rollout to end, printing each ring's progress")
    q.add_argument("--git-sha", help="the commit the template comes from, for the audit")
    add_target_args(q)
    q.set_defaults(run=run_start)

    q = sub.add_parser("status", help="a table per ring and target")
    q.add_argument("rollout_id", metavar="ID", help="the rollout's workflow id (rollout-<name>)")
    add_target_args(q)
    q.set_defaults(run=run_status)

    for name, text in (
        ("pause", "start no further target or ring (running targets finish; a bake keeps counting)"),
        ("resume", "continue a paused rollout"),
    ):
        q = sub.add_parser(name, help=text)
        q.add_argument("rollout_id", metavar="ID", help="the rollout's workflow id")
        add_target_args(q)
        q.set_defaults(run=run_signal, signal=name)

    q = sub.add_parser("abort", help="stop the rollout: no further target or ring starts")
    q.add_argument("rollout_id", metavar="ID", help="the rollout's workflow id")
    q.add_argument("--reason", default="", help="why, for the record")
    add_target_args(q)
    q.set_defaults(run=run_signal, signal="abort")

    q = sub.add_parser("approve", help="approve a ring that waits for approval (approval: true in the file)")
    q.add_argument("rollout_id", metavar="ID", help="the rollout's workflow id")
    q.add_argument("--ring", required=True, help="the ring's name")
    q.add_argument("--reason", default="", help="why, for the record (in the signed statement with --key)")
    q.add_argument(
        "--key",
        metavar="PATH",
        help="sign the approval with this SSH key (the worker's approval policy file may demand it; docs/SECURITY.md)",
    )
    q.add_argument(
        "--as",
        dest="approver",
        metavar="WHO",
        help="with --key: the principal the key is listed under in allowed_signers (default: the OS account)",
    )
    add_target_args(q)
    q.set_defaults(run=run_signal, signal="approve")


def run_plan(args: argparse.Namespace) -> int:
    return run_command(lambda: plan(args), output=args.output)


def run_start(args: argparse.Namespace) -> int:
    return run_command(lambda: start(args), output=args.output)


def run_status(args: argparse.Namespace) -> int:
    return run_command(lambda: status(args), output=args.output)


def run_signal(args: argparse.Namespace) -> int:
    return run_command(lambda: send_signal(args), output=args.output)


# ---------------------------------------------------------------------------------------------------- commands


def _checked(args: argparse.Namespace) -> Any:
    """The whole file checked (exit 2) before connecting."""
    from client.inputs import validate_git_sha
    from client.rollout_file import check_rollout_file

    if getattr(args, "git_sha", None):
        validate_git_sha(args.git_sha)
    return check_rollout_file(args.file)


def _request(args: argparse.Namespace, checked: Any, target: Target, *, preview_only: bool) -> RolloutRequest:
    from client.inputs import validate_git_sha
    from client.rollout_file import build_rollout_request

    store = open_store(target)
    sha = validate_git_sha(args.git_sha) if getattr(args, "git_sha", None) else None
    try:
        return build_rollout_request(
            checked, store=store, initiator=current_user(), git_sha=sha, preview_only=preview_only
        )
    except OSError as exc:
        raise store_write_error(store, exc, "the template") from None


async def plan(args: argparse.Namespace) -> int:
    checked = _checked(args)
    target = await resolve_target(args)
    request = _request(args, checked, target, preview_only=True)
    handle = await start_plan_workflow(target.client, request, task_queue=target.task_queue)
    progress(f"Planning rollout {request.name} as workflow {handle.id} ({_target_count(request)} targets)…")
    result: RolloutStatus = await handle.result()
    changes = any(t.plan is not None and t.plan.changes for r in result.rings for t in r.targets)
    errors = [t for r in result.rings for t in r.targets if t.plan is not None and t.plan.error]
    if args.output == "json":
        print_json({"rollout": result.model_dump(mode="json"), "changes": changes, "errors": len(errors)})
    else:
        _print_plan(result)
    if errors:
        return ExitCode.LOGIC_FAILURE
    return ExitCode.CHANGES if changes else ExitCode.OK


async def start(args: argparse.Namespace) -> int:
    checked = _checked(args)
    target = await resolve_target(args)
    request = _request(args, checked, target, preview_only=False)
    wf_id = rollout_workflow_id(request.name)
    try:
        handle = await start_rollout_workflow(target.client, request, task_queue=target.task_queue)
    except WorkflowAlreadyStartedError:
        raise CommandError(
            f"Rollout {request.name} is already running as workflow {wf_id}: `python starter.py rollout status "
            f"{wf_id}{local_flag(target)}` shows it; abort it first to start again.",
            ExitCode.USAGE,
        ) from None
    progress(
        f"Started rollout {wf_id} (run {handle.result_run_id}): {_target_count(request)} targets in "
        f"{len(request.rings)} rings. `python starter.py rollout status {wf_id}{local_flag(target)}` shows it."
    )
    if not args.follow:
        if args.output == "json":
            print_json({"rollout_id": wf_id, "run_id": handle.result_run_id})
        return ExitCode.OK
    result = await _follow(handle)
    if args.output == "json":
        print_json(result.model_dump(mode="json"))
    else:
        print_status(result)
    return STATE_EXIT_CODES.get(result.state, ExitCode.OK)


async def start_plan_workflow(client: Any, request: RolloutRequest, *, task_queue: str) -> WorkflowHandle[Any, Any]:
    """``rollout plan``'s workflow (the CLI's and the team API's): what-if of every target, nothing deployed."""
    handle: WorkflowHandle[Any, Any] = await client.start_workflow(
        ROLLOUT_WORKFLOW_NAME,
        RolloutInput(request=request),
        id=f"{rollout_workflow_id(request.name)}-plan-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
        result_type=RolloutStatus,
        memo={"rollout": request.name, "initiator": request.initiator, "targets": _target_count(request)},
        static_summary=f"rollout plan {request.name}: what-if of every target",
    )
    return handle


async def start_rollout_workflow(
    client: Any, request: RolloutRequest, *, task_queue: str, memo: dict[str, Any] | None = None
) -> WorkflowHandle[Any, Any]:
    """``rollout start``'s workflow ``rollout-<name>`` (the CLI's and the team API's); WorkflowAlreadyStartedError
    while one of that name runs."""
    handle: WorkflowHandle[Any, Any] = await client.start_workflow(
        ROLLOUT_WORKFLOW_NAME,
        RolloutInput(request=request),
        id=rollout_workflow_id(request.name),
        task_queue=task_queue,
        result_type=RolloutStatus,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        memo={
            "rollout": request.name,
            "initiator": request.initiator,
            "targets": _target_count(request),
            **(memo or {}),
        },
        static_summary=f"rollout {request.name}: {_target_count(request)} targets in {len(request.rings)} rings",
    )
    return handle


async def _follow(handle: WorkflowHandle[Any, Any]) -> RolloutStatus:
    task = asyncio.ensure_future(handle.result())
    last = ""
    while not task.done():
        try:
            s = await handle.query(QUERY_ROLLOUT_STATUS, result_type=RolloutStatus)
            line = "; ".join(f"{r.name} {r.state.value}" for r in s.rings)
            if line != last:
                progress(f"{s.state.value}: {line}")
                last = line
        except RPCError:
            pass
        await asyncio.wait([task], timeout=FOLLOW_POLL_SECONDS)
    try:
        return task.result()
    except WorkflowFailureError as exc:
        raise CommandError(f"Rollout {handle.id} failed: {exc.cause or exc}.", ExitCode.ENVIRONMENTAL) from None


async def _rollout_handle(args: argparse.Namespace) -> tuple[Target, WorkflowHandle[Any, Any]]:
    rollout_id = check_workflow_id(args.rollout_id)
    target = await resolve_target(args)
    handle = target.client.get_workflow_handle(rollout_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        raise workflow_read_error(exc, rollout_id, local_flag(target), what="rollout") from None
    if description.workflow_type != ROLLOUT_WORKFLOW_NAME:
        raise CommandError(
            f"Workflow '{rollout_id}' is a {description.workflow_type}, not a rollout ({ROLLOUT_WORKFLOW_NAME}); "
            "rollout ids look like rollout-<name>.",
            ExitCode.USAGE,
        )
    return target, handle


async def status(args: argparse.Namespace) -> int:
    _target, handle = await _rollout_handle(args)
    try:
        s: RolloutStatus = await handle.query(QUERY_ROLLOUT_STATUS, result_type=RolloutStatus)
    except RPCError as exc:
        raise CommandError(f"Could not read rollout {handle.id}: {exc.message}.", ExitCode.ENVIRONMENTAL) from None
    if args.output == "json":
        print_json(s.model_dump(mode="json"))
    else:
        print_status(s)
    return STATE_EXIT_CODES.get(s.state, ExitCode.OK)


async def send_signal(args: argparse.Namespace) -> int:
    target, handle = await _rollout_handle(args)
    kind = args.signal
    try:
        if kind == "pause":
            await handle.signal(SIGNAL_PAUSE)
        elif kind == "resume":
            await handle.signal(SIGNAL_RESUME)
        elif kind == "abort":
            await handle.signal(SIGNAL_ABORT, AbortSignal(by=current_user(), reason=args.reason))
        else:
            # Bound to the plan the ring waits with (its targets' previews, hashed): an approval of another plan —
            # the ring was re-previewed, or the user looked at an older status — is refused by the workflow.
            s = await handle.query(QUERY_ROLLOUT_STATUS, result_type=RolloutStatus)
            ring = next((r for r in s.rings if r.name == args.ring), None)
            if ring is None or ring.state is not RingState.AWAITING_APPROVAL:
                state = ring.state.value if ring else "no such ring"
                raise CommandError(
                    f"Ring '{args.ring}' of rollout {handle.id} is not waiting for approval ({state}); `python "
                    f"starter.py rollout status {handle.id}{local_flag(target)}` shows its rings.",
                    ExitCode.USAGE,
                )
            progress(f"Approving ring {ring.name}: plan {ring.plan_hash or '(not bound)'}, {_ring_counts(ring)}.")
            await handle.signal(SIGNAL_APPROVE_RING, ring_approval(args, s, ring.name))
    except RPCError as exc:
        raise CommandError(
            f"Could not {kind} rollout {handle.id}: {exc.message} (has it ended? `python starter.py rollout status "
            f"{handle.id}{local_flag(target)}`).",
            ExitCode.USAGE,
        ) from None
    progress(f"Sent {kind} to rollout {handle.id}.")
    if args.output == "json":
        print_json({"rollout_id": handle.id, "sent": kind})
    return ExitCode.OK


def ring_approval(args: argparse.Namespace, status: RolloutStatus, ring_name: str) -> ApproveRingSignal:
    """The approval of a waiting ring, bound to its plan hash; with ``--key`` a signed statement for this rollout
    (its first run), the ring (its position) and that plan, as the worker's approval policy may demand."""
    from datetime import UTC, datetime, timedelta

    from client.cli.approvals import sign_statement
    from contract.approvals import DEFAULT_STATEMENT_LIFETIME_SECONDS, ApprovalStatement, utc_text
    from contract.rollout import ring_round

    index = next(i for i, r in enumerate(status.rings) if r.name == ring_name)
    ring = status.rings[index]
    who = getattr(args, "approver", None) or current_user()
    if not getattr(args, "key", None):
        if getattr(args, "approver", None):
            raise CommandError(
                "--as names the principal of a signing key: give --key too. Nothing was sent.", ExitCode.USAGE
            )
        return ApproveRingSignal(ring=ring_name, by=who, plan_hash=ring.plan_hash)
    if not ring.plan_hash or not status.first_run_id:
        raise CommandError(
            f"Ring '{ring_name}' of rollout {status.rollout_id} has no plan hash to sign (a rollout started by an "
            "older worker): approve it without --key. Nothing was sent.",
            ExitCode.USAGE,
        )
    now = datetime.now(UTC)
    statement = ApprovalStatement(
        workflow_id=status.rollout_id,
        run_id=status.first_run_id,
        round=ring_round(index),
        plan_hash=ring.plan_hash,
        destructive_set=[],
        decision="approve",
        reason=args.reason,
        identity=who,
        issued_at=utc_text(now),
        expires_at=utc_text(
            now + timedelta(seconds=ring.statement_lifetime_seconds or DEFAULT_STATEMENT_LIFETIME_SECONDS)
        ),
    )
    proof = sign_statement(statement, key=args.key)
    return ApproveRingSignal(ring=ring_name, by=who, plan_hash=ring.plan_hash, statement=statement, proof=proof)


# ------------------------------------------------------------------------------------------------------ output


def _target_count(request: RolloutRequest) -> int:
    return sum(len(r.targets) for r in request.rings)


def _counts(c: PlanCounts | None) -> str:
    if c is None:
        return "-"
    if c.error:
        return f"what-if failed: {c.error}"
    text = f"+{c.creates} ~{c.modifies} -{c.deletes}"
    return text + (" (new resource group)" if c.new_resource_group else "")


def _print_plan(result: RolloutStatus, out: TextIO | None = None) -> None:
    import sys

    out = out or sys.stdout
    for ring in result.rings:
        total = PlanCounts()
        for t in ring.targets:
            c = t.plan or PlanCounts()
            total.creates += c.creates
            total.modifies += c.modifies
            total.deletes += c.deletes
        changing = sum(1 for t in ring.targets if t.plan is not None and t.plan.changes)
        failed = sum(1 for t in ring.targets if t.plan is not None and t.plan.error)
        out.write(
            f"Ring {ring.name}: {len(ring.targets)} targets, {changing} change, {failed} failed what-if; "
            f"creates {total.creates}, modifies {total.modifies}, deletes {total.deletes}\n"
        )
        for t in ring.targets:
            out.write(f"  {t.subscription_id}  {t.resource_group:<30} {_counts(t.plan)}\n")
    out.flush()


def _ring_counts(ring: RingProgress) -> str:
    c = PlanCounts()
    for t in ring.targets:
        p = t.plan or PlanCounts()
        c.creates, c.modifies, c.deletes = c.creates + p.creates, c.modifies + p.modifies, c.deletes + p.deletes
    return f"creates {c.creates}, modifies {c.modifies}, deletes {c.deletes}"


def _ring_line(ring: RingProgress) -> str:
    extra = ""
    if ring.plan_hash:
        extra += f", plan {ring.plan_hash[:19]}… ({_ring_counts(ring)})"
    if ring.approved_by:
        extra += f", approved by {ring.approved_by}"
    elif ring.state is RingState.AWAITING_APPROVAL and ring.required_approvals > 1:
        extra += f", {len(ring.approvals)} of {ring.required_approvals} approvals"
    for refused in ring.refused_approvals[-3:]:
        extra += f"\n  refused approval: {refused}"
    if ring.bake_until is not None:
        from datetime import UTC, datetime

        extra += f", bake until {datetime.fromtimestamp(ring.bake_until, UTC):%Y-%m-%d %H:%M:%S}Z"
    if ring.gate_checks:
        extra += f", {ring.gate_checks} gate checks"
    if ring.gate_failure:
        extra += f", gate failed: {ring.gate_failure.splitlines()[0]}"
    return f"Ring {ring.name}: {ring.state.value}{extra}"


def print_status(s: RolloutStatus, out: TextIO | None = None) -> None:
    import sys

    out = out or sys.stdout
    head = f"Rollout {s.rollout_id} ({s.name}): {s.state.value}"
    if s.paused and s.state is RolloutState.RUNNING:
        head += " (paused)"
    if s.aborted_by:
        head += f", aborted by {s.aborted_by}" + (f": {s.abort_reason}" if s.abort_reason else "")
    if s.halted_ring:
        head += f", halted at ring {s.halted_ring}"
    out.write(head + f" — run {s.runs} of the rollout workflow, {s.history_length} history events\n")
    for ring in s.rings:
        out.write(_ring_line(ring) + "\n")
        out.write(f"  {'SUBSCRIPTION':<36}  {'RESOURCE GROUP':<30} {'STATE':<15} {'PLAN':<16} DEPLOYMENT\n")
        for t in ring.targets:
            deployment = t.workflow_id or "-"
            if t.run_id:
                deployment += f" (run {t.run_id})"
            out.write(
                f"  {t.subscription_id:<36}  {t.resource_group:<30} {t.state.value:<15} {_counts(t.plan):<16} "
                f"{deployment}\n"
            )
            if t.rollback_preview is not None:
                out.write(f"      rollback preview: {_counts(t.rollback_preview)}\n")
            if t.message:
                out.write(f"      {t.message.splitlines()[0]}\n")
    out.flush()
