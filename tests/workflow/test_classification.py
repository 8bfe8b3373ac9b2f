"""The failure classification table: every seed item and every ARM contract code lands on the right side, wrapper
errors are decided by their inner details, Retry-After is carried, unknown failures halt."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from activities.errors import application_error
from arm_engine import IssueCode, TemplateError, TemplateIssue
from contract.models import Classification, FailureClass, parse_error_type
from services.classification import (
    ERROR_CODES,
    WRAPPER_CODES,
    classify_arm_error,
    classify_failure,
    retried_within_stage,
)

LOGIC = FailureClass.LOGIC
ENV = FailureClass.ENVIRONMENTAL


class FakeResponse:
    """Just enough of an azure-core HTTP response for HttpResponseError to parse an ARM error body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.reason = "reason"
        self.headers = headers or {}
        self._text = json.dumps(body) if body is not None else ""
        self.content_type = "application/json"
        self.request = None

    def text(self, encoding: str | None = None) -> str:
        return self._text

    def body(self) -> bytes:
        return self._text.encode()


def http_error(status: int, code: str | None, *, details: list[dict[str, Any]] | None = None, **headers: str):
    body = {"error": {"code": code, "message": f"{code} happened", "details": details or []}} if code else None
    return HttpResponseError(response=FakeResponse(status, body, {k.replace("_", "-"): v for k, v in headers.items()}))


# The seed's two lists, as failures an activity really meets.
@pytest.mark.parametrize(
    ("exc", "expected", "code"),
    [
        # logic: linter errors, invalid syntax or template, missing parameters, circular dependencies
        (TemplateError(TemplateIssue(IssueCode.MISSING_PARAMETER, "no 'location'")), LOGIC, "MissingParameter"),
        (TemplateError(TemplateIssue(IssueCode.CIRCULAR_DEPENDENCY, "a -> b -> a")), LOGIC, "CircularDependency"),
        (TemplateError(TemplateIssue(IssueCode.EXPRESSION_SYNTAX, "bad [")), LOGIC, "ExpressionSyntaxError"),
        (TemplateError(TemplateIssue(IssueCode.PARAMETER_TYPE, "int expected")), LOGIC, "ParameterTypeMismatch"),
        (http_error(400, "InvalidTemplate"), LOGIC, "InvalidTemplate"),
        (http_error(400, "LinterError"), LOGIC, "LinterError"),
        # environmental: timeouts, throttling, 503, quota, regional capacity
        (TimeoutError("read timed out"), ENV, "Timeout"),
        (ServiceResponseError("connection reset"), ENV, "NetworkError"),
        (ServiceRequestError("cannot connect"), ENV, "NetworkError"),
        (http_error(429, "TooManyRequests", Retry_After="3"), ENV, "TooManyRequests"),
        (http_error(429, None), ENV, "TooManyRequests"),
        (http_error(503, "ServiceUnavailable"), ENV, "ServiceUnavailable"),
        (http_error(503, None), ENV, "ServiceUnavailable"),
        (http_error(504, None), ENV, "GatewayTimeout"),
        (http_error(409, "OperationNotAllowed"), ENV, "OperationNotAllowed"),
        (http_error(400, "InvalidTemplateDeployment", details=[{"code": "QuotaExceeded", "message": "cores"}]), ENV,
         "QuotaExceeded"),
        (http_error(400, "InvalidTemplateDeployment", details=[{"code": "SkuNotAvailable", "message": "size"}]), ENV,
         "SkuNotAvailable"),
    ],
)  # fmt: skip
def test_seed_lists(exc: BaseException, expected: FailureClass, code: str) -> None:
    c = classify_failure(exc)
    assert (c.failure_class, c.code) == (expected, code)


def contract_codes(shared: Path) -> list[str]:
    """The error codes of CONTRACT.md §5's table (first column), e.g. `Throttling (TooManyRequests; ...)`."""
    text = (shared / "arm-contract" / "CONTRACT.md").read_text()
    section = text.split("## 5.")[1].split("## 6.")[0]
    codes: list[str] = []
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| code") and not line.startswith("|---"):
            first = line.split("|")[1]
            base = ""
            for token in re.findall(r"…?[A-Z][A-Za-z]+", first):
                if token == "ARM":  # "ARM-level": prose, not a code
                    continue
                if token.startswith("…"):  # "InvalidAuthenticationToken (…Tenant)" = InvalidAuthenticationTokenTenant
                    codes.append(base + token[1:])
                else:
                    base = token
                    codes.append(token)
    return codes


def test_every_contract_code_is_in_the_table(shared: Path) -> None:
    codes = contract_codes(shared)
    assert len(codes) >= 20
    known = {*ERROR_CODES, *WRAPPER_CODES}
    missing = [c for c in codes if c.lower() not in known]
    assert not missing, f"codes of CONTRACT.md §5 missing from the classification table: {missing}"


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("InvalidTemplate", 400, LOGIC),
        ("DeploymentActive", 409, ENV),
        ("ResourceGroupNotFound", 404, ENV),
        ("AuthorizationFailed", 403, LOGIC),
        ("LinkedAuthorizationFailed", 403, LOGIC),
        ("InvalidAuthenticationTokenAudience", 401, LOGIC),
        ("ExpiredAuthenticationToken", 401, ENV),
        ("MissingSubscriptionRegistration", 409, LOGIC),
        ("SubscriptionRequestsThrottled", 429, ENV),
        ("InternalServerError", 500, ENV),
        ("ServerBusy", 503, ENV),
        ("QuotaExceeded", 400, ENV),
        ("AllocationFailed", 200, ENV),
        ("ZonalAllocationFailed", 200, ENV),
        ("ResourceQuotaExceeded", 400, ENV),
        ("InvalidParameter", 400, LOGIC),
        ("Conflict", 409, ENV),
        ("DeploymentCannotBeCancelled", 409, LOGIC),
        ("SomethingNobodyKnows", 400, LOGIC),
        ("SomethingNobodyKnows", 502, ENV),
    ],
)
def test_codes_and_statuses(code: str, status: int, expected: FailureClass) -> None:
    c = classify_failure(http_error(status, code))
    assert c.failure_class is expected
    assert c.code == code
    assert c.http_status == status


def test_deployment_failed_is_decided_by_its_innermost_details() -> None:
    capacity = {
        "code": "DeploymentFailed",
        "message": "At least one resource deployment operation failed.",
        "details": [{"code": "ResourceDeploymentFailure", "message": "vm failed",
                     "details": [{"code": "AllocationFailed", "message": "no capacity in westeurope"}]}],
    }  # fmt: skip
    c = classify_arm_error(capacity)
    assert (c.failure_class, c.code) == (ENV, "AllocationFailed")
    assert "no capacity" in c.message

    bad_value = {"code": "DeploymentFailed", "message": "m", "details": [
        {"code": "AllocationFailed", "message": "x"}, {"code": "InvalidParameter", "message": "sku name"}]}  # fmt: skip
    # A retry would meet the logic error again: logic wins over environmental.
    assert classify_arm_error(bad_value).failure_class is LOGIC

    unknown_inner = {"code": "DeploymentFailed", "message": "m", "details": [{"code": "Whatever", "message": "?"}]}
    c = classify_arm_error(unknown_inner)
    assert (c.failure_class, c.code) == (LOGIC, "DeploymentFailed")


def test_deployment_failed_raised_by_the_poller_reads_details() -> None:
    exc = http_error(200, "DeploymentFailed", details=[{"code": "SkuNotAvailable", "message": "Standard_D2s"}])
    c = classify_failure(exc)
    assert (c.failure_class, c.code) == (ENV, "SkuNotAvailable")


def test_retry_after_is_read_in_seconds_and_ms() -> None:
    assert classify_failure(http_error(429, "TooManyRequests", Retry_After="17")).retry_after_seconds == 17
    assert classify_failure(http_error(429, "TooManyRequests", retry_after_ms="2500")).retry_after_seconds == 2.5
    assert classify_failure(http_error(503, "ServiceUnavailable")).retry_after_seconds is None


def test_authentication_errors() -> None:
    assert classify_failure(ClientAuthenticationError("DefaultAzureCredential failed")).failure_class is LOGIC
    c = classify_failure(ClientAuthenticationError(response=FakeResponse(401, None)))
    assert (c.failure_class, c.code) == (ENV, "InvalidAuthenticationToken")


def test_not_found_without_code_is_logic() -> None:
    assert classify_failure(ResourceNotFoundError(response=FakeResponse(404, None))).failure_class is LOGIC


def test_unknown_python_exception_halts() -> None:
    c = classify_failure(KeyError("bug"))
    assert (c.failure_class, c.code) == (LOGIC, "KeyError")


def test_application_error_names_class_and_code_and_carries_the_classification() -> None:
    """One mechanism: the activity attaches its classification (with ARM's Retry-After) as the first detail, the
    workflow reads it back through ``Classification.attached``; Temporal itself never retries (the workflow does)."""
    throttled = classify_failure(http_error(429, "TooManyRequests", Retry_After="30"))
    env = application_error(throttled)
    assert env.type == "ENVIRONMENTAL.TooManyRequests" and env.non_retryable
    details = [throttled.model_dump(mode="json")]  # as the failure's details decode in the workflow
    read = Classification.attached(env.type, env.message, details)
    assert read is not None and (read.failure_class, read.code, read.retry_after_seconds) == (
        ENV,
        "TooManyRequests",
        30,
    )
    logic = application_error(classify_failure(http_error(400, "InvalidTemplate")))
    assert logic.type == "LOGIC.InvalidTemplate" and logic.non_retryable and logic.next_retry_delay is None
    # a failure recorded without the detail is still read from its type; one that is not ours is not
    old = Classification.attached("LOGIC.InvalidTemplate", "bad", [])
    assert old is not None and (old.failure_class, old.code) == (LOGIC, "InvalidTemplate")
    assert Classification.attached("ValueError", "boom", []) is None
    assert parse_error_type(logic.type) == (LOGIC, "InvalidTemplate")


def test_a_missing_content_store_document_is_a_logic_failure() -> None:
    from services.content_store import BlobNotFoundError

    c = classify_failure(BlobNotFoundError("document sha256:… is not in the content store"))
    assert (c.failure_class, c.code) == (LOGIC, "ContentStoreMissing")


def test_health_verdicts_are_environmental_and_retried_within_their_stage_only() -> None:
    """VERIFYING_HEALTH's failures are environmental (exit 3) and the one place that says the workflow's backoff
    schedule does not repeat them names the convergence window; every other environmental code keeps the schedule."""
    for code in ("ResourceUnhealthy", "HealthCheckFailed"):
        assert ERROR_CODES[code.lower()] is FailureClass.ENVIRONMENTAL
        assert "convergence window" in (retried_within_stage(code) or "")
    retried = [c for c, k in ERROR_CODES.items() if k is FailureClass.ENVIRONMENTAL and retried_within_stage(c)]
    assert sorted(retried) == ["healthcheckfailed", "resourceunhealthy"]
    assert retried_within_stage("TooManyRequests") is None and retried_within_stage(None) is None
