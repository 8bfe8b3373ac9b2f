"""What masking secret-fed properties adds to PLANNING: the second offline expansion that finds where secure
parameters flow (``activities.secret_fed.secret_fed_paths``), and masking a what-if result at those paths
(``activities.plan.secret_free``), for the 800-resource generated template of bench_engine with a securestring in
every resource's tags, and for a one-resource template.

    .venv/bin/python bench/bench_secret_fed.py [--repeat 9]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from activities.plan import secret_free  # noqa: E402
from activities.secret_fed import secret_fed_paths  # noqa: E402
from activities.validate import expand  # noqa: E402
from arm_engine import DeploymentScope  # noqa: E402
from bench.bench_engine import generated_template  # noqa: E402
from harness.secret_template import random_token, secret_template  # noqa: E402
from local_arm.whatif import materialize  # noqa: E402

SCOPE = DeploymentScope(subscription_id="00000000-0000-0000-0000-000000000001", resource_group="rg-bench",
                        location="westeurope", deployment_name="orch-bench")  # fmt: skip


def with_secret(template: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(template)
    template["parameters"]["adminPassword"] = {"type": "securestring"}
    template["variables"]["tags"]["pw"] = "[parameters('adminPassword')]"
    return template


def what_if(template: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """A Modify for every resource: the live body holds the old secret, the template the new one."""
    before = expand(template, {"adminPassword": {"value": old}}, SCOPE)
    after = expand(template, {"adminPassword": {"value": new}}, SCOPE)
    changes = []
    for b, a in zip(before.resources, after.resources, strict=True):
        delta = [{"path": "tags.pw", "propertyChangeType": "Modify", "before": old, "after": new}]
        body_b, body_a = materialize(b.body), materialize(a.body)  # JSON, as ARM answers
        changes.append({"resourceId": b.id, "changeType": "Modify", "before": body_b, "after": body_a, "delta": delta})
    return {"status": "Succeeded", "properties": {"changes": changes}}


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def line(label: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return f"| {label} | {statistics.median(ms):.1f} ms | {min(ms):.1f}–{max(ms):.1f} ms |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)
    old, new = random_token(), random_token()
    print("| what | median | range |\n|---|---|---|")
    for label, template in (
        ("1 resource", secret_template("stbench01")),
        ("800 resources", with_secret(generated_template())),
    ):
        params = {"adminPassword": {"value": new}}
        find = lambda t=template, p=params: secret_fed_paths(t, p, ["adminPassword"], lambda x, y: expand(x, y, SCOPE))  # noqa: E731
        expand_once = lambda t=template, p=params: expand(t, p, SCOPE)  # noqa: E731
        print(line(f"{label}: one expansion (what VALIDATING_PARAMETERS does)", timed(expand_once, args.repeat)))
        print(line(f"{label}: secret-fed paths (two expansions)", timed(find, args.repeat)))
        paths = find()
        doc = what_if(template, old, new)
        masked = lambda d=doc, p=paths: secret_free(d, p, [new])  # noqa: E731
        print(
            line(
                f"{label}: masking the what-if ({len(doc['properties']['changes'])} changes)",
                timed(masked, args.repeat),
            )
        )
        result, _ = masked()
        assert old not in str(result) and new not in str(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
