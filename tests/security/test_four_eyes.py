"""Four eyes: a decision from someone the worker's policy does not allow, or the initiator approving their own
deployment, is recorded (status, memo, history) and ignored — the workflow keeps waiting; an allowed second
person's approval proceeds. The CLI sends the OS user and refuses --as unless the policy allows it."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from client.cli import approvals
from client.cli import status as status_cli
from client.cli._common import CommandError, current_user
from client.deployments import query_status, result_of
from client.exit_codes import ExitCode
from contract.models import (
    SIGNAL_APPROVE,
    ApprovalPolicy,
    ApprovalSignal,
    ConfirmationDecision,
    DeploymentStage,
    DeployOutcome,
)
from harness.localarm import fast_settings, real_worker
from services.config import ConfigError, approval_policy_from_env
from tests.support.four_eyes import waiting_removal

SESSION = pytest.mark.asyncio(loop_scope="session")


async def refused_count(handle, n: int) -> None:
    for _ in range(400):
        if len((await query_status(handle)).refused_decisions) >= n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {n} refused decisions")


@SESSION
async def test_stranger_and_self_approval_wait_then_second_person_proceeds(
    dev_env, local_arm, task_queue, resource_group, tmp_path
):
    client = dev_env.client
    blob_dir = tmp_path / "blobs"
    policy = ApprovalPolicy(enabled=True, allowed_approvers=["ana", "Bo"], source="ORCHESTRATOR_APPROVERS")
    async with real_worker(client, local_arm, blob_dir, task_queue, settings=fast_settings(approval=policy)):
        handle = await waiting_removal(client, local_arm, blob_dir, task_queue, resource_group)
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="eve", reason="looks fine to me"))
        await refused_count(handle, 1)
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="ANA", reason="my own change"))
        await refused_count(handle, 2)
        status = await query_status(handle)
        assert status.stage is DeploymentStage.AWAITING_CONFIRMATION  # still waiting
        assert status.confirmations == []
        assert [(r.by, r.decision) for r in status.refused_decisions] == [
            ("eve", ConfirmationDecision.APPROVED),
            ("ANA", ConfirmationDecision.APPROVED),
        ]
        assert "not among the allowed approvers" in status.refused_decisions[0].why
        assert "another person must approve" in status.refused_decisions[1].why
        assert status.pending_confirmation is not None and status.pending_confirmation.approval_policy == policy
        memo = await (await handle.describe()).memo()
        assert memo["refused_decision"]["by"] == "ANA"  # the memo holds the latest refusal
        await handle.signal(SIGNAL_APPROVE, ApprovalSignal(approver="bo", reason="checked the plan"))
        result = await result_of(handle)
        history = await handle.fetch_history()
    assert result.outcome is DeployOutcome.SUCCEEDED, result.failure
    assert [(c.decision, c.by) for c in result.confirmations] == [(ConfirmationDecision.APPROVED, "bo")]
    signals = [e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")]
    assert len(signals) == 3  # every attempt is in history, with the identity it claimed
    markers = [e for e in history.events if e.HasField("marker_recorded_event_attributes")]
    assert any(b"four-eyes" in m.SerializeToString() for m in markers)  # the change is versioned (patch id)


@SESSION
async def test_cli_sends_the_os_user_and_refuses_what_the_policy_refuses(
    dev_env, local_arm, task_queue, resource_group, tmp_path, capsys
):
    client = dev_env.client
    blob_dir = tmp_path / "blobs"
    me = current_user()
    policy = ApprovalPolicy(enabled=True, allowed_approvers=["ana", "bo"])
    async with real_worker(client, local_arm, blob_dir, task_queue, settings=fast_settings(approval=policy)):
        handle = await waiting_removal(client, local_arm, blob_dir, task_queue, resource_group)

        def args(**kw) -> argparse.Namespace:
            base = {"workflow_id": handle.id, "reason": "ok", "approver": None, "signal": SIGNAL_APPROVE}
            return argparse.Namespace(local=False, output="text", **(base | kw))

        with pytest.raises(CommandError) as as_bo:  # --as is not allowed by this policy
            await approvals.decide(args(approver="bo"), client=client)
        assert as_bo.value.code is ExitCode.USAGE and "--as bo is not allowed" in str(as_bo.value)
        with pytest.raises(CommandError) as as_me:  # the OS user is not an allowed approver
            await approvals.decide(args(), client=client)
        assert f"'{me}' is not among the allowed approvers" in str(as_me.value)
        assert "Nothing was sent" in str(as_me.value)
        history = await handle.fetch_history()
        assert not [e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")]

        # status: how long it has waited and when it expires, and the policy
        capsys.readouterr()
        code = await status_cli.status(argparse.Namespace(workflow_id=handle.id, plan=False, local=False,
                                                          output="text"), client=client)  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0
        assert "waiting for confirmation for" in out and "expires" in out and "(in " in out
        assert "four eyes: approvers ana, bo; the initiator may not approve" in out
        await handle.signal("reject", ApprovalSignal(approver="bo", reason="cleanup"))
        assert (await result_of(handle)).outcome is DeployOutcome.REJECTED


def test_policy_from_environment(tmp_path: Path) -> None:
    assert approval_policy_from_env({}) == ApprovalPolicy()  # no policy: anyone (single-user default)
    group = tmp_path / "approvers.txt"
    group.write_text("# release managers\nana\n  bo  # on call\n\n")
    policy = approval_policy_from_env({"ORCHESTRATOR_APPROVERS_FILE": str(group), "ORCHESTRATOR_APPROVERS": "cy"})
    assert policy.enabled and policy.allowed_approvers == ["cy", "ana", "bo"] and not policy.allow_self_approval
    assert policy.refusal(approver="Bo", initiator="ana", approving=True) is None
    assert policy.refusal(approver="ana", initiator="ana", approving=True) is not None
    assert policy.refusal(approver="ana", initiator="ana", approving=False) is None  # withdrawing is fine
    own = approval_policy_from_env({"ORCHESTRATOR_FOUR_EYES": "1", "ORCHESTRATOR_ALLOW_SELF_APPROVAL": "yes"})
    assert (
        own.enabled
        and own.allowed_approvers is None
        and own.refusal(approver="x", initiator="x", approving=True) is None
    )
    with pytest.raises(ConfigError, match="ORCHESTRATOR_APPROVERS_FILE"):
        approval_policy_from_env({"ORCHESTRATOR_APPROVERS_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="ORCHESTRATOR_FOUR_EYES"):
        approval_policy_from_env({"ORCHESTRATOR_FOUR_EYES": "maybe"})
    with pytest.raises(ConfigError, match="no approver"):
        approval_policy_from_env({"ORCHESTRATOR_APPROVERS": " , "})


def test_status_reminder_text() -> None:
    asked = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    text = status_cli.confirmation_wait(asked, asked + timedelta(hours=1), now=asked + timedelta(minutes=4, seconds=10))
    assert text == "waiting for confirmation for 4m 10s; expires 2026-01-01T13:00:00+00:00 (in 55m 50s)"
    late = status_cli.confirmation_wait(asked, asked + timedelta(hours=1), now=asked + timedelta(hours=2))
    assert "expired" in late
