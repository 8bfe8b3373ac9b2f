"""What metrics cost a worker (docs/BENCHMARKS.md, "Metrics"): the bridge from the Temporal runtime's metric buffer
to OpenTelemetry per update, a scrape (render) of a worker-sized registry, and the ARM response policy's count per
request.

    .venv/bin/python bench/bench_metrics.py [--updates N] [--repeat R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services import metrics

FAMILIES = 40  # about the number of temporal_* and orchestrator_* families a worker's scrape holds
LABEL_SETS = 8  # activity types / stages per family


def bench(updates: int, repeat: int) -> dict[str, float]:
    process = metrics.enable()
    meter = process.runtime.metric_meter
    instruments = []
    for f in range(FAMILIES):
        for i in range(LABEL_SETS):
            scoped = meter.with_additional_attributes({"task_queue": "deployments", "activity_type": f"a{i}"})
            if f % 2:
                instruments.append((scoped.create_histogram_float(f"temporal_bench_{f}_latency", unit="s"), True))
            else:
                instruments.append((scoped.create_counter(f"temporal_bench_{f}"), False))
    drains: list[float] = []
    for _ in range(repeat):
        for n in range(updates):
            instrument, histogram = instruments[n % len(instruments)]
            if histogram:
                instrument.record(0.001 * (n % 1000))
            else:
                instrument.add(1)
        started = time.perf_counter()
        process.drain()
        drains.append((time.perf_counter() - started) / updates * 1e6)
    renders: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        body = process.render()
        renders.append((time.perf_counter() - started) * 1e3)
    arm: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        for n in range(updates):
            metrics.arm_response("GET", 429 if n % 50 == 0 else 200)
        arm.append((time.perf_counter() - started) / updates * 1e6)
    return {
        "drain_us_per_update": statistics.median(drains),
        "render_ms": statistics.median(renders),
        "render_bytes": float(len(body)),
        "arm_us_per_response": statistics.median(arm),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for name, value in bench(args.updates, args.repeat).items():
        print(f"{name}: {value:.2f}")


if __name__ == "__main__":
    main()
