"""RolloutWorkflow's decisions with the fast fake stage set (harness/fakes.py) on Temporal's time-skipping server:
rings in order, at most max_parallel at once, the bake as a durable timer, a failed ring halting the later ones,
approvals, pause/abort, and a 1,000-target rollout keeping its history and payloads within Temporal's limits.
The stage activities are fakes (no ARM here); the children are real DeploymentWorkflows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contract.health import CheckResult, CheckState, HealthCheckReport, HealthSpec
from contract.models import DeployOutcome
from contract.rollout import (
    QUERY_ROLLOUT_STATUS,
    ROLLOUT_WORKFLOW_NAME,
    SIGNAL_ABORT,
    SIGNAL_APPROVE_RING,
    AbortSignal,
    ApproveRingSignal,
    OnFailure,
    OnHalt,
    RingState,
    RolloutInput,
    RolloutRequest,
    RolloutRing,
    RolloutState,
    RolloutStatus,
    RolloutTarget,
    TargetState,
)
from harness.fakes import FakeStages, make_request
from workflows.deployment import DeploymentWorkflow
from workflows.rollout import RolloutWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUBS = [f"00000000-0000-0000-0000-00000000000{i}" for i in (1, 2, 3)]


@asynccontextmanager
async def worker(env: WorkflowEnvironment, fakes: FakeStages, task_queue: str) -> AsyncIterator[Worker]:
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[DeploymentWorkflow, RolloutWorkflow],
        activities=fakes.activities(),
        max_cached_workflows=100,
    ) as w:
        yield w


def rollout(rings: list[list[str]], *, tag: str, **ring_kw: Any) -> RolloutRequest:
    """Rings of resource groups, spread over three subscriptions; each ring's options from ``ring_kw``."""
    return RolloutRequest(
        name=f"test-{tag}",
        base=make_request("base"),
        rings=[
            RolloutRing(
                name=f"ring{i + 1}",
                targets=[
                    RolloutTarget(subscription_id=SUBS[j % 3], resource_group=rg, location="westeurope")
                    for j, rg in enumerate(groups)
                ],
                **ring_kw,
            )
            for i, groups in enumerate(rings)
        ],
        initiator="tester",
    )


def groups(tag: str, rings: int, per_ring: int) -> list[list[str]]:
    return [[f"rg-{tag}-{r}-{i}" for i in range(per_ring)] for r in range(rings)]


async def start(env: WorkflowEnvironment, request: RolloutRequest, task_queue: str) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        ROLLOUT_WORKFLOW_NAME,
        RolloutInput(request=request),
        id=f"rollout-test-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=RolloutStatus,
    )


async def timers(handle: WorkflowHandle[Any, Any]) -> list[float]:
    history = await handle.fetch_history()
    return [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]


async def status_of(handle: WorkflowHandle[Any, Any]) -> RolloutStatus:
    return await handle.query(QUERY_ROLLOUT_STATUS, result_type=RolloutStatus)


async def wait_for(handle: WorkflowHandle[Any, Any], check: Any, *, timeout: float = 30) -> RolloutStatus:
    async def poll() -> RolloutStatus:
        while True:
            s = await status_of(handle)
            if check(s):
                return s
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(poll(), timeout)


async def test_three_rings_of_ten_complete_in_order_with_the_bake_honoured(time_skipping_env, task_queue):
    tag = uuid.uuid4().hex[:6]
    rings = groups(tag, 3, 10)
    fakes = FakeStages()
    request = rollout(rings, tag=tag, max_parallel=4, bake_seconds=6 * 3600)
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, request, task_queue)
        result: RolloutStatus = await handle.result()
    assert result.state is RolloutState.SUCCEEDED
    assert [r.state for r in result.rings] == [RingState.SUCCEEDED] * 3
    # Ring by ring: every target of ring 1 deployed before any of ring 2, and so on.
    assert [fakes.deployed.index(rg) // 10 for ring in rings for rg in ring] == [0] * 10 + [1] * 10 + [2] * 10
    # Each ring baked its six hours as one durable timer (the time-skipping server fast-forwards it); ring r+1's
    # first target started no earlier than ring r's last ended plus the bake.
    assert [t for t in await timers(handle) if t > 60] == [6 * 3600.0] * 3
    for before, after in zip(result.rings, result.rings[1:], strict=False):
        last_end = max(t.ended_at or 0 for t in before.targets)
        first_start = min(t.started_at or 0 for t in after.targets)
        assert first_start - last_end >= 6 * 3600
    targets = [t for r in result.rings for t in r.targets]
    assert {t.state for t in targets} == {TargetState.SUCCEEDED}
    assert all(t.workflow_id and t.workflow_id.startswith("deploy-") and t.run_id for t in targets)
    assert len({t.subscription_id for t in targets}) == 3


async def test_max_parallel_bounds_the_running_children(time_skipping_env, task_queue):
    tag = uuid.uuid4().hex[:6]
    fakes = FakeStages()
    request = rollout(groups(tag, 1, 9), tag=tag, max_parallel=3)
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, request, task_queue)
        result: RolloutStatus = await handle.result()
    spans = sorted((t.started_at or 0, t.ended_at or 0) for t in result.rings[0].targets)
    most = max(sum(1 for s, e in spans if s <= at < e or s == at) for at, _ in spans)
    assert 1 <= most <= 3


async def test_a_failure_in_ring_two_halts_ring_three(time_skipping_env, task_queue):
    tag = uuid.uuid4().hex[:6]
    rings = groups(tag, 3, 4)
    fakes = FakeStages(fail_resource_groups={rings[1][1]})
    request = rollout(rings, tag=tag, max_parallel=1, bake_seconds=600)
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, request, task_queue)
        result: RolloutStatus = await handle.result()
    assert result.state is RolloutState.HALTED
    assert result.halted_ring == "ring2"
    assert [r.state for r in result.rings] == [RingState.SUCCEEDED, RingState.FAILED, RingState.HALTED]
    ring2 = result.rings[1].targets
    assert [t.state for t in ring2] == [
        TargetState.SUCCEEDED,
        TargetState.FAILED,
        TargetState.SKIPPED,
        TargetState.SKIPPED,
    ]
    assert ring2[1].outcome is DeployOutcome.LOGIC_FAILURE and "InjectedDeployFailure" in (ring2[1].message or "")
    assert not set(rings[2]) & set(fakes.deployed), "no target of ring 3 may deploy"
    assert {t.state for t in result.rings[2].targets} == {TargetState.SKIPPED}


async def test_a_failing_health_gate_during_the_bake_halts_the_rollout(time_skipping_env, task_queue):
    tag = uuid.uuid4().hex[:6]
    rings = groups(tag, 2, 2)

    def gate(n: int) -> HealthCheckReport:
        state = CheckState.PASSED if n < 3 else CheckState.FAILED
        return HealthCheckReport(
            window_seconds=30,
            checks=[CheckResult(name="error-rate", kind="http", target="https://x.invalid", state=state, attempts=1)],
        )

    fakes = FakeStages(gates=gate)
    gates = HealthSpec.model_validate({"checks": [{"kind": "http", "name": "error-rate", "url": "https://x.invalid/"}]})
    request = rollout(rings, tag=tag, bake_seconds=3600, gates=gates, gate_interval_seconds=900)
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, request, task_queue)
        result: RolloutStatus = await handle.result()
    assert result.state is RolloutState.HALTED
    ring1 = result.rings[0]
    assert ring1.state is RingState.FAILED and ring1.gate_checks == 3
    assert "error-rate" in (ring1.gate_failure or "")
    assert not set(rings[1]) & set(fakes.deployed)


async def test_a_ring_needing_approval_waits_for_it(time_skipping_env, task_queue):
    tag = uuid.uuid4().hex[:6]
    rings = groups(tag, 2, 2)
    fakes = FakeStages()
    request = rollout(rings, tag=tag, requires_approval=False)
    request.rings[1].requires_approval = True
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, request, task_queue)
        s = await wait_for(handle, lambda s: s.rings[1].state is RingState.AWAITING_APPROVAL)
        assert s.rings[0].state is RingState.SUCCEEDED
        assert not set(rings[1]) & set(fakes.deployed)
        # The ring waits with its targets previewed and the previews hashed; the approval must name that hash.
        plan_hash = s.rings[1].plan_hash
        assert plan_hash and plan_hash.startswith("sha256:") and fakes.calls["preview"] == 2
        assert all(t.plan is not None and t.plan.creates == 1 for t in s.rings[1].targets)
        await handle.signal(SIGNAL_APPROVE_RING, ApproveRingSignal(ring="ring2", by="mallory", plan_hash="sha256:0"))
        await handle.signal(SIGNAL_APPROVE_RING, ApproveRingSignal(ring="ring2", by="eve"))
        s = await wait_for(handle, lambda s: len(s.rings[1].refused_approvals) == 2)
        assert s.rings[1].state is RingState.AWAITING_APPROVAL and s.rings[1].approved_by is None
        await handle.signal(SIGNAL_APPROVE_RING, ApproveRingSignal(ring="ring2", by="alice", plan_hash=plan_hash))
        result: RolloutStatus = await handle.result()
    assert result.state is RolloutState.SUCCEEDED
    assert result.rings[1].approved_by == "alice"
    assert "mallory" in result.rings[1].refused_approvals[0]


async def test_abort_stops_before_the_next_ring(time_skipping_env, task_queue):
    tag = uuid.uuid4().hex[:6]
    rings = groups(tag, 2, 2)
    fakes = FakeStages()
    request = rollout(rings, tag=tag, bake_seconds=3600 * 24)
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, request, task_queue)
        await wait_for(handle, lambda s: s.rings[0].state is RingState.BAKING)
        await handle.signal(SIGNAL_ABORT, AbortSignal(by="bob", reason="bad canary"))
        result: RolloutStatus = await handle.result()
    assert result.state is RolloutState.ABORTED and result.aborted_by == "bob"
    assert not set(rings[1]) & set(fakes.deployed)
    assert result.rings[1].state is RingState.HALTED


async def test_a_ring_that_rolls_back_previews_then_redeploys_its_completed_targets(time_skipping_env, task_queue):
    """With fakes the last-good store is empty, so the completed targets are left as deployed and say why (the
    preview-then-redeploy path runs against the local ARM in test_rollout_local_arm.py)."""
    tag = uuid.uuid4().hex[:6]
    rings = groups(tag, 1, 3)
    fakes = FakeStages(fail_resource_groups={rings[0][2]})
    request = rollout(rings, tag=tag, on_failure=OnFailure.ROLLBACK)
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, request, task_queue)
        result: RolloutStatus = await handle.result()
    assert result.state is RolloutState.HALTED
    done = result.rings[0].targets[:2]
    assert all(t.state is TargetState.SUCCEEDED and "no earlier good deployment" in (t.message or "") for t in done)


async def test_a_long_rollout_continues_as_new_and_deploys_every_target_once(time_skipping_env, task_queue):
    tag = uuid.uuid4().hex[:6]
    rings = groups(tag, 2, 40)
    fakes = FakeStages()
    request = rollout(rings, tag=tag, max_parallel=10, bake_seconds=3600)
    request.history_limit = 200
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, request, task_queue)
        result: RolloutStatus = await handle.result()
    assert result.state is RolloutState.SUCCEEDED
    assert result.runs >= 2, result.runs  # 80 children at 4-8 events each do not fit one run of 200 events
    assert sorted(fakes.deployed) == sorted(rg for ring in rings for rg in ring)  # none twice, none lost
    assert result.history_length < 200 + 10 * 12  # the last run stopped starting children at the limit
    # The bake survived continue-as-new as a deadline: ring 2 started a full hour after ring 1 ended.
    last_end = max(t.ended_at or 0 for t in result.rings[0].targets)
    assert min(t.started_at or 0 for t in result.rings[1].targets) - last_end >= 3600


async def test_on_halt_cancel_cancels_the_targets_still_running(time_skipping_env, task_queue):
    tag = uuid.uuid4().hex[:6]
    rings = groups(tag, 2, 3)
    fakes = FakeStages(fail_resource_groups={rings[0][0]}, slow_resource_groups={rings[0][1]: 3, rings[0][2]: 3})
    request = rollout(rings, tag=tag, max_parallel=3, on_halt=OnHalt.CANCEL)
    async with worker(time_skipping_env, fakes, task_queue):
        handle = await start(time_skipping_env, request, task_queue)
        result: RolloutStatus = await handle.result()
    assert result.state is RolloutState.HALTED
    states = [t.state for t in result.rings[0].targets]
    assert states == [TargetState.FAILED, TargetState.CANCELLED, TargetState.CANCELLED], states
    assert not set(rings[1]) & set(fakes.deployed)
