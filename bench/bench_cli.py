"""What the CLI and the embedded default cost a user, in wall time.

- embedded default start: ``EmbeddedDefault.start()`` (Temporal dev server listening, local ARM serving, worker
  alive) from a fresh state folder, and its stop;
- ``starter.py --help``: the Python start-up and imports every command pays;
- ``starter.py deploy --local`` of examples/storage-and-web as a user runs it (a new process each time): the first
  deployment into a resource group (4 creates) and repeats with a NoChange plan;
- ``starter.py demo``: start everything, deploy, stop — first run and second (NoChange) run.

    .venv/bin/python bench/bench_cli.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client.embedded import EmbeddedDefault  # noqa: E402

EXAMPLE = ROOT / "examples" / "storage-and-web"


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return elapsed


def line(name: str, samples: list[float]) -> str:
    return f"| {name} | {statistics.median(samples):.2f} s | {min(samples):.2f}–{max(samples):.2f} s | {len(samples)} |"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    starter = [sys.executable, str(ROOT / "starter.py")]
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        starts, stops = [], []
        for i in range(max(3, args.repeat // 2)):
            embedded = EmbeddedDefault(Path(tmp) / f"start-{i}")
            t0 = time.perf_counter()
            embedded.start()
            t1 = time.perf_counter()
            embedded.stop()
            starts.append(t1 - t0)
            stops.append(time.perf_counter() - t1)
        rows += [line("embedded default start (Temporal + local ARM + worker)", starts), line("... stop", stops)]

        env = dict(os.environ)
        rows.append(
            line(
                "`starter.py --help` (start-up + imports)",
                [timed([*starter, "--help"], env) for _ in range(args.repeat)],
            )
        )

        embedded = EmbeddedDefault(Path(tmp) / "running")
        embedded.start()
        try:
            env["ORCHESTRATOR_STATE_DIR"] = str(embedded.state_dir)
            deploy = [
                *starter, "deploy", "--local", "-l", "eastus", "--skip-health",
                "-t", str(EXAMPLE / "azuredeploy.json"), "-p", str(EXAMPLE / "azuredeploy.parameters.json"),
            ]  # fmt: skip
            creates = [timed([*deploy, "-g", f"bench-rg-{i}"], env) for i in range(args.repeat)]
            repeats = [timed([*deploy, "-g", "bench-rg-0"], env) for _ in range(args.repeat)]
        finally:
            embedded.stop()
        rows += [
            line("`deploy --local`, 4 creates (new resource group)", creates),
            line("`deploy --local`, NoChange plan", repeats),
        ]

        demo_env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_STATE_DIR"}
        firsts, seconds = [], []
        for i in range(3):
            state = str(Path(tmp) / f"demo-{i}")
            firsts.append(timed([*starter, "demo", "--state-dir", state], demo_env))
            seconds.append(timed([*starter, "demo", "--state-dir", state], demo_env))
        rows += [line("`demo`, first run (4 creates)", firsts), line("`demo`, second run (NoChange)", seconds)]

    print("| what | median | range | runs |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
