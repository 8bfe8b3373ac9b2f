"""Azure's type schemas (azure_types): load time and memory, and what the schema lint adds to the ARM JSON checks.

    .venv/bin/python bench/bench_schema.py [--repeat N]

Loads run in fresh subprocesses (nothing cached): one namespace (Microsoft.Storage), the largest
(Microsoft.Network), and all 283. Memory is the growth of the process's resident set. The lint rows time
``lint_template`` on 800-resource templates with and without the schema checks (the checks switched off by
replacing them with a no-op), and the schema checks alone, with the namespaces already loaded (as in a worker after
its first lint). Figures go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_lint import big_template as storage_template  # noqa: E402  (the same 800-resource template)
from bench_lint import timed  # noqa: E402

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"

_LOAD = """
import sys, time
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096
before = rss(); start = time.perf_counter()
import azure_types
names = sys.argv[1:] or sorted(azure_types.namespaces())
for n in names:
    azure_types.namespace(n)
print(time.perf_counter() - start, rss() - before)
"""


def load(namespaces: list[str], repeat: int) -> tuple[list[float], list[int]]:
    times, mems = [], []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", _LOAD, *namespaces], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()  # fmt: skip
        times.append(float(out[0]))
        mems.append(int(out[1]))
    return times, mems


def mixed_template(n: int) -> dict:
    """800 resources of four namespaces with deeper bodies: storage, web apps with siteConfig, networks with
    subnets, security groups with rules."""
    kinds = [
        lambda i: {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-05-01", "name": f"st{i}",
                   "location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2",
                   "properties": {"accessTier": "Hot", "networkAcls": {"defaultAction": "Deny", "bypass": "None"}}},
        lambda i: {"type": "Microsoft.Web/sites", "apiVersion": "2023-12-01", "name": f"app{i}",
                   "location": "westeurope", "properties": {"httpsOnly": True, "siteConfig": {
                       "alwaysOn": True, "appSettings": [{"name": "A", "value": "b"}], "minTlsVersion": "1.2"}}},
        lambda i: {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-09-01", "name": f"vnet{i}",
                   "location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                   "subnets": [{"name": "s", "properties": {"addressPrefix": "10.0.0.0/24"}}]}},
        lambda i: {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-09-01", "name": f"nsg{i}",
                   "location": "westeurope", "properties": {"securityRules": [{"name": "r", "properties": {
                       "protocol": "Tcp", "access": "Allow", "direction": "Inbound", "priority": 100,
                       "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "sourcePortRange": "*",
                       "destinationPortRange": "443"}}]}},
    ]  # fmt: skip
    return {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "resources": [kinds[i % 4](i) for i in range(n)]}


def fmt(times: list[float]) -> str:
    return (f"median {statistics.median(times) * 1000:8.1f} ms  ({len(times)} runs, "
            f"{min(times) * 1000:.1f}-{max(times) * 1000:.1f} ms)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    for label, names in (
        ("load Microsoft.Storage", ["microsoft.storage"]),
        ("load Microsoft.Network (largest)", ["microsoft.network"]),
        ("load all 283 namespaces", []),
    ):
        times, mems = load(names, args.repeat if names else max(3, args.repeat // 2))
        print(f"{label:<45} {fmt(times)}  memory +{statistics.median(mems) / 2**20:.1f} MiB")

    import services.lint as lint
    import services.schema_lint as schema_lint
    from arm_engine.json_source import value_positions

    def no_schema_checks(*_args: object, **_kwargs: object) -> list[object]:
        return []

    real = schema_lint.check_resource_schemas
    with tempfile.TemporaryDirectory() as tmp:
        for label, doc in (
            ("800 storage accounts", storage_template(800)),
            ("800 mixed resources", mixed_template(800)),
        ):
            path = Path(tmp) / "t.json"
            path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
            lint.lint_template(path)  # warm: the namespaces are read once per process
            with_schema = timed(lambda p=path: lint.lint_template(p), args.repeat)
            schema_lint.check_resource_schemas = no_schema_checks  # type: ignore[assignment]
            try:
                without = timed(lambda p=path: lint.lint_template(p), args.repeat)
            finally:
                schema_lint.check_resource_schemas = real
            positions = value_positions(path.read_text())
            alone = timed(lambda d=doc, at=positions: real(d, "t.json", lambda p: at.get(p, (None, None))), args.repeat)
            findings = len(real(doc, "t.json", lambda p: (None, None)))
            print(f"lint, {label}, today's checks only          {fmt(without)}")
            print(f"lint, {label}, with the schema checks       {fmt(with_schema)}")
            print(f"schema checks alone, {label} ({findings} findings)   {fmt(alone)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
