"""Local ARM through the real SDK clients, with simulated latency 0 and instant provisioning.

1. validate + what-if + create + get of a 10-resource template (a storage account, an App Service plan, a web app
   reading the account's endpoint through reference(), and 7 user-assigned identities), each round into a fresh
   resource group so what-if always plans 10 Creates; median of ``--repeat`` rounds (default 20).
2. ``--concurrent`` deployments (default 50) of the same template into as many resource groups at once (one
   thread each, one shared client), wall time from the first PUT to the last poller finishing.

    .venv/bin/python bench/bench_local_arm.py [--repeat 20] [--concurrent 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.resources import ResourceManagementClient

from local_arm.credential import LocalArmCredential

REPO = Path(__file__).resolve().parent.parent
SUBSCRIPTION_ID = "00000000-0000-0000-0000-00000000be0c"


def ten_resource_template() -> dict[str, Any]:
    identities = {
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "apiVersion": "2023-01-31",
        "name": "[format('id{0}', copyIndex())]",
        "location": "[resourceGroup().location]",
        "tags": {"env": "[parameters('env')]"},
        "copy": {"name": "ids", "count": 7},
    }
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "env": {"type": "string", "defaultValue": "bench", "allowedValues": ["bench", "prod"]},
            "storageName": {"type": "string", "defaultValue": "[concat('st', uniqueString(resourceGroup().id))]"},
        },
        "variables": {"planName": "[concat('plan-', parameters('env'))]"},
        "resources": [
            {
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-01-01",
                "name": "[parameters('storageName')]",
                "location": "[resourceGroup().location]",
                "sku": {"name": "Standard_LRS"},
                "kind": "StorageV2",
                "properties": {"minimumTlsVersion": "TLS1_2"},
            },
            {
                "type": "Microsoft.Web/serverfarms",
                "apiVersion": "2022-03-01",
                "name": "[variables('planName')]",
                "location": "[resourceGroup().location]",
                "sku": {"name": "B1"},
            },
            {
                "type": "Microsoft.Web/sites",
                "apiVersion": "2022-03-01",
                "name": "[concat('app-', uniqueString(resourceGroup().id))]",
                "location": "[resourceGroup().location]",
                "dependsOn": ["[variables('planName')]", "[parameters('storageName')]"],
                "properties": {
                    "serverFarmId": "[resourceId('Microsoft.Web/serverfarms', variables('planName'))]",
                    "siteConfig": {
                        "appSettings": [
                            {"name": "BLOB", "value": "[reference(parameters('storageName')).primaryEndpoints.blob]"}
                        ]
                    },
                },
            },
            identities,
        ],
        "outputs": {
            "blob": {"type": "string", "value": "[reference(parameters('storageName')).primaryEndpoints.blob]"}
        },
    }


def _median(values: list[float]) -> float:
    return statistics.median(values)


def sequence_round(client: Any, resources: Any, rg: str, body: dict[str, Any]) -> dict[str, float]:
    resources.resource_groups.create_or_update(rg, {"location": "eastus"})
    times: dict[str, float] = {}
    t = time.perf_counter()
    client.deployments.begin_validate(rg, "bench", body).result()
    times["validate"] = time.perf_counter() - t
    t = time.perf_counter()
    plan = client.deployments.begin_what_if(rg, "bench", body).result()
    times["what_if"] = time.perf_counter() - t
    assert [c.change_type for c in plan.properties.changes] == ["Create"] * 10, plan.properties.changes
    t = time.perf_counter()
    result = client.deployments.begin_create_or_update(rg, "bench", body).result()
    times["create"] = time.perf_counter() - t
    assert result.properties.provisioning_state == "Succeeded"
    t = time.perf_counter()
    client.deployments.get(rg, "bench")
    times["get"] = time.perf_counter() - t
    times["total"] = sum(times.values())
    return times


def concurrent_round(client: Any, resources: Any, count: int, body: dict[str, Any]) -> tuple[float, list[float]]:
    for i in range(count):
        resources.resource_groups.create_or_update(f"rg-conc-{i}", {"location": "eastus"})

    def one(i: int) -> float:
        t = time.perf_counter()
        result = client.deployments.begin_create_or_update(f"rg-conc-{i}", "bench", body).result()
        assert result.properties.provisioning_state == "Succeeded"
        return time.perf_counter() - t

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        each = list(pool.map(one, range(count)))
    return time.perf_counter() - started, each


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument(
        "--polling-interval",
        type=float,
        default=30.0,
        help="client polling_interval in s (default: the SDK's 30; the server's retry-after-ms of 10 ms governs)",
    )
    parser.add_argument(
        "--retry-after", type=float, default=0.0, help="server poll delay in s (0: retry-after-ms 10; ARM sends 1+)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    body = {"properties": {"mode": "Incremental", "template": ten_resource_template(), "parameters": {}}}
    with tempfile.TemporaryDirectory() as state:
        # The server runs as its own process (python starter.py local-arm), as it does for users: the SDK clients
        # and the server do not share a GIL.
        config = Path(state) / "config.json"
        config.write_text(json.dumps({"retry_after": args.retry_after, "provisioning_seconds": 0.0, "latency": 0.0}))
        proc = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "starter.py"),
                "local-arm",
                "--port",
                "0",
                "--state-dir",
                state,
                "--config",
                str(config),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            kwargs = {
                "base_url": info["endpoint"],
                "connection_verify": info["ca_file"],
                "polling_interval": args.polling_interval,
            }
            client = DeploymentsMgmtClient(
                LocalArmCredential(), SUBSCRIPTION_ID, connection_pool_maxsize=args.concurrent, **kwargs
            )
            resources = ResourceManagementClient(LocalArmCredential(), SUBSCRIPTION_ID, **kwargs)
            sequence_round(client, resources, "rg-warmup", body)
            rounds = [sequence_round(client, resources, f"rg-seq-{i}", body) for i in range(args.repeat)]
            wall, each = concurrent_round(client, resources, args.concurrent, body)
            client.close()
            resources.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    figures = {
        "sequence_rounds": args.repeat,
        "sequence_median_s": {k: round(_median([r[k] for r in rounds]), 4) for k in rounds[0]},
        "sequence_range_total_s": [
            round(min(r["total"] for r in rounds), 4),
            round(max(r["total"] for r in rounds), 4),
        ],
        "polling_interval_s": args.polling_interval,
        "retry_after_s": args.retry_after,
        "concurrent_deployments": args.concurrent,
        "concurrent_wall_s": round(wall, 3),
        "concurrent_each_median_s": round(_median(each), 3),
        "concurrent_each_max_s": round(max(each), 3),
        "concurrent_per_second": round(args.concurrent / wall, 1),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        med = figures["sequence_median_s"]
        print(f"10-resource template, median of {args.repeat} (latency 0):")
        for key in ("validate", "what_if", "create", "get", "total"):
            print(f"  {key:9s} {med[key] * 1000:8.1f} ms")
        print(f"{args.concurrent} concurrent deployments into {args.concurrent} resource groups:")
        print(
            f"  wall {wall:.2f} s, each median {figures['concurrent_each_median_s']:.2f} s, "
            f"max {figures['concurrent_each_max_s']:.2f} s, {figures['concurrent_per_second']} deployments/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
