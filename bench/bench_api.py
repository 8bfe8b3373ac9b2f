"""What the HTTP API costs a pipeline, in wall time, on the embedded default (Temporal dev server, local ARM, worker,
and the API as ``starter.py api --dev`` runs it, all real processes on loopback):

- start-to-first-event: ``POST /deployments`` answered (201), then ``GET /deployments/{id}/events`` until its first
  event (the transition into VALIDATING_PARAMETERS), each on a new resource group; also the time to the ``result``
  event (a 4-resource deployment, health skipped);
- 100 concurrent starts: 100 ``POST /deployments`` to 100 resource groups at once (one HTTP/1.1 connection each),
  the time until every one is answered, and each request's latency; for comparison, 100 starts of the same requests
  straight through the Temporal client (``client.deployments.start_deployment``, what ``deploy`` calls), on the
  same stack, so the API's own share is visible.

    .venv/bin/python bench/bench_api.py [--repeat 9] [--concurrent 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from client.embedded import DevInstance, EmbeddedDefault  # noqa: E402
from harness.localarm import example_parameters, example_template  # noqa: E402


def body(instance: DevInstance, rg: str) -> dict[str, Any]:
    return {
        "subscription_id": instance.subscription_id,
        "resource_group": rg,
        "location": "eastus",
        "template": example_template(),
        "parameters": example_parameters(),
        "skip_health": True,
    }


async def first_event(http: httpx.AsyncClient, instance: DevInstance) -> tuple[float, float, float]:
    """(POST answered, first event, result event) in seconds from sending the POST."""
    t0 = time.perf_counter()
    started = await http.post("/deployments", json=body(instance, f"bench-api-{uuid.uuid4().hex[:8]}"))
    if started.status_code != 201:
        raise SystemExit(f"start refused: {started.status_code} {started.text}")
    t_post = time.perf_counter() - t0
    t_first = t_result = 0.0
    async with http.stream("GET", started.json()["links"]["events"]) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event: ") and not t_first:
                t_first = time.perf_counter() - t0
            if line == "event: result":
                t_result = time.perf_counter() - t0
                break
    return t_post, t_first, t_result


async def concurrent_starts(url: str, instance: DevInstance, n: int) -> tuple[float, list[float], int]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        bodies = [body(instance, f"bench-many-{uuid.uuid4().hex[:8]}") for _ in range(n)]

        async def one(document: dict[str, Any]) -> tuple[float, int]:
            t0 = time.perf_counter()
            response = await http.post("/deployments", json=document)
            return time.perf_counter() - t0, response.status_code

        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(b) for b in bodies))
        wall = time.perf_counter() - t0
    failed = sum(1 for _, code in results if code != 201)
    return wall, [t for t, _ in results], failed


def row(name: str, samples: list[float]) -> str:
    return f"| {name} | {statistics.median(samples) * 1000:.0f} ms | {min(samples) * 1000:.0f}–{max(samples) * 1000:.0f} ms | {len(samples)} |"  # noqa: E501


async def direct_starts(instance: DevInstance, n: int) -> float:
    """The same starts without the API: build the request and start the workflow, n at once, in this process."""
    from client.deployments import build_deploy_request, start_deployment
    from services.content_store import LocalBlobStore
    from services.temporal_client import connect

    client = await connect(address=instance.temporal_address, namespace=instance.namespace)
    store = LocalBlobStore(instance.blob_dir)

    async def one() -> None:
        request = build_deploy_request(
            store=store,
            template=example_template(),
            subscription_id=instance.subscription_id,
            resource_group=f"bench-direct-{uuid.uuid4().hex[:8]}",
            location="eastus",
            parameters=example_parameters(),
            skip_health=True,
        )
        await start_deployment(client, request, task_queue=instance.task_queue)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - t0


async def run(url: str, instance: DevInstance, repeat: int, n: int) -> list[str]:
    posts, firsts, results = [], [], []
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        await first_event(http, instance)  # warm-up: imports, connections, the worker's first task
        for _ in range(repeat):
            t_post, t_first, t_result = await first_event(http, instance)
            posts.append(t_post)
            firsts.append(t_first)
            results.append(t_result)
    wall, latencies, failed = await concurrent_starts(url, instance, n)
    await asyncio.sleep(30)  # let the worker work off most of those before the comparison
    direct = await direct_starts(instance, n)
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    return [
        "| measure | median | range | runs |",
        "|---|---|---|---|",
        row("POST /deployments answered (201)", posts),
        row("POST sent → first SSE event", firsts),
        row("POST sent → `result` event (4 creates, health skipped)", results),
        "",
        f"{n} concurrent starts: all answered in {wall:.2f} s ({n / wall:.0f} starts/s), per request median "
        f"{statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, refused {failed}",
        f"{n} concurrent starts straight through the Temporal client (no API): {direct:.2f} s ({n / direct:.0f} "
        "starts/s)",
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--concurrent", type=int, default=100)
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        embedded = EmbeddedDefault(Path(tmp) / "state", api=True)
        instance = embedded.start()
        try:
            assert instance.api_url is not None
            lines = asyncio.run(run(instance.api_url, instance, args.repeat, args.concurrent))
        finally:
            embedded.stop()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()} {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, load average before {load[0]:.1f} / {load[1]:.1f}")  # fmt: skip
    print("\n".join(lines))
    print(json.dumps({"load_after": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
