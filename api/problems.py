"""Errors as RFC 9457 problem details (``application/problem+json``), one place: every refusal of the service is a
``Problem`` with a ``type`` URI a client can switch on, a short ``title``, the HTTP ``status`` and a ``detail`` that
names the input, what is wrong and what to do. docs/API.md lists the types.

Details never carry request values: a validation error names the field and the rule, never what was sent (a secure
parameter value must not come back in an error)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Problem type URIs: relative references resolved against the service (RFC 9457 allows them); docs/API.md
# documents each under its anchor.
TYPE_BASE = "/problems/"

# type → (status, title)
PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    "unauthenticated": (401, "Authentication required"),
    "forbidden": (403, "Not allowed"),
    "four-eyes": (403, "Another person must approve"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "not-acceptable": (406, "Not acceptable"),
    "resource-group-busy": (409, "A deployment of this resource group is running"),
    "plan-changed": (409, "The plan changed"),
    "not-waiting": (409, "The deployment is not waiting for a decision"),
    "not-running": (409, "The deployment is not running"),
    "rollout-running": (409, "A rollout of this name is running"),
    "decision-refused": (409, "The deployment refused the decision"),
    "request-too-large": (413, "Request too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "invalid-request": (422, "The request is not valid"),
    "idempotency-key-reused": (422, "Idempotency-Key reused with another request"),
    "temporal-unavailable": (503, "Temporal is not reachable"),
    "issuer-unavailable": (503, "The sign-in issuer is not reachable"),
    "internal": (500, "Internal error"),
}


class Problem(Exception):
    """A refusal answered as problem details. ``extra`` adds members (RFC 9457 extensions), e.g. ``errors``."""

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        default_status, self.title = PROBLEM_TYPES[kind]
        self.kind = kind
        self.status = status or default_status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + problem.kind,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if instance:
        body["instance"] = instance
    body.update(problem.extra)
    return JSONResponse(body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_MEDIA_TYPE)


async def on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc, request.url.path)


async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (no such route, wrong method) as problem details."""
    assert isinstance(exc, StarletteHTTPException)
    kind = {404: "not-found", 405: "method-not-allowed", 406: "not-acceptable", 413: "request-too-large",
            415: "unsupported-media-type"}.get(exc.status_code, "invalid-request")  # fmt: skip
    detail = {
        404: f"There is no {request.url.path} here; /openapi.json lists the routes.",
        405: f"{request.method} is not allowed on {request.url.path}; /openapi.json lists the methods it takes.",
    }.get(exc.status_code, str(exc.detail))
    problem = Problem(kind, detail, status=exc.status_code, headers=dict(exc.headers or {}))
    return problem_response(problem, request.url.path)


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A body or query that does not match the schema: each error names where and which rule, never the value."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"location": "/".join(str(p) for p in error.get("loc", ())), "message": str(error.get("msg", ""))}
        for error in exc.errors()
    ][:50]
    where = ", ".join(e["location"] for e in errors[:5]) or "the request"
    problem = Problem(
        "invalid-request",
        f"The request does not match the schema at {where}; fix those fields (the errors member lists each) "
        "and send it again. Nothing was started.",
        errors=errors,
    )
    return problem_response(problem, request.url.path)


async def on_unhandled(request: Request, exc: Exception) -> JSONResponse:
    """Anything unforeseen: a problem without the exception's text (which could hold input), logged server-side by
    type only."""
    import logging

    logging.getLogger("api").error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem_response(
        Problem("internal", "The service failed to answer this request; the service log names the error type."),
        request.url.path,
    )
