"""Health checks run in parallel: N HTTP checks whose servers each answer after 1 s.

Starts N real HTTP servers on 127.0.0.1 (their own event loop, in a thread), runs ``run_health_checks`` over them
REPEAT times and prints the median wall time next to a single check's median, so the ratio shows the parallelism
(1.0 = twenty checks cost what one costs; a serial runner would be ~N).

    .venv/bin/python bench/bench_health.py [--checks 20] [--repeat 7] [--delay 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from client.health.declare import load_health_spec
from contract.health import HealthSpec
from services.health.policy import RequestPolicy
from services.health.runner import run_health_checks

T = TypeVar("T")


class SlowServers:
    """N HTTP servers answering 200 after ``delay`` seconds, on an event loop in a thread."""

    def __init__(self, count: int, delay: float) -> None:
        self.delay = delay
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[asyncio.Server] = []
        self.ports = [self._call(self._start()) for _ in range(count)]

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(self.delay)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        writer.close()

    async def _start(self) -> int:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, family=socket.AF_INET)
        self.servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    def close(self) -> None:
        async def stop() -> None:
            for server in self.servers:
                server.close()

        self._call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def spec_for(ports: list[int]) -> HealthSpec:
    flags = [f"http:GET http://127.0.0.1:{p}/health" for p in ports]
    return load_health_spec(template_path=None, flags=flags, window="60s", timeout="10s", retry_interval="1s")


def median_seconds(spec: HealthSpec, repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        # the servers are on loopback: the embedded default's request policy (private addresses allowed)
        report = asyncio.run(run_health_checks(spec, policy=RequestPolicy(allow_private=True)))
        times.append(time.perf_counter() - started)
        if not report.healthy:
            raise SystemExit(f"benchmark checks failed:\n{report.summary()}")
    return statistics.median(times), times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--delay", type=float, default=1.0)
    args = parser.parse_args(argv)
    servers = SlowServers(args.checks, args.delay)
    try:
        one, one_runs = median_seconds(spec_for(servers.ports[:1]), args.repeat)
        many, many_runs = median_seconds(spec_for(servers.ports), args.repeat)
    finally:
        servers.close()
    print(f"1 check, server answers after {args.delay:g} s: median {one:.3f} s  runs {[round(t, 3) for t in one_runs]}")
    print(
        f"{args.checks} checks, each answering after {args.delay:g} s: median {many:.3f} s  "
        f"runs {[round(t, 3) for t in many_runs]}"
    )
    print(f"ratio {args.checks} checks / 1 check: {many / one:.3f} (a serial runner: ~{args.checks})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
