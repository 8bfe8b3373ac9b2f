"""A real ``worker.py`` process against the local ARM, for tests that kill a worker mid-stage (SIGKILL) and start
another: the process, its orderly stop, and waiting for a condition the test polls."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from harness.localarm import REPO
from local_arm.testing import LocalArm


def start_worker_process(
    address: str,
    task_queue: str,
    local_arm: LocalArm,
    blob_dir: Path,
    log: Path,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``worker.py`` on ``task_queue``, reaching the local ARM over HTTPS, its output appended to ``log``; ``env``
    adds to this process's environment (fast heartbeats and polls, a notification file, ...)."""
    cmd = [
        sys.executable, str(REPO / "worker.py"),
        "--address", address,
        "--task-queue", task_queue,
        "--arm-endpoint", local_arm.endpoint,
        "--arm-ca-file", local_arm.ca_file,
        "--arm-credential", "local",
        "--blob-dir", str(blob_dir),
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a person stops a worker; killed if it has not exited within 15 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
