"""The deployment workflow's metrics (``contract.metrics`` names them), through Temporal's workflow metric meter.

That meter records nothing while a workflow replays (a worker restart, a cache eviction, a query of a closed run),
so each outcome, attempt, retry and approval is counted once; it issues no command, so histories replay unchanged;
and it is a no-op unless the worker's Temporal runtime exports metrics (services.metrics bridges it to the
process's Prometheus endpoint). OpenTelemetry is never called from workflow code: it would count again on every
replay and reach outside the sandbox."""

from __future__ import annotations

from temporalio import workflow

from contract import metrics as m


def deployment_begun(subscription_id: str) -> None:
    """Every outcome series of the subscription at zero (adds nothing): ``contract.metrics.OUTCOME_FINAL_STAGES``."""
    counter = workflow.metric_meter().create_counter(m.DEPLOYMENTS, "Deployments that ended, by outcome")
    for outcome, final_stage in m.OUTCOME_FINAL_STAGES.items():
        counter.add(
            0, {m.LABEL_OUTCOME: outcome, m.LABEL_FINAL_STAGE: final_stage, m.LABEL_SUBSCRIPTION: subscription_id}
        )


def deployment_outcome(outcome: str, final_stage: str, subscription_id: str) -> None:
    workflow.metric_meter().create_counter(m.DEPLOYMENTS, "Deployments that ended, by outcome").add(
        1, {m.LABEL_OUTCOME: outcome, m.LABEL_FINAL_STAGE: final_stage, m.LABEL_SUBSCRIPTION: subscription_id}
    )


def stage_attempt(stage: str, seconds: float, failed: bool) -> None:
    workflow.metric_meter().create_histogram_float(
        m.STAGE_ATTEMPT_DURATION, "Duration of one stage attempt (an activity execution)", m.SECONDS
    ).record(max(0.0, seconds), {m.LABEL_STAGE: stage, m.LABEL_RESULT: "failed" if failed else "succeeded"})


def stage_retry(stage: str, failure_class: str, code: str) -> None:
    workflow.metric_meter().create_counter(m.STAGE_RETRIES, "Stage attempts retried after a classified failure").add(
        1, {m.LABEL_STAGE: stage, m.LABEL_FAILURE_CLASS: failure_class, m.LABEL_CODE: m.bounded_code(code)}
    )


def approval_wait(decision: str, seconds: float) -> None:
    workflow.metric_meter().create_histogram_float(
        m.APPROVAL_WAIT, "Time from AWAITING_CONFIRMATION to the decision", m.SECONDS
    ).record(max(0.0, seconds), {m.LABEL_DECISION: decision})
