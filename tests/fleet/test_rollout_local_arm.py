"""Acceptance of fleet rollouts through the production path: `starter.py rollout ...` as a CLI process, a Temporal
dev server, a worker process (worker.py) with the real activities, and the local ARM over HTTPS serving three
subscriptions. The local ARM's request counters prove what reached "Azure" (one deployment PUT per target)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from contract.rollout import QUERY_ROLLOUT_STATUS, RingState, RolloutState, RolloutStatus, TargetState
from harness.localarm import storage_template
from local_arm.admin import Fault
from local_arm.testing import FAST, LocalArm, running_local_arm
from tests.support.fleet import Fleet

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPO = Path(__file__).resolve().parents[2]
SUBS = [f"00000000-0000-0000-0000-0000000001{i:02d}" for i in (1, 2, 3)]


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-fleet"), **FAST)


@pytest.fixture(autouse=True)
def no_faults_left(local_arm: LocalArm) -> Iterator[None]:
    yield
    local_arm.admin.clear_faults()


@pytest.fixture
def fleet(dev_env: Any, local_arm: LocalArm, tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(dev_env.client.service_client.config.target_host, local_arm, tmp_path)
    f.start_worker()
    try:
        yield f
    finally:
        f.stop()


def tagged_template(version: str) -> dict[str, Any]:
    template = storage_template(["stfleet0001"])
    template["resources"][0]["tags"] = {"version": version}
    return template


def ring(name: str, groups: list[str], **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "targets": [{"subscription": SUBS[i % 3], "resource_group": rg} for i, rg in enumerate(groups)],
        **kw,
    }


def resources(local_arm: LocalArm, subscription_id: str) -> Any:
    from azure.mgmt.resource.resources import ResourceManagementClient

    from local_arm.credential import LocalArmCredential

    return ResourceManagementClient(LocalArmCredential(), subscription_id, **local_arm.client_kwargs())


def puts(local_arm: LocalArm, rg: str) -> int:
    """Deployment PUTs that reached the local ARM for one resource group."""
    return local_arm.admin.counters().count(
        method="PUT", operation="Deployments_CreateOrUpdate", path_contains=f"/resourcegroups/{rg}/"
    )


async def test_three_rings_of_ten_across_three_subscriptions_roll_out_ring_by_ring(fleet: Fleet, local_arm, dev_env):
    tag = uuid.uuid4().hex[:6]
    groups = [[f"rg-{tag}-{r}-{i}" for i in range(10)] for r in range(3)]
    path = fleet.rollout_file(
        f"fleet-{tag}",
        [ring(f"ring{r + 1}", g, max_parallel=5, bake="3s") for r, g in enumerate(groups)],
        template=tagged_template("1"),
    )
    code, out, err = await fleet.cli("rollout", "plan", str(path), "-o", "json")
    assert code == 6, err  # everything is new: the plan changes something
    planned = json.loads(out)["rollout"]
    assert all(t["plan"]["new_resource_group"] for r in planned["rings"] for t in r["targets"])
    assert not any(puts(local_arm, rg) for g in groups for rg in g), "a plan deploys nothing"

    code, out, err = await fleet.cli("rollout", "start", str(path), "--follow", "-o", "json")
    assert code == 0, (err, fleet.log.read_text()[-3000:])
    result = RolloutStatus.model_validate_json(out)
    assert result.state is RolloutState.SUCCEEDED
    assert [r.state for r in result.rings] == [RingState.SUCCEEDED] * 3
    for before, after in zip(result.rings, result.rings[1:], strict=False):
        last_end = max(t.ended_at or 0 for t in before.targets)
        assert min(t.started_at or 0 for t in after.targets) - last_end >= 3.0, "the bake was not honoured"
    targets = [t for r in result.rings for t in r.targets]
    assert {t.subscription_id for t in targets} == set(SUBS)
    assert {t.state for t in targets} == {TargetState.SUCCEEDED}
    # Each target is an ordinary deployment workflow (deploy-<sub>-<rg>), deployed exactly once.
    assert all(t.workflow_id == f"deploy-{t.subscription_id}-{t.resource_group}" for t in targets)
    assert all(puts(local_arm, rg) == 1 for g in groups for rg in g)
    # The local ARM kept each subscription's resource groups apart.
    for sub in SUBS:
        with resources(local_arm, sub) as rc:
            mine = {g.name for g in rc.resource_groups.list()} & {t.resource_group for t in targets}
        assert mine == {t.resource_group for t in targets if t.subscription_id == sub}

    code, out, _ = await fleet.cli("rollout", "status", result.rollout_id)
    assert code == 0
    assert out.count("SUCCEEDED") >= 33 and "Ring ring3: SUCCEEDED" in out
    # The same file again changes nothing: the plan's exit code says so.
    code, out, err = await fleet.cli("rollout", "plan", str(path))
    assert code == 0, out + err


async def test_a_failure_in_ring_two_halts_ring_three_and_rolls_back_after_a_preview(fleet: Fleet, local_arm, dev_env):
    tag = uuid.uuid4().hex[:6]
    groups = [[f"rg-{tag}-{r}-{i}" for i in range(2)] for r in range(3)]
    rings_v1 = [ring(f"ring{r + 1}", g, max_parallel=2) for r, g in enumerate(groups)]
    path = fleet.rollout_file(f"roll-{tag}", rings_v1, template=tagged_template("1"))
    code, _, err = await fleet.cli("rollout", "start", str(path), "--follow")
    assert code == 0, err
    before = {rg: puts(local_arm, rg) for g in groups for rg in g}

    # Version 2: ring 2's second target fails at ARM's preflight; ring 2 rolls back its completed target.
    rings_v2 = [ring(f"ring{r + 1}", g, max_parallel=1) for r, g in enumerate(groups)]
    rings_v2[1]["on_failure"] = "rollback"
    path = fleet.rollout_file(f"roll-{tag}", rings_v2, template=tagged_template("2"))
    local_arm.admin.add_faults(Fault.preflight_failure("InvalidTemplate", path=f"/resourcegroups/{groups[1][1]}/"))
    code, out, err = await fleet.cli("rollout", "start", str(path), "--follow", "-o", "json")
    assert code == 1, err  # halted
    result = RolloutStatus.model_validate_json(out)
    assert result.state is RolloutState.HALTED and result.halted_ring == "ring2"
    assert [r.state for r in result.rings] == [RingState.SUCCEEDED, RingState.ROLLED_BACK, RingState.HALTED]
    done, failed = result.rings[1].targets
    assert failed.state is TargetState.FAILED
    assert done.state is TargetState.ROLLED_BACK
    assert done.rollback_preview is not None and done.rollback_preview.modifies == 1, done.rollback_preview
    assert done.rollback_run_id and done.rollback_run_id != done.run_id
    assert {t.state for t in result.rings[2].targets} == {TargetState.SKIPPED}
    assert all(puts(local_arm, rg) == before[rg] for rg in groups[2]), "ring 3 must not deploy"

    # The rolled-back group carries version 1 again; ring 1 keeps version 2.
    def version(t: Any) -> str:
        with resources(local_arm, t.subscription_id) as rc:
            res = rc.resources.get_by_id(
                f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}/providers/"
                "Microsoft.Storage/storageAccounts/stfleet0001",
                api_version="2023-01-01",
            )
        return str(res.tags["version"])

    assert version(done) == "1"
    assert {version(t) for t in result.rings[0].targets} == {"2"}


async def test_sigkill_during_a_bake_resumes_the_remaining_time_and_deploys_no_target_twice(
    fleet: Fleet, local_arm, dev_env
):
    tag = uuid.uuid4().hex[:6]
    groups = [[f"rg-{tag}-{r}-{i}" for i in range(2)] for r in range(2)]
    bake = 20.0
    path = fleet.rollout_file(
        f"kill-{tag}", [ring(f"ring{r + 1}", g, max_parallel=2, bake=f"{bake:g}s") for r, g in enumerate(groups)],
        template=tagged_template("1"),
    )  # fmt: skip
    code, _, err = await fleet.cli("rollout", "start", str(path))
    assert code == 0, err
    handle = dev_env.client.get_workflow_handle(f"rollout-kill-{tag}", result_type=RolloutStatus)

    async def status() -> RolloutStatus:
        return await handle.query(QUERY_ROLLOUT_STATUS, result_type=RolloutStatus)

    deadline = time.monotonic() + 120
    while (await status()).rings[0].state is not RingState.BAKING:
        assert time.monotonic() < deadline, fleet.log.read_text()[-3000:]
        await asyncio.sleep(0.2)
    await asyncio.sleep(3)
    fleet.kill_worker()
    killed_at = time.time()
    fleet.start_worker()
    result = await asyncio.wait_for(handle.result(), 180)
    assert result.state is RolloutState.SUCCEEDED
    bake_until = result.rings[0].bake_until
    assert bake_until is not None and bake_until > killed_at
    ring2_start = min(t.started_at or 0 for t in result.rings[1].targets)
    # The bake ended when it was due, not a whole bake after the restart.
    assert 0 <= ring2_start - bake_until < 5, (ring2_start - bake_until, killed_at)
    history = await handle.fetch_history()
    bakes = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    assert len([b for b in bakes if b > 1]) == 2, bakes  # one timer per ring: none restarted after the kill
    assert all(puts(local_arm, rg) == 1 for g in groups for rg in g)
