"""Run a deployment worker: ``python worker.py [--address HOST:PORT] [--namespace NS] [--task-queue Q]
[--arm-endpoint URL --arm-ca-file CA.pem --arm-credential local] [--max-concurrent-activities N] ...``
(installed: ``bicep-orchestrator-worker``).

Any number of workers may serve one task queue; SIGTERM or SIGINT stops one gracefully: it polls no new tasks,
running activities get ``--graceful-shutdown-seconds`` to finish (the deploy activity hands its ARM deployment
over at once: it stays running and the next attempt, on any worker, resumes following it).

Temporal connection from flags, else a temporal.toml profile / TEMPORAL_* variables (temporalio.envconfig); ARM
from flags, else ORCHESTRATOR_ARM_* variables, else Azure's public cloud with DefaultAzureCredential.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import CodeType
from typing import Any, ClassVar

import temporalio.workflow
from temporalio.client import Client
from temporalio.worker import Worker, WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities import build_activities
from activities.lint import Linter
from activities.lint_gate import lint_gate
from contract.version import DISTRIBUTION, package_version
from services.codec import KeyRing
from services.config import ArmClients, ConfigError, WorkerConfig, worker_config_from_env
from services.content_store import BlobStore, open_content_store
from services.health.policy import RequestPolicy
from services.metrics import serve_from_environment
from services.telemetry import PROMETHEUS_ENV, TRACES_ENV, TelemetrySettings
from services.temporal_client import connect, connect_options
from workflows.deployment import DeploymentWorkflow
from workflows.drift import DriftCheckWorkflow
from workflows.notification import NotificationWorkflow
from workflows.rollout import RolloutWorkflow

log = logging.getLogger(__name__)

try:  # the sandbox's instance class: not a public API, hence checked (see ``LeanSandboxedWorkflowRunner``)
    from temporalio.worker.workflow_sandbox._runner import _Instance as _SandboxInstance
except ImportError:  # pragma: no cover - a temporalio that moved it: the stock runner is used
    _SandboxInstance = None  # type: ignore[assignment,misc]

if _SandboxInstance is not None:

    class _LeanInstance(_SandboxInstance):
        """The sandbox's workflow instance, with the same isolation and less work per payload.

        temporalio's instance ``exec``s a code string (compiled anew) inside the import guard for every activation
        and, since serialization contexts, for every payload it converts, to ask the sandboxed instance which
        serialization context the payload belongs to. That question is answered by temporalio's own bookkeeping
        (the pending activity or child of a command's sequence number): no workflow code runs and nothing is
        imported. Here it calls the sandboxed object directly; activations (and building the run) go through the
        stock path, inside the import guard, exactly as before."""

        def _ask_sandboxed(self, method: str, command_info: Any) -> Any:
            in_sandbox = self.globals_and_locals.get("__temporal_in_sandbox")
            if in_sandbox is None:  # not built (yet): the stock path
                return getattr(super(), method)(command_info)
            self.importer.restriction_context.is_runtime = True
            temporalio.workflow.unsafe._set_in_sandbox(True)
            try:
                return getattr(in_sandbox, method)(command_info)
            finally:
                temporalio.workflow.unsafe._set_in_sandbox(False)
                self.importer.restriction_context.is_runtime = False

        def get_serialization_context(self, command_info: Any) -> Any:
            return self._ask_sandboxed("get_serialization_context", command_info)

        def get_external_store_context(self, command_info: Any) -> Any:
            return self._ask_sandboxed("get_external_store_context", command_info)


class LeanSandboxedWorkflowRunner(SandboxedWorkflowRunner):
    """The sandboxed runner (same restrictions, same passthrough, workflow code still isolated from the host's
    clock, randomness and I/O) without the per-payload ``exec``: see ``_LeanInstance``. Falls back to the stock
    instance when the installed temporalio lacks what it builds on (``lean_runner_active`` tells)."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        if not lean_runner_active():
            return super().create_instance(det)
        return _LeanInstance(det, self.runner_class, self.restrictions)


def lean_runner_active() -> bool:
    """Whether this temporalio's sandbox instance has what ``_LeanInstance`` overrides and reads."""
    if _SandboxInstance is None:
        return False
    needed = ("get_serialization_context", "get_external_store_context", "_create_instance")
    return all(callable(getattr(_SandboxInstance, name, None)) for name in needed)


def default_build_id() -> str:
    """The build id a worker reports unless told otherwise: the package version (docs/OPERATIONS.md)."""
    return f"{DISTRIBUTION}@{package_version()}"


class _SharedCodeLoader(importlib.machinery.SourceFileLoader):
    """Loads a workflow module's code once per process: the sandbox executes the module anew for every run (fresh
    globals, a fresh class — the isolation stays), but the code object it executes is immutable and the same each
    time, so it is read and unmarshalled once instead of once per run (about 140 KiB per live deployment)."""

    _codes: ClassVar[dict[str, CodeType]] = {}

    def get_code(self, fullname: str) -> CodeType:
        code = self._codes.get(self.path)
        if code is None:
            loaded = super().get_code(fullname)
            if loaded is None:  # a loader without code: nothing to share
                raise ImportError(f"no code for {fullname}", name=fullname)
            code = self._codes[self.path] = loaded
        return code


class _SharedWorkflowCodeFinder(importlib.abc.MetaPathFinder):
    """Finds ``workflows`` and its modules the way the other finders do, with ``_SharedCodeLoader`` as their loader."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "workflows" and not fullname.startswith("workflows."):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            loader = spec.loader
            if type(loader) is importlib.machinery.SourceFileLoader:
                spec.loader = _SharedCodeLoader(loader.name, loader.path)
            return spec
        return None


def share_workflow_code() -> None:
    """Let every sandboxed run of a workflow execute the same code objects (installed once per process)."""
    if not any(isinstance(finder, _SharedWorkflowCodeFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SharedWorkflowCodeFinder())


def precompile_workflow_code() -> None:
    """Write the bytecode of the workflow modules: the sandbox executes them anew for every workflow run, and without
    a ``.pyc`` (``PYTHONDONTWRITEBYTECODE=1``, an editable install) each run would compile the source again — most
    of what a run costs the worker. A read-only install (pip compiles at install) is left as it is."""
    import compileall

    import workflows

    for folder in workflows.__path__:
        with contextlib.suppress(OSError):
            compileall.compile_dir(folder, quiet=2)


def build_worker(
    client: Client,
    config: WorkerConfig,
    *,
    clients: ArmClients,
    store: BlobStore,
    linter: Linter = lint_gate,
    activities: list[Callable[..., Any]] | None = None,
    **worker_kwargs: Any,
) -> Worker:
    """A worker for the deployment workflow. ``activities`` replaces the real ones (tests use fakes)."""
    precompile_workflow_code()
    share_workflow_code()
    return Worker(
        client,
        task_queue=config.task_queue,
        workflows=[DeploymentWorkflow, RolloutWorkflow, DriftCheckWorkflow, NotificationWorkflow],
        activities=activities
        if activities is not None
        else build_activities(
            clients=clients,
            store=store,
            settings=config.settings,
            linter=linter,
            health_policy=config.health_policy,
            approval_policy_path=config.approval_policy_path,
            notifier=config.notifier,
        ),
        max_concurrent_activities=config.max_concurrent_activities,
        max_concurrent_workflow_tasks=config.max_concurrent_workflow_tasks,
        max_concurrent_local_activities=config.max_concurrent_local_activities,
        graceful_shutdown_timeout=timedelta(seconds=config.graceful_shutdown_seconds),
        build_id=config.build_id or default_build_id(),
        workflow_runner=worker_kwargs.pop("workflow_runner", None) or LeanSandboxedWorkflowRunner(),
        **worker_kwargs,
    )


async def run_worker(
    config: WorkerConfig,
    *,
    client: Client | None = None,
    stop: asyncio.Event | None = None,
    linter: Linter = lint_gate,
) -> None:
    """Run until ``stop`` is set (or forever). Closes the ARM clients on the way out."""
    config.arm.validate()
    if client is None:
        client = await connect(
            address=config.temporal_address,
            namespace=config.temporal_namespace,
            api_key=config.temporal_api_key,
            tls=config.temporal_tls,
            profile=config.temporal_profile,
        )
    store = open_content_store(blob_dir=config.blob_dir)
    clients = ArmClients(config.arm)
    try:
        worker = build_worker(client, config, clients=clients, store=store, linter=linter)
        log.info(
            "worker on task queue %r (namespace %r, build id %s, up to %d activities), ARM %s, content store %s",
            config.task_queue,
            client.namespace,
            config.build_id or default_build_id(),
            config.max_concurrent_activities,
            config.arm.endpoint,
            store.describe(),
        )
        policy = config.health_policy or RequestPolicy.from_environment(arm_endpoint=config.arm.endpoint)
        log.info("%s", policy.describe())
        if config.notifier is not None:
            log.info("%s", config.notifier.describe())
        async with worker:
            if stop is None:
                await asyncio.Event().wait()
            else:
                await stop.wait()
    finally:
        await clients.close()
        close_store = getattr(store, "close", None)  # the blob store's HTTP connections (a folder has none)
        if close_store is not None:
            close_store()


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog or "worker.py", description="Run the deployment workflow's worker.")
    p.add_argument("--address", help="Temporal frontend host:port (default: profile/TEMPORAL_ADDRESS/localhost:7233)")
    p.add_argument("--namespace", help="Temporal namespace (default: profile/TEMPORAL_NAMESPACE/default)")
    p.add_argument("--profile", help="temporal.toml profile name (TEMPORAL_PROFILE)")
    p.add_argument("--api-key", help="Temporal Cloud API key (prefer TEMPORAL_API_KEY)")
    p.add_argument("--tls", action="store_true", default=None, help="connect to Temporal over TLS")
    p.add_argument("--task-queue", help="task queue (ORCHESTRATOR_TASK_QUEUE, default 'deployments')")
    p.add_argument("--arm-endpoint", help="ARM base URL (ORCHESTRATOR_ARM_ENDPOINT, default Azure public cloud)")
    p.add_argument("--arm-ca-file", help="CA bundle trusted for the ARM endpoint (ORCHESTRATOR_ARM_CA_FILE)")
    p.add_argument("--arm-credential", choices=["default", "local"], help="DefaultAzureCredential or local token")
    p.add_argument(
        "--blob-dir",
        help="content store folder shared with the starter (ORCHESTRATOR_BLOB_DIR; unused with "
        "ORCHESTRATOR_CONTENT_STORE=azblob)",
    )
    p.add_argument(
        "--max-concurrent-activities",
        type=_positive_int,
        metavar="N",
        help="activities this worker runs at once (ORCHESTRATOR_MAX_CONCURRENT_ACTIVITIES, default 200)",
    )
    p.add_argument(
        "--max-concurrent-workflow-tasks",
        type=_positive_int,
        metavar="N",
        help="workflow tasks at once (ORCHESTRATOR_MAX_CONCURRENT_WORKFLOW_TASKS, default 100)",
    )
    p.add_argument(
        "--max-concurrent-local-activities",
        type=_positive_int,
        metavar="N",
        help="validation/lint local activities at once (ORCHESTRATOR_MAX_CONCURRENT_LOCAL_ACTIVITIES, default 100)",
    )
    p.add_argument(
        "--graceful-shutdown-seconds",
        type=float,
        metavar="S",
        help="on SIGTERM/SIGINT, how long running activities may finish before they are cancelled "
        "(ORCHESTRATOR_GRACEFUL_SHUTDOWN_SECONDS, default 10)",
    )
    p.add_argument(
        "--build-id",
        help="build id this worker reports (ORCHESTRATOR_BUILD_ID, default bicep-deployment-orchestrator@<version>)",
    )
    p.add_argument(
        "--otel-traces",
        choices=["console", "otlp", "none"],
        help="export OpenTelemetry spans to stderr or an OTLP collector (ORCHESTRATOR_OTEL_TRACES; default none)",
    )
    p.add_argument(
        "--prometheus-bind",
        metavar="HOST:PORT",
        help="serve the worker's metrics and the Temporal SDK's for Prometheus at http://HOST:PORT/metrics "
        "(ORCHESTRATOR_PROMETHEUS_BIND)",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def main(argv: list[str] | None = None, *, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # azure-core logs every request and response (headers included) at INFO: noise at any scale.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
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
        if args.max_concurrent_activities:
            config.max_concurrent_activities = args.max_concurrent_activities
        if args.max_concurrent_workflow_tasks:
            config.max_concurrent_workflow_tasks = args.max_concurrent_workflow_tasks
        if args.max_concurrent_local_activities:
            config.max_concurrent_local_activities = args.max_concurrent_local_activities
        if args.graceful_shutdown_seconds is not None:
            if args.graceful_shutdown_seconds < 0:
                raise ConfigError("--graceful-shutdown-seconds must be >= 0")
            config.graceful_shutdown_seconds = args.graceful_shutdown_seconds
        if args.build_id:
            config.build_id = args.build_id
        config.temporal_address = args.address
        config.temporal_namespace = args.namespace
        config.temporal_profile = args.profile
        config.temporal_api_key = args.api_key
        config.temporal_tls = args.tls
        config.arm.validate()
        # telemetry flags become the variables services.telemetry reads; bad codec keys or telemetry
        # settings are refused here, by name, rather than as a traceback from the first connection.
        if args.otel_traces:
            os.environ[TRACES_ENV] = args.otel_traces
        if args.prometheus_bind:
            os.environ[PROMETHEUS_ENV] = args.prometheus_bind
        TelemetrySettings.from_environment()
        # Metrics are served before the first connection (whose runtime records into them); a busy address is
        # refused here, by name.
        serve_from_environment()
        KeyRing.from_environment()
        RequestPolicy.from_environment()  # the health checks' request policy (ORCHESTRATOR_HEALTH_*)
        open_content_store(blob_dir=config.blob_dir)  # ORCHESTRATOR_CONTENT_STORE and its settings (no network)
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


def console_main() -> None:
    """The ``bicep-orchestrator-worker`` console command (pyproject.toml)."""
    # Leave without interpreter teardown, as starter.py does: the Temporal client's Rust threads can abort a
    # finishing interpreter (SIGABRT, temporalio/sdk-python#300) and turn exit code 3 into -6.
    from starter import exit_now

    try:
        exit_code = main(prog=os.path.basename(sys.argv[0]) or None)
    except SystemExit as exc:  # argparse's usage errors, --help and --version
        exit_code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    exit_now(exit_code)


if __name__ == "__main__":
    console_main()
