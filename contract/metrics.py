"""Names of the product's metrics and their labels (docs/TELEMETRY.md has the table; deploy/grafana/ graphs them).

The names here are the instruments' names; the Prometheus endpoint adds the unit and ``_total`` suffixes the
OpenTelemetry Prometheus exporter adds (``orchestrator_deployments`` → ``orchestrator_deployments_total``,
``orchestrator_stage_attempt_duration`` in seconds → ``orchestrator_stage_attempt_duration_seconds_bucket``).

Labels are bounded vocabularies only: stages, outcomes, failure classes, error codes (ARM's and ours, cut to a
safe form), HTTP methods, status codes, route templates and subscription ids. Never a deployment name, workflow id,
resource group, parameter or other value a user chooses freely.
"""

from __future__ import annotations

import re

# Written by the workflow through Temporal's replay-safe workflow metric meter (never during replay).
DEPLOYMENTS = "orchestrator_deployments"  # counter: outcome, final_stage, subscription_id
STAGE_ATTEMPT_DURATION = "orchestrator_stage_attempt_duration"  # histogram, s: stage, result
STAGE_RETRIES = "orchestrator_stage_retries"  # counter: stage, failure_class, code
APPROVAL_WAIT = "orchestrator_approval_wait"  # histogram, s: decision
# Written by the worker's ARM clients (an azure-core per-retry policy: every response, retries included).
ARM_RESPONSES = "orchestrator_arm_responses"  # counter: method, status_class
ARM_THROTTLED = "orchestrator_arm_throttled"  # counter: method (429 responses)
# Written by the team service (services.metrics.RequestMetrics and deployment_started).
API_REQUESTS = "orchestrator_api_requests"  # counter: route, method, status
API_REQUEST_DURATION = "orchestrator_api_request_duration"  # histogram, s: route, method
API_DEPLOYMENTS_STARTED = "orchestrator_api_deployments_started"  # counter: (none)

LABEL_OUTCOME = "outcome"  # DeployOutcome: SUCCEEDED, LOGIC_FAILURE, ..., ROLLED_BACK, CANCELLED
LABEL_FINAL_STAGE = "final_stage"  # COMPLETED | FAILED | ROLLED_BACK (a cancelled run: the stage it stopped in)
LABEL_SUBSCRIPTION = "subscription_id"
LABEL_STAGE = "stage"
LABEL_RESULT = "result"  # succeeded | failed
LABEL_FAILURE_CLASS = "failure_class"  # LOGIC | ENVIRONMENTAL
LABEL_CODE = "code"
LABEL_DECISION = "decision"  # APPROVED | REJECTED | TIMED_OUT
LABEL_METHOD = "method"
LABEL_STATUS_CLASS = "status_class"  # 2xx | 3xx | 4xx | 5xx
LABEL_ROUTE = "route"
LABEL_STATUS = "status"

SECONDS = "s"
# Histogram buckets (seconds): a stage attempt takes from milliseconds (validation) to an hour (a large deployment);
# an approval waits from seconds to the confirmation timeout (a day at most by default).
STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
APPROVAL_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BUCKETS = {
    STAGE_ATTEMPT_DURATION: STAGE_BUCKETS,
    APPROVAL_WAIT: APPROVAL_BUCKETS,
    API_REQUEST_DURATION: REQUEST_BUCKETS,
}

# Each outcome with the stage a run ends in: the outcome series of a subscription are created at zero when one of its
# deployments starts, so Prometheus' rate()/increase() see its first failure (they cannot see the first sample of a
# series that appears with its first event).
OUTCOME_FINAL_STAGES = {
    "SUCCEEDED": "COMPLETED",
    "LOGIC_FAILURE": "FAILED",
    "ENVIRONMENTAL_FAILURE": "FAILED",
    "REJECTED": "FAILED",
    "NOT_CONFIRMED": "FAILED",
    "REFUSED": "FAILED",
    "CANCELLED": "FAILED",
    "ROLLED_BACK": "ROLLED_BACK",
}
ARM_METHODS = ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE")

MAX_CODE_LENGTH = 64
OTHER = "Other"
_SAFE_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*")


def bounded_code(code: str | None) -> str:
    """An error code as a label value: ARM's and our codes are identifiers; anything else (free text, an overlong
    string) becomes ``Other`` so no message or value can reach a label or multiply its series."""
    if code and len(code) <= MAX_CODE_LENGTH and _SAFE_CODE.fullmatch(code):
        return code
    return OTHER


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else OTHER
