"""``starter.py dev`` (run the embedded default until Ctrl-C) and ``starter.py demo`` (one real deployment of
examples/ on it, then stop — what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
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
    STATE_DIR_ENV,
    DevInstance,
    EmbeddedDefault,
    EmbeddedError,
    default_state_dir,
    find_running_instance,
)
from client.exit_codes import ExitCode

EXAMPLE_DIR = PROJECT_ROOT / "examples" / "storage-and-web"
# The Temporal CLI's own defaults (`temporal server start-dev`, and where `temporal workflow ...` connects without
# flags), so plain `temporal` commands and UI bookmarks work against the embedded default.
DEFAULT_PORT = 7233
DEFAULT_UI_PORT = 8233
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
    _add_port_arguments(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--detach",
        action="store_true",
        help="start it in the background, return once it serves (its console goes to <state>/dev.log)",
    )
    mode.add_argument("--stop", action="store_true", help="stop the embedded default running from this state folder")
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
    _add_port_arguments(p)
    p.set_defaults(run=run_demo)


def _add_port_arguments(p: Any) -> None:
    p.add_argument(
        "--port",
        type=_port,
        help=f"Temporal's gRPC port on 127.0.0.1 (default {DEFAULT_PORT} when free, else a free one; given "
        "explicitly, a taken port is an error)",
    )
    p.add_argument(
        "--ui-port",
        type=_port,
        help=f"the Temporal Web UI's port (default {DEFAULT_UI_PORT} when free, else a free one)",
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return value


def _ports(args: argparse.Namespace) -> tuple[tuple[int, int], bool]:
    """The ports asked for, and whether they were asked for explicitly (then a taken one is an error)."""
    port, ui_port = getattr(args, "port", None), getattr(args, "ui_port", None)
    strict = port is not None or ui_port is not None
    return (port or DEFAULT_PORT, ui_port or DEFAULT_UI_PORT), strict


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
    if instance.api_url:
        lines.append(f"  API         {instance.api_url} (local development mode: loopback only, no sign-in)")
    lines.append(f"  State       {instance.state_dir}")
    lines.append(temporal_cli_hint(instance))
    return "\n".join(lines)


def temporal_cli_hint(instance: DevInstance) -> str:
    """How plain `temporal` commands reach this server: without flags on the Temporal CLI's default port, else
    after one `export` (the Temporal CLI and this CLI without --local both read TEMPORAL_ADDRESS)."""
    if instance.temporal_address.rpartition(":")[2] == str(DEFAULT_PORT):
        return f"  temporal    plain `temporal workflow ...` commands reach it (default port {DEFAULT_PORT})"
    return (
        "  temporal    for plain `temporal workflow ...` commands, run: "
        f"export TEMPORAL_ADDRESS={instance.temporal_address}"
    )


def _start(
    state_dir: Path,
    *,
    worker: bool,
    ports: tuple[int, int] | None = None,
    strict_ports: bool = False,
    api: bool = True,
) -> tuple[EmbeddedDefault, DevInstance] | int:
    embedded = EmbeddedDefault(state_dir, worker=worker, ports=ports, strict_ports=strict_ports, api=api)
    sys.stderr.write("Starting the embedded default (Temporal dev server, local ARM, worker, API)...\n")
    try:
        instance = embedded.start()
        for note in embedded.port_notes:
            sys.stderr.write(f"note: {note}.\n")
        return embedded, instance
    except EmbeddedError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return int(ExitCode.ENVIRONMENTAL)


def _block_until_interrupted(embedded: EmbeddedDefault) -> int:
    """Supervise the children until Ctrl-C: a crashed worker, local ARM or server is started again with backoff
    (same ports, same state) while the rest keep running; each crash and restart is reported here."""
    while True:
        for event in embedded.supervise():
            sys.stderr.write(f"[dev {time.strftime('%H:%M:%S')}] {event}\n")
            sys.stderr.flush()
        time.sleep(0.5)


def _stop_on_signals() -> dict[int, Any]:
    """SIGTERM and SIGINT both stop the children in order (SIGINT is ignored by a shell's background jobs
    unless we ask for it)."""
    return {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


DETACH_READY_SECONDS = 180.0


def run_detached(args: argparse.Namespace, argv: list[str]) -> int:
    """``dev --detach``: the same ``dev`` in its own session, its console appended to ``<state>/dev.log``; return
    when its ``dev.json`` says it serves (exit 0), or when it gave up (exit 3, with the end of its log)."""
    state_dir: Path = (args.state_dir or default_state_dir()).resolve()
    running = find_running_instance(state_dir)
    if running is not None:
        sys.stderr.write(
            f"error: an embedded default is already running from {state_dir} (process {running.pid}). Use it with "
            "--local, or stop it with `python starter.py dev --stop`.\n"
        )
        return int(ExitCode.USAGE)
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "dev.log"
    with open(log_path, "ab") as log:
        offset = log.tell()
        process = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "starter.py"), *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(Path.cwd()),
            env={**os.environ, STATE_DIR_ENV: str(state_dir)},
            start_new_session=True,  # not ended by this terminal's Ctrl-C or hang-up
        )
    deadline = time.monotonic() + DETACH_READY_SECONDS
    while time.monotonic() < deadline:
        instance = find_running_instance(state_dir)
        if instance is not None and instance.pid == process.pid:
            with open(log_path, "rb") as log:  # its notes (a taken default port, ...) are for this terminal too
                log.seek(offset)
                for line in log.read().decode("utf-8", errors="replace").splitlines():
                    if line.startswith("note: "):
                        sys.stderr.write(line + "\n")
            print(f"Embedded default running in the background (pid {process.pid}; its console: {log_path}):")
            print(describe(instance))
            print("Stop it with: python starter.py dev --stop", flush=True)
            return int(ExitCode.OK)
        if process.poll() is not None:
            break
        time.sleep(0.2)
    if process.poll() is None:
        process.terminate()
    tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
    sys.stderr.write(f"error: the embedded default did not start; {log_path} ends with:\n{tail}\n")
    return int(ExitCode.ENVIRONMENTAL)


def stop_running(args: argparse.Namespace) -> int:
    """``dev --stop``: end the ``dev`` recorded in ``<state>/dev.json`` (it stops its children in order)."""
    state_dir: Path = (args.state_dir or default_state_dir()).resolve()
    instance = find_running_instance(state_dir)
    if instance is None:
        sys.stderr.write(f"No embedded default is running from {state_dir}; nothing to stop.\n")
        return int(ExitCode.OK)
    os.kill(instance.pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(instance.pid, 0)
        except ProcessLookupError:
            print(f"Stopped the embedded default (process {instance.pid}).")
            return int(ExitCode.OK)
        time.sleep(0.2)
    sys.stderr.write(f"error: process {instance.pid} did not stop within 60 s; stop it with `kill {instance.pid}`.\n")
    return int(ExitCode.ENVIRONMENTAL)


def run_dev(args: argparse.Namespace) -> int:
    if getattr(args, "stop", False):
        return stop_running(args)
    if getattr(args, "detach", False):
        argv = ["dev"]
        if args.state_dir:
            argv += ["--state-dir", str(Path(args.state_dir).resolve())]
        if args.no_worker:
            argv.append("--no-worker")
        for flag, value in (("--port", args.port), ("--ui-port", args.ui_port)):
            if value is not None:
                argv += [flag, str(value)]
        return run_detached(args, argv)
    previous = _stop_on_signals()
    started: tuple[EmbeddedDefault, DevInstance] | int | None = None
    try:
        ports, strict = _ports(args)
        started = _start(
            args.state_dir or default_state_dir(), worker=not args.no_worker, ports=ports, strict_ports=strict
        )
        if isinstance(started, int):
            return started
        embedded, instance = started
        if getattr(args, "output", "text") == "json":
            # One line, the same fields as dev.json: a script reads the addresses from stdout while it runs (the
            # human line first: a script may stop it as soon as it has read the addresses).
            sys.stderr.write("Embedded default running (Ctrl-C stops it).\n")
            sys.stderr.flush()
            print(json.dumps(asdict(instance), sort_keys=True), flush=True)
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
            ports, strict = _ports(args)
            started = _start(state_dir, worker=True, ports=ports, strict_ports=strict, api=args.keep_running)
            if isinstance(started, int):
                return started
            embedded, instance = started
        sys.stderr.write(describe(instance) + "\n")
        deploy_args = build_parser().parse_args(demo_argv(args.output))
        deploy_args.state_dir = state_dir
        code = run_command(lambda: deploy_command.deploy(deploy_args), output=args.output)
        result = getattr(deploy_args, "deploy_result", None)  # set by deploy once the workflow ended
        if args.output == "text" and result is not None:
            changed = bool(result.has_changes or (result.plan is not None and result.plan.has_changes))
            again = (
                "Run it again (`make demo`): the resources exist now, so the plan shows NoChange."
                if changed
                else "The resources existed already, so the plan showed NoChange: the deployment changed nothing."
            )
            print(f"\n{again}\nThe confirmation flow: see README, 'Deleting resources needs a confirmation'.")
        if args.keep_running and embedded is not None:
            api = f", API: {instance.api_url}" if instance.api_url else ""
            print(
                f"The embedded default keeps running; Temporal UI: {instance.ui_url}{api} (Ctrl-C stops it).",
                flush=True,
            )
            _block_until_interrupted(embedded)
        return code
    except KeyboardInterrupt:
        sys.stderr.write("Stopping the embedded default...\n")
        return code if code is not None else 130  # after the deployment, Ctrl-C is how --keep-running ends
    finally:
        if embedded is not None:
            embedded.stop()
        _restore(previous)
