"""Wall time of the public corpus sequence through the SDK against the local ARM (what tests/local_arm/test_corpus.py
runs): validate → what-if → create → what-if, 161 samples, six in parallel against one server. Prints the wall time
and every failing sample with its first failing step.

    .venv/bin/python bench/bench_corpus_sequence.py [--workers 6]

Figures go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.corpus import corpus_samples, shared_dir  # noqa: E402
from harness.corpus_sequence import run_corpus  # noqa: E402
from local_arm.testing import running_local_arm  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=6)
    args = parser.parse_args(argv)
    shared = shared_dir()
    if shared is None:
        print("../shared (the corpus) is absent; set ORCHESTRATOR_SHARED_DIR", file=sys.stderr)
        return 2
    samples = corpus_samples(shared)
    with tempfile.TemporaryDirectory() as tmp:
        gen = running_local_arm(Path(tmp))
        arm = next(gen)
        try:
            started = time.perf_counter()
            outcomes = run_corpus(arm, samples, workers=args.workers)
            wall = time.perf_counter() - started
        finally:
            gen.close()
    failures = [(f, why) for f, why in outcomes.items() if why is not None]
    print(f"{len(samples) - len(failures)} of {len(samples)} passed in {wall:.1f} s ({args.workers} workers)")
    for folder, why in failures:
        print(f"  {folder}: {why[:400]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
