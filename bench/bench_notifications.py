"""What notifications add to a deployment: the time from start to result of a deployment (the harness's fake stages,
no deletions) with no sink configured and with one webhook sink, interleaved A/B on one Temporal dev server and one
worker; and how long after the result the receiver (a local HTTP server) has the signed "completed" event.

    .venv/bin/python bench/bench_notifications.py [--runs 20]

The deployment awaits only the start of its notification workflow (docs/NOTIFICATIONS.md), so the difference is one
child workflow start; delivery runs after the result.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from activities.notify import NotifyActivities  # noqa: E402
from client.deployments import result_of, start_deployment  # noqa: E402
from client.embedded import dev_server_args  # noqa: E402
from contract import search_attributes  # noqa: E402
from contract.models import DeployOutcome  # noqa: E402
from harness.fakes import FakeStages, make_request  # noqa: E402
from services.notifications.config import load_notifications  # noqa: E402
from services.temporal_client import data_converter  # noqa: E402
from workflows.deployment import DeploymentWorkflow  # noqa: E402
from workflows.notification import NotificationWorkflow  # noqa: E402

KEY = "bench-webhook-key-0123456789abcdef"


def receiver() -> tuple[ThreadingHTTPServer, dict[str, float]]:
    arrived: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived.setdefault(self.headers.get("X-Orchestrator-Event-Id") or "", time.perf_counter())
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, arrived


async def one(env: WorkflowEnvironment, queue: str, arrived: dict[str, float] | None) -> tuple[float, float | None]:
    started = time.perf_counter()
    rg = f"rg-bench-{uuid.uuid4().hex[:8]}"
    handle = await start_deployment(env.client, make_request(rg), task_queue=queue)
    result = await result_of(handle)
    done = time.perf_counter()
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    if arrived is None:
        return done - started, None
    deadline = time.monotonic() + 30
    while not arrived:
        await asyncio.sleep(0.005)
        if time.monotonic() > deadline:
            raise SystemExit("the receiver got nothing")
    last = max(arrived.values())
    arrived.clear()
    return done - started, last - done


async def run(runs: int) -> None:
    import shutil

    temporal = str(Path(sys.prefix) / "bin" / "temporal")
    if not Path(temporal).is_file():
        temporal = shutil.which("temporal") or temporal
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal,
        data_converter=data_converter(),
        ip="127.0.0.1",
        dev_server_log_level="error",
        dev_server_extra_args=dev_server_args(),
        search_attributes=search_attributes.KEYS,
    )
    server, arrived = receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "notifications.yaml"
            url = f"http://127.0.0.1:{server.server_address[1]}/hook"
            config.write_text(f"sinks:\n  - {{name: hook, type: webhook, url: '{url}', secret_env: K}}\n")
            notifier = load_notifications(config, {"K": KEY}, public_url="https://team.example")
            plain, notified = FakeStages(), FakeStages()
            notified.settings = notified.settings.model_copy(update={"notifications": notifier.routing})
            q_plain, q_notified = f"tq-{uuid.uuid4()}", f"tq-{uuid.uuid4()}"
            async with (
                Worker(env.client, task_queue=q_plain, workflows=[DeploymentWorkflow], activities=plain.activities()),
                Worker(
                    env.client,
                    task_queue=q_notified,
                    workflows=[DeploymentWorkflow, NotificationWorkflow],
                    activities=[*notified.activities(), NotifyActivities(notifier).notify],
                ),
            ):
                for _ in range(3):  # warm-up: imports, sandbox, connections
                    await one(env, q_plain, None)
                    await one(env, q_notified, arrived)
                base: list[float] = []
                with_sink: list[float] = []
                delivered_after: list[float] = []
                for _ in range(runs):
                    base.append((await one(env, q_plain, None))[0])
                    took, after = await one(env, q_notified, arrived)
                    with_sink.append(took)
                    delivered_after.append(after or 0.0)
    finally:
        server.shutdown()
        server.server_close()
        await env.shutdown()
    b, n = statistics.median(base), statistics.median(with_sink)
    print(f"runs: {runs} each, interleaved")
    print(f"start to result, no sink:        median {b * 1000:.0f} ms")
    print(f"start to result, one webhook:    median {n * 1000:.0f} ms (+{(n - b) * 1000:.0f} ms)")
    # Negative: the receiver had the event before the client had read the result.
    print(f"result to event at the receiver: median {statistics.median(delivered_after) * 1000:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(run(parser.parse_args().runs))
