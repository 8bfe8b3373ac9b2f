"""A fleet test bench: a worker process (worker.py) on its own task queue against a local ARM, and the environment
the CLI processes (starter.py) share with it (Temporal address, task queue, content store)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from local_arm.testing import LocalArm

REPO = Path(__file__).resolve().parents[2]


class Fleet:
    """A worker process and the environment the CLI processes share with it."""

    def __init__(self, address: str, local_arm: LocalArm, tmp: Path) -> None:
        self.address = address
        self.local_arm = local_arm
        self.tmp = tmp
        self.task_queue = f"tq-{uuid.uuid4()}"
        self.blob_dir = tmp / "blobs"
        self.log = tmp / "worker.log"
        self.worker: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ)
        self.env.update(
            {
                "TEMPORAL_ADDRESS": address,
                "ORCHESTRATOR_TASK_QUEUE": self.task_queue,
                "ORCHESTRATOR_BLOB_DIR": str(self.blob_dir),
                "ORCHESTRATOR_HEARTBEAT_TIMEOUT_SECONDS": "2",
                "ORCHESTRATOR_ARM_POLL_INTERVAL_SECONDS": "0.05",
                "ORCHESTRATOR_RETRY_INITIAL_SECONDS": "0.2",
                "NO_COLOR": "1",
            }
        )

    def start_worker(self) -> None:
        cmd = [
            sys.executable, str(REPO / "worker.py"), "--address", self.address, "--task-queue", self.task_queue,
            "--arm-endpoint", self.local_arm.endpoint, "--arm-ca-file", self.local_arm.ca_file,
            "--arm-credential", "local", "--blob-dir", str(self.blob_dir),
        ]  # fmt: skip
        log = self.log.open("ab")
        self.worker = subprocess.Popen(cmd, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(timeout=10)

    def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGINT)
            try:
                self.worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()

    async def cli(self, *argv: str, timeout: float = 240) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "starter.py"), *argv, env=self.env, cwd=self.tmp,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            raise
        return proc.returncode or 0, out.decode(), err.decode()

    def rollout_file(self, name: str, rings: list[dict[str, Any]], *, template: dict[str, Any]) -> Path:
        (self.tmp / "template.json").write_text(json.dumps(template))
        path = self.tmp / f"{name}.yaml"
        doc = {"name": name, "template": "template.json", "location": "westeurope", "rings": rings}
        path.write_text(yaml.safe_dump(doc))
        return path
