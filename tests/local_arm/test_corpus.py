"""The public quickstart corpus through the SDK against the local ARM: validate → what-if (every change Create) →
create (Succeeded, declared outputs present) → what-if again (no Create, Delete or Modify).

The test fails when a sample outside KNOWN_FAILURES fails (so the pass count cannot drop unnoticed) and when fewer
than 90% pass. KNOWN_FAILURES (also listed in docs/LOCAL_ARM.md) say why each known sample fails.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.corpus import corpus_samples
from harness.corpus_sequence import run_sequence
from local_arm.testing import running_local_arm

# Measured 157-159 of 161 (2026-12-06, with the type schemas behind the local ARM; 154-155 before). The floor: 161,
# minus the 2 deterministic known failures, minus the 5 samples whose nested templates default a parameter to
# utcNow() (time-dependent, see below: they pass when the redeploy's what-if lands in the deployment's second).
MIN_PASSING = 154

KNOWN_FAILURES = {
    "demos__nested-vms-in-virtual-network": "a nested deployment rewrites the route table with the NIC's private IP, "
    "so the top-level declaration differs from stored state on redeploy (ARM shows Modify too)",
    "quickstarts__microsoft.resources__deployment-script-azcli-agw-certificates": "reads a deployment script's "
    "outputs; the local ARM does not run scripts",
}


def time_dependent(sample_dir: Path) -> bool:
    """A nested template defaulting a parameter to utcNow() (which the outer template does not pass) changes it with
    every deployment, so a redeploy is rightly a Modify unless both land in the same second (ARM does the same).
    Top-level utcNow() defaults are pinned by corpus_sequence.sample_body."""
    return "utcnow(" in (sample_dir / "azuredeploy.json").read_text(encoding="utf-8-sig").lower()


def test_corpus_sequence_through_the_sdk(shared: Path, tmp_path: Path) -> None:
    samples = corpus_samples(shared)
    assert len(samples) >= 150
    gen = running_local_arm(tmp_path)
    arm = next(gen)
    try:
        client = arm.deployments_client()
        resources = arm.resource_client()
        with ThreadPoolExecutor(max_workers=6) as pool:
            outcomes = dict(
                zip(
                    [s.folder for s in samples],
                    pool.map(lambda s: run_sequence(arm, client, resources, s), samples),
                    strict=True,
                )
            )
    finally:
        gen.close()
    failures = {folder: why for folder, why in outcomes.items() if why is not None}
    passed = len(samples) - len(failures)
    timed = {s.folder for s in samples if time_dependent(s.path)}
    unexpected = {
        f: why
        for f, why in failures.items()
        if f not in KNOWN_FAILURES and not (f in timed and why.startswith("second what-if: Modify"))
    }
    assert not unexpected, f"{len(unexpected)} sample(s) newly failing: {unexpected}"
    assert passed >= MIN_PASSING, f"only {passed} of {len(samples)} passed (expected >= {MIN_PASSING}): {failures}"
    assert passed >= 0.9 * len(samples)
