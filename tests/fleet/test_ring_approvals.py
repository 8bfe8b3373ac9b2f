"""Ring approvals under the worker's approval policy, as deployment approvals are: four eyes (the rollout's initiator
may not approve its own ring), the policy file's allowed approvers of every target, N of M distinct approvers, and
signed (OpenSSH) or relay proofs when the policy demands them. A Temporal dev server (real time: statements carry
wall-clock validity), the fast fake stage set (harness/fakes.py: no ARM here), real child DeploymentWorkflows, and the
real verify_approval activity (ssh-keygen, Ed25519) with keys made for the test."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.approvals import ApprovalActivities
from contract.approvals import ApprovalProof, ApprovalStatement, utc_text
from contract.models import ApprovalPolicy
from contract.rollout import (
    QUERY_ROLLOUT_STATUS,
    ROLLOUT_WORKFLOW_NAME,
    SIGNAL_APPROVE_RING,
    ApproveRingSignal,
    RingState,
    RolloutInput,
    RolloutRequest,
    RolloutRing,
    RolloutState,
    RolloutStatus,
    RolloutTarget,
)
from harness.fakes import FakeStages, make_request
from harness.localarm import storage_template
from local_arm.testing import FAST, LocalArm, running_local_arm
from services.approvals import load_policy, sign_relay, sign_ssh
from tests.support.approval_keys import make_approval_keys
from tests.support.fleet import Fleet
from workflows.deployment import DeploymentWorkflow
from workflows.rollout import RolloutWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUBS = ["00000000-0000-0000-0000-000000000011", "00000000-0000-0000-0000-000000000012"]


@asynccontextmanager
async def worker(
    env: WorkflowEnvironment, fakes: FakeStages, task_queue: str, policy: Path | None = None
) -> AsyncIterator[Worker]:
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[DeploymentWorkflow, RolloutWorkflow],
        activities=[*fakes.activities(), ApprovalActivities(policy).verify_approval],
    ) as w:
        yield w


def rollout(tag: str) -> RolloutRequest:
    """Two rings of two groups in two subscriptions; the second needs an approval. Started by ``tester``."""
    return RolloutRequest(
        name=f"appr-{tag}",
        base=make_request("base"),
        rings=[
            RolloutRing(
                name=f"ring{r + 1}",
                requires_approval=r == 1,
                targets=[
                    RolloutTarget(subscription_id=SUBS[i], resource_group=f"rg-{tag}-{r}-{i}", location="westeurope")
                    for i in range(2)
                ],
            )
            for r in range(2)
        ],
        initiator="tester",
    )


async def start(env: WorkflowEnvironment, request: RolloutRequest, task_queue: str) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        ROLLOUT_WORKFLOW_NAME,
        RolloutInput(request=request),
        id=f"rollout-appr-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=RolloutStatus,
    )


async def wait_for(handle: WorkflowHandle[Any, Any], check: Any, *, timeout: float = 30) -> RolloutStatus:
    async def poll() -> RolloutStatus:
        while True:
            s = await handle.query(QUERY_ROLLOUT_STATUS, result_type=RolloutStatus)
            if check(s):
                return s
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(poll(), timeout)


async def test_the_rollouts_initiator_may_not_approve_its_ring_under_four_eyes(dev_env, task_queue):
    fakes = FakeStages()
    fakes.settings = fakes.settings.model_copy(update={"approval": ApprovalPolicy(enabled=True)})
    async with worker(dev_env, fakes, task_queue):
        handle = await start(dev_env, rollout(uuid.uuid4().hex[:6]), task_queue)
        s = await wait_for(handle, lambda s: s.rings[1].state is RingState.AWAITING_APPROVAL)
        plan_hash = s.rings[1].plan_hash
        await handle.signal(SIGNAL_APPROVE_RING, ApproveRingSignal(ring="ring2", by="tester", plan_hash=plan_hash))
        s = await wait_for(handle, lambda s: len(s.rings[1].refused_approvals) == 1)
        assert s.rings[1].state is RingState.AWAITING_APPROVAL and s.rings[1].approved_by is None
        assert "tester" in s.rings[1].refused_approvals[0] and "four eyes" in s.rings[1].refused_approvals[0]
        await handle.signal(SIGNAL_APPROVE_RING, ApproveRingSignal(ring="ring2", by="alice", plan_hash=plan_hash))
        result: RolloutStatus = await handle.result()
    assert result.state is RolloutState.SUCCEEDED and result.rings[1].approved_by == "alice"
    assert [e.identity for e in result.rings[1].approvals] == ["alice"]


def ring_statement(handle: WorkflowHandle[Any, Any], run_id: str, s: RolloutStatus, identity: str,
                   **override: Any) -> ApprovalStatement:  # fmt: skip
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "workflow_id": handle.id, "run_id": run_id, "round": 2, "plan_hash": s.rings[1].plan_hash,
        "destructive_set": [], "decision": "approve", "reason": "ring reviewed", "identity": identity,
        "issued_at": utc_text(now), "expires_at": utc_text(now + timedelta(minutes=10)),
    }  # fmt: skip
    fields.update(override)
    return ApprovalStatement(**fields)


async def test_a_policy_file_demands_signed_approvals_from_two_people_other_than_the_initiator(
    dev_env, task_queue, tmp_path
):
    keys = make_approval_keys(
        tmp_path, initiator="tester", scopes='[[scope]]\napprovers = ["ana", "bo", "tester"]\nrequired_approvals = 2\n'
    )
    assert keys.policy is not None
    fakes = FakeStages()
    policy = ApprovalPolicy(enabled=True, trust=load_policy(keys.policy))
    fakes.settings = fakes.settings.model_copy(update={"approval": policy})
    async with worker(dev_env, fakes, task_queue, keys.policy):
        handle = await start(dev_env, rollout(uuid.uuid4().hex[:6]), task_queue)
        run_id = (await handle.describe()).run_id
        assert run_id
        s = await wait_for(handle, lambda s: s.rings[1].state is RingState.AWAITING_APPROVAL)
        assert s.rings[1].required_approvals == 2
        plan_hash = s.rings[1].plan_hash

        async def send(statement: ApprovalStatement | None, proof: ApprovalProof | None, by: str = "?") -> None:
            signal = ApproveRingSignal(ring="ring2", by=by, plan_hash=plan_hash, statement=statement, proof=proof)
            await handle.signal(SIGNAL_APPROVE_RING, signal)

        def ssh(statement: ApprovalStatement, who: str) -> ApprovalProof:
            return ApprovalProof(kind="ssh", signature=sign_ssh(statement, key=str(keys.keys[who])))

        await send(None, None, by="ana")  # a claimed name: the policy accepts only proofs
        mine = ring_statement(handle, run_id, s, "tester")
        await send(mine, ssh(mine, "tester"))  # four eyes: the initiator, though verified
        ring1 = ring_statement(handle, run_id, s, "ana", round=1)
        await send(ring1, ssh(ring1, "ana"))  # a statement for another ring
        forged = ring_statement(handle, run_id, s, "ana")
        await send(forged, ssh(forged, "cy"))  # signed by a key allowed_signers does not list for ana
        s = await wait_for(handle, lambda s: len(s.rings[1].refused_approvals) == 4)
        refused = s.rings[1].refused_approvals
        assert "unsigned" in refused[0] and "ana" in refused[0]
        assert refused[1].startswith("tester:") and "requires someone else" in refused[1]
        assert "other-round" in refused[2] and "proof refused" in refused[3]
        assert s.rings[1].approved_by is None and s.rings[1].approvals == []

        ana = ring_statement(handle, run_id, s, "ana")
        await send(ana, ssh(ana, "ana"))
        s = await wait_for(handle, lambda s: len(s.rings[1].approvals) == 1)
        assert s.rings[1].state is RingState.AWAITING_APPROVAL  # one of two
        assert s.rings[1].approvals[0].verification.verified
        await send(ana, ssh(ana, "ana"))  # the same statement again
        s = await wait_for(handle, lambda s: len(s.rings[1].refused_approvals) == 5)
        assert "replay" in s.rings[1].refused_approvals[4] or "already" in s.rings[1].refused_approvals[4]
        bo = ring_statement(handle, run_id, s, "bo")
        await send(bo, sign_relay(bo, private_key=keys.relay_private, key_id="team-api-1"))  # the team API's relay
        result: RolloutStatus = await handle.result()
    assert result.state is RolloutState.SUCCEEDED
    assert result.rings[1].approved_by == "ana, bo"
    assert [e.verification.proof_kind for e in result.rings[1].approvals] == ["ssh", "relay"]


# ------------------------------------------------------------------------------------------------- the CLI


@pytest.fixture
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-ring-approvals"), **FAST)


async def test_rollout_approve_signs_the_ring_with_a_key_when_the_policy_demands_proofs(
    dev_env: Any, local_arm: LocalArm, tmp_path: Path
) -> None:
    """`starter.py rollout start|status|approve` as CLI processes, a worker process with the policy file, the local
    ARM: an unsigned approval is refused by the worker; `approve --key --as ana` counts."""
    me = pwd.getpwuid(os.geteuid()).pw_name  # the CLI's identity claim: the rollout's initiator
    (tmp_path / "keys").mkdir()
    keys = make_approval_keys(tmp_path / "keys", initiator=me)
    assert keys.policy is not None
    fleet = Fleet(dev_env.client.service_client.config.target_host, local_arm, tmp_path)
    fleet.env["ORCHESTRATOR_APPROVAL_POLICY"] = str(keys.policy)
    fleet.start_worker()
    try:
        tag = uuid.uuid4().hex[:6]
        rings = [
            {"name": "first", "targets": [{"subscription": SUBS[0], "resource_group": f"rg-signed-{tag}-1"}]},
            {"name": "second", "approval": True,
             "targets": [{"subscription": SUBS[1], "resource_group": f"rg-signed-{tag}-2"}]},
        ]  # fmt: skip
        path = fleet.rollout_file(f"signed-{tag}", rings, template=storage_template([f"stsig{tag}"]))
        code, out, err = await fleet.cli("rollout", "start", str(path), "-o", "json")
        assert code == 0, (err, fleet.log.read_text()[-2000:])
        rollout_id = json.loads(out)["rollout_id"]

        async def ring_two() -> dict[str, Any]:
            _, out, _ = await fleet.cli("rollout", "status", rollout_id, "-o", "json")
            return dict(json.loads(out)["rings"][1]) if out else {}

        deadline = time.monotonic() + 120
        while (await ring_two()).get("state") != "AWAITING_APPROVAL":
            assert time.monotonic() < deadline, fleet.log.read_text()[-2000:]
            await asyncio.sleep(0.5)
        code, _, err = await fleet.cli("rollout", "approve", rollout_id, "--ring", "second")
        assert code == 0, err  # sent; the worker refuses it
        while not (await ring_two()).get("refused_approvals"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.3)
        assert "unsigned" in (await ring_two())["refused_approvals"][0]
        code, _, err = await fleet.cli("rollout", "approve", rollout_id, "--ring", "second", "--as", "bo")
        assert code == 2 and "--key" in err  # --as names a key's principal: nothing sent without a key
        code, _, err = await fleet.cli(
            "rollout", "approve", rollout_id, "--ring", "second", "--key", str(keys.keys["ana"]), "--as", "ana",
            "--reason", "canary healthy",
        )  # fmt: skip
        assert code == 0, err
        code, out, err = await fleet.cli("rollout", "status", rollout_id, "-o", "json")
        deadline = time.monotonic() + 120
        while json.loads(out)["state"] != "SUCCEEDED":
            assert time.monotonic() < deadline, (out, fleet.log.read_text()[-2000:])
            await asyncio.sleep(0.5)
            code, out, err = await fleet.cli("rollout", "status", rollout_id, "-o", "json")
        second = json.loads(out)["rings"][1]
        assert second["approved_by"] == "ana" and second["approvals"][0]["verification"]["verified"]
        assert second["approvals"][0]["statement"]["reason"] == "canary healthy"
    finally:
        fleet.stop()
