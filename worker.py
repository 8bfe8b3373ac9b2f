"""Run a deployment worker: ``python worker.py [--address HOST:PORT] [--namespace NS] [--task-queue Q]
[--arm-endpoint URL --arm-ca-file CA.pem --arm-credential local]``.

Temporal connection from flags, else a temporal.toml profile / TEMPORAL_* variables (temporalio.envconfig); ARM
from flags, else ORCHESTRATOR_ARM_* variables, else Azure's public cloud with DefaultAzureCredential.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from orchestrator.config import ConfigError, worker_config_from_env
from orchestrator.runtime import run_worker
from orchestrator.temporal_client import connect_options


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="worker.py", description="Run the deployment workflow's worker.")
    p.add_argument("--address", help="Temporal frontend host:port (default: profile/TEMPORAL_ADDRESS/localhost:7233)")
    p.add_argument("--namespace", help="Temporal namespace (default: profile/TEMPORAL_NAMESPACE/default)")
    p.add_argument("--profile", help="temporal.toml profile name (TEMPORAL_PROFILE)")
    p.add_argument("--api-key", help="Temporal Cloud API key (prefer TEMPORAL_API_KEY)")
    p.add_argument("--tls", action="store_true", default=None, help="connect to Temporal over TLS")
    p.add_argument("--task-queue", help="task queue (ORCHESTRATOR_TASK_QUEUE, default 'deployments')")
    p.add_argument("--arm-endpoint", help="ARM base URL (ORCHESTRATOR_ARM_ENDPOINT, default Azure public cloud)")
    p.add_argument("--arm-ca-file", help="CA bundle trusted for the ARM endpoint (ORCHESTRATOR_ARM_CA_FILE)")
    p.add_argument("--arm-credential", choices=["default", "local"], help="DefaultAzureCredential or local token")
    p.add_argument("--blob-dir", help="content store folder shared with the starter (ORCHESTRATOR_BLOB_DIR)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = worker_config_from_env()
        if args.arm_endpoint:
            config.arm.endpoint = args.arm_endpoint.rstrip("/")
        if args.arm_ca_file:
            config.arm.ca_file = Path(args.arm_ca_file)
        if args.arm_credential:
            config.arm.credential = args.arm_credential
        if args.task_queue:
            config.task_queue = args.task_queue
        if args.blob_dir:
            config.blob_dir = Path(args.blob_dir)
        config.temporal_address = args.address
        config.temporal_namespace = args.namespace
        config.temporal_profile = args.profile
        config.temporal_api_key = args.api_key
        config.temporal_tls = args.tls
        config.arm.validate()
    except (ConfigError, ValueError) as exc:
        print(f"worker.py: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(config, stop=stop)

    try:
        asyncio.run(run())
    except RuntimeError as exc:  # the Temporal server is unreachable (temporalio raises RuntimeError)
        target = connect_options(address=args.address, namespace=args.namespace, profile=args.profile)["target_host"]
        print(
            f"worker.py: cannot connect to the Temporal server at {target} ({exc}). Start one (`python starter.py "
            "dev`, or `temporal server start-dev`) or point the worker at yours with --address or TEMPORAL_ADDRESS.",
            file=sys.stderr,
        )
        return 3
    return 0


if __name__ == "__main__":
    # Leave without interpreter teardown, as starter.py does: the Temporal client's Rust threads can abort a
    # finishing interpreter (SIGABRT, temporalio/sdk-python#300) and turn exit code 3 into -6.
    from starter import exit_now

    try:
        exit_code = main()
    except SystemExit as exc:  # argparse's usage errors and --help
        exit_code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    exit_now(exit_code)
