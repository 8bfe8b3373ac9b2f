"""The approval page: server-rendered HTML (no front-end build) over the same operations as the API.

``/ui`` lists the deployments waiting for approval and the recent ones; ``/ui/deployments/{id}`` shows one: who
started it and from which commit, the deletions first and prominently, the plan in az notation with its colours,
and Approve/Reject for people the policy allows — or why not (the deployer sees that another person must approve).
A decision is a form post carrying a CSRF token: an HMAC, under a key only the service holds (from the session key,
else per process), of the caller, the deployment and the plan hash shown — a page of another site cannot forge it,
and it cannot approve another plan. The post is also refused when its ``Origin`` is not this service. Decisions go
through ``Deployments.decide``: a relay attestation bound to the plan hash, exactly as ``POST
/deployments/{id}/approvals``.

Who the visitor is: the development mode's configured identity, a bearer token, or — in production — the session
cookie of browser sign-in (OpenID Connect authorization code + PKCE, ``api/browser.py``). A visitor not signed in is
sent to sign in (a GET) or shown how to (a form post whose session expired).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.browser import SIGN_OUT_PATH, BrowserSessions, add_sign_in, sign_in_url
from api.deployments import Deployments, Target, self_approval_refusal
from api.identity import AuthenticationError, Authenticator, Authorizer, Principal
from api.models import Decision
from api.problems import Problem
from contract import search_attributes
from contract.models import WORKFLOW_NAME, DeploymentStage, DeploymentStatus

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #1d1d1f; padding: 0 1rem }
h1 { font-size: 1.5rem } h2 { font-size: 1.15rem; margin-top: 1.6rem }
table { border-collapse: collapse; width: 100% } td, th { text-align: left; padding: .35rem .6rem;
  border-bottom: 1px solid #ddd } th { background: #f4f4f6 }
.stage { font-weight: 600; padding: .1rem .45rem; border-radius: .3rem; background: #eef }
.stage-AWAITING_CONFIRMATION { background: #ffe9b3 } .stage-COMPLETED { background: #d8f5d8 }
.stage-FAILED { background: #ffd9d9 }
.deletions { border: 2px solid #c62828; background: #fff1f1; padding: .6rem 1rem; border-radius: .4rem }
.deletions h2 { color: #b71c1c; margin-top: 0 } .deletions li { font-family: ui-monospace, monospace }
pre.plan { background: #111; color: #ddd; padding: 1rem; overflow-x: auto; border-radius: .4rem; font-size: 13px }
.c-delete { color: #ff6b6b; font-weight: 700 } .c-create { color: #7bd88f } .c-modify { color: #c792ea }
.c-nochange { color: #8a8a8a } .c-deploy { color: #82aaff } .c-other { color: #ffcb6b }
.note { background: #f4f4f6; padding: .6rem 1rem; border-radius: .4rem } .why { background: #fff4d6 }
.error { background: #ffd9d9; padding: .6rem 1rem; border-radius: .4rem }
form.decide { display: inline-block; margin-right: 1rem } textarea { width: 28rem; height: 3rem }
button { font-size: 1rem; padding: .35rem 1.1rem; border-radius: .3rem; border: 1px solid #777; cursor: pointer }
button.approve { background: #2e7d32; color: white; border-color: #1b5e20 }
button.reject { background: #fff; color: #b71c1c; border-color: #b71c1c }
.who { margin: 0 0 1rem } form.sign-out { display: inline; margin-left: 1rem }
form.sign-out button { font-size: .8rem; padding: .1rem .5rem }
"""
_LINE_CLASSES = {"-": "c-delete", "+": "c-create", "~": "c-modify", "=": "c-nochange", "!": "c-deploy"}

PrincipalOf = Callable[[Request], Awaitable[Principal | None]]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def bearer_or_none(authenticator: Authenticator) -> PrincipalOf:
    """The visitor as the authenticator sees the request (the development mode's identity, a bearer token)."""

    async def principal(request: Request) -> Principal | None:
        try:
            return await authenticator.authenticate(request.headers.get("authorization"))
        except AuthenticationError:
            return None

    return principal


class CsrfTokens:
    """A decision form's token: HMAC-SHA256, under a per-process random key, of who, which deployment, which plan."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def token(self, principal: Principal, deployment: str, plan_hash: str) -> str:
        message = "\0".join((principal.issuer, principal.subject, deployment, plan_hash)).encode("utf-8")
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def valid(self, token: str, principal: Principal, deployment: str, plan_hash: str) -> bool:
        return hmac.compare_digest(token, self.token(principal, deployment, plan_hash))


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{_e(title)}</title><link rel="stylesheet" href="/ui/page.css"></head><body>{body}</body></html>'
    )
    # same-origin, not the API's no-referrer: under no-referrer browsers send "Origin: null" with the page's own form
    # posts, which the Origin check must refuse; same-origin keeps the referrer from other sites all the same.
    headers = {"Content-Security-Policy": PAGE_CSP, "Referrer-Policy": "same-origin"}
    return HTMLResponse(document, status_code=status, headers=headers)


def plan_html(text: str) -> str:
    """The az-notation plan with each change coloured as az colours it on a terminal."""
    lines = []
    for line in text.splitlines():
        symbol = line.strip()[:1]
        css = _LINE_CLASSES.get(symbol, "c-other" if symbol in ("x", "*") else "")
        lines.append(f'<span class="{css}">{_e(line)}</span>' if css else _e(line))
    return '<pre class="plan">' + "\n".join(lines) + "</pre>"


def add_page(
    app: FastAPI,
    service: Callable[[], Deployments],
    *,
    principal_of: PrincipalOf,
    authorizer: Authorizer,
    csrf: CsrfTokens | None = None,
    sessions: BrowserSessions | None = None,
) -> None:
    csrf = csrf or CsrfTokens(sessions.cookies.csrf_key if sessions is not None else None)
    if sessions is not None:
        add_sign_in(app, sessions, _page)

    async def visitor(request: Request) -> Principal:
        who = await principal_of(request)
        if who is None:
            raise _SignIn()
        return who

    @app.exception_handler(_SignIn)
    async def sign_in(request: Request, exc: Exception) -> Response:
        if sessions is not None and request.method == "GET":
            return RedirectResponse(sign_in_url(request.url.path), status_code=303)
        how = (
            f"<p><a href='{_e(sign_in_url(request.url.path))}'>Sign in</a></p>"
            if sessions is not None
            else "<p class='note'>Browser sign-in is not configured on this service (docs/AUTH.md, 'Browser "
            "sign-in'); send a bearer token instead.</p>"
        )
        return _page(
            "Sign in",
            "<h1>Sign in</h1><p class='note'>This page shows deployments to the people who may see them. Sign in with "
            f"your organisation's account (OpenID Connect) to continue.</p>{how}",
            status=401,
        )

    @app.get("/ui/page.css", include_in_schema=False)
    async def css() -> Response:
        return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=300"})

    @app.get("/ui", include_in_schema=False)
    async def overview(request: Request) -> Response:
        who = await visitor(request)
        svc = service()
        deployments = f"WorkflowType = '{WORKFLOW_NAME}'"
        running = await svc.list_rows(
            who, authorizer, f"{deployments} AND ExecutionStatus = 'Running'", resource_group=None, limit=50
        )
        waiting = [r for r in running if r["state"] == DeploymentStage.AWAITING_CONFIRMATION.value]
        recent = await svc.list_rows(who, authorizer, deployments, resource_group=None, limit=20)
        body = ["<h1>Deployments</h1>", _signed_in(who, sessions)]
        body.append("<h2>Waiting for approval</h2>")
        body.append(_table(waiting) if waiting else "<p class='note'>Nothing waits for approval.</p>")
        body.append("<h2>Recent</h2>")
        body.append(_table(recent) if recent else "<p class='note'>No deployments yet.</p>")
        return _page("Deployments", "".join(body))

    async def deployment_page(
        who: Principal, deployment_id: str, *, error: str | None = None, status_code: int = 200
    ) -> Response:
        svc = service()
        target = await svc.find(deployment_id)
        if not authorizer.allows(who, "reader", target.subscription_id, target.resource_group):
            return _page("Not allowed", f"<h1>Not allowed</h1><p>{_e(who.name)} may not read this deployment.</p>", 403)
        status = await svc.status(target)
        return _page(
            f"{status.resource_group} · {status.stage.value}",
            _signed_in(who, sessions) + _deployment_body(svc, who, target, status, authorizer, csrf, error=error),
            status=status_code,
        )

    @app.get("/ui/deployments/{deployment_id}", include_in_schema=False)
    async def one(deployment_id: str, request: Request) -> Response:
        return await deployment_page(await visitor(request), deployment_id)

    @app.post("/ui/deployments/{deployment_id}/decision", include_in_schema=False)
    async def decide(
        deployment_id: str,
        request: Request,
        decision: str = Form(max_length=10),
        plan_hash: str = Form(max_length=80),
        reason: str = Form(default="", max_length=2000),
        csrf_token: str = Form(max_length=128),
    ) -> Response:
        who = await visitor(request)
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
            return _page("Refused", "<h1>Refused</h1><p>The form was posted from another site.</p>", 403)
        if decision not in ("approve", "reject") or not csrf.valid(csrf_token, who, deployment_id, plan_hash):
            return _page(
                "Refused",
                "<h1>Refused</h1><p>This form is not one this page gave you (or it is for another plan). Open the "
                f'<a href="/ui/deployments/{_e(deployment_id)}">deployment</a> again and decide there.</p>',
                403,
            )
        svc = service()
        target = await svc.find(deployment_id)
        if not authorizer.allows(who, "approver", target.subscription_id, target.resource_group):
            return await deployment_page(
                who, deployment_id, error="You do not hold the approver role.", status_code=403
            )
        try:
            await svc.decide(who, target, Decision(plan_hash=plan_hash, reason=reason), approve=decision == "approve")
        except Problem as problem:
            return await deployment_page(who, deployment_id, error=problem.detail, status_code=problem.status)
        return RedirectResponse(f"/ui/deployments/{deployment_id}", status_code=303)


class _SignIn(Exception):
    """The visitor is not signed in."""


def _unverified(who: Principal) -> str:
    return "" if who.verified else " (local development mode: an unverified identity)"


def _signed_in(who: Principal, sessions: BrowserSessions | None) -> str:
    sign_out = (
        f'<form class="sign-out" method="post" action="{SIGN_OUT_PATH}"><button type="submit">Sign out</button></form>'
        if sessions is not None
        else ""
    )
    return f'<div class="who">Signed in as <b>{_e(who.name)}</b>{_unverified(who)} {sign_out}</div>'


def _table(rows: list[dict[str, Any]]) -> str:
    out = ["<table><tr><th>deployment</th><th>stage</th><th>outcome</th><th>started</th><th>by</th></tr>"]
    for r in rows:
        state = r.get("state") or "-"
        out.append(
            f'<tr><td><a href="/ui/deployments/{_e(r["id"])}">{_e(r["resource_group"])}</a></td>'
            f'<td><span class="stage stage-{_e(state)}">{_e(state)}</span></td><td>{_e(r.get("outcome") or "-")}</td>'
            f"<td>{_e(r['started'][:19].replace('T', ' '))}</td><td>{_e(r.get('initiator') or '-')}</td></tr>"
        )
    return "".join(out) + "</table>"


def _deployment_body(
    svc: Deployments,
    who: Principal,
    target: Target,
    status: DeploymentStatus,
    authorizer: Authorizer,
    csrf: CsrfTokens,
    *,
    error: str | None,
) -> str:
    sha = target.description.typed_search_attributes.get(search_attributes.GIT_SHA) or "no commit recorded"
    initiator = (status.transitions[0].by if status.transitions else None) or target.initiator or "unknown"
    out = [
        '<p><a href="/ui">All deployments</a></p>',
        f"<h1>{_e(status.resource_group)} "
        f'<span class="stage stage-{_e(status.stage.value)}">{_e(status.stage.value)}</span></h1>',
        f"<p>Started by <b>{_e(initiator)}</b> from commit <code>{_e(sha)}</code> · subscription "
        f"<code>{_e(status.subscription_id)}</code> · deployment <code>{_e(target.handle.id)}</code></p>",
    ]
    if error:
        out.append(f'<p class="error">{_e(error)}</p>')
    pending = status.pending_confirmation
    if status.stage is DeploymentStage.AWAITING_CONFIRMATION and pending is not None:
        deleted = [c.resource_id for c in pending.destructive_changes]
        out.append(f'<div class="deletions"><h2>This plan deletes {len(deleted)} resource(s)</h2><ul>')
        out.extend(f"<li>{_e(rid)}</li>" for rid in deleted)
        out.append(
            f"</ul><p>Waiting for approval (round {pending.round}) until "
            f"{_e(pending.deadline.isoformat(timespec='seconds'))}; plan <code>{_e(pending.plan_hash)}</code></p>"
            "</div>"
        )
        out.append(_decision_forms(who, target, status, authorizer, csrf, initiator))
    if status.plan is not None:
        out.append("<h2>Plan (what-if)</h2>")
        out.append(plan_html(svc.plan_text(status.plan)))
    if status.confirmations:
        out.append("<h2>Decisions</h2><ul>")
        for record in status.confirmations:
            verified = "verified" if record.identity_verified else "unverified (claimed)"
            out.append(
                f"<li>round {record.round}: {_e(record.decision.value)} by {_e(record.by)} ({verified})"
                f"{': ' + _e(record.reason) if record.reason else ''}</li>"
            )
        out.append("</ul>")
    if status.failure is not None:
        out.append(f'<p class="error">Failed at {_e(status.failure.stage.value)}: {_e(status.failure.code)}: '
                   f"{_e(status.failure.message)}</p>")  # fmt: skip
    return "".join(out)


def _decision_forms(
    who: Principal,
    target: Target,
    status: DeploymentStatus,
    authorizer: Authorizer,
    csrf: CsrfTokens,
    initiator: str,
) -> str:
    pending = status.pending_confirmation
    assert pending is not None and pending.plan_hash is not None
    if not authorizer.allows(who, "approver", target.subscription_id, target.resource_group):
        return (
            f"<p class='note why'>You ({_e(who.name)}) can read this deployment but not decide on it: the approver "
            "role for this resource group is needed.</p>"
        )
    token = csrf.token(who, target.handle.id, pending.plan_hash)
    action = f"/ui/deployments/{_e(target.handle.id)}/decision"

    def form(decision: str, label: str) -> str:
        return (
            f'<form class="decide" method="post" action="{action}">'
            f'<input type="hidden" name="decision" value="{decision}">'
            f'<input type="hidden" name="plan_hash" value="{_e(pending.plan_hash)}">'
            f'<input type="hidden" name="csrf_token" value="{_e(token)}">'
            f'<p><textarea name="reason" placeholder="reason (recorded in the audit)"></textarea></p>'
            f'<button class="{decision}" type="submit">{label}</button></form>'
        )

    why_not = self_approval_refusal(who, initiator, status, approving=True)
    if why_not is not None:
        why_not = why_not.removesuffix(" The deployment keeps waiting; nothing was sent.")
        return f"<p class='note why'>You cannot approve: {_e(why_not)}</p>" + form("reject", "Reject")
    return form("approve", "Approve") + form("reject", "Reject")
