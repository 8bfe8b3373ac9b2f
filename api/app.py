"""The HTTP API: FastAPI routes over ``api.deployments``, with sign-in and roles injected.

``create_app`` takes the ``Authenticator`` (who is calling: OpenID Connect bearer tokens in production,
``api.devmode`` on a developer's machine) and the ``Authorizer`` (which role they hold for a resource group), so the
routes never know how identities are proven. Every route checks the role for the target's subscription and resource
group: deployer to start and cancel, approver to approve and reject, reader to read. docs/API.md describes the
routes, problem types, the event stream and idempotency.
"""

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import IssuerUnavailableError
from api.browser import BrowserSessions, page_visitor
from api.deployments import MAX_IDEMPOTENCY_KEY_CHARS, Deployments, Target, links
from api.devmode import is_loopback
from api.events import HEARTBEAT_SECONDS, plan_summary, sse_stream
from api.identity import AuthenticationError, Authenticator, Authorizer, Principal, Role
from api.models import Decision, DeploymentCreate
from api.problems import (
    Problem,
    on_http_exception,
    on_problem,
    on_unhandled,
    on_validation_error,
    problem_response,
)
from contract.models import DeploymentStage
from contract.version import package_version
from services.metrics import RequestMetrics, deployment_started

log = logging.getLogger("api")
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # a 4 MB ARM template (ARM's own limit) and its parameters, as JSON
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass
class ApiSettings:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # The local development mode: refuse any peer that is not loopback (nobody signs in).
    loopback_only: bool = False
    # How often the event stream sends a comment while nothing happens (keeps proxies from closing it).
    heartbeat_seconds: float = HEARTBEAT_SECONDS


# ------------------------------------------------------------------------------------------------ middleware


class _TooLarge(StarletteHTTPException):
    """Raised from the body reader: an HTTPException, so the framework passes it on (as 413 problem details)
    instead of calling it a malformed body."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=too_large_detail(limit))


def too_large_detail(limit: int) -> str:
    return (
        f"The request body is over the {limit:,} bytes this service takes; nothing was started. Send a smaller "
        "template (ARM itself takes at most 4 MB), or ask the operator to raise --max-body-bytes."
    )


class GuardMiddleware:
    """Before any route: the request size limit (the declared Content-Length, then the bytes actually received, so
    a chunked body cannot get around it and nothing larger is ever buffered), the loopback-only rule of the
    development mode, and the security headers on every response."""

    def __init__(self, app: ASGIApp, settings: ApiSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        peer = (scope.get("client") or ("", 0))[0]
        if self.settings.loopback_only and not is_loopback(str(peer)):
            problem = Problem("forbidden", "The development mode answers loopback clients only.")
            await problem_response(problem, path)(scope, receive, self._with_headers(send))
            return
        limit = self.settings.max_body_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._too_large(scope, receive, send, path)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await self._with_headers(send)(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._too_large(scope, receive, send, path)
        except Exception as exc:
            # Answered here rather than by the server's error middleware, which would hand the exception on to be
            # logged with its text (a validation error's text quotes the input: it could hold a secure value).
            log.error("unhandled %s on %s %s", type(exc).__name__, scope.get("method"), path)
            if not started:
                problem = Problem("internal", "The service failed to answer this request; the log names its type.")
                await problem_response(problem, path)(scope, receive, self._with_headers(send))

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        limit = self.settings.max_body_bytes
        problem = Problem("request-too-large", too_large_detail(limit), headers={"Connection": "close"})
        await problem_response(problem, path)(scope, receive, self._with_headers(send))

    @staticmethod
    def _with_headers(send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        return wrapped


# ------------------------------------------------------------------------------------------------ the app


def create_app(
    deployments: Deployments | None,
    *,
    authenticator: Authenticator,
    authorizer: Authorizer,
    settings: ApiSettings | None = None,
    metrics_app: ASGIApp | None = None,
    page_principal: Any = None,
    browser_sessions: BrowserSessions | None = None,
) -> FastAPI:
    """The service. ``deployments`` may be None only to render the OpenAPI document (no route is called then).
    ``metrics_app``: the Prometheus endpoint, mounted at /metrics (services/metrics.py provides it).
    ``page_principal``: how the approval page finds its visitor (``api.page.PrincipalOf``; default: the
    authenticator on the request's Authorization header, else the session of browser sign-in).
    ``browser_sessions``: browser sign-in for the approval page (OpenID Connect code + PKCE, ``api/browser.py``)."""
    settings = settings or ApiSettings()
    app = FastAPI(
        title="Bicep Deployment Orchestrator API",
        version=package_version(),
        description="Start, follow, approve and cancel deployments (docs/API.md). Errors are RFC 9457 problem details.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unhandled)
    app.add_middleware(GuardMiddleware, settings=settings)
    # /metrics: the Prometheus exposition of the service's OpenTelemetry metrics, mounted here when services/metrics.py
    # hands one over (it is built beside this service).
    if metrics_app is not None:
        app.mount("/metrics", metrics_app)
        app.add_middleware(RequestMetrics)  # requests by route template, method and status

    def service() -> Deployments:
        if deployments is None:  # pragma: no cover - only the OpenAPI rendering builds an app without one
            raise Problem("temporal-unavailable", "The service is not connected to Temporal.")
        return deployments

    async def principal(request: Request) -> Principal:
        try:
            return await authenticator.authenticate(request.headers.get("authorization"))
        except IssuerUnavailableError as exc:  # the token may be fine: we cannot check it now
            raise Problem(
                "issuer-unavailable",
                f"{exc.detail}. The token was not judged; try again shortly.",
                headers={"Retry-After": "5"},
            ) from None
        except AuthenticationError as exc:
            challenge = f'Bearer error="{exc.error}", error_description="{_header_text(exc.detail)}"'
            raise Problem("unauthenticated", exc.detail, headers={"WWW-Authenticate": challenge}) from None

    Caller = Annotated[Principal, Depends(principal)]
    Service = Annotated[Deployments, Depends(service)]

    def require(who: Principal, role: Role, subscription_id: str, resource_group: str) -> None:
        if not authorizer.allows(who, role, subscription_id, resource_group):
            raise Problem(
                "forbidden",
                f"{who.name} does not hold the {role} role for resource group {resource_group} in subscription "
                f"{subscription_id}; ask its owners for it. Nothing was changed.",
                required_role=role,
            )

    async def readable(svc: Deployments, who: Principal, workflow_id: str, run_id: str | None) -> Target:
        target = await svc.find(workflow_id, run_id)
        require(who, "reader", target.subscription_id, target.resource_group)
        return target

    # -------------------------------------------------------------------------------------------- routes

    @app.get("/healthz", tags=["service"], summary="liveness and Temporal reachability")
    async def healthz() -> JSONResponse:
        ok = False
        if deployments is not None:
            try:
                ok = bool(await asyncio.wait_for(deployments.client.service_client.check_health(), timeout=3))
            except Exception:
                ok = False
        return JSONResponse({"status": "ok" if ok else "degraded", "temporal": ok}, status_code=200 if ok else 503)

    @app.post(
        "/deployments",
        status_code=201,
        tags=["deployments"],
        summary="start a deployment",
        responses={201: {"description": "started (or, for a repeated Idempotency-Key, the one it started)"}},
    )
    async def start(
        body: DeploymentCreate,
        who: Caller,
        svc: Service,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> JSONResponse:
        subscription_id, resource_group = svc.target_of(body)
        require(who, "deployer", subscription_id, resource_group)
        if idempotency_key is not None and (
            not idempotency_key.strip()
            or len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS
            or any(ord(c) < 33 or ord(c) > 126 for c in idempotency_key)
        ):
            raise Problem(
                "invalid-request",
                f"The Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters (a "
                "UUID is a good key). Nothing was started.",
            )
        started = await svc.start(who, body, idempotency_key)
        if not started.replayed:
            deployment_started()
        headers = {"Location": f"/deployments/{started.workflow_id}"}
        if started.replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(
            {
                "id": started.workflow_id,
                "run_id": started.run_id,
                "replayed": started.replayed,
                "links": links(started.workflow_id),
            },
            status_code=201,
            headers=headers,
        )

    @app.get("/deployments", tags=["deployments"], summary="list deployments, newest first")
    async def list_deployments(
        who: Caller,
        svc: Service,
        resource_group: Annotated[str | None, Query(max_length=200)] = None,
        running: bool = False,
        git_sha: Annotated[str | None, Query(max_length=64)] = None,
        state: DeploymentStage | None = None,
        since: Annotated[str | None, Query(max_length=64, description="ISO 8601, or 30m, 6h, 7d ago")] = None,
        until: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> JSONResponse:
        import argparse

        from client.cli._common import CommandError
        from client.cli.status import list_query

        args = argparse.Namespace(
            running=running, git_sha=git_sha, state=state.value if state else None, since=since, until=until
        )
        try:
            query = list_query(args)
        except CommandError as exc:
            message = str(exc).replace("--git-sha", "git_sha").replace("--since", "since").replace("--until", "until")
            raise Problem("invalid-request", message) from None
        rows = await svc.list_rows(who, authorizer, query, resource_group=resource_group, limit=limit)
        return JSONResponse({"deployments": rows})

    @app.get("/deployments/{deployment_id}", tags=["deployments"], summary="a deployment's state")
    async def get_deployment(
        deployment_id: str, who: Caller, svc: Service, run_id: Annotated[str | None, Query(max_length=80)] = None
    ) -> JSONResponse:
        target = await readable(svc, who, deployment_id, run_id)
        status = await svc.status(target)
        pending = status.pending_confirmation
        description = target.description
        document = {
            "id": target.handle.id,
            "run_id": description.run_id,
            "status": description.status.name if description.status else None,
            "stage": status.stage.value,
            "outcome": status.outcome.value if status.outcome else None,
            "subscription_id": status.subscription_id,
            "resource_group": status.resource_group,
            "deployment_name": status.deployment_name,
            "initiator": target.initiator,
            "started": description.start_time.isoformat() if description.start_time else None,
            "closed": description.close_time.isoformat() if description.close_time else None,
            "plan": plan_summary(status.plan) if status.plan is not None else None,
            "pending_confirmation": pending.model_dump(mode="json", exclude={"approve_command"}) if pending else None,
            "attempts": {stage.value: p.model_dump(mode="json") for stage, p in status.stages.items()},
            "transitions": [t.model_dump(mode="json") for t in status.transitions],
            "confirmations": [c.model_dump(mode="json", exclude={"policy"}) for c in status.confirmations],
            "refused_decisions": [r.model_dump(mode="json") for r in status.refused_decisions],
            "failure": status.failure.model_dump(mode="json") if status.failure else None,
            "result": await _result(target) if not target.running else None,
            "links": links(target.handle.id),
        }
        return JSONResponse(document)

    @app.get(
        "/deployments/{deployment_id}/plan",
        tags=["deployments"],
        summary="the what-if plan: JSON, or az notation text with Accept: text/plain",
        responses={200: {"content": {"application/json": {}, "text/plain": {}}}},
    )
    async def get_plan(
        deployment_id: str,
        who: Caller,
        svc: Service,
        request: Request,
        run_id: Annotated[str | None, Query(max_length=80)] = None,
    ) -> Response:
        target = await readable(svc, who, deployment_id, run_id)
        status = await svc.status(target)
        if status.plan is None:
            raise Problem(
                "not-found",
                f"Deployment {deployment_id} has no plan yet (it is at {status.stage.value}); the events stream says "
                "when it has one.",
            )
        text = await asyncio.to_thread(svc.plan_text, status.plan)
        accept = request.headers.get("accept", "")
        if "text/plain" in accept and "application/json" not in accept:
            return PlainTextResponse(text)
        changes = await asyncio.to_thread(svc.plan_changes, status.plan)
        return JSONResponse({**plan_summary(status.plan), "text": text, "changes": changes})

    @app.get("/deployments/{deployment_id}/audit", tags=["deployments"], summary="the audit record, from history")
    async def get_audit(
        deployment_id: str, who: Caller, svc: Service, run_id: Annotated[str | None, Query(max_length=80)] = None
    ) -> JSONResponse:
        from services.audit.history import fetch_record

        target = await readable(svc, who, deployment_id, run_id)
        record = await fetch_record(svc.client, target.handle.id, target.description.run_id)
        return JSONResponse(record.model_dump(mode="json"))

    @app.get(
        "/deployments/{deployment_id}/events",
        tags=["deployments"],
        summary="Server-Sent Events: stages, plan, decisions, result; resumable with Last-Event-ID",
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def get_events(
        deployment_id: str,
        who: Caller,
        svc: Service,
        run_id: Annotated[str | None, Query(max_length=80)] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
    ) -> StreamingResponse:
        target = await readable(svc, who, deployment_id, run_id)
        after = 0
        if last_event_id:
            if not last_event_id.strip().isdigit():
                raise Problem(
                    "invalid-request",
                    "Last-Event-ID must be the id of an event this stream sent (a number). Reconnect without it to "
                    "start from the beginning.",
                )
            after = int(last_event_id)
        return StreamingResponse(
            sse_stream(
                target.handle, svc.client.data_converter, after=after, heartbeat_seconds=settings.heartbeat_seconds
            ),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    async def decide(deployment_id: str, body: Decision, who: Principal, svc: Deployments, *, approve: bool) -> Any:
        target = await svc.find(deployment_id)
        require(who, "approver", target.subscription_id, target.resource_group)
        return await svc.decide(who, target, body, approve=approve)

    @app.post(
        "/deployments/{deployment_id}/approvals",
        tags=["decisions"],
        summary="approve the pending plan (named by its hash), attested by the service's relay key",
    )
    async def approve(deployment_id: str, body: Decision, who: Caller, svc: Service) -> JSONResponse:
        return JSONResponse(await decide(deployment_id, body, who, svc, approve=True))

    @app.post(
        "/deployments/{deployment_id}/rejections",
        tags=["decisions"],
        summary="reject the pending plan (named by its hash): the deployment fails as rejected",
    )
    async def reject(deployment_id: str, body: Decision, who: Caller, svc: Service) -> JSONResponse:
        return JSONResponse(await decide(deployment_id, body, who, svc, approve=False))

    @app.post(
        "/deployments/{deployment_id}/cancel", status_code=202, tags=["deployments"], summary="cancel a deployment"
    )
    async def cancel(deployment_id: str, who: Caller, svc: Service) -> JSONResponse:
        target = await svc.find(deployment_id)
        require(who, "deployer", target.subscription_id, target.resource_group)
        await svc.cancel(target)
        return JSONResponse(
            {"id": target.handle.id, "run_id": target.description.run_id, "cancel_requested": True,
             "links": links(target.handle.id)},
            status_code=202,
        )  # fmt: skip

    from api.page import add_page
    from api.rollouts import rollouts_router

    app.include_router(rollouts_router(service, principal, authorizer))  # fleet rollouts (docs/FLEET.md)

    visitor = page_principal or page_visitor(authenticator, browser_sessions)
    add_page(app, service, principal_of=visitor, authorizer=authorizer, sessions=browser_sessions)
    _document_security_and_problems(app)
    return app


def _document_security_and_problems(app: FastAPI) -> None:
    """The OpenAPI document also says how callers authenticate (bearer tokens) and that every error is a problem
    details document."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "an OpenID Connect access token (none in the local development mode)",
        }
        components.setdefault("schemas", {})["Problem"] = {
            "type": "object",
            "description": "RFC 9457 problem details (application/problem+json); docs/API.md lists the types",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "instance": {"type": "string"},
            },
            "required": ["type", "title", "status", "detail"],
        }
        problem = {
            "description": "problem details",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                operation.setdefault("responses", {})["default"] = problem
                if path != "/healthz":
                    operation["security"] = [{"bearer": []}]
                # FastAPI documents validation errors in its own shape; ours are problem details like every other.
                operation["responses"].pop("422", None)
        schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
        schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _result(target: Target) -> dict[str, Any] | None:
    from client.cli.deploy import result_document
    from client.deployments import result_of

    try:
        return result_document(await asyncio.wait_for(result_of(target.handle), timeout=10))
    except Exception:  # a closed run's result is a courtesy next to its status
        return None


def _header_text(text: str) -> str:
    return json.dumps(text.encode("ascii", "replace").decode())[1:-1].replace('"', "'")
