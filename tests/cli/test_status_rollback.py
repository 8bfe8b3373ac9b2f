"""What `status` says about a rollback while it runs and after it ended (the end-to-end case is in
tests/health/test_cli_end_to_end.py)."""

from __future__ import annotations

from client.cli.status import rollback_line
from contract.models import DeploymentStage, FailureClass, FailureInfo, RollbackReport

REASON = FailureInfo(
    stage=DeploymentStage.VERIFYING_HEALTH,
    failure_class=FailureClass.ENVIRONMENTAL,
    code="HealthCheckFailed",
    message="db: connection refused",
)


def test_a_rollback_waiting_for_secure_values_names_them() -> None:
    report = RollbackReport(
        reason=REASON,
        state="AWAITING_PARAMETERS",
        target_deployment_name="orch-web-rg-v1",
        missing_secure_parameters=["adminPassword", "apiToken"],
    )
    line = rollback_line(report)
    assert "orch-web-rg-v1" in line and "adminPassword, apiToken" in line and "waits" in line


def test_a_running_rollback_says_where_it_is() -> None:
    report = RollbackReport(reason=REASON, state="DEPLOYING", target_deployment_name="orch-web-rg-v1")
    assert rollback_line(report) == "rolling back to orch-web-rg-v1: DEPLOYING"


def test_a_failed_rollback_names_its_own_error() -> None:
    own = FailureInfo(
        stage=DeploymentStage.DEPLOYING, failure_class=FailureClass.LOGIC, code="InvalidTemplate", message="bad"
    )
    report = RollbackReport(
        reason=REASON, state="FAILED", target_workflow_id="deploy-x", target_deployment_name="v1", failure=own
    )
    assert "failed at DEPLOYING: InvalidTemplate: bad" in rollback_line(report)
