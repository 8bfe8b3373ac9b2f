"""One drift check of one resource group, started by its Temporal Schedule (``drift enable``): the check activity
does the what-if and the classification; the workflow records the result (its history is the check's record) and
puts the classification in the memo so `drift status` and the Temporal UI show it without reading results."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contract.drift import DRIFT_CHECK_ACTIVITY, DRIFT_WORKFLOW_NAME, DriftCheckInput, DriftReport
    from contract.retry import SINGLE_ATTEMPT

CHECK_TIMEOUT = timedelta(minutes=15)


@workflow.defn(name=DRIFT_WORKFLOW_NAME)
class DriftCheckWorkflow:
    @workflow.run
    async def run(self, inp: DriftCheckInput) -> DriftReport:
        report = await workflow.execute_activity(
            DRIFT_CHECK_ACTIVITY,
            inp,
            result_type=DriftReport,
            start_to_close_timeout=CHECK_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=SINGLE_ATTEMPT,
            summary=f"what-if of the last good deployment of {inp.resource_group}",
        )
        workflow.upsert_memo(
            {
                "drift": report.classification.value,
                "suppressed": report.suppressed_baseline + report.suppressed_allow_list,
            }
        )
        return report
