"""ARM template engine: expanding a generated 800-resource template, and the whole public corpus.

The generated template has a 400-instance copy loop of storage accounts and a 400-instance copy loop of web
apps; each app reads its storage account's endpoints through reference() (an implicit dependency), names it in
dependsOn by resourceId(), uses variables, a property copy loop and uniqueString(). Expansion covers parameter
validation, every expression, dependency resolution and the topological order.

    .venv/bin/python bench/bench_engine.py [--repeat 9] [--corpus-repeat 3] [--shared ../shared]

Prints medians (and the range) in seconds. Target: under 1 s for the 800-resource template.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arm_engine import DeploymentScope, expand_template

SCOPE = DeploymentScope(subscription_id="11111111-2222-3333-4444-555555555555", resource_group="rg-bench")


def generated_template(pairs: int = 400) -> dict[str, Any]:
    """``2 * pairs`` resources: storage accounts and web apps that reference them."""
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "count": {"type": "int", "defaultValue": pairs, "maxValue": 800},
            "prefix": {"type": "string", "defaultValue": "bench"},
            "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
        },
        "variables": {
            "suffix": "[uniqueString(resourceGroup().id)]",
            "tags": {"env": "bench", "owner": "[parameters('prefix')]"},
            "settings": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}],
        },
        "resources": [
            {
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-01-01",
                "name": "[format('{0}st{1}{2}', parameters('prefix'), copyIndex(), variables('suffix'))]",
                "location": "[parameters('location')]",
                "tags": "[variables('tags')]",
                "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
                "copy": {"name": "stores", "count": "[parameters('count')]"},
                "properties": {"minimumTlsVersion": "TLS1_2", "supportsHttpsTrafficOnly": True},
            },
            {
                "type": "Microsoft.Web/sites",
                "apiVersion": "2022-09-01",
                "name": "[format('{0}-app-{1}', parameters('prefix'), copyIndex())]",
                "location": "[parameters('location')]",
                "tags": "[union(variables('tags'), createObject('index', string(copyIndex())))]",
                "copy": {"name": "apps", "count": "[parameters('count')]"},
                "dependsOn": [
                    "[resourceId('Microsoft.Storage/storageAccounts', format('{0}st{1}{2}', parameters('prefix'), "
                    "copyIndex(), variables('suffix')))]"
                ],
                "properties": {
                    "siteConfig": {
                        "copy": [
                            {
                                "name": "appSettings",
                                "count": "[length(variables('settings'))]",
                                "input": {
                                    "name": "[variables('settings')[copyIndex('appSettings')].name]",
                                    "value": "[concat(variables('settings')[copyIndex('appSettings')].value, "
                                    "'-', string(copyIndex()))]",
                                },
                            }
                        ],
                        "blobEndpoint": "[reference(resourceId('Microsoft.Storage/storageAccounts', "
                        "format('{0}st{1}{2}', parameters('prefix'), copyIndex(), variables('suffix'))), "
                        "'2023-01-01').primaryEndpoints.blob]",
                    },
                    "httpsOnly": True,
                    "previous": "[if(greater(copyIndex(), 0), resourceId('Microsoft.Web/sites', "
                    "format('{0}-app-{1}', parameters('prefix'), sub(copyIndex(), 1))), '')]",
                },
            },
        ],
        "outputs": {
            "first": {
                "type": "string",
                "value": "[resourceId('Microsoft.Web/sites', format('{0}-app-0', parameters('prefix')))]",
            },
            "names": {
                "type": "array",
                "copy": {"count": 10, "input": "[format('{0}-app-{1}', parameters('prefix'), copyIndex())]"},
            },
        },
    }


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> str:
    return f"median {statistics.median(times):.3f} s (range {min(times):.3f}–{max(times):.3f} s, {len(times)} runs)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--corpus-repeat", type=int, default=3)
    parser.add_argument("--shared", default=None, help="the shared directory holding corpus/quickstarts")
    args = parser.parse_args(argv)

    doc = generated_template()
    text = json.dumps(doc)
    start = time.perf_counter()
    result = expand_template(doc, scope=SCOPE)
    print(f"800 resources, first run in this process (cold parse cache): {time.perf_counter() - start:.3f} s")
    assert len(result.resources) == 800 and len(result.order) == 800
    assert result.resources[400].depends_on == [result.resources[0].id]
    expand_template(doc, scope=SCOPE)  # warm the expression cache as a long-running worker would be
    print(f"800 resources (dict in):  {summary(timed(lambda: expand_template(doc, scope=SCOPE), args.repeat))}")
    print(f"800 resources (JSON text): {summary(timed(lambda: expand_template(text, scope=SCOPE), args.repeat))}")

    from harness.corpus import shared_dir

    shared = shared_dir(args.shared)
    if shared is None:
        print("corpus: skipped (../shared not found; pass --shared or set ORCHESTRATOR_SHARED_DIR)")
        return 0
    from harness.corpus import corpus_samples, expand_sample

    samples = corpus_samples(shared)

    def expand_all() -> None:
        for sample in samples:
            expand_sample(sample)

    times = timed(expand_all, args.corpus_repeat)
    per = statistics.median(times) / len(samples) * 1000
    print(f"corpus ({len(samples)} templates, files read and parsed each run): {summary(times)}; {per:.1f} ms/template")
    return 0


if __name__ == "__main__":
    sys.exit(main())
