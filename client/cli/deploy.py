"""``starter.py deploy``: check the inputs locally, start the deployment workflow, follow it stage by stage.

Everything that can be checked on this machine is checked before a workflow starts (files, JSON, --param, names,
locations, parameters against the template), so a user's mistake never leaves a workflow behind. Then the CLI
polls the workflow's ``status`` query, prints each stage on stderr and the what-if plan on stdout, asks y/N on a
terminal when deletions need confirmation (otherwise prints the exact approve commands), and exits with the code
of the outcome (see ``client.exit_codes``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from arm_engine import DeploymentScope, TemplateError
from client.bicep_deploy import build_bicep_deploy_request, is_bicep_deployment, resolve_bicep_inputs
from client.cli import colour
from client.cli._common import (
    IDENTITY_SOURCE,
    OUTCOME_EXIT_CODES,
    CommandError,
    Target,
    add_target_args,
    approve_commands,
    current_user,
    local_flag,
    open_store,
    print_json,
    progress,
    resolve_target,
    run_command,
    store_write_error,
)
from client.cli.audit import add_audit_dir_arguments, write_deployment_audit
from client.cli.secure_input import add_secure_value_arguments, apply_secure_values
from client.deployments import (
    DeploymentAlreadyRunning,
    build_deploy_request,
    query_status,
    result_of,
    start_deployment,
)
from client.exit_codes import ExitCode
from client.health.cli import add_health_arguments, health_spec_from_args
from client.health.live import LiveHealthTable, live_health_progress, live_resource_wait, resource_wait_line
from client.inputs import (
    MAX_TEMPLATE_FILE_BYTES,
    DeploymentInputs,
    InputError,
    check_audit_dir,
    read_deployment_inputs,
    read_input_file,
    validate_git_sha,
    validate_location,
    validate_resource_group_name,
    validate_subscription_id,
)
from contract.approvals import StartStatement, statement_digest, utc_text
from contract.health import HealthProgress, parse_duration
from contract.health_targets import declared_outputs, declared_outputs_from_bicep
from contract.models import (
    SIGNAL_APPROVE,
    SIGNAL_REJECT,
    ApprovalSignal,
    DeploymentMode,
    DeploymentStage,
    DeploymentStatus,
    DeployOutcome,
    DeployRequest,
    DeployResult,
    StageTransition,
)
from contract.naming import workflow_id_for
from contract.plan_text import plan_documents, render_plan
from services.classification import retried_within_stage
from services.codec import CodecKeyError
from services.content_store import BlobStore
from services.health.bundles import store_ca_bundles
from services.last_good import rollback_summary
from services.secrets import redact, secret_strings
from services.temporal_client import data_converter

POLL_SECONDS = 0.5
NO_WORKER_HINT_SECONDS = 15.0
QUERY_TIMEOUT_SECONDS = 2.0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "deploy",
        help="deploy an ARM template to a resource group through the deployment workflow",
        description="Validate, lint, plan (what-if), confirm deletions, deploy and verify an ARM JSON template as "
        "a durable Temporal workflow. Exit codes: 0 success, 1 logic failure, 2 usage error, 3 environmental "
        "failure after retries (health: after its convergence window), 4 rejected or not confirmed in time, "
        "5 failed and rolled back (--rollback-on-failure).",
    )
    p.add_argument("-g", "--resource-group", required=True, help="target resource group (created if missing)")
    p.add_argument("-l", "--location", required=True, help="Azure region of the resource group, e.g. eastus")
    p.add_argument(
        "-t",
        "--template",
        help="template: ARM JSON, or .bicep (compiled and linted on the worker); optional with a .bicepparam -p",
    )
    p.add_argument(
        "-p", "--parameters", help="parameters file: .json (ARM deployment parameters) or .bicepparam (its `using`)"
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one parameter (repeatable); VALUE is JSON when it parses as JSON, else a string",
    )
    p.add_argument(
        "--secret-param",
        action="append",
        default=[],
        metavar="NAME",
        help="treat parameter NAME as secret like a securestring (repeatable): its value (from -p or --param) is "
        "sealed in the content store, never in history, logs or output (docs/SECURITY.md)",
    )
    add_secure_value_arguments(p)
    p.add_argument("--allow-warnings", action="store_true", help="do not halt on lint warnings")
    p.add_argument(
        "--no-confirm-deletes",
        action="store_true",
        help="deploy a plan that deletes resources without waiting for approval (recorded in the audit)",
    )
    p.add_argument("--skip-health", action="store_true", help="skip the post-deployment health verification")
    p.add_argument(
        "--key",
        metavar="PATH",
        default=None,
        help="sign the start with this SSH key, as your OS account (an approval policy may require it: "
        "docs/SECURITY.md)",
    )
    p.add_argument(
        "--rollback-on-failure",
        action="store_true",
        help="when DEPLOYING or VERIFYING_HEALTH fails, redeploy the last deployment of this resource group that "
        "completed healthy (default: off); exit code 5 when the rollback succeeds",
    )
    add_health_arguments(p)
    add_audit_dir_arguments(  # the record is written when the workflow ends (client/cli/audit.py)
        p, help_dir="folder that receives this deployment's audit record (default: $ORCHESTRATOR_AUDIT_DIR, ./audit)"
    )
    p.add_argument("--git-sha", help="commit the template comes from (default: detected with git; none outside git)")
    p.add_argument(
        "--mode",
        choices=[m.value for m in DeploymentMode],
        default=DeploymentMode.INCREMENTAL.value,
        help="Incremental (default) leaves other resources alone; Complete deletes what the template omits",
    )
    p.add_argument("--subscription", help="subscription id (default: AZURE_SUBSCRIPTION_ID; --local: the local one)")
    p.add_argument(
        "--confirmation-timeout",
        metavar="DURATION",
        help="how long a plan that deletes waits for approve/reject before failing as not confirmed (exit 4): "
        "seconds or 30s, 10m, 2h (default: the worker's, 1h)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="queue behind a running deployment of the same resource group instead of being refused",
    )
    add_target_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_command(lambda: deploy(args), output=args.output)


# ------------------------------------------------------------------------------------------------ local checks


def detect_git_sha(template: Path) -> str | None:
    """HEAD of the git repository holding the template, or None when it is not in one (or git is absent)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(template.resolve().parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", sha) else None


_PARAMETER_ISSUES = frozenset(
    {
        "MissingParameter",
        "UnknownParameter",
        "ParameterTypeMismatch",
        "ParameterValueNotAllowed",
        "ParameterOutOfRange",
        "InvalidParametersFile",
    }
)


def check_against_template(inputs: DeploymentInputs, *, resource_group: str, location: str) -> dict[str, Any] | None:
    """Unknown parameter names and wrong types, found offline by the ARM engine: a logic failure (exit 1).
    Returns the outputs whose values the engine already knows (name → value), or None when it could not expand."""
    from arm_engine.template import expand_template

    scope = DeploymentScope(resource_group=resource_group, location=location)
    file_parameters = {k: v for k, v in inputs.parameters.items() if k not in inputs.overrides}
    try:
        expanded = expand_template(
            inputs.template,
            parameters=file_parameters,
            overrides=inputs.overrides or None,
            scope=scope,
            template_source=str(inputs.template_path),
            parameters_source=str(inputs.parameters_path) if inputs.parameters_path else None,
        )
    except TemplateError as exc:
        # Only the parameter checks are decided here; any other finding is left to the workflow's validation
        # stage, which reports it with the rest of the deployment's record.
        issues = [i for i in exc.issues if i.code in _PARAMETER_ISSUES]
        if not issues:
            return None
        source = str(inputs.template_path)
        lines = []
        for issue in issues[:10]:
            where = issue.source or source
            lines.append(f"{where}: {issue.message}" + (f" ({issue.path})" if issue.path else ""))
        more = f" (and {len(issues) - 10} more)" if len(issues) > 10 else ""
        raise CommandError(
            "The template and its parameters do not fit together: "
            + "; ".join(lines)
            + more
            + ". Fix the parameters file, the --param values or the template; no workflow was started.",
            ExitCode.LOGIC_FAILURE,
        ) from None
    return {
        name: output.value
        for name, output in expanded.outputs.items()
        if not output.deferred and not _holds_deferred(output.value)
    }


def _holds_deferred(value: Any) -> bool:
    from arm_engine.values import Deferred

    if isinstance(value, Deferred):
        return True
    if isinstance(value, dict):
        return any(_holds_deferred(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_deferred(v) for v in value)
    return False


def marked_secret_values(inputs: DeploymentInputs, names: list[str]) -> list[str]:
    """The values of the --secret-param parameters (to mask in messages); an unknown name is a usage error."""
    if not names:
        return []
    declared = {str(k).lower() for k in (inputs.template.get("parameters") or {})}
    unknown = [n for n in names if n.lower() not in declared]
    if unknown:
        raise InputError(
            f"--secret-param {unknown[0]} names no parameter of the template '{inputs.template_path}' (it declares "
            f"{', '.join(sorted(declared)) or 'none'}). Name a declared parameter."
        )
    wanted = {n.lower() for n in names}
    return secret_strings(v for k, v in inputs.parameter_values().items() if k.lower() in wanted)


def resolve_subscription(args: argparse.Namespace, target: Target | None) -> str:
    import os

    sub = args.subscription or (target.instance.subscription_id if target and target.instance else None)
    sub = sub or os.environ.get("AZURE_SUBSCRIPTION_ID")
    if not sub:
        raise InputError(
            "No subscription: pass --subscription SUBSCRIPTION_ID or set AZURE_SUBSCRIPTION_ID "
            "(`az account show --query id -o tsv` prints yours), or use --local for the embedded default."
        )
    return validate_subscription_id(sub).lower()


def read_inputs(args: argparse.Namespace) -> tuple[DeploymentInputs, str, str]:
    resource_group = validate_resource_group_name(args.resource_group)
    location = validate_location(args.location)
    inputs = read_deployment_inputs(template=args.template, parameters=args.parameters, overrides=args.param)
    return inputs, resource_group, location


async def _check_arm_reachable(target: Target) -> None:
    """With --local we know where the worker's ARM is: refuse early (exit 3) rather than start a workflow that
    can only retry."""
    instance = target.instance
    if instance is None or not instance.arm_endpoint:
        return
    from urllib.parse import urlsplit

    parts = urlsplit(instance.arm_endpoint)
    host, port = parts.hostname or "127.0.0.1", parts.port or 443
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=5)
        writer.close()
    except (OSError, TimeoutError):
        raise CommandError(
            f"The embedded default's local ARM at {instance.arm_endpoint} does not answer, so the deployment "
            "could only retry and fail. Restart `python starter.py dev` and try again; no workflow was started.",
            ExitCode.ENVIRONMENTAL,
        ) from None


# ------------------------------------------------------------------------------------------------ the command


async def deploy(args: argparse.Namespace, *, client: Client | None = None) -> int:
    bicep = is_bicep_deployment(args.template, args.parameters)
    known_outputs: dict[str, Any] | None = None  # outputs the engine knows before deploying (ARM JSON only)
    if bicep:  # compiled and checked on the worker at LINTING; here only what needs no compiler
        resource_group = validate_resource_group_name(args.resource_group)
        location = validate_location(args.location)
        template_path, _ = resolve_bicep_inputs(args.template, args.parameters)
        if getattr(args, "secret_param", []):
            raise InputError(
                f"--secret-param {args.secret_param[0]}: a Bicep deployment marks secrets in the Bicep file itself; "
                "declare the parameter @secure() there (its value is then sealed like any securestring)."
            )
    else:
        if not args.template:
            raise InputError("No template: give -t/--template (or -p with a .bicepparam file whose `using` names one).")
        inputs, resource_group, location = read_inputs(args)
        from_elsewhere = apply_secure_values(args, inputs, interactive=_interactive(args.output))
        args.secret_param = sorted({*getattr(args, "secret_param", []), *from_elsewhere})
        hidden = marked_secret_values(inputs, getattr(args, "secret_param", []))
        try:
            known_outputs = check_against_template(inputs, resource_group=resource_group, location=location)
        except CommandError as exc:  # the engine masks securestring values; --secret-param ones are masked here
            raise CommandError(redact(str(exc), hidden), exc.code) from None
        template_path = inputs.template_path
    health = health_spec_from_args(  # refused here, before anything starts, naming the input
        args,
        template_path=template_path,
        declared_outputs=(
            declared_outputs_from_bicep(
                read_input_file(
                    template_path, what="template", flag="-t/--template", max_bytes=MAX_TEMPLATE_FILE_BYTES
                ).decode("utf-8", errors="replace")
            )
            if bicep
            else declared_outputs(inputs.template)
        ),
        skip_health=args.skip_health,
        known_outputs=known_outputs,
    )
    confirmation_timeout(args)  # a bad value is refused before connecting
    git_sha = validate_git_sha(args.git_sha) if args.git_sha is not None else detect_git_sha(template_path)
    check_audit_dir(args.audit_dir)  # the record the user asked for must be writable before anything starts
    if args.subscription or not args.local:
        resolve_subscription(args, None)  # a missing or malformed subscription is a usage error before connecting
    open_store(None)  # so is a bad content store setting (ORCHESTRATOR_CONTENT_STORE, ORCHESTRATOR_BLOB_*)
    target = await resolve_target(args, client)
    subscription = resolve_subscription(args, target)
    await _check_arm_reachable(target)
    store = open_store(target)
    try:
        request = _build_request(
            args,
            bicep,
            inputs if not bicep else None,
            store=store,
            subscription=subscription,
            resource_group=resource_group,
            location=location,
            git_sha=git_sha,
        )
    except OSError as exc:
        raise store_write_error(store, exc, "the template") from None
    try:  # CA bundles go to the content store once, not into every check of the request (payload limit)
        health = store_ca_bundles(health, store)
    except OSError as exc:
        raise store_write_error(store, exc, "a health check's CA file") from None
    request = request.model_copy(update={"health": health})
    check_request_size(request)
    handle = await _start(target, request, wait=args.wait)
    progress(f"Started workflow {handle.id} (run {handle.result_run_id}) on task queue {target.task_queue}.")
    if target.instance:
        progress(f"  Temporal UI: {target.instance.ui_url}/namespaces/{target.namespace}/workflows/{handle.id}")
    try:
        result = await follow(handle, target, store=store, output=args.output)
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C reaches a coroutine as cancellation
        progress(
            f"Stopped following. The deployment continues in workflow {handle.id}: "
            f"`python starter.py status {handle.id}{local_flag(target)}`."
        )
        raise
    except RPCError as exc:
        raise CommandError(
            f"Lost the Temporal server at {target.address} while following workflow {handle.id} ({exc.message}). "
            f"The deployment itself is durable: once the server is back, `python starter.py status {handle.id}"
            f"{local_flag(target)}` shows where it is.",
            ExitCode.ENVIRONMENTAL,
        ) from None
    args.deploy_result = result  # for callers that run deploy in-process (demo's closing sentence)
    await write_deployment_audit(
        target, handle.id, handle.result_run_id, audit_dir=args.audit_dir, fmt=getattr(args, "audit_format", "both")
    )
    return report(result, output=args.output, target=target)


def _build_request(
    args: argparse.Namespace,
    bicep: bool,
    inputs: DeploymentInputs | None,
    *,
    store: BlobStore,
    subscription: str,
    resource_group: str,
    location: str,
    git_sha: str | None,
) -> DeployRequest:
    if bicep:
        request = build_bicep_deploy_request(
            store=store,
            template=args.template,
            parameters=args.parameters,
            overrides=args.param,
            subscription_id=subscription,
            resource_group=resource_group,
            location=location,
            mode=DeploymentMode(args.mode),
            allow_warnings=args.allow_warnings,
            no_confirm_deletes=args.no_confirm_deletes,
            skip_health=args.skip_health,
            git_sha=git_sha,
            initiator=current_user(),
            audit_dir=str(Path(args.audit_dir).resolve()) if args.audit_dir else None,
        )
    else:
        assert inputs is not None
        request = build_deploy_request(
            store=store,
            template=inputs.template,
            subscription_id=subscription,
            resource_group=resource_group,
            location=location,
            parameters={k: v for k, v in inputs.parameters.items() if k not in inputs.overrides},
            overrides=inputs.overrides,
            # Absolute, so the audit names the file and LINTING can point at lines of the user's own copy.
            template_path=str(inputs.template_path.resolve()),
            parameters_path=str(inputs.parameters_path.resolve()) if inputs.parameters_path else None,
            secret_names=getattr(args, "secret_param", []),
            mode=DeploymentMode(args.mode),
            allow_warnings=args.allow_warnings,
            no_confirm_deletes=args.no_confirm_deletes,
            skip_health=args.skip_health,
            git_sha=git_sha,
            initiator=current_user(),
            audit_dir=str(Path(args.audit_dir).resolve()) if args.audit_dir else None,
        )
    if getattr(args, "rollback_on_failure", False):
        request = request.model_copy(update={"rollback_on_failure": True})
    timeout = confirmation_timeout(args)
    if timeout is not None:
        request = request.model_copy(update={"confirmation_timeout_seconds": timeout})
    if getattr(args, "key", None):
        request = signed_start(request, key=args.key)
    return request


START_STATEMENT_LIFETIME = timedelta(minutes=10)  # the start follows at once; the policy may allow less


def signed_start(request: DeployRequest, *, key: str) -> DeployRequest:
    """The request with the initiator's signed start statement (verified approvals, docs/SECURITY.md)."""
    from client.cli.approvals import sign_statement

    now = datetime.now(UTC)
    statement = StartStatement(
        workflow_id=workflow_id_for(request.subscription_id, request.resource_group),
        subscription_id=request.subscription_id,
        resource_group=request.resource_group,
        template_digest=request.template.digest,
        mode=request.mode.value,
        identity=request.initiator,
        issued_at=utc_text(now),
        expires_at=utc_text(now + START_STATEMENT_LIFETIME),
    )
    progress(f"Signing the start as {request.initiator} with {key} (statement {statement_digest(statement)})")
    proof = sign_statement(statement, key=key)
    return request.model_copy(update={"start_statement": statement, "start_proof": proof})


MAX_CONFIRMATION_TIMEOUT_SECONDS = 30 * 86400.0


def confirmation_timeout(args: argparse.Namespace) -> float | None:
    """``--confirmation-timeout`` in seconds (None: the worker's default); a usage error names the flag."""
    given = getattr(args, "confirmation_timeout", None)
    if given is None:
        return None
    try:
        seconds = parse_duration(given)
    except ValueError as exc:
        raise InputError(f"--confirmation-timeout: {exc}.") from None
    if not 1 <= seconds <= MAX_CONFIRMATION_TIMEOUT_SECONDS:
        raise InputError(
            f"--confirmation-timeout {given!r} is out of range: give between 1 s and 30 days (e.g. 30m, 2h)."
        )
    return seconds


async def _start(target: Target, request: DeployRequest, *, wait: bool) -> WorkflowHandle[Any, DeployResult]:
    watcher: asyncio.Task[None] | None = None

    async def on_busy(running: WorkflowHandle[Any, Any]) -> None:
        nonlocal watcher
        if watcher is not None:
            watcher.cancel()
        watcher = asyncio.ensure_future(_watch_blocker(running, target))

    try:
        return await start_deployment(
            target.client, request, wait=wait, task_queue=target.task_queue, on_busy=on_busy if wait else None
        )
    except RPCError as exc:
        raise CommandError(
            f"The Temporal server at {target.address} refused to start the deployment workflow in namespace "
            f"'{target.namespace}': {exc.message}. Check the namespace (TEMPORAL_NAMESPACE) and the server's "
            "health; nothing was started.",
            ExitCode.ENVIRONMENTAL,
        ) from None
    except DeploymentAlreadyRunning as exc:
        raise CommandError(
            f"Resource group '{request.resource_group}' already has a deployment running: workflow "
            f"{exc.workflow_id}. Follow it with `python starter.py status {exc.workflow_id}{local_flag(target)}`, or "
            "run this command again with --wait to queue behind it. Nothing new was started.",
            ExitCode.ENVIRONMENTAL,
        ) from None
    finally:
        if watcher is not None:
            watcher.cancel()


async def _watch_blocker(running: WorkflowHandle[Any, Any], target: Target) -> None:
    """--wait: say which deployment holds the resource group, where it is, and — when it waits for an approval —
    what it waits for and who can give it; again whenever its stage changes."""
    said: tuple[str, int] | None = None
    while True:
        status = await _try_status(running)
        stage = status.stage.value if status else "unknown (no worker answered yet)"
        pending = status.pending_confirmation if status else None
        key = (stage, pending.round if pending else 0)
        if key != said:
            said = key
            progress(
                f"Waiting for deployment {running.id} to finish first (--wait): it holds this resource group and is "
                f"at {stage}."
            )
            if status is not None and status.stage == DeploymentStage.AWAITING_CONFIRMATION and pending:
                policy = pending.approval_policy
                who = "anyone"
                if policy is not None and policy.allowed_approvers is not None:
                    who = ", ".join(policy.allowed_approvers) or "nobody listed"
                if policy is not None and not policy.allow_self_approval:
                    who += f" (not its initiator, {_initiator_of(status)})"
                progress(
                    f"  It waits for approval of {len(pending.destructive_changes)} deletion(s) until "
                    f"{pending.deadline.isoformat(timespec='seconds')}; who may decide: {who}.\n"
                    f"  python starter.py approve {running.id}{local_flag(target)} --reason '...'   (or reject)"
                )
        await asyncio.sleep(2.0)


def _initiator_of(status: DeploymentStatus) -> str:
    first = status.transitions[0] if status.transitions else None
    return (first.by if first is not None else None) or "unknown"


# ------------------------------------------------------------------------------------------------ following


class _Prompt:
    """A y/N question on the terminal that does not block the event loop (and is abandoned if the workflow ends
    first: the daemon thread dies with the process)."""

    def __init__(self, question: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[str] = self.loop.create_future()
        sys.stderr.write(question)
        sys.stderr.flush()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            line = sys.stdin.readline()
        except (OSError, ValueError):
            line = ""
        self.loop.call_soon_threadsafe(self._set, line)

    def _set(self, line: str) -> None:
        if not self.future.done():
            self.future.set_result(line)


def _interactive(output: str) -> bool:
    return output == "text" and sys.stdin.isatty() and sys.stderr.isatty()


async def follow(
    handle: WorkflowHandle[Any, Any], target: Target, *, store: BlobStore | None, output: str
) -> DeployResult:
    """Poll ``status`` until the workflow ends; print stages (stderr), the plan (stdout), confirmation prompts."""
    result_task = asyncio.ensure_future(result_of(handle))
    seen = 0
    plan_shown = False
    asked_round = 0
    prompt: _Prompt | None = None
    health_table = LiveHealthTable()
    loop = asyncio.get_running_loop()
    silent_since = loop.time()
    hinted = False
    failures_shown: dict[DeploymentStage, int] = {}
    rollback_failures_shown: dict[DeploymentStage, int] = {}
    rollback_plan_shown = False
    rolling_back = False
    notes_shown: set[str] = set()
    waiting_shown: dict[str, str] | None = None
    try:
        while not result_task.done():
            status = await _try_status(handle)
            if status is None and not hinted and loop.time() - silent_since > NO_WORKER_HINT_SECONDS:
                hinted = True
                progress(
                    f"  (no worker has answered for {NO_WORKER_HINT_SECONDS:.0f} s: is one polling task queue "
                    f"'{target.task_queue}'? Start `python worker.py`, or use --local with `starter.py dev`. "
                    "The deployment waits for it.)"
                )
            if status is not None:
                for transition in status.transitions[seen:]:
                    # The plan goes out before the first stage that follows planning, as a reader expects.
                    if status.plan is not None and not plan_shown and transition.stage in _AFTER_PLANNING:
                        plan_shown = True
                        _show_plan(status.plan, store, output)
                    # The rollback's plan likewise, deletions or not: what will be redeployed over the failed one.
                    rollback = status.rollback
                    if (
                        rollback is not None
                        and rollback.plan is not None
                        and not rollback_plan_shown
                        and rolling_back
                        and transition.stage in (DeploymentStage.AWAITING_CONFIRMATION, DeploymentStage.DEPLOYING)
                    ):
                        rollback_plan_shown = True
                        if output == "text":
                            progress("  Rollback plan (the last good deployment over the current state):")
                        _show_plan(rollback.plan, store, output)
                    progress(_stage_line(transition, status, handle.id, target))
                    rolling_back = rolling_back or "rolling back to the last good" in transition.detail
                seen = len(status.transitions)
                for line in _retry_lines(status, failures_shown):
                    progress(line)
                rollback = status.rollback
                if rollback is not None:
                    for line in _retry_lines(status, rollback_failures_shown, rollback=True):
                        progress(line)
                for resource_id, note in status.health_notes.items():
                    if resource_id not in notes_shown and output != "json":
                        notes_shown.add(resource_id)
                        progress(f"  [VERIFYING_HEALTH] note: {resource_id}: {note}")
                pending = status.pending_confirmation
                if status.stage == DeploymentStage.AWAITING_CONFIRMATION and pending and pending.round > asked_round:
                    asked_round = pending.round
                    prompt = _ask(status, target, handle.id, output)
            if status is not None and status.stage == DeploymentStage.VERIFYING_HEALTH:
                waiting = await _resource_wait(handle)
                if waiting and waiting != waiting_shown:  # once per change of what it waits for, not every poll
                    progress(resource_wait_line(waiting))
                waiting_shown = waiting if waiting else waiting_shown
                health_table.show(await _health_progress(handle))
            if prompt is not None and prompt.future.done():
                await _answer(handle, status, prompt.future.result())
                prompt = None
            await asyncio.wait({result_task}, timeout=POLL_SECONDS)
        result = result_task.result()
    finally:
        if not result_task.done():
            result_task.cancel()
    # The final state, exact (stderr): after a rollback, the rollback's own checks (the failed ones were drawn live
    # and are in the failure); redrawing the failing table last would read as the outcome.
    final = result.rollback.health_checks if result.rollback is not None else result.health_checks
    health_table.show_report(final, final=True)
    for transition in result.transitions[seen:]:
        if result.plan is not None and not plan_shown and transition.stage in _AFTER_PLANNING:
            plan_shown = True
            _show_plan(result.plan, store, output)
        progress(_stage_line(transition, result, handle.id, target))
    for resource_id, note in result.health_notes.items():  # ended before a poll saw them
        if resource_id not in notes_shown:
            notes_shown.add(resource_id)
            progress(f"  [VERIFYING_HEALTH] note: {resource_id}: {note}")
    if not plan_shown and result.plan is not None:
        _show_plan(result.plan, store, output)
    if prompt is not None:
        sys.stderr.write("\n(the deployment ended before an answer was given)\n")
    return result


def _retry_lines(status: DeploymentStatus, shown: dict[DeploymentStage, int], *, rollback: bool = False) -> list[str]:
    """A line for each failed attempt not reported yet, with when the stage tries again: retries can take minutes
    (5, 10, 20, 40, 80 s by default), and silence would look like a hang. ``shown`` remembers what was printed.
    ``rollback``: the rollback's own stages (labelled as such)."""
    lines = []
    stages = status.rollback.stages if rollback and status.rollback is not None else status.stages
    label = "rollback " if rollback else ""
    for stage, sp in stages.items():
        if not sp.last_error_code or sp.finished_at is not None:
            continue
        # Failed attempts as the workflow counts them; from an older worker: waiting out a backoff, the latest
        # attempt failed, running again, the one before it did.
        failed = sp.failures or (sp.attempts if sp.retry_at is not None else sp.attempts - 1)
        if failed < 1 or failed <= shown.get(stage, 0):
            continue
        shown[stage] = failed
        cls = f"{sp.last_error_class.value} " if sp.last_error_class else ""
        message = (sp.last_error or "").splitlines()[0][:200] if sp.last_error else ""
        if sp.retry_at is not None:
            wait = max(0.0, (sp.retry_at - datetime.now(UTC)).total_seconds())
            then = f"trying again in {wait:.0f} s ({sp.retry_at.astimezone().strftime('%H:%M:%S')})"
        else:
            then = "trying again now"
        lines.append(f"  [{label}{stage.value}] attempt {failed} failed, {cls}{sp.last_error_code}: {message}; {then}")
    return lines


# Temporal refuses payloads over 2 MB; the request is one, and history repeats it in activity inputs.
MAX_REQUEST_BYTES = 1024 * 1024


def check_request_size(request: DeployRequest) -> None:
    """Refuse, naming the input, a request too large to start (templates and secret values are already references,
    so only inline parts can make it so: parameter values and health declarations)."""
    size = len(request.model_dump_json())
    if size <= MAX_REQUEST_BYTES:
        return
    parts = {
        "the health checks (--health-check / the health file)": len(request.health.model_dump_json()),
        "the parameter values (-p / --param)": len(json.dumps(request.parameters, default=str)),
    }
    culprit, culprit_size = max(parts.items(), key=lambda item: item[1])
    raise InputError(
        f"The deployment request would be {size / 1024:.0f} KiB, over the {MAX_REQUEST_BYTES // 1024} KiB a "
        f"workflow input may take; {culprit} make up {culprit_size / 1024:.0f} KiB of it. Make them smaller (put "
        "large values in the template or a Key Vault reference); nothing was started."
    )


async def _resource_wait(handle: WorkflowHandle[Any, Any]) -> dict[str, str] | None:
    """What the resource-state wait of VERIFYING_HEALTH waits for, from its heartbeat (None when not running)."""
    try:
        return await live_resource_wait(handle, data_converter())
    except Exception:  # a describe() hiccup must not stop following the deployment
        return None


async def _health_progress(handle: WorkflowHandle[Any, Any]) -> HealthProgress | None:
    """The running health checks' latest state for the live table; None when unavailable (never fatal)."""
    try:
        return await live_health_progress(handle, data_converter())
    except Exception:  # a describe() hiccup must not stop following the deployment
        return None


_AFTER_PLANNING = frozenset(
    {
        DeploymentStage.AWAITING_CONFIRMATION,
        DeploymentStage.DEPLOYING,
        DeploymentStage.VERIFYING_HEALTH,
        DeploymentStage.COMPLETED,
        DeploymentStage.FAILED,
    }
)


def _show_plan(plan: Any, store: BlobStore | None, output: str) -> None:
    if output != "text":
        return
    sys.stderr.flush()
    sys.stdout.write(colour.plan(render_plan(plan_documents(plan, store)), sys.stdout))
    sys.stdout.flush()


def status_set(status: DeploymentStatus | None) -> list[str] | None:
    if status is None or status.pending_confirmation is None:
        return None
    return sorted({c.resource_id.lower() for c in status.pending_confirmation.destructive_changes})


async def _try_status(handle: WorkflowHandle[Any, Any]) -> DeploymentStatus | None:
    try:
        # Bounded: a query waits for a worker, and the loop must go on to print hints and notice the result.
        return await asyncio.wait_for(query_status(handle), timeout=QUERY_TIMEOUT_SECONDS)
    except CodecKeyError:
        raise
    except Exception:  # not yet picked up by a worker, or between tasks: try again at the next poll
        return None


def _localized(detail: str, workflow_id: str, target: Target) -> str:
    """A command the workflow names in a detail (the rollback's `rollback-params` hint) as this CLI must type it:
    the workflow cannot know the user reached it with --local."""
    flag = local_flag(target)
    if not flag or "python starter.py " not in detail:
        return detail
    pattern = rf"(python starter\.py [a-z-]+ {re.escape(workflow_id)})(?! --local)"
    return re.sub(pattern, lambda m: m.group(1) + flag, detail)


def _started(status: DeploymentStatus | DeployResult) -> datetime | None:
    """When the deployment was requested (its first transition), the origin of the stage lines' times."""
    return status.transitions[0].at if status.transitions else None


def _stage_line(
    transition: StageTransition, status: DeploymentStatus | DeployResult, workflow_id: str, target: Target
) -> str:
    """A transition as the user reads it while following: coloured stage, time since the request, and any command
    the workflow names spelled as this CLI must type it."""
    return _transition_line(
        transition.stage,
        _localized(transition.detail, workflow_id, target),
        transition.by,
        since=_started(status),
        at=transition.at,
    )


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


def _transition_line(
    stage: DeploymentStage,
    detail: str,
    by: str | None,
    *,
    since: datetime | None = None,
    at: datetime | None = None,
) -> str:
    text = f"  {colour.stage(stage.value, sys.stderr)}"
    # The detail of the transition into LINTING (PLANNING) reports what validation (lint) found: bracket it, or
    # "[LINTING] 4 resources, parameters valid" reads as if linting had found it.
    if detail and stage is DeploymentStage.LINTING:
        detail = f"(validation: {detail})"
    elif detail and stage is DeploymentStage.PLANNING and detail.startswith("lint:"):
        detail = f"({detail})"
    if detail:
        text += f" {detail}"
    if by and f"by {by}" not in detail:  # "rejected by ana: ..." names the person already
        text += f" (by {by})"
    if since is not None and at is not None:  # time since the deployment was requested
        text += " " + colour.paint(f"+{_elapsed(max(0.0, (at - since).total_seconds()))}", colour.GREY, sys.stderr)
    return text


def _ask(status: DeploymentStatus, target: Target, workflow_id: str, output: str) -> _Prompt | None:
    pending = status.pending_confirmation
    assert pending is not None
    deleted = [c.resource_id for c in pending.destructive_changes]
    progress(
        f"The plan deletes {len(deleted)} resource(s); the deployment waits for confirmation until "
        f"{pending.deadline.isoformat(timespec='seconds')}:"
    )
    for resource_id in deleted:
        progress(f"  - {resource_id}")
    policy = pending.approval_policy
    me = current_user()
    if policy is not None and policy.trust is not None:  # verified approvals: each approver signs (docs/SECURITY.md)
        trust = policy.trust
        progress(
            f"The approval policy ({trust.source or 'the worker'}) needs {pending.required_approvals} approval(s) "
            f"proven by {' or '.join(trust.accepted_proofs)}; each approver runs:"
        )
        progress(
            f"  python starter.py approve {workflow_id}{local_flag(target)} --key ~/.ssh/id_ed25519 --reason '...'"
        )
        progress(f"or reject with: python starter.py reject {workflow_id}{local_flag(target)} --key ... --reason '...'")
        return None
    if policy is not None and policy.refusal(approver=me, initiator=me, approving=True):  # four eyes
        who = ", ".join(policy.allowed_approvers or []) or "anyone but you"
        progress(f"Four eyes: you started this deployment, so another person must approve it ({who}), with:")
        progress(f"  python starter.py approve {workflow_id}{local_flag(target)} --reason '...'")
        progress(f"or reject with: python starter.py reject {workflow_id}{local_flag(target)} --reason '...'")
        return None
    if _interactive(output):
        return _Prompt(f"Delete {len(deleted)} resource(s) and deploy? [y/N] ")
    progress("Approve with either of:")
    for command in approve_commands(target, workflow_id, status_set(status), pending.plan_hash):
        progress(f"  {command}")
    progress(f"or reject with: python starter.py reject {workflow_id}{local_flag(target)} --reason '...'")
    return None


async def _answer(handle: WorkflowHandle[Any, Any], status: DeploymentStatus | None, answer: str) -> None:
    approved = answer.strip().lower() in ("y", "yes")
    pending = status.pending_confirmation if status is not None else None
    signal = ApprovalSignal(
        approver=current_user(),
        reason="confirmed at the terminal prompt" if approved else "declined at the terminal prompt",
        destructive_set=status_set(status),
        plan_hash=pending.plan_hash if pending is not None else None,
        decision_id=uuid.uuid4().hex,
        identity_source=IDENTITY_SOURCE,
    )
    try:
        await handle.signal(SIGNAL_APPROVE if approved else SIGNAL_REJECT, signal)
    except Exception as exc:  # the deployment moved on (approved elsewhere, timed out) while we waited for input
        progress(f"Your answer was not delivered: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}.")
        return
    from client.cli.approvals import decision_outcome

    assert signal.decision_id is not None
    outcome, why = await decision_outcome(handle, signal.decision_id) if signal.plan_hash else ("taken", None)
    if outcome == "refused":  # decided elsewhere meanwhile, or the plan changed: say so, the deployment goes on
        progress(f"Your answer was refused by the deployment: {why}.")
    else:
        progress("Approved." if approved else "Rejected.")


# ------------------------------------------------------------------------------------------------ the result


# The JSON document `deploy --output json` prints (docs/OUTPUT.md). Bump only for a breaking change: removing or
# renaming a field, or changing a type or meaning; new fields may appear within a version.
RESULT_SCHEMA_VERSION = 1


def duration_seconds(result: DeployResult) -> float | None:
    """From the request to the last transition (the workflow's own clock, so the same for every reader)."""
    if len(result.transitions) < 2:
        return None
    return max(0.0, (result.transitions[-1].at - result.transitions[0].at).total_seconds())


def result_document(result: DeployResult) -> dict[str, Any]:
    doc = {"schema_version": RESULT_SCHEMA_VERSION, **result.model_dump(mode="json")}
    doc["duration_seconds"] = duration_seconds(result)
    doc["exit_code"] = int(OUTCOME_EXIT_CODES.get(result.outcome, ExitCode.ENVIRONMENTAL))
    doc["has_changes"] = bool(result.has_changes or (result.plan is not None and result.plan.has_changes))
    doc["change_counts"] = dict(result.plan.counts) if result.plan else {}
    return doc


def report(result: DeployResult, *, output: str, target: Target) -> int:
    code = OUTCOME_EXIT_CODES.get(result.outcome, ExitCode.ENVIRONMENTAL)
    if output == "json":
        print_json(result_document(result))
        return int(code)
    out = sys.stdout
    took = duration_seconds(result)
    if took is not None:  # after the result, as the last thing a reader sees
        progress(f"  took {_elapsed(took)} in total (requested to {result.outcome.value})")
    if result.outcome == DeployOutcome.SUCCEEDED:
        out.write(f"Deployment succeeded: workflow {result.workflow_id}, ARM deployment {result.deployment_name}.\n")
        if result.skipped_health:
            out.write("Health verification was skipped (--skip-health).\n")
        for name, value in sorted(result.outputs.items()):
            out.write(f"  output {name} = {json.dumps(value, ensure_ascii=False)}\n")
    else:
        failure = result.failure
        what = {
            DeployOutcome.LOGIC_FAILURE: "failed (logic failure: fix the input; a retry will not help)",
            DeployOutcome.ENVIRONMENTAL_FAILURE: "failed (environmental failure that outlasted the retries)",
            DeployOutcome.REJECTED: "was rejected",
            DeployOutcome.NOT_CONFIRMED: "was not confirmed in time",
            DeployOutcome.CANCELLED: "was cancelled",
            DeployOutcome.ROLLED_BACK: "failed and was rolled back to the last healthy deployment",
            DeployOutcome.REFUSED: "was refused by the worker's policy before it started (nothing was deployed)",
        }.get(result.outcome, "failed")
        within = retried_within_stage(failure.code) if failure is not None else None
        if result.outcome == DeployOutcome.ENVIRONMENTAL_FAILURE and within:
            what = "failed (environmental failure, not retried again: the convergence window was the retry)"
        out.write(f"Deployment {what}: workflow {result.workflow_id}.\n")
        if failure is not None:
            attempts = f" after {failure.attempts} attempt(s)" if failure.attempts > 1 else ""
            out.write(f"  at {failure.stage.value}: {failure.code}{attempts}: {failure.message}\n")
            if within:
                out.write(f"  {within}; a longer --health-window gives it more time\n")
        if result.rollback is not None:
            out.write(f"  {rollback_summary(result.rollback)}\n")
        for record in result.confirmations:
            if record.reason and not (failure and record.reason in failure.message):
                out.write(f"  {record.decision.value.lower()} by {record.by}: {record.reason}\n")
        out.write(f"  details: python starter.py status {result.workflow_id}{local_flag(target)}\n")
    out.flush()
    return int(code)
