"""``starter.py dev`` (run the embedded default until Ctrl-C) and ``starter.py demo`` (one real deployment of
examples/ on it, then stop — what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from client.cli import deploy as deploy_command
from client.cli._common import run_command
from client.embedded import (
    PROJECT_ROOT,
    DevInstance,
    EmbeddedDefault,
    EmbeddedError,
    default_state_dir,
    find_running_instance,
)
from client.exit_codes import ExitCode

EXAMPLE_DIR = PROJECT_ROOT / "examples" / "storage-and-web"
DEMO_RESOURCE_GROUP = "demo-rg"
DEMO_LOCATION = "eastus"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dev",
        help="run the embedded default (Temporal dev server with UI, local ARM, worker) until Ctrl-C",
        description="Start a local Temporal dev server (with its Web UI), the local ARM and a worker, print their "
        "addresses, and run until Ctrl-C. While it runs, commands with --local use it.",
    )
    p.add_argument("--state-dir", type=Path, help="where state lives (default: ./.orchestrator)")
    p.add_argument("--no-worker", action="store_true", help="start no worker (run your own against the server)")
    p.add_argument(
        "--output",
        "-o",
        choices=["text", "json"],
        default="text",
        help="how the addresses go to stdout: text (default) or one JSON object (dev.json's fields) for scripts",
    )
    p.set_defaults(run=run_dev)

    p = subparsers.add_parser(
        "demo",
        help="deploy examples/storage-and-web for real on the embedded default, then stop it",
        description="Start the embedded default (or use the one `starter.py dev` runs), deploy "
        "examples/storage-and-web through the workflow, print the plan and the result, and stop. Run it twice: "
        "the second plan shows NoChange.",
    )
    p.add_argument("--state-dir", type=Path, help="where state lives (default: ./.orchestrator)")
    p.add_argument(
        "--keep-running", action="store_true", help="leave the embedded default running afterwards (until Ctrl-C)"
    )
    p.add_argument("--output", "-o", choices=["text", "json"], default="text", help="result format on stdout")
    p.set_defaults(run=run_demo)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def describe(instance: DevInstance) -> str:
    lines = [
        f"  Temporal    {instance.temporal_address} (namespace {instance.namespace})",
        f"  Web UI      {instance.ui_url}",
    ]
    if instance.codec_endpoint:
        lines.append(f"  Codec       {instance.codec_endpoint} (the Web UI decrypts payloads through it)")
    if instance.arm_endpoint:
        lines.append(f"  Local ARM   {instance.arm_endpoint} (CA {instance.arm_ca_file or '-'})")
    if "worker" in instance.pids:
        lines.append(f"  Worker      task queue {instance.task_queue} (pid {instance.pids['worker']})")
    lines.append(f"  State       {instance.state_dir}")
    return "\n".join(lines)


def _start(state_dir: Path, *, worker: bool) -> tuple[EmbeddedDefault, DevInstance] | int:
    embedded = EmbeddedDefault(state_dir, worker=worker)
    sys.stderr.write("Starting the embedded default (Temporal dev server, local ARM, worker)...\n")
    try:
        return embedded, embedded.start()
    except EmbeddedError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return int(ExitCode.ENVIRONMENTAL)


def _block_until_interrupted(embedded: EmbeddedDefault) -> int:
    while True:
        dead = embedded.dead_children()
        if dead:
            name = dead[0]
            sys.stderr.write(f"error: the {name} stopped unexpectedly; stopping the rest. Its log ends with:\n")
            sys.stderr.write(embedded.log_tail(name) + "\n")
            return int(ExitCode.ENVIRONMENTAL)
        time.sleep(0.5)


def _stop_on_signals() -> dict[int, Any]:
    """SIGTERM and SIGINT both stop the children in order (SIGINT is ignored by a shell's background jobs
    unless we ask for it)."""
    return {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def run_dev(args: argparse.Namespace) -> int:
    previous = _stop_on_signals()
    started: tuple[EmbeddedDefault, DevInstance] | int | None = None
    try:
        started = _start(args.state_dir or default_state_dir(), worker=not args.no_worker)
        if isinstance(started, int):
            return started
        embedded, instance = started
        if getattr(args, "output", "text") == "json":
            # One line, the same fields as dev.json: a script reads the addresses from stdout while it runs.
            print(json.dumps(asdict(instance), sort_keys=True), flush=True)
            sys.stderr.write("Embedded default running (Ctrl-C stops it).\n")
            return _block_until_interrupted(embedded)
        print("Embedded default running (Ctrl-C stops it):")
        print(describe(instance))
        print(
            "Deploy to it with, for example:\n"
            f"  python starter.py deploy --local -g {DEMO_RESOURCE_GROUP} -l {DEMO_LOCATION} "
            "-t examples/storage-and-web/azuredeploy.json -p examples/storage-and-web/azuredeploy.parameters.json",
            flush=True,
        )
        return _block_until_interrupted(embedded)
    except KeyboardInterrupt:
        sys.stderr.write("Stopping the embedded default...\n")
        return int(ExitCode.OK)
    finally:
        if started is not None and not isinstance(started, int):
            started[0].stop()
        _restore(previous)


def demo_argv(output: str) -> list[str]:
    return [
        "deploy",
        "--local",
        "-g",
        DEMO_RESOURCE_GROUP,
        "-l",
        DEMO_LOCATION,
        "-t",
        str(EXAMPLE_DIR / "azuredeploy.json"),
        "-p",
        str(EXAMPLE_DIR / "azuredeploy.parameters.json"),
        "--output",
        output,
    ]


def run_demo(args: argparse.Namespace) -> int:
    from client.cli import build_parser

    state_dir: Path = args.state_dir or default_state_dir()
    previous = _stop_on_signals()
    embedded: EmbeddedDefault | None = None
    code: int | None = None
    try:
        instance = find_running_instance(state_dir)
        if instance is not None:
            sys.stderr.write(f"Using the embedded default already running from {state_dir}.\n")
        else:
            started = _start(state_dir, worker=True)
            if isinstance(started, int):
                return started
            embedded, instance = started
        sys.stderr.write(describe(instance) + "\n")
        deploy_args = build_parser().parse_args(demo_argv(args.output))
        deploy_args.state_dir = state_dir
        code = run_command(lambda: deploy_command.deploy(deploy_args), output=args.output)
        if args.output == "text":
            print(
                "\nRun it again (`make demo`): the resources exist now, so the plan shows NoChange.\n"
                "The confirmation flow: see README, 'Deleting resources needs a confirmation'."
            )
        if args.keep_running and embedded is not None:
            print(f"The embedded default keeps running; Temporal UI: {instance.ui_url} (Ctrl-C stops it).", flush=True)
            _block_until_interrupted(embedded)
        return code
    except KeyboardInterrupt:
        sys.stderr.write("Stopping the embedded default...\n")
        return code if code is not None else 130  # after the deployment, Ctrl-C is how --keep-running ends
    finally:
        if embedded is not None:
            embedded.stop()
        _restore(previous)
