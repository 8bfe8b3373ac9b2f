"""What the security protections cost: a small deployment through the workflow (dev server, one in-process worker,
local ARM with no latency) without payload encryption, with it, and with it plus OpenTelemetry tracing (in-memory
exporter); and the codec alone on a 100 KB payload.

    .venv/bin/python bench/bench_security.py [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from temporalio.api.common.v1 import Payload  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from client.deployments import result_of, start_deployment  # noqa: E402
from client.embedded import dev_server_args, temporal_binary  # noqa: E402
from harness.localarm import real_worker, request_for  # noqa: E402
from harness.secret_template import random_token, secret_template  # noqa: E402
from local_arm.testing import running_local_arm  # noqa: E402
from services import telemetry  # noqa: E402
from services.codec import EncryptionCodec, KeyRing  # noqa: E402


async def client_for(env: WorkflowEnvironment, *, codec: EncryptionCodec | None, tracing: bool) -> Client:
    converter = dataclasses.replace(pydantic_data_converter, payload_codec=codec) if codec else pydantic_data_converter
    interceptors = [telemetry.tracing_interceptor(telemetry.tracer_provider(InMemorySpanExporter(), batch=True))]
    return await Client.connect(
        env.client.service_client.config.target_host,
        data_converter=converter,
        interceptors=interceptors if tracing else [],
    )


async def deploy_once(client: Client, arm: Any, blob_dir: Path, queue: str) -> float:
    rg = f"rg-{uuid.uuid4().hex[:10]}"
    template = secret_template(f"st{uuid.uuid4().hex[:10]}")
    secret = {"adminPassword": {"value": random_token()}}
    request = request_for(arm, blob_dir, rg, template, parameters=secret, skip_health=True)
    started = time.perf_counter()
    result = await result_of(await start_deployment(client, request, task_queue=queue))
    assert result.succeeded, result.failure
    return time.perf_counter() - started


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    ring = KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": f"k1={base64.b64encode(os.urandom(32)).decode()}"})
    assert ring is not None
    codec = EncryptionCodec(ring)
    payload = Payload(metadata={"encoding": b"json/plain"}, data=os.urandom(100 * 1024))
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        await codec.decode(await codec.encode([payload]))
    codec_ms = (time.perf_counter() - started) / rounds * 1000
    print(f"codec encode+decode of a 100 KB payload: {codec_ms:.3f} ms")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), ip="127.0.0.1", dev_server_log_level="error",
        dev_server_extra_args=dev_server_args(),
    )  # fmt: skip
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for arm in running_local_arm(Path(tmp) / "arm"):
                configs = {
                    "plain": await client_for(env, codec=None, tracing=False),
                    "codec": await client_for(env, codec=codec, tracing=False),
                    "codec+tracing": await client_for(env, codec=codec, tracing=True),
                }
                times: dict[str, list[float]] = {name: [] for name in configs}
                async with contextlib.AsyncExitStack() as stack:
                    queues = {}
                    for name, client in configs.items():
                        queues[name] = f"bench-{uuid.uuid4().hex[:8]}"
                        await stack.enter_async_context(real_worker(client, arm, Path(tmp) / "blobs", queues[name]))
                    for i in range(args.runs + 2):  # interleaved, two warm-up rounds
                        names = list(configs)
                        for name in names[i % 3 :] + names[: i % 3]:  # rotate who goes first
                            client = configs[name]
                            elapsed = await deploy_once(client, arm, Path(tmp) / "blobs", queues[name])
                            if i >= 2:
                                times[name].append(elapsed)
                results = {name: statistics.median(values) for name, values in times.items()}
                for name, value in results.items():
                    print(f"{name:>14}: median {value * 1000:.0f} ms over {args.runs} deployments")
                base = results["plain"]
                for name, value in results.items():
                    print(f"{name:>14}: ratio {value / base:.2f}")
    finally:
        await env.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
