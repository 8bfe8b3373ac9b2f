"""Expression evaluator throughput: per-expression latency and 800 resource bodies of a copy loop.

Isolates the expression language from template expansion (bench for the whole expander lives beside it): a small
in-memory EvaluationContext answers parameters, variables and copyIndex; every figure is the median of REPEAT runs.

    .venv/bin/python bench/bench_expressions.py [--repeat 7] [--resources 800]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arm_engine.evaluator import evaluate_string, evaluate_value
from arm_engine.scope import DeploymentScope
from arm_engine.values import Deferred

EXPRESSIONS = [
    "[parameters('location')]",
    "[format('{0}-nic-{1:D3}', parameters('prefix'), copyIndex())]",
    "[resourceId('Microsoft.Network/virtualNetworks/subnets', variables('vnetName'), 'default')]",
    "[toLower(concat(parameters('prefix'), uniqueString(resourceGroup().id)))]",
    "[if(equals(mod(copyIndex(), 2), 0), 'even', 'odd')]",
    "[union(variables('tags'), createObject('index', string(copyIndex())))]",
    "[map(range(0, 5), lambda('i', format('10.0.{0}.0/24', lambdaVariables('i'))))]",
    "[reference(resourceId('Microsoft.Storage/storageAccounts', 'st')).primaryEndpoints.blob]",
]

BODY: dict[str, Any] = {
    "type": "Microsoft.Network/networkInterfaces",
    "apiVersion": "2023-04-01",
    "name": "[format('{0}-nic-{1:D3}', parameters('prefix'), copyIndex())]",
    "location": "[parameters('location')]",
    "tags": "[union(variables('tags'), createObject('index', string(copyIndex())))]",
    "dependsOn": ["[resourceId('Microsoft.Network/virtualNetworks', variables('vnetName'))]"],
    "properties": {
        "ipConfigurations": [
            {
                "name": "ipconfig1",
                "properties": {
                    "subnet": {
                        "id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', variables('vnetName'), 'default')]"  # noqa: E501
                    },
                    "privateIPAllocationMethod": "Dynamic",
                    "publicIPAddress": {
                        "id": "[resourceId('Microsoft.Network/publicIPAddresses', concat(parameters('prefix'), '-pip-', copyIndex()))]"  # noqa: E501
                    },
                },
            }
        ],
        "dnsSettings": {
            "internalDnsNameLabel": "[toLower(concat(parameters('prefix'), uniqueString(resourceGroup().id, string(copyIndex()))))]"  # noqa: E501
        },
        "enableAcceleratedNetworking": "[if(equals(mod(copyIndex(), 2), 0), true(), false())]",
    },
}


class BenchContext:
    scope = DeploymentScope()
    allow_runtime_functions = False

    def __init__(self) -> None:
        self.index = 0
        self.parameters = {"prefix": "App", "location": "eastus"}
        self.variables = {"tags": {"env": "dev", "owner": "platform"}, "vnetName": "vnet"}

    def parameter(self, name: str) -> Any:
        return self.parameters[name]

    def variable(self, name: str) -> Any:
        return self.variables[name]

    def copy_index(self, loop_name: str | None) -> int:
        return self.index

    def reference(self, target: str, api_version: str | None, full: bool) -> Any:
        return Deferred(f"[reference('{target}')]", "not deployed")

    def list_call(self, function: str, target: str, api_version: str | None, body: Any) -> Any:
        return Deferred(f"[{function}('{target}')]", "not deployed")

    def resource_info(self, symbolic_name: str) -> dict[str, Any]:
        return {}

    def user_function(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def deployment(self) -> dict[str, Any]:
        return {"name": "bench"}


def median_seconds(fn: Any, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--resources", type=int, default=800)
    args = parser.parse_args(argv)
    ctx = BenchContext()
    loops = 2000
    print(f"{'expression':<100} median µs")
    for text in EXPRESSIONS:
        evaluate_string(text, ctx, "bench")  # warm the parse cache, as a template's copy loop does

        def run(text: str = text) -> None:
            for _ in range(loops):
                evaluate_string(text, ctx, "bench")

        print(f"{text:<100} {median_seconds(run, args.repeat) / loops * 1e6:8.1f}")

    def bodies() -> None:
        for i in range(args.resources):
            ctx.index = i
            evaluate_value(BODY, ctx, f"resources[0][{i}]")

    total = median_seconds(bodies, args.repeat)
    print(f"{args.resources} resource bodies (9 expressions each): median {total * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
