"""``starter.py approve ID`` and ``starter.py reject ID``: answer a deployment waiting to delete resources.

They send the workflow's ``approve`` / ``reject`` signal (one JSON object: approver, reason, and the destructive
set the approver saw, which binds the approval to that plan). Any Temporal client can send the same signal; these
commands add a check that the deployment is actually waiting, and show what is about to be deleted.

The signal names the pending plan (its hash, as ``status`` shows it), so it can only decide the plan it was sent
for; it carries an id, and the command then reads the workflow's status until its decision shows up as taken or
as refused, and says which (a late or refused decision exits 2).

Verified approvals (docs/SECURITY.md): when the worker has an approval policy that accepts SSH proofs (``status``
shows it), or ``--key`` is given, the command writes the approval statement (this run, this round, this plan's hash
and deletions, the decision, the reason, the identity, issued-at and expires-at), shows the plan hash and the
deletions, signs the statement with ``ssh-keygen -Y sign`` (the key in ``--key``, else the first key ssh-agent
holds) and sends statement and signature in the signal. The identity is then the principal the key is listed under
in the policy's allowed_signers (``--as`` names it; default: the OS account) and the worker verifies it.

Identity without a policy file (four eyes, docs/SECURITY.md): the approver is the OS account (from the account
database, never from LOGNAME/USER, which anyone can set) — a claimed identity, recorded as unverified. ``--as WHO``
names someone else only where the worker's policy allows it (``ORCHESTRATOR_ALLOW_APPROVER_OVERRIDE``) or no policy
is configured. A decision the policy would refuse (not an allowed approver, or the initiator approving their own
deployment) is refused here before anything is sent; the workflow enforces the same policy on signals
from any other client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from client.cli._common import (
    IDENTITY_SOURCE,
    CommandError,
    add_target_args,
    check_workflow_id,
    current_user,
    print_json,
    progress,
    require_deployment,
    resolve_target,
    run_command,
    workflow_read_error,
)
from client.deployments import query_status
from client.exit_codes import ExitCode
from contract.approvals import (
    DEFAULT_STATEMENT_LIFETIME_SECONDS,
    PROOF_SSH,
    PROOF_UNVERIFIED,
    ApprovalProof,
    ApprovalStatement,
    StartStatement,
    TrustPolicy,
    statement_digest,
    utc_text,
)
from contract.models import (
    MAX_APPROVER_CHARS,
    MAX_REASON_CHARS,
    SIGNAL_APPROVE,
    SIGNAL_REJECT,
    ApprovalPolicy,
    ApprovalSignal,
    DeploymentStage,
    DeploymentStatus,
)
from services.approvals import sign_ssh, ssh_keygen
from services.codec import CodecKeyError


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
        p.add_argument(
            "--key",
            metavar="PATH",
            default=None,
            help="sign the approval statement with this SSH key (a private key, or a public key whose private half "
            "ssh-agent holds); default under an approval policy: the first key in ssh-agent",
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
        raise workflow_read_error(exc, workflow_id, local) from None
    require_deployment(description, workflow_id, local)
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
        last = status.confirmations[-1] if status.confirmations else None
        decided = (
            f" Round {last.round} was already {last.decision.value.lower()} by {last.by} at "
            f"{last.at.isoformat(timespec='seconds')}."
            if last is not None
            else ""
        )
        raise CommandError(
            f"Deployment '{workflow_id}' is not waiting for confirmation (it is at {status.stage.value}).{decided} "
            "Approve and reject apply only while a plan that deletes resources waits. Nothing was sent.",
            ExitCode.USAGE,
        )
    return status


async def decide(args: argparse.Namespace, *, client: Client | None = None) -> int:
    check_workflow_id(args.workflow_id)
    if len(args.reason) > MAX_REASON_CHARS:
        raise CommandError(
            f"--reason is {len(args.reason):,} characters; a decision's reason may be at most {MAX_REASON_CHARS:,} "
            "(the workflow refuses longer ones). Shorten it, or link to a longer write-up. Nothing was sent.",
            ExitCode.USAGE,
        )
    if args.approver is not None and (
        not args.approver.strip()
        or len(args.approver) > MAX_APPROVER_CHARS
        or any(ord(c) < 32 or ord(c) == 127 for c in args.approver)
    ):
        raise CommandError(
            f"--as must name someone: at most {MAX_APPROVER_CHARS} characters, no control characters. Nothing was "
            "sent.",
            ExitCode.USAGE,
        )
    target = await resolve_target(args, client)
    local = " --local" if target.instance else ""
    handle = target.client.get_workflow_handle(args.workflow_id)
    status = await pending_status(handle, args.workflow_id, local)
    pending = status.pending_confirmation
    assert pending is not None
    destructive_set = sorted({c.resource_id.lower() for c in pending.destructive_changes})
    trust = pending.approval_policy.trust if pending.approval_policy is not None else None
    key = getattr(args, "key", None)  # callers building the namespace themselves may leave it out
    # Sign when given a key, or when the policy accepts SSH proofs and either needs one (no unverified decisions) or
    # an agent may hold the key; a policy that also accepts claimed names then takes an unsigned decision.
    signing = key is not None or (
        trust is not None
        and trust.accepts(PROOF_SSH)
        and (not trust.accepts(PROOF_UNVERIFIED) or bool(os.environ.get("SSH_AUTH_SOCK")))
    )
    approver = signer_identity(args, trust, status) if signing else None
    if approver is None and trust is not None:  # unsigned, where the policy accepts claimed names
        approver = signer_identity(args, trust, status)
    if approver is None:
        approver = decider(args, pending.approval_policy, initiator=_initiator(status))
    verb = "Approving" if args.signal == SIGNAL_APPROVE else "Rejecting"
    progress(f"{verb} the deletion of {len(destructive_set)} resource(s) in deployment {args.workflow_id}:")
    for change in pending.destructive_changes:
        progress(f"  - {change.resource_id}")
    statement = proof = None
    if signing:
        if not pending.plan_hash:
            raise CommandError(
                f"Deployment '{args.workflow_id}' was started by a worker that does not bind decisions to a plan "
                "hash, so a signed statement cannot name its plan. Approve without --key. Nothing was sent.",
                ExitCode.USAGE,
            )
        run_id = (await handle.describe()).run_id
        statement = approval_statement(
            args, pending, run_id=run_id, identity=approver, destructive_set=destructive_set, trust=trust
        )
        progress(f"  plan {pending.plan_hash} (round {pending.round}), statement {statement_digest(statement)}")
        progress(f"  signing as {approver} (expires {statement.expires_at}) with {key or 'ssh-agent'}")
        proof = sign_statement(statement, key=key)
    decision_id = uuid.uuid4().hex
    await handle.signal(
        args.signal,
        ApprovalSignal(
            approver=approver,
            reason=args.reason,
            destructive_set=destructive_set,
            plan_hash=pending.plan_hash,
            decision_id=decision_id,
            identity_source="ssh-signature" if signing else IDENTITY_SOURCE,
            statement=statement,
            proof=proof,
        ),
    )
    # A run started before decisions were recorded (no plan hash) does not echo decision ids: nothing to wait for.
    outcome, why = (
        await decision_outcome(handle, decision_id, counted_as=approver if signing else None)
        if pending.plan_hash
        else ("taken", None)
    )
    if outcome == "counted":
        print(
            f"Approval by {approver} recorded for deployment {args.workflow_id} (round {pending.round}); the policy "
            f"needs {pending.required_approvals} distinct approvers, so it keeps waiting for the others."
        )
        return int(ExitCode.OK)
    if args.output == "json":
        print_json(
            {
                "workflow_id": args.workflow_id,
                "signal": args.signal,
                "approver": approver,
                "identity_verified": False,  # the worker decides: `status` shows its verification
                "signed": statement is not None,
                "statement_digest": statement_digest(statement) if statement is not None else None,
                "reason": args.reason,
                "destructive_set": destructive_set,
                "plan_hash": pending.plan_hash,
                "decision_id": decision_id,
                "outcome": outcome,
                "refused_because": why,
            }
        )
    elif outcome == "taken":
        done = "Approved" if args.signal == SIGNAL_APPROVE else "Rejected"
        print(f"{done} by {approver}: deployment {args.workflow_id} (round {pending.round}).")
    elif outcome == "refused":
        progress(f"The deployment refused this decision: {why}. It was recorded as refused; nothing else changed.")
    else:
        print(
            f"Sent as {approver} to deployment {args.workflow_id} (round {pending.round}); the workflow has not "
            f"answered yet. `python starter.py status {args.workflow_id}{local}` shows whether it was taken."
        )
    return int(ExitCode.USAGE if outcome == "refused" else ExitCode.OK)


DECISION_WAIT_SECONDS = 15.0


async def decision_outcome(
    handle: WorkflowHandle[Any, Any], decision_id: str, *, counted_as: str | None = None
) -> tuple[str, str | None]:
    """Whether the workflow took the decision sent with ``decision_id`` ("taken"), refused it ("refused", why),
    counted it as one of several approvals the policy needs ("counted": ``counted_as`` is among the round's
    approvers), or has not processed it within DECISION_WAIT_SECONDS ("sent"): a signal has no answer of its own."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DECISION_WAIT_SECONDS
    while loop.time() < deadline:
        try:
            status = await asyncio.wait_for(query_status(handle), timeout=5)
        except Exception:  # between tasks, or the deployment just closed: ask again
            status = None
        if status is not None:
            for refused in status.refused_decisions:
                if refused.decision_id == decision_id:
                    return "refused", refused.why
            if any(c.decision_id == decision_id for c in status.confirmations):
                return "taken", None
            pending = status.pending_confirmation
            if counted_as and pending is not None and counted_as.lower() in {a.lower() for a in pending.approved_by}:
                return "counted", None
        await asyncio.sleep(0.2)
    return "sent", None


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


def signer_identity(args: argparse.Namespace, trust: TrustPolicy | None, status: DeploymentStatus) -> str:
    """Who a signed decision speaks for: ``--as`` (the principal the key is listed under in allowed_signers) or the
    OS account. The key proves it, so naming someone else is no claim the worker would take on trust. A decision the
    policy would refuse for this identity is refused here, before anything is signed."""
    who = args.approver or current_user()
    if trust is not None:
        why = trust.refusal(
            identity=who,
            initiator=_initiator(status),
            approving=args.signal == SIGNAL_APPROVE,
            subscription=status.subscription_id or "",
            resource_group=status.resource_group or "",
        )
        if why is not None:
            raise CommandError(
                f"{'Approval' if args.signal == SIGNAL_APPROVE else 'Rejection'} refused by the approval policy: "
                f"{why}. Nothing was signed or sent.",
                ExitCode.USAGE,
            )
    return who


def approval_statement(
    args: argparse.Namespace,
    pending: Any,
    *,
    run_id: str,
    identity: str,
    destructive_set: list[str],
    trust: TrustPolicy | None,
) -> ApprovalStatement:
    """The statement this decision signs (contract/approvals.py), valid for the policy's statement lifetime."""
    now = datetime.now(UTC)
    lifetime = trust.statement_lifetime_seconds if trust is not None else DEFAULT_STATEMENT_LIFETIME_SECONDS
    return ApprovalStatement(
        workflow_id=args.workflow_id,
        run_id=run_id,
        round=pending.round,
        plan_hash=pending.plan_hash,
        destructive_set=destructive_set,
        decision="approve" if args.signal == SIGNAL_APPROVE else "reject",
        reason=args.reason,
        identity=identity,
        issued_at=utc_text(now),
        expires_at=utc_text(now + timedelta(seconds=lifetime)),
    )


def sign_statement(statement: ApprovalStatement | StartStatement, *, key: str | None) -> ApprovalProof:
    """An SSH signature of the statement: with ``key``, else with the first key ssh-agent holds."""
    try:
        ssh_keygen()
    except FileNotFoundError as exc:
        raise CommandError(f"Cannot sign the approval: {exc}. Nothing was sent.", ExitCode.USAGE) from None
    with tempfile.TemporaryDirectory(prefix="approval-sign-") as folder:
        if key is None:
            key = _agent_key(Path(folder))
        elif not Path(key).is_file():
            raise CommandError(f"--key {key}: no such file. Give an SSH key file. Nothing was sent.", ExitCode.USAGE)
        try:
            signature = sign_ssh(statement, key=key)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            raise CommandError(
                f"ssh-keygen could not sign the approval with {key}: {exc}. Nothing was sent.", ExitCode.USAGE
            ) from None
    return ApprovalProof(kind="ssh", signature=signature)


def _agent_key(folder: Path) -> str:
    """The first public key ssh-agent holds, written to a file ``ssh-keygen -Y sign -f`` can name."""
    if not os.environ.get("SSH_AUTH_SOCK"):
        raise CommandError(
            "This deployment's approval policy needs a signed decision, and no SSH key was given: pass --key "
            "~/.ssh/id_ed25519 (the key allowed_signers lists for you) or load it into ssh-agent. Nothing was sent.",
            ExitCode.USAGE,
        )
    listed = subprocess.run(["ssh-add", "-L"], capture_output=True, text=True, timeout=30, check=False)
    keys = [line for line in listed.stdout.splitlines() if line.strip() and not line.startswith("The agent")]
    if listed.returncode != 0 or not keys:
        raise CommandError(
            "ssh-agent holds no key: `ssh-add ~/.ssh/id_ed25519`, or pass --key. Nothing was sent.", ExitCode.USAGE
        )
    path = folder / "agent-key.pub"
    path.write_text(keys[0] + "\n", encoding="utf-8")
    return str(path)
