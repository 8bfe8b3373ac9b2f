"""Property: whatever JSON anyone sends as an approve/reject signal, the workflow records it as refused (or takes it
as a decision) and the audit record exports. Hypothesis generates the payloads (≥ 500 over the run: 25 histories of
20–30 payloads — arbitrary JSON, decision-shaped objects with fields of any type, and oversized ones); each history
is a real deployment on the dev server and the local ARM waiting to delete resources under a four-eyes policy that
allows only one approver, so every generated payload must be refused and listed, and the run ends with that
approver's bound rejection."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from client.deployments import build_deploy_request, query_status, result_of, start_deployment
from contract.models import (
    SIGNAL_APPROVE,
    SIGNAL_REJECT,
    ApprovalPolicy,
    ApprovalSignal,
    DeploymentMode,
    DeploymentStage,
    DeployOutcome,
)
from harness.localarm import example_parameters, example_template, fast_settings, real_worker
from services.audit.history import fetch_record
from services.content_store import LocalBlobStore

SESSION = pytest.mark.asyncio(loop_scope="session")
EXAMPLES = 25
MIN_PER_HISTORY = 20
APPROVER = "only-bo-" + uuid.uuid4().hex[:6]
INITIATOR = "initiator-" + uuid.uuid4().hex[:6]

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=15,
)  # fmt: skip
_fields = ["approver", "reason", "destructive_set", "plan_hash", "decision_id", "identity_source", "extra"]
decision_shaped = st.dictionaries(
    st.sampled_from(_fields), json_values | st.text(max_size=300) | st.lists(st.text(max_size=80), max_size=4),
    max_size=len(_fields),
)  # fmt: skip
oversized = st.builds(
    lambda field, n: {"approver": "mallory", "reason": "ok"} | {field: "x" * n},
    st.sampled_from(["approver", "reason", "plan_hash", "decision_id"]),
    st.sampled_from([300, 2_001, 100_000, 600_000]),
)
payloads = st.one_of(json_values, json_values, decision_shaped, decision_shaped, decision_shaped, oversized)
signals = st.lists(st.tuples(st.sampled_from([SIGNAL_APPROVE, SIGNAL_REJECT]), payloads),
                   min_size=MIN_PER_HISTORY, max_size=30)  # fmt: skip


@pytest.fixture(scope="module")
def sent() -> Any:
    """How many generated payloads were sent, checked when the module's tests are done."""
    counts: list[int] = []
    yield counts
    if counts:
        assert sum(counts) >= 500, f"only {sum(counts)} generated payloads were sent"
        print(f"\n{sum(counts)} generated payloads in {len(counts)} histories")


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return {"blobs": tmp_path_factory.mktemp("blobs"), "rg": f"rg-prop-{uuid.uuid4().hex[:8]}", "populated": False}


@SESSION
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failing example is reported as generated
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(batch=signals)
async def test_any_signal_payload_is_refused_and_listed_and_the_audit_exports(
    dev_env, local_arm, state, sent, batch
) -> None:
    client = dev_env.client
    task_queue = f"tq-{uuid.uuid4()}"
    store = LocalBlobStore(state["blobs"])
    policy = ApprovalPolicy(enabled=True, allowed_approvers=[APPROVER], source="ORCHESTRATOR_APPROVERS")

    def request(template: str, mode: DeploymentMode):
        return build_deploy_request(
            store=store, template=example_template(template), subscription_id=local_arm.subscription_id,
            resource_group=state["rg"], location="westeurope", parameters=example_parameters(), initiator=INITIATOR,
            mode=mode,
        )  # fmt: skip

    async with real_worker(client, local_arm, state["blobs"], task_queue, settings=fast_settings(approval=policy)):
        if not state["populated"]:
            full = await start_deployment(client, request("azuredeploy.json", DeploymentMode.INCREMENTAL),
                                          task_queue=task_queue)  # fmt: skip
            assert (await result_of(full)).succeeded
            state["populated"] = True
        handle = await start_deployment(
            client, request("azuredeploy.without-web.json", DeploymentMode.COMPLETE), task_queue=task_queue
        )
        for _ in range(600):
            status = await query_status(handle)
            if status.stage is DeploymentStage.AWAITING_CONFIRMATION:
                break
            assert not status.stage.terminal, status.failure
            await asyncio.sleep(0.05)
        for name, payload in batch:
            await handle.signal(name, payload)
        sent.append(len(batch))
        for _ in range(600):
            status = await query_status(handle)
            if status.refused_total >= len(batch):
                break
            await asyncio.sleep(0.05)
        assert status.refused_total == len(batch), [r.why for r in status.refused_decisions]
        assert status.stage is DeploymentStage.AWAITING_CONFIRMATION and not status.confirmations
        pending = status.pending_confirmation
        assert pending is not None
        await handle.signal(
            SIGNAL_REJECT, ApprovalSignal(approver=APPROVER, reason="property run", plan_hash=pending.plan_hash)
        )
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.REJECTED
    record = await fetch_record(client, handle.id)  # what `starter.py audit` and deploy's own record use
    assert len(record.refused_decisions) == len(batch)
    assert len(record.signals) == len(batch) + 1
    assert [a.decision for a in record.approvals] == ["REJECTED"] and record.approvals[0].by == APPROVER
    assert all(len(str(r.get("reason", ""))) < 400 for r in record.refused_decisions)
