"""What the deployment commands share: finding the Temporal server, reporting failures as exit codes, output."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client

from client.cli.colour import add_colour_argument
from client.embedded import ENV_TASK_QUEUE, DevInstance, EmbeddedError, require_running_instance
from client.exit_codes import ExitCode
from client.inputs import InputError
from contract.models import DeployOutcome
from services.codec import CodecConfigError, CodecKeyError, KeyRing
from services.content_store import BlobStore, ContentStoreConfigError, open_content_store
from services.temporal_client import DEFAULT_TASK_QUEUE, connect, connect_options

TASK_QUEUE_ENV = ENV_TASK_QUEUE

OUTCOME_EXIT_CODES: dict[DeployOutcome, ExitCode] = {
    DeployOutcome.SUCCEEDED: ExitCode.OK,
    DeployOutcome.LOGIC_FAILURE: ExitCode.LOGIC_FAILURE,
    DeployOutcome.ENVIRONMENTAL_FAILURE: ExitCode.ENVIRONMENTAL,
    DeployOutcome.REJECTED: ExitCode.REJECTED,
    DeployOutcome.NOT_CONFIRMED: ExitCode.REJECTED,
    DeployOutcome.CANCELLED: ExitCode.ENVIRONMENTAL,
    DeployOutcome.ROLLED_BACK: ExitCode.ROLLED_BACK,
    DeployOutcome.REFUSED: ExitCode.USAGE,  # the request asked for what the worker's policy forbids
}


class CommandError(Exception):
    """A failure the user can act on: ``message`` is printed as one paragraph, ``code`` is the exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Target:
    """Where a command talks to: a connected client, its task queue, and the embedded instance when --local."""

    client: Client
    task_queue: str
    address: str
    namespace: str
    instance: DevInstance | None = None
    tls: bool = False
    api_key: bool = False  # whether one is configured (never the key itself)


def open_store(target: Target | None) -> BlobStore:
    """The content store the workers share with this command (``services.content_store.open_content_store``): the
    embedded default's folder with --local, unless ``ORCHESTRATOR_CONTENT_STORE`` chooses another store. Without a
    target yet, it checks the configuration before anything connects (no network call)."""
    try:
        return open_content_store(blob_dir=target.instance.blob_dir if target and target.instance else None)
    except ContentStoreConfigError as exc:
        raise CommandError(
            f"The content store is not configured correctly: {exc}. Nothing was changed (README: 'A content store "
            "across machines').",
            ExitCode.USAGE,
        ) from None


def store_write_error(store: BlobStore, exc: OSError, what: str) -> CommandError:
    """Writing ``what`` to the content store failed: a message naming the store (never a secret) and what to do."""
    from services.content_store import LocalBlobStore

    detail = exc.strerror or str(exc)
    if isinstance(store, LocalBlobStore):
        hint = "Make it writable or point ORCHESTRATOR_BLOB_DIR at a folder the workers also read"
    else:
        hint = "Check the store's settings (ORCHESTRATOR_BLOB_*) and that it is reachable"
    return CommandError(
        f"Cannot write {what} to the {store.describe()} ({detail}). {hint}; nothing was started.",
        ExitCode.ENVIRONMENTAL,
    )


def add_target_args(parser: Any) -> None:
    parser.add_argument(
        "--local",
        action="store_true",
        help="target the embedded default started by `starter.py dev` (found through .orchestrator/dev.json)",
    )
    parser.add_argument(
        "--output",
        "-o",
        choices=["text", "json"],
        default="text",
        help="text for people (default) or json for scripts and CI; results go to stdout, progress to stderr",
    )
    add_colour_argument(parser)


def current_user() -> str:
    """The OS account this process runs as, from the account database (never LOGNAME/USER/USERNAME, which anyone
    can set): the identity our CLI claims for its user. A claim, not a proof: docs/SECURITY.md."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, OSError):  # no account database entry (a container's bare uid), or Windows
        uid = getattr(os, "geteuid", None)
        return f"uid-{uid()}" if uid is not None else "unknown"


IDENTITY_SOURCE = "os-account"  # what our CLI says its identity claim is based on (ApprovalSignal.identity_source)


def check_workflow_id(workflow_id: str) -> str:
    """A deployment id as a user typed it: refused (exit 2, before connecting) when it cannot name a workflow."""
    if not workflow_id.strip():
        raise CommandError(
            "The deployment ID is empty. Give the workflow id `deploy` printed (`python starter.py list` shows them).",
            ExitCode.USAGE,
        )
    if len(workflow_id) > 1000 or any(ord(c) < 32 or ord(c) == 127 for c in workflow_id):
        shown = workflow_id[:80] + ("…" if len(workflow_id) > 80 else "")
        raise CommandError(
            f"The deployment ID {shown!r} is not a workflow id (too long, or it holds control characters). Give "
            "the id `deploy` printed (`python starter.py list` shows them).",
            ExitCode.USAGE,
        )
    return workflow_id


_RUN_ID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def check_run_id(run_id: str | None) -> str | None:
    """A Temporal run id is a UUID; anything else is refused (exit 2) before connecting."""
    if run_id is not None and not _RUN_ID.fullmatch(run_id.strip()):
        shown = run_id[:80] + ("…" if len(run_id) > 80 else "")
        raise CommandError(
            f"--run-id {shown!r} is not a run id: run ids are UUIDs like 01a24b32-c7ed-7670-a996-ac86c3cf8e43 "
            "(`python starter.py list` shows them).",
            ExitCode.USAGE,
        )
    return run_id.strip() if run_id is not None else None


def workflow_read_error(exc: Exception, workflow_id: str, local: str, *, what: str = "workflow") -> CommandError:
    """An RPC failure reading a deployment: an id the server does not know or rejects is the user's input (exit
    2); anything else is the server's or the network's trouble (exit 3)."""
    from temporalio.service import RPCError, RPCStatusCode

    if isinstance(exc, RPCError) and exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
        return CommandError(
            f"There is no deployment {what} '{workflow_id}' ({exc.message}). `python starter.py list{local}` shows "
            "the deployments and their ids.",
            ExitCode.USAGE,
        )
    message = exc.message if isinstance(exc, RPCError) else _first_line(exc)
    return CommandError(f"Could not read {what} '{workflow_id}': {message}.", ExitCode.ENVIRONMENTAL)


def require_deployment(description: Any, workflow_id: str, local: str) -> None:
    """A workflow of another type is not a deployment: the user's input (exit 2), not a worker to wait for."""
    from contract.models import WORKFLOW_NAME

    kind = getattr(description, "workflow_type", None)
    if kind and kind != WORKFLOW_NAME:
        raise CommandError(
            f"Workflow '{workflow_id}' is a {kind}, not a deployment ({WORKFLOW_NAME}). `python starter.py "
            f"list{local}` shows the deployments and their ids.",
            ExitCode.USAGE,
        )


async def resolve_target(args: Any, client: Client | None = None) -> Target:
    """Connect to the Temporal server the command should use (an injected client wins: tests pass one)."""
    instance: DevInstance | None = None
    if getattr(args, "local", False):
        try:
            instance = require_running_instance(getattr(args, "state_dir", None))
        except EmbeddedError as exc:
            raise CommandError(str(exc), ExitCode.ENVIRONMENTAL) from None
    if client is not None:
        queue = instance.task_queue if instance else os.environ.get(TASK_QUEUE_ENV, DEFAULT_TASK_QUEUE)
        return Target(client, queue, client.service_client.config.target_host, client.namespace, instance)
    try:
        KeyRing.from_environment()  # the payload codec's keys: a malformed one is the user's to fix, not a lost server
    except CodecConfigError as exc:
        raise CommandError(
            f"The payload encryption keys could not be read: {exc}. Fix ORCHESTRATOR_CODEC_KEYS or "
            "ORCHESTRATOR_CODEC_KEY_FILE (docs/SECURITY.md), or unset both to run without encryption. Nothing was "
            "started.",
            ExitCode.USAGE,
        ) from None
    if instance is not None:
        address, namespace, queue = instance.temporal_address, instance.namespace, instance.task_queue
        where = f"the embedded default's Temporal server at {address}"
    else:
        try:
            options = connect_options()
        except Exception as exc:  # a malformed temporal.toml profile
            raise CommandError(
                f"The Temporal connection settings could not be read ({exc}). Check TEMPORAL_CONFIG_FILE / "
                "TEMPORAL_PROFILE and the temporal.toml they point to.",
                ExitCode.USAGE,
            ) from None
        address, namespace = str(options["target_host"]), str(options["namespace"])
        tls, api_key = bool(options.get("tls")), bool(options.get("api_key"))
        queue = os.environ.get(TASK_QUEUE_ENV, DEFAULT_TASK_QUEUE)
        where = f"the Temporal server at {address} (from TEMPORAL_ADDRESS, a temporal.toml profile, or the default)"
    try:
        connected = await asyncio.wait_for(
            connect(address=address, namespace=namespace) if instance else connect(), timeout=15
        )
    except Exception as exc:
        hint = (
            "Is `starter.py dev` still running? Restart it and try again."
            if instance
            else "Start one (`python starter.py dev` in another terminal, then add --local), or point "
            "TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE at your cluster."
        )
        raise CommandError(
            f"Cannot reach {where}: {_first_line(exc)}. {hint} Nothing was started.", ExitCode.ENVIRONMENTAL
        ) from None
    if instance is not None:
        return Target(connected, queue, address, namespace, instance)
    return Target(connected, queue, address, namespace, None, tls=tls, api_key=api_key)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def run_command(body: Callable[[], Awaitable[int]], *, output: str = "text") -> int:
    """Run an async command body, mapping the failures a user can act on to one paragraph and an exit code.

    With ``--output json`` the refusal is also a JSON document on stdout (``{"error": {"message", "exit_code"}}``),
    so a CI step that parses stdout always gets JSON."""
    try:
        return asyncio.run(_guarded(body, output=output))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


async def _guarded(body: Callable[[], Awaitable[int]], *, output: str) -> int:
    try:
        return await body()
    except CommandError as exc:
        return _refuse(str(exc), exc.code, output)
    except InputError as exc:
        return _refuse(str(exc), ExitCode.USAGE, output)
    except CodecKeyError as exc:  # an encrypted history read without (the right) keys
        return _refuse(f"Cannot read the deployment: {exc}. Nothing was changed.", ExitCode.USAGE, output)


def _refuse(message: str, code: ExitCode, output: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    if output == "json":
        print_json({"error": {"message": message, "exit_code": int(code)}})
    return int(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def local_flag(target: Target) -> str:
    return " --local" if target.instance else ""


def approve_commands(
    target: Target, workflow_id: str, destructive_set: list[str] | None = None, plan_hash: str | None = None
) -> list[str]:
    """The exact commands that approve a pending deletion: ours, and the Temporal CLI's (a client we did not
    write), both bound to the pending plan (its hash, or for older runs its destructive set)."""
    payload: dict[str, Any] = {"approver": current_user(), "reason": "reviewed the plan"}
    if plan_hash:
        payload["plan_hash"] = plan_hash
    elif destructive_set:
        payload["destructive_set"] = destructive_set
    signal_input = json.dumps(payload, separators=(",", ":"))
    # Connection flags as the CLI would need them; an API key is referenced through its variable, never printed.
    security = (" --tls" if target.tls or target.api_key else "") + (
        ' --api-key "$TEMPORAL_API_KEY"' if target.api_key else ""
    )
    return [
        f"python starter.py approve {shlex.quote(workflow_id)}{local_flag(target)} --reason 'reviewed the plan'",
        f"temporal workflow signal --address {shlex.quote(target.address)} --namespace "
        f"{shlex.quote(target.namespace)}{security} --workflow-id {shlex.quote(workflow_id)} --name approve "
        f"--input {shlex.quote(signal_input)}",
    ]
