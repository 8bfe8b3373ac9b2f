"""The one table that decides, for every failure, whether a retry can help.

LOGIC — the input is wrong (template, parameters, permissions, plan): halt on the first attempt, a retry would
fail the same way. ENVIRONMENTAL — the world misbehaved (timeouts, throttling, 5xx, quota, regional capacity,
another deployment in the way): retry with backoff, honoring ARM's Retry-After.

The table covers the seed's two lists and every code of the ARM contract (shared/arm-contract/CONTRACT.md §5).
Wrapper codes (DeploymentFailed, InvalidTemplateDeployment, ResourceDeploymentFailure, ...) are decided by their
inner ``details``: any LOGIC leaf makes the whole failure LOGIC (a retry would meet it again); otherwise any
ENVIRONMENTAL leaf makes it ENVIRONMENTAL. Codes not in the table fall back to the HTTP status (408/429/5xx
environmental, other 4xx logic) and, without one, to LOGIC: an unknown failure halts for a human rather than
repeating a deployment blindly.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from contract.models import Classification, FailureClass

LOGIC = FailureClass.LOGIC
ENVIRONMENTAL = FailureClass.ENVIRONMENTAL

# ARM and resource-provider error codes (lower-cased keys). One place: add a code here, nowhere else.
ERROR_CODES: dict[str, FailureClass] = {
    # --- seed logic list: linter errors, invalid syntax or template, missing parameters, circular dependencies
    "lintererror": LOGIC,
    "bicepcompilationerror": LOGIC,
    "invalidtemplate": LOGIC,
    "invalidjson": LOGIC,
    "expressionsyntaxerror": LOGIC,
    "unknownfunction": LOGIC,
    "wrongargumentcount": LOGIC,
    "typemismatch": LOGIC,
    "missingproperty": LOGIC,
    "indexoutofrange": LOGIC,
    "invalidvalue": LOGIC,
    "functionnotallowedhere": LOGIC,
    "missingparameter": LOGIC,
    "unknownparameter": LOGIC,
    "parametertypemismatch": LOGIC,
    "parametervaluenotallowed": LOGIC,
    "parameteroutofrange": LOGIC,
    "undeclaredparameter": LOGIC,
    "undeclaredvariable": LOGIC,
    "undeclaredresource": LOGIC,
    "circulardependency": LOGIC,
    "invalidcopycount": LOGIC,
    "toomanyresources": LOGIC,
    "invalidparametersfile": LOGIC,
    "invaliddeploymentparametervalue": LOGIC,
    "deploymentparametervaluemissing": LOGIC,  # hypothetical sibling spellings seen in the wild
    "invalidrequestcontent": LOGIC,
    "invalidrequestformat": LOGIC,
    "invalidparameter": LOGIC,
    "invalidresourcename": LOGIC,
    "invalidresourcetype": LOGIC,
    "noregisteredproviderfound": LOGIC,
    "locationnotavailableforresourcetype": LOGIC,
    "accountnameinvalid": LOGIC,
    "storageaccountalreadytaken": LOGIC,
    "invalidresourcegrouplocation": LOGIC,
    "invalidcontentlink": LOGIC,
    "requestdisallowedbypolicy": LOGIC,
    "deploymentfailedcleanup": LOGIC,  # Complete mode could not delete: needs a human
    "deploymentcannotbecancelled": LOGIC,
    "deploymentquotaexceeded": LOGIC,  # 800 deployments in the RG history: delete old ones; waiting won't help
    "contentstoremissing": LOGIC,
    "contentstorekeymissing": LOGIC,
    "planchanged": LOGIC,
    # --- permissions and sign-in: a human must grant, register or sign in
    "authorizationfailed": LOGIC,
    "linkedauthorizationfailed": LOGIC,
    "invalidauthenticationtokentenant": LOGIC,
    "invalidauthenticationtokenaudience": LOGIC,
    "authenticationfailed": LOGIC,
    "credentialunavailable": LOGIC,
    "missingsubscriptionregistration": LOGIC,
    "subscriptionnotfound": LOGIC,
    # An expired token is renewed by the credential on the next attempt.
    "invalidauthenticationtoken": ENVIRONMENTAL,
    "expiredauthenticationtoken": ENVIRONMENTAL,
    # --- seed environmental list: timeouts, throttling, 503, quota, regional capacity
    "timeout": ENVIRONMENTAL,
    "requesttimeout": ENVIRONMENTAL,
    "gatewaytimeout": ENVIRONMENTAL,
    "operationtimedout": ENVIRONMENTAL,
    "toomanyrequests": ENVIRONMENTAL,
    "throttling": ENVIRONMENTAL,
    "subscriptionrequeststhrottled": ENVIRONMENTAL,
    "tenantrequeststhrottled": ENVIRONMENTAL,
    "internalservererror": ENVIRONMENTAL,
    "serverbusy": ENVIRONMENTAL,
    "serviceunavailable": ENVIRONMENTAL,
    "badgateway": ENVIRONMENTAL,
    "retryableerror": ENVIRONMENTAL,
    "quotaexceeded": ENVIRONMENTAL,
    "resourcequotaexceeded": ENVIRONMENTAL,
    "operationnotallowed": ENVIRONMENTAL,  # compute reports core quota this way
    "skunotavailable": ENVIRONMENTAL,
    "allocationfailed": ENVIRONMENTAL,
    "zonalallocationfailed": ENVIRONMENTAL,
    "overconstrainedallocationrequest": ENVIRONMENTAL,
    "overconstrainedzonalallocationrequest": ENVIRONMENTAL,
    "capacitylimitreached": ENVIRONMENTAL,
    "regionalcapacityexceeded": ENVIRONMENTAL,
    # --- contention and eventual consistency
    "deploymentactive": ENVIRONMENTAL,
    "deploymentactiveanduneditable": ENVIRONMENTAL,
    "conflict": ENVIRONMENTAL,
    "anotheroperationinprogress": ENVIRONMENTAL,
    "resourcegroupnotfound": ENVIRONMENTAL,  # the RG was just ensured: ARM has not caught up yet
    "deploymentnotfound": ENVIRONMENTAL,  # our own deployment vanished while followed: submit it again
    "resourcegroupbeingdeleted": ENVIRONMENTAL,
    "networkerror": ENVIRONMENTAL,
    "connectionerror": ENVIRONMENTAL,
    "heartbeattimeout": ENVIRONMENTAL,
    "activitytimeout": ENVIRONMENTAL,
    "workershutdown": ENVIRONMENTAL,  # the attempt's worker stopped; the next attempt resumes
    "activitycancelled": ENVIRONMENTAL,
    # --- VERIFYING_HEALTH's own verdicts (see RETRIED_WITHIN_STAGE: their retry is the convergence window)
    "resourceunhealthy": ENVIRONMENTAL,
    "healthcheckfailed": ENVIRONMENTAL,
}

# ENVIRONMENTAL failures the workflow does NOT retry on its 5, 10, 20, 40, 80 s schedule, because the stage already
# retried for as long as the user allowed: VERIFYING_HEALTH re-reads the resources and re-runs the declared checks
# every retry interval until its convergence window (--health-window, default 10 min) closes, and fails with these
# codes only then — or at once for a state that no waiting changes (provisioningState Failed or Canceled, a
# resource that is gone). Repeating the window five more times would hold a broken deployment (and
# --rollback-on-failure) for an hour; a longer window is the knob. Still exit 3: the environment, not the input.
RETRIED_WITHIN_STAGE: dict[str, str] = {
    "resourceunhealthy": "VERIFYING_HEALTH re-read the resources for its convergence window (--health-window)",
    "healthcheckfailed": "VERIFYING_HEALTH re-ran the checks for its convergence window (--health-window)",
}


def retried_within_stage(code: str | None) -> str | None:
    """How the stage retried a failure the workflow does not retry again (None: the usual schedule applies)."""
    return RETRIED_WITHIN_STAGE.get((code or "").lower())


# Codes that only wrap the real cause in ``details``; alone (no decisive detail) they take the given class.
WRAPPER_CODES: dict[str, FailureClass] = {
    "deploymentfailed": LOGIC,
    "invalidtemplatedeployment": LOGIC,
    "resourcedeploymentfailure": LOGIC,
    "preflightvalidationcheckfailed": LOGIC,
    "multipleerrorsoccurred": LOGIC,
}

HTTP_STATUS: dict[int, FailureClass] = {
    408: ENVIRONMENTAL,
    409: ENVIRONMENTAL,
    429: ENVIRONMENTAL,
    500: ENVIRONMENTAL,
    502: ENVIRONMENTAL,
    503: ENVIRONMENTAL,
    504: ENVIRONMENTAL,
}

_HTTP_CODE_NAMES = {408: "RequestTimeout", 429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway",
                    503: "ServiceUnavailable", 504: "GatewayTimeout"}  # fmt: skip


def classify_status(status: int | None) -> FailureClass:
    if status is None:
        return LOGIC
    if status in HTTP_STATUS:
        return HTTP_STATUS[status]
    return ENVIRONMENTAL if status >= 500 else LOGIC


@dataclass
class ErrorTree:
    """An ARM error (``{"code", "message", "details": [...]}``) in a form independent of where it came from."""

    code: str | None
    message: str
    details: list[ErrorTree] = field(default_factory=list)

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any]) -> ErrorTree:
        if "error" in doc and isinstance(doc["error"], Mapping) and "code" not in doc:
            doc = doc["error"]
        details = doc.get("details") or []
        return cls(
            code=doc.get("code"),
            message=str(doc.get("message") or ""),
            details=[cls.from_mapping(d) for d in details if isinstance(d, Mapping)],
        )

    @classmethod
    def from_odata(cls, err: Any) -> ErrorTree:
        return cls(
            code=getattr(err, "code", None),
            message=str(getattr(err, "message", "") or ""),
            details=[cls.from_odata(d) for d in (getattr(err, "details", None) or [])],
        )


def _decide(tree: ErrorTree) -> tuple[FailureClass, ErrorTree] | None:
    """The class and the deciding node of an error tree, or None when no code in it is known."""
    leaves: list[tuple[FailureClass, ErrorTree]] = []
    for child in tree.details:
        decided = _decide(child)
        if decided:
            leaves.append(decided)
    for cls in (LOGIC, ENVIRONMENTAL):
        for leaf_cls, node in leaves:
            if leaf_cls is cls:
                return cls, node
    code = (tree.code or "").lower()
    if code in ERROR_CODES:
        return ERROR_CODES[code], tree
    return None


def classify_error_tree(
    tree: ErrorTree, *, http_status: int | None = None, retry_after: float | None = None
) -> Classification:
    decided = _decide(tree)
    if decided is not None:
        cls, node = decided
    else:
        wrapper = WRAPPER_CODES.get((tree.code or "").lower())
        if wrapper is not None and (http_status or 0) not in HTTP_STATUS:
            cls = wrapper
        else:
            cls = classify_status(http_status)
        node = tree
    code = node.code or _HTTP_CODE_NAMES.get(http_status or 0) or (f"Http{http_status}" if http_status else "Unknown")
    message = node.message or tree.message
    if node is not tree and tree.code:
        message = f"{tree.code}: {message}"
    return Classification(
        failure_class=cls, code=code, message=message, retry_after_seconds=retry_after, http_status=http_status
    )


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """ARM's Retry-After (seconds or an HTTP date), or retry-after-ms / x-ms-retry-after-ms."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001)):
        if name in lower:
            try:
                return max(0.0, float(lower[name]) * scale)
            except ValueError:
                pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _http_error_tree(exc: HttpResponseError) -> ErrorTree:
    if exc.error is not None and (exc.error.code or exc.error.details):
        return ErrorTree.from_odata(exc.error)
    response = exc.response
    if response is not None:
        try:
            body = json.loads(response.text())
        except (ValueError, TypeError, AttributeError):
            body = None
        if isinstance(body, Mapping) and (body.get("error") or body.get("code")):
            return ErrorTree.from_mapping(body)
    return ErrorTree(code=None, message=str(exc.message or exc))


def classify_failure(exc: BaseException) -> Classification:
    """Classify any failure an activity meets: Azure SDK errors, network errors, timeouts, engine errors."""
    # The template engine: every TemplateError is a logic failure carrying a stable code.
    issues = getattr(exc, "issues", None)
    if isinstance(issues, list) and issues and hasattr(issues[0], "code"):
        first = issues[0]
        return Classification(failure_class=LOGIC, code=str(first.code), message=str(exc))
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        raw_headers = getattr(exc.response, "headers", None)
        headers = dict(raw_headers) if raw_headers is not None else None
        tree = _http_error_tree(exc)
        if isinstance(exc, ClientAuthenticationError) and not tree.code:
            tree.code = "InvalidAuthenticationToken" if status == 401 else "AuthenticationFailed"
        return classify_error_tree(tree, http_status=status, retry_after=retry_after_seconds(headers))
    if isinstance(exc, ClientAuthenticationError):  # raised by a credential, no HTTP response
        return Classification(failure_class=LOGIC, code="CredentialUnavailable", message=str(exc))
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return Classification(failure_class=ENVIRONMENTAL, code="NetworkError", message=str(exc))
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return Classification(failure_class=ENVIRONMENTAL, code="Timeout", message=str(exc) or "timed out")
    if isinstance(exc, ConnectionError):
        return Classification(failure_class=ENVIRONMENTAL, code="ConnectionError", message=str(exc))
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code.lower() in ERROR_CODES:
        # The shared ARM request budget's pause (services/arm_budget.py) says how long to wait, like a 429 would.
        retry_after = getattr(exc, "retry_after_seconds", None)
        return Classification(
            failure_class=ERROR_CODES[code.lower()], code=code, message=str(exc), retry_after_seconds=retry_after
        )
    return Classification(failure_class=LOGIC, code=type(exc).__name__, message=str(exc) or type(exc).__name__)


def classify_arm_error(error: Mapping[str, Any] | None, *, default_code: str = "DeploymentFailed") -> Classification:
    """Classify an ARM error document, e.g. a failed deployment's ``properties.error``."""
    tree = ErrorTree.from_mapping(error or {"code": default_code, "message": "the deployment failed"})
    if not tree.code:
        tree.code = default_code
    return classify_error_tree(tree)
