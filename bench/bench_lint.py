"""Lint gate timings: our ARM JSON static checks (corpus, 800 resources, 4 MB) and the Bicep wrapper's own overhead.

    .venv/bin/python bench/bench_lint.py [--repeat N]

The Bicep rows run the recorded stand-in (tests/fakes/bicep, a test double): they measure how long our wrapper and
its three CLI invocations (version probe, lint, build) take around a compiler that answers at once, not how fast
Bicep compiles. Figures go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.lint import MAX_TEMPLATE_BYTES, lint_template  # noqa: E402

SHARED = Path(os.environ.get("ORCHESTRATOR_SHARED_DIR", REPO.parent / "shared"))
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def big_template(resources: int) -> dict:
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {"prefix": {"type": "string", "defaultValue": "st"}},
        "resources": [
            {
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-01-01",
                "name": f"[concat(parameters('prefix'), '{i}', uniqueString(resourceGroup().id))]",
                "location": "[resourceGroup().location]",
                "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
                "dependsOn": [] if i == 0 else [f"[resourceId('Microsoft.Storage/storageAccounts', 'st{i - 1}')]"],
                "properties": {"minimumTlsVersion": "TLS1_2"},
            }
            for i in range(resources)
        ],
    }


def report(name: str, times: list[float]) -> None:
    print(f"{name:<55} median {statistics.median(times) * 1000:9.1f} ms   ({len(times)} runs, "
          f"{min(times) * 1000:.1f}-{max(times) * 1000:.1f} ms)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    corpus = sorted((SHARED / "corpus" / "quickstarts").glob("*/azuredeploy.json"))
    if not corpus:
        print(f"no corpus at {SHARED}; set ORCHESTRATOR_SHARED_DIR", file=sys.stderr)
        return 2
    os.environ["PATH"] = os.pathsep.join([str(REPO / "tests" / "fakes"), os.path.dirname(sys.executable)])
    os.environ.pop("BICEP_PATH", None)

    per_template = []
    for path in corpus:
        per_template.append(statistics.median(timed(lambda p=path: lint_template(p), 3)))
    print(f"ARM JSON static checks, {len(corpus)} corpus templates: median {statistics.median(per_template) * 1000:.1f}"
          f" ms, max {max(per_template) * 1000:.1f} ms, total {sum(per_template):.2f} s")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "800.json"
        big.write_text(json.dumps(big_template(800), indent=2), encoding="utf-8")
        report("ARM JSON static checks, 800 resources", timed(lambda: lint_template(big), args.repeat))
        report(
            "ARM JSON checks + engine (parameters given), 800 resources",
            timed(lambda: lint_template(big, parameters={}), args.repeat),
        )
        doc = {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "resources": [], "variables": {"v": ""}}
        doc["variables"]["v"] = "x" * (MAX_TEMPLATE_BYTES - len(json.dumps(doc, separators=(",", ":"))))
        near_limit = Path(tmp) / "4mb.json"
        near_limit.write_text(json.dumps(doc), encoding="utf-8")
        report("ARM JSON static checks, a 4 MB template", timed(lambda: lint_template(near_limit), args.repeat))

    baselines = SHARED / "corpus" / "bicep-baselines"
    report(
        "Bicep via the recorded stand-in, clean (Empty)",
        timed(lambda: lint_template(baselines / "Empty" / "main.bicep"), args.repeat),
    )
    report(
        "Bicep via the recorded stand-in, 216 diagnostics (errors)",
        timed(lambda: lint_template(baselines / "InvalidParameters_LF" / "main.bicep"), args.repeat),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
