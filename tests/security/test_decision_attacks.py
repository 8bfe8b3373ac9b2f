"""Attacks on the approval step, through a real Temporal dev server, a real worker and the local ARM over HTTPS:
malformed and oversized decisions (sent with the Temporal CLI, as an attacker would), a decision for another plan,
the unbound plain form in a later round, a late decision, and --no-confirm-deletes under a four-eyes policy.
Every refused decision must be recorded, the deployment must keep waiting, and the audit must still export."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from client.cli import approvals
from client.cli import audit as audit_cli
from client.cli import status as status_cli
from client.deployments import query_status, result_of, start_deployment
from client.embedded import temporal_binary
from client.exit_codes import ExitCode
from contract.models import (
    MAX_REASON_CHARS,
    SIGNAL_APPROVE,
    SIGNAL_REJECT,
    ApprovalPolicy,
    ApprovalSignal,
    ConfirmationDecision,
    DeploymentMode,
    DeploymentStage,
    DeployOutcome,
)
from harness.localarm import example_template, fast_settings, real_worker, storage_template
from services.audit.history import fetch_record
from tests.support.four_eyes import request, waiting_removal

SESSION = pytest.mark.asyncio(loop_scope="session")

# The examples of malformed decisions, as the Temporal CLI sends them (--input is JSON text).
MALFORMED = ['{"approver":5}', '"str"', "null", "[1,2]", "{}", '{"destructive_set":"not-a-list"}']


def temporal_signal(client, workflow_id: str, name: str, payload: str) -> None:
    done = subprocess.run(
        [temporal_binary(), "workflow", "signal", "--address", client.service_client.config.target_host,
         "--namespace", client.namespace, "--workflow-id", workflow_id, "--name", name, "--input", payload],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


async def until(predicate, what: str, seconds: float = 20.0):
    for _ in range(int(seconds / 0.05)):
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def refused_at_least(handle, n: int):
    async def check():
        status = await query_status(handle)
        return status if status.refused_total >= n else None

    return await until(check, f"{n} refused decisions")


def audit_args(workflow_id: str, tmp_path: Path) -> argparse.Namespace:
    return argparse.Namespace(workflow_id=workflow_id, run_id=None, audit_dir=str(tmp_path / "audit"),
                              audit_format="json", output="json", local=False)  # fmt: skip


@SESSION
async def test_malformed_and_oversized_decisions_are_refused_recorded_and_the_audit_exports(
    dev_env, local_arm, task_queue, resource_group, tmp_path, capsys
):
    client = dev_env.client
    blob_dir = tmp_path / "blobs"
    async with real_worker(client, local_arm, blob_dir, task_queue, settings=fast_settings()):
        handle = await waiting_removal(client, local_arm, blob_dir, task_queue, resource_group)
        for payload in MALFORMED:
            temporal_signal(client, handle.id, SIGNAL_APPROVE, payload)
        # 1 MB: the server accepts it (its limit is 2 MB); the workflow must not take it nor copy its bulk.
        await handle.signal(SIGNAL_APPROVE, {"approver": "mallory", "reason": "x" * 1_000_000})
        await handle.signal(SIGNAL_REJECT, {"approver": "mallory", "reason": "y" * (MAX_REASON_CHARS + 1)})
        status = await refused_at_least(handle, len(MALFORMED) + 2)
        assert status.stage is DeploymentStage.AWAITING_CONFIRMATION and status.confirmations == []
        kinds = [r.kind for r in status.refused_decisions]
        assert kinds == ["malformed"] * len(MALFORMED) + ["oversized", "oversized"]
        assert all(len(r.reason) < 400 and len(r.by) < 100 for r in status.refused_decisions)  # no bulk kept
        memo = await (await handle.describe()).memo()
        assert len(json.dumps(memo)) < 5_000 and memo["refused_decision"]["kind"] == "oversized"

        # A decision for another plan is refused, and said to be.
        stale = ApprovalSignal(approver="ana", reason="ok", plan_hash="sha256:" + "0" * 64)
        await handle.signal(SIGNAL_APPROVE, stale)
        status = await refused_at_least(handle, len(MALFORMED) + 3)
        assert status.refused_decisions[-1].kind == "other-plan"
        pending = status.pending_confirmation
        assert pending is not None and pending.plan_hash and pending.plan_hash in pending.approve_command

        # The bound decision deploys; a reject sent after it is recorded as late, not silently dropped.
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="ok", plan_hash=pending.plan_hash))
        await until(lambda: _confirmed(handle), "the approval")
        temporal_signal(client, handle.id, SIGNAL_REJECT, '{"approver":"bo","reason":"too late"}')
        # Our CLI's sender learns the outcome of a late decision: it polls status for its decision id.
        await handle.signal(SIGNAL_REJECT, ApprovalSignal(approver="cy", reason="late too", decision_id="d-late-1"))
        outcome, why = await approvals.decision_outcome(handle, "d-late-1")
        assert outcome == "refused" and why is not None and "approved by ana" in why
        result = await result_of(handle)
        status = await refused_at_least(handle, len(MALFORMED) + 5)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert [(c.decision, c.bound_by) for c in result.confirmations] == [(ConfirmationDecision.APPROVED, "plan_hash")]
    late = status.refused_decisions[-2]
    assert late.kind == "late" and late.by == "bo" and "approved by ana" in late.why

    # `starter.py audit` exports the record: every signal, every refusal (none of the 1 MB in it).
    code = await audit_cli.audit(audit_args(handle.id, tmp_path), client=client)
    out = capsys.readouterr().out
    assert code == 0, out
    record = json.loads(out)
    assert len(out) < 200_000
    assert [r["kind"] for r in record["refused_decisions"]] == [
        *["malformed"] * len(MALFORMED), "oversized", "oversized", "other-plan", "late", "late"
    ]  # fmt: skip
    assert all(r["identity_verified"] is False for r in record["refused_decisions"])
    assert record["approvals"][0]["plan_hash"] == pending.plan_hash and not record["approvals"][0]["identity_verified"]
    excerpts = [s["payload_excerpt"] for s in record["signals"][: len(MALFORMED) + 1]]
    assert [json.loads(e) for e in excerpts[: len(MALFORMED)]] == [json.loads(p) for p in MALFORMED]
    assert len(excerpts[-1]) < 400  # the 1 MB one: an excerpt
    assert record["identities_verified"] is False


async def _confirmed(handle):
    return (await query_status(handle)).confirmations


@SESSION
async def test_after_a_replan_the_unbound_plain_form_is_refused_and_status_prints_the_bound_command(
    dev_env, local_arm, task_queue, resource_group, tmp_path, capsys
):
    client = dev_env.client
    blob_dir = tmp_path / "blobs"
    async with real_worker(client, local_arm, blob_dir, task_queue, settings=fast_settings()):
        handle = await waiting_removal(client, local_arm, blob_dir, task_queue, resource_group)
        # Someone adds a resource while round 1 waits: the re-plan after approval deletes more, so it asks again.
        body = {"properties": {"mode": "Incremental", "template": storage_template(["stextra" + resource_group[3:]])}}
        await asyncio.to_thread(
            lambda: local_arm.deployments_client().deployments.begin_create_or_update(resource_group, "extra", body)
            .result()
        )  # fmt: skip
        temporal_signal(client, handle.id, SIGNAL_APPROVE, '{"approver":"ana","reason":"ok"}')  # round 1: unbound

        async def round_two():
            s = await query_status(handle)
            return s if s.pending_confirmation is not None and s.pending_confirmation.round == 2 else None

        status = await until(round_two, "round 2")
        assert status.confirmations[0].bound_by == "unbound"
        # The same plain form in round 2 is refused and recorded; the deployment keeps waiting.
        temporal_signal(client, handle.id, SIGNAL_APPROVE, '{"approver":"ana","reason":"ok"}')
        status = await refused_at_least(handle, 1)
        assert status.refused_decisions[0].kind == "unbound" and status.refused_decisions[0].round == 2
        assert status.stage is DeploymentStage.AWAITING_CONFIRMATION

        capsys.readouterr()
        args = argparse.Namespace(workflow_id=handle.id, plan=False, local=False, output="text")
        assert await status_cli.status(args, client=client) == 0
        out = capsys.readouterr().out
        plan_hash = status.pending_confirmation.plan_hash
        bound = next(line for line in out.splitlines() if "temporal workflow signal" in line)
        assert plan_hash in bound, out

        # Our CLI binds its decision and reports that the workflow took it.
        decide = argparse.Namespace(workflow_id=handle.id, reason="both checked", approver=None,
                                    signal=SIGNAL_APPROVE, local=False, output="text")  # fmt: skip
        assert await approvals.decide(decide, client=client) == 0
        assert "Approved by" in capsys.readouterr().out
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert [(c.round, c.bound_by) for c in result.confirmations] == [(1, "unbound"), (2, "plan_hash")]


@SESSION
async def test_no_confirm_deletes_is_refused_under_a_four_eyes_policy_unless_allowed(
    dev_env, local_arm, task_queue, resource_group, tmp_path
):
    client = dev_env.client
    blob_dir = tmp_path / "blobs"
    policy = ApprovalPolicy(enabled=True, allowed_approvers=["bo"], source="ORCHESTRATOR_APPROVERS")
    full = request(local_arm, blob_dir, resource_group, example_template())
    smaller = request(local_arm, blob_dir, resource_group, example_template("azuredeploy.without-web.json"),
                      mode=DeploymentMode.COMPLETE, no_confirm_deletes=True)  # fmt: skip
    async with real_worker(client, local_arm, blob_dir, task_queue, settings=fast_settings(approval=policy)):
        assert (await result_of(await start_deployment(client, full, task_queue=task_queue))).succeeded
        before = {r.id for r in local_arm.resource_client().resources.list_by_resource_group(resource_group)}
        refused = await result_of(await start_deployment(client, smaller, task_queue=task_queue))
        after = {r.id for r in local_arm.resource_client().resources.list_by_resource_group(resource_group)}
    assert refused.outcome is DeployOutcome.REFUSED and refused.failure is not None
    assert refused.failure.code == "ConfirmationSkipRefused" and "ORCHESTRATOR_APPROVERS" in refused.failure.message
    assert DeploymentStage.PLANNING not in [t.stage for t in refused.transitions]  # refused before anything ran
    assert before == after
    from client.cli._common import OUTCOME_EXIT_CODES

    assert OUTCOME_EXIT_CODES[DeployOutcome.REFUSED] is ExitCode.USAGE

    # The policy may allow it for a named initiator (a CI identity): then the skip is recorded, as before.
    allowing = policy.model_copy(update={"skip_confirmation_allowed": ["ANA"]})
    async with real_worker(client, local_arm, blob_dir, task_queue, settings=fast_settings(approval=allowing)):
        skipped = await result_of(await start_deployment(client, smaller, task_queue=task_queue))
    assert skipped.outcome is DeployOutcome.SUCCEEDED, skipped.failure
    assert [(c.decision, c.by) for c in skipped.confirmations] == [(ConfirmationDecision.SKIPPED, "ana")]


@SESSION
async def test_audit_reads_a_history_with_malformed_signals_only(dev_env, local_arm, task_queue, resource_group,
                                                                 tmp_path, caplog):  # fmt: skip
    """fetch_record itself (the code deploy's own record and `audit` share) on a history full of bad signals —
    decisions, a malformed rollback-parameters signal and a signal no handler knows — and no traceback logged."""
    client = dev_env.client
    blob_dir = tmp_path / "blobs"
    async with real_worker(client, local_arm, blob_dir, task_queue, settings=fast_settings()):
        handle = await waiting_removal(client, local_arm, blob_dir, task_queue, resource_group)
        for payload in MALFORMED:
            temporal_signal(client, handle.id, SIGNAL_REJECT, payload)
        temporal_signal(client, handle.id, "provide_rollback_parameters", '{"provided_by":5,"names":"x"}')
        temporal_signal(client, handle.id, "no-such-signal", "[1,2,3]")
        await refused_at_least(handle, len(MALFORMED))
        await handle.signal(SIGNAL_REJECT, ApprovalSignal(approver="ana", reason="not today"))
        result = await result_of(handle)
    assert result.outcome is DeployOutcome.REJECTED
    record = await fetch_record(client, handle.id)
    assert record.result.outcome == "REJECTED" and len(record.refused_decisions) == len(MALFORMED)
    assert {"provide_rollback_parameters", "no-such-signal"} <= {s.name for s in record.signals}
    tracebacks = [r for r in caplog.records if r.exc_info and r.name.startswith("temporalio")]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
