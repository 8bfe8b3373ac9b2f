"""The public quickstart corpus through the SDK against the local ARM: validate → what-if (every change Create) →
create (Succeeded, declared outputs present) → what-if again (no Create, Delete or Modify, except of values that
follow the deployment's moment: see harness/corpus_sequence.py).

The test fails when a sample outside KNOWN_FAILURES fails (so the pass count cannot drop unnoticed) and when fewer
than MIN_PASSING pass. KNOWN_FAILURES (also listed in docs/LOCAL_ARM.md) say why each known sample fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.corpus import Sample, corpus_samples
from harness.corpus_sequence import run_corpus
from local_arm.testing import LocalArm, running_local_arm
from tests.support.arm_templates import stamped_template

# 158 of 161 in every run since utcNow() is one moment per deployment and the redeploy's plan is judged by whether its
# changes follow the clock (2026-12-06; before: 157-159 depending on whether redeploys fell in the deployment's
# second, 154-155 before the type schemas). The floor is 161 minus the 3 known failures.
MIN_PASSING = 158

# A resource that two nested deployments declare with different properties: the later rewrites the earlier, so a
# redeploy really rewrites it and back and its plan is a Modify at any moment (the redeploy is not a no-op; ARM's
# what-if "doesn't show the new configuration" of such a resource either: Azure/arm-template-whatif#143).
_DECLARED_TWICE = "two nested deployments declare {what} with different properties (see _DECLARED_TWICE)"

KNOWN_FAILURES = {
    "demos__nested-vms-in-virtual-network": _DECLARED_TWICE.format(
        what="the route table (udrDeploy without routes, udrUpdate with the NIC's address) and each NIC"
    ),
    "quickstarts__microsoft.app__container-app-dapr-pubsub-servicebus": _DECLARED_TWICE.format(
        what="the deployment script ACR-Build-<repo> (the publisher's and the subscriber's image builds: the same "
        "repository, so the same name, with a different image to build)"
    ),
    "quickstarts__microsoft.resources__deployment-script-azcli-agw-certificates": "reads a deployment script's "
    "outputs, which only running its bash/jq script produces; the local ARM does not run scripts",
}


def test_corpus_sequence_through_the_sdk(shared: Path, tmp_path: Path) -> None:
    samples = corpus_samples(shared)
    assert len(samples) >= 150
    gen = running_local_arm(tmp_path)
    arm = next(gen)
    try:
        outcomes = run_corpus(arm, samples)
    finally:
        gen.close()
    failures = {folder: why for folder, why in outcomes.items() if why is not None}
    passed = len(samples) - len(failures)
    unexpected = {f: why for f, why in failures.items() if f not in KNOWN_FAILURES}
    assert not unexpected, f"{len(unexpected)} sample(s) newly failing: {unexpected}"
    assert passed >= MIN_PASSING, f"only {passed} of {len(samples)} passed (expected >= {MIN_PASSING}): {failures}"


def _sample(root: Path, folder: str, template: dict[str, Any]) -> Sample:
    (root / folder).mkdir()
    (root / folder / "azuredeploy.json").write_text(json.dumps(template), encoding="utf-8")
    return Sample(folder, root / folder, f"quickstarts/{folder}")


def test_a_redeploy_passes_when_its_changes_follow_the_clock_and_fails_on_any_other(tmp_path: Path) -> None:
    """Nested templates' utcNow() defaults change with every deployment (ARM re-evaluates them), so the redeploy's
    Modify of the stamps is right; a property two nested deployments rewrite differs at any moment and fails."""
    root = tmp_path / "samples"
    root.mkdir()
    named = stamped_template()  # the nested template also names a resource after its moment: a new one each time
    named["resources"][1]["properties"]["template"]["resources"].append(
        {
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "apiVersion": "2023-01-31",
            "name": "[format('run-{0}', uniqueString(parameters('stamp')))]",
            "location": "[resourceGroup().location]",
        }
    )
    samples = [
        _sample(root, "stamped", stamped_template()),
        _sample(root, "named", named),
        _sample(root, "rewritten", stamped_template(rewritten=True)),
    ]
    gen = running_local_arm(tmp_path / "arm")
    arm: LocalArm = next(gen)
    try:
        outcomes = run_corpus(arm, samples, workers=2)
        settings = arm.admin.configure()
    finally:
        gen.close()
    assert outcomes["stamped"] is None
    assert outcomes["named"] is None
    failure = outcomes["rewritten"]
    assert failure is not None and failure.startswith("second what-if: Modify for ")
    assert "userAssignedIdentities/twice" in failure and "tags.pass" in failure and "tags.stamp" not in failure
    assert settings["clock_offset"] == 0  # the probing what-if's clock is put back
