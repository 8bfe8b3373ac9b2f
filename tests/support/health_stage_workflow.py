"""A test-only workflow that runs just the health check activity the way VERIFYING_HEALTH will: by name, with
``health_activity_timeouts``, on a real Temporal server (so the models cross the pydantic data converter)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.health_checks import RUN_HEALTH_CHECKS
    from contract.health import HealthCheckInput, HealthCheckReport, health_activity_timeouts


@workflow.defn
class HealthStageWorkflow:
    @workflow.run
    async def run(self, inp: HealthCheckInput) -> HealthCheckReport:
        start_to_close, heartbeat = health_activity_timeouts(inp.spec, heartbeat_seconds=10)
        return await workflow.execute_activity(
            RUN_HEALTH_CHECKS,
            inp,
            result_type=HealthCheckReport,
            start_to_close_timeout=start_to_close,
            heartbeat_timeout=heartbeat,
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
