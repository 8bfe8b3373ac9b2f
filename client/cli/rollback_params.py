"""``starter.py rollback-params ID --param NAME[=VALUE] ...``: give a waiting rollback the secure parameter values
it could not recover (docs/HEALTH.md "Rollback").

The values go to the content store (sealed with the codec's keys when ``ORCHESTRATOR_CODEC_KEYS`` is set), and the
workflow's ``provide_rollback_parameters`` signal carries only their reference, so they never enter Temporal history.
``--param NAME`` without ``=`` reads the value from the terminal without echo (or one line of stdin).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from client.cli._common import (
    CommandError,
    add_target_args,
    check_workflow_id,
    current_user,
    open_store,
    print_json,
    progress,
    resolve_target,
    run_command,
    workflow_read_error,
)
from client.deployments import query_status
from client.exit_codes import ExitCode
from contract.models import RollbackState
from services.codec import KeyRing
from services.last_good import provide_rollback_parameters


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rollback-params",
        help="give a waiting rollback the secure parameter values it could not recover",
        description="Give a rollback (deploy --rollback-on-failure) the secure parameter values of the last good "
        "deployment that were not kept (no codec keys when it was recorded). Values go to the content store, "
        "never into history.",
    )
    p.add_argument("workflow_id", metavar="ID", help="the deployment's workflow id")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="a secure parameter (repeatable); without =VALUE it is read from the terminal without echo",
    )
    add_target_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_command(lambda: provide(args), output=args.output)


def _values(params: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not name:
            raise CommandError(f"--param {item!r} names no parameter; give NAME or NAME=VALUE.", ExitCode.USAGE)
        if not sep:
            value = getpass.getpass(f"{name}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        values[name] = value
    return values


async def provide(args: argparse.Namespace, *, client: Client | None = None) -> int:
    check_workflow_id(args.workflow_id)
    target = await resolve_target(args, client)
    handle = target.client.get_workflow_handle(args.workflow_id)
    try:
        status = await query_status(handle)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise workflow_read_error(exc, args.workflow_id, " --local" if target.instance else "") from None
        raise CommandError(
            f"Deployment '{args.workflow_id}' did not answer its status query ({exc.message}); is it running, and "
            "is a worker up?",
            ExitCode.ENVIRONMENTAL,
        ) from None
    except Exception as exc:
        raise CommandError(
            f"Deployment '{args.workflow_id}' did not answer its status query ({exc}); is it running, and is a "
            "worker up?",
            ExitCode.ENVIRONMENTAL,
        ) from None
    rollback = status.rollback
    if rollback is None or rollback.state is not RollbackState.AWAITING_PARAMETERS:
        raise CommandError(
            f"Deployment '{args.workflow_id}' is not waiting for rollback parameters (it is at {status.stage.value}). "
            "Nothing was sent.",
            ExitCode.USAGE,
        )
    missing = rollback.missing_secure_parameters
    values = _values(args.param)
    absent = sorted({n.lower() for n in missing} - {n.lower() for n in values})
    if absent:
        raise CommandError(
            f"The rollback needs {', '.join(missing)}; missing: {', '.join(absent)}. Give each with --param NAME "
            "(read without echo) or --param NAME=VALUE. Nothing was sent.",
            ExitCode.USAGE,
        )
    store = open_store(target)
    signal = await provide_rollback_parameters(
        target.client,
        args.workflow_id,
        values,
        store=store,
        provided_by=current_user(),
        key_ring=KeyRing.from_environment(),
    )
    if args.output == "json":
        print_json({"workflow_id": args.workflow_id, "provided": signal.names, "by": signal.provided_by})
    else:
        progress(f"Sent {', '.join(signal.names)} to the rollback of {args.workflow_id} (values not shown).")
    return int(ExitCode.OK)
