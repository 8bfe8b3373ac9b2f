"""One drift check of one resource group, started by its Temporal Schedule (``drift enable``): the check activity
does the what-if and the classification; the workflow records the result (its history is the check's record) and
puts the classification in the memo so `drift status` and the Temporal UI show it without reading results.

A check that finds configuration or destructive drift announces it once to the worker's notification sinks (a
detached notification workflow, the event id stable per check run) and, with ``--remediate``, starts an ordinary
``DeploymentWorkflow`` of the last good template and parameters (plan, approval of deletions under the worker's
policy, deploy, health), never silently: the report and the event name it."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from contract.drift import DRIFT_CHECK_ACTIVITY, DRIFT_WORKFLOW_NAME, DriftCheckInput, DriftReport
    from contract.models import WORKFLOW_NAME, ActivityName, DeployRequest, StageInput, WorkerSettings
    from contract.naming import workflow_id_for
    from contract.notifications import (
        NotificationEvent,
        NotificationKind,
        event_id,
    )
    from contract.retry import SINGLE_ATTEMPT
    from workflows.notification import announce

CHECK_TIMEOUT = timedelta(minutes=15)
SETTINGS_TIMEOUT = timedelta(seconds=10)
# workflow.patched id (tests/fleet/test_drift_replay.py): drift found is announced to the sinks and, with
# --remediate, remediated by a deployment; checks started before it replay without either.
PATCH_DRIFT_ACTIONS = "drift-notify-remediate"


@workflow.defn(name=DRIFT_WORKFLOW_NAME)
class DriftCheckWorkflow:
    @workflow.run
    async def run(self, inp: DriftCheckInput) -> DriftReport:
        act = workflow.patched(PATCH_DRIFT_ACTIONS)  # first task: the marker precedes every command it changes
        report = await workflow.execute_activity(
            DRIFT_CHECK_ACTIVITY,
            inp,
            result_type=DriftReport,
            start_to_close_timeout=CHECK_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=SINGLE_ATTEMPT,
            summary=f"what-if of the last good deployment of {inp.resource_group}",
        )
        request, report.last_good_request = report.last_good_request, None
        if act and report.drifted and request is not None:
            settings = await workflow.execute_local_activity(
                ActivityName.RESOLVE_SETTINGS,
                StageInput(request=request, deployment_name=report.last_good_deployment or "drift"),
                result_type=WorkerSettings,
                start_to_close_timeout=SETTINGS_TIMEOUT,
                summary="read the worker's settings",
            )
            if inp.remediate and report.remediation_problem is None:
                await self._remediate(inp, report, request)
            await self._announce(inp, report, settings)
        workflow.upsert_memo(
            {
                "drift": report.classification.value,
                "suppressed": report.suppressed_baseline + report.suppressed_allow_list,
            }
        )
        return report

    async def _remediate(self, inp: DriftCheckInput, report: DriftReport, request: DeployRequest) -> None:
        """Start the resource group's ordinary deployment of the last good state. Detached: it waits for approvals
        like any deployment, for as long as the policy says, while the check ends and the schedule goes on."""
        deploy = request.model_copy(
            update={"initiator": inp.initiator, "no_confirm_deletes": False, "rollback_on_failure": False}
        )
        deployment_id = workflow_id_for(request.subscription_id, request.resource_group)
        try:
            handle = await workflow.start_child_workflow(
                WORKFLOW_NAME,
                deploy,
                id=deployment_id,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                memo={
                    "subscription_id": deploy.subscription_id,
                    "resource_group": deploy.resource_group,
                    "initiator": deploy.initiator,
                    "template": deploy.template_path or deploy.template.digest,
                    "drift_check": workflow.info().workflow_id,
                },
                static_summary=f"remediate {report.classification.value} in {deploy.resource_group}",
            )
        except WorkflowAlreadyStartedError:
            report.remediation_problem = (
                f"a deployment of {deploy.resource_group} is running ({deployment_id}): not remediated; the next "
                "check looks again"
            )
            workflow.logger.warning("drift in %s not remediated: %s", deploy.resource_group, report.remediation_problem)
            return
        report.remediation_workflow_id, report.remediation_run_id = deployment_id, handle.first_execution_run_id
        workflow.logger.info("drift in %s: remediation %s started", deploy.resource_group, deployment_id)

    async def _announce(self, inp: DriftCheckInput, report: DriftReport, settings: WorkerSettings) -> None:
        """One event per check run (its id from the check's workflow id and first run id): counts, classes and
        ids only — never a property value, which could be a configuration secret."""
        routing = settings.notifications
        if routing is None or not routing.sinks:
            return
        info = workflow.info()
        counts: dict[str, int] = {}
        for finding in report.findings:
            counts[finding.change_type] = counts.get(finding.change_type, 0) + 1
        event = NotificationEvent(
            id=event_id(info.workflow_id, info.first_execution_run_id, NotificationKind.DRIFT),
            kind=NotificationKind.DRIFT,
            time=workflow.now(),
            deployment_id=report.remediation_workflow_id or workflow_id_for(inp.subscription_id, inp.resource_group),
            run_id=report.remediation_run_id or info.run_id,
            deployment_name=report.last_good_deployment or "",
            subscription_id=inp.subscription_id,
            resource_group=inp.resource_group,
            stage="DRIFT_CHECK",
            initiator=inp.initiator,
            plan_counts=counts,
            deletions=counts.get("Delete", 0),
            drift_class=report.classification.value,
            drift_check_id=info.workflow_id,
            remediation_id=report.remediation_workflow_id,
            remediation_problem=report.remediation_problem,
        )
        if not await announce(routing, event):
            return
        report.notification_id = event.id
