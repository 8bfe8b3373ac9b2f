"""The API's test stack: the embedded default (real Temporal dev server, local ARM over HTTPS, worker process) with an
approval policy that trusts the API's relay key, and the API served by uvicorn on a free loopback port in a thread
of this process, reached with real HTTP requests (httpx).

Sign-in here is a table of fixed bearer strings → principals (``TokenTable``): the routes only see the
``Authenticator``/``Authorizer`` protocols, and OpenID Connect token validation (issuer, audience, expiry, JWKS) is
tested on its own against a real local OpenID provider. What these tests exercise is everything after sign-in."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.identity import AuthenticationError, Principal, Role
from api.relay import RelayKey, load_relay_key, make_relay_key_file
from client.embedded import DevInstance, EmbeddedDefault
from harness.localarm import example_parameters, example_template

ISSUER = "https://issuer.test.invalid"
SCRUBBED = (
    "ORCHESTRATOR_CODEC_KEYS", "ORCHESTRATOR_CODEC_KEY_FILE", "ORCHESTRATOR_ALLOW_SKIP_CONFIRMATION",
    "ORCHESTRATOR_APPROVERS", "ORCHESTRATOR_APPROVERS_FILE", "ORCHESTRATOR_FOUR_EYES",
)  # fmt: skip


@dataclass
class Caller:
    token: str
    principal: Principal
    roles: frozenset[str]
    groups: tuple[str, ...] = ()  # resource group patterns (fnmatch) the roles hold for; empty: every group

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _caller(token: str, name: str, *roles: str, groups: tuple[str, ...] = ()) -> Caller:
    return Caller(token, Principal(subject=f"oid-{name}", name=name, issuer=ISSUER), frozenset(roles), groups)


CALLERS = {
    "deployer": _caller("token-ana", "ana@contoso.com", "deployer", "approver", "reader"),  # may approve others
    "approver": _caller("token-bo", "bo@contoso.com", "approver", "reader"),
    "reader": _caller("token-cy", "cy@contoso.com", "reader"),
    "other-deployer": _caller("token-di", "di@contoso.com", "deployer", "reader"),
    # deployer and reader for the resource groups api-roll-a-* only (a rollout needs its role on every target)
    "scoped-deployer": _caller("token-el", "el@contoso.com", "deployer", "reader", groups=("api-roll-a-*",)),
}


class TokenTable:
    """Authenticator and authorizer over ``CALLERS`` (a stand-in for OpenID Connect, see the module docstring)."""

    def __init__(self, callers: dict[str, Caller]) -> None:
        self.by_token = {c.token: c for c in callers.values()}
        self.by_subject = {c.principal.subject: c for c in callers.values()}

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthenticationError("no bearer token: send Authorization: Bearer <token>", error="invalid_request")
        scheme, _, token = authorization.partition(" ")
        caller = self.by_token.get(token) if scheme.lower() == "bearer" else None
        if caller is None:
            raise AuthenticationError("the bearer token is not valid")
        return caller.principal

    def allows(self, principal: Principal, role: Role, subscription_id: str, resource_group: str) -> bool:
        import fnmatch

        caller = self.by_subject.get(principal.subject)
        if caller is None or role not in caller.roles:
            return False
        return not caller.groups or any(fnmatch.fnmatchcase(resource_group.lower(), g) for g in caller.groups)


SMALL_BODY_LIMIT = 512 * 1024  # the tests' size limit, so a 413 needs no megabytes
HEARTBEAT_SECONDS = 0.5  # the stream's idle comment, short so a test sees one while a deployment waits


@dataclass
class ApiServer:
    """Uvicorn in a thread with its own event loop and Temporal client."""

    instance: DevInstance
    relay: RelayKey
    max_body_bytes: int
    bicep_root: Path | None = None
    url: str = ""
    _thread: threading.Thread | None = None
    _server: Any = None
    _loop: asyncio.AbstractEventLoop | None = None
    _error: list[BaseException] = field(default_factory=list)

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            try:
                asyncio.run(self._serve(ready))
            except BaseException as exc:  # reported by start()
                self._error.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name="api-server", daemon=True)
        self._thread.start()
        if not ready.wait(60) or self._error:
            raise RuntimeError(f"the API did not start: {self._error}")

    async def _serve(self, ready: threading.Event) -> None:
        import uvicorn

        from api.app import ApiSettings, create_app
        from api.deployments import Deployments
        from api.server import bind_socket, url_of
        from services.content_store import LocalBlobStore
        from services.temporal_client import connect

        client = await connect(address=self.instance.temporal_address, namespace=self.instance.namespace)
        table = TokenTable(CALLERS)
        deployments = Deployments(
            client,
            LocalBlobStore(self.instance.blob_dir),
            task_queue=self.instance.task_queue,
            relay=self.relay,
            bicep_root=self.bicep_root,
        )
        app = create_app(
            deployments,
            authenticator=table,
            authorizer=table,
            settings=ApiSettings(max_body_bytes=self.max_body_bytes, heartbeat_seconds=HEARTBEAT_SECONDS),
        )
        sock = bind_socket("127.0.0.1", 0)
        self.url = url_of(sock)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._loop = asyncio.get_running_loop()

        async def announce() -> None:
            while not self._server.started:
                await asyncio.sleep(0.02)
            ready.set()

        announcer = asyncio.create_task(announce())
        await self._server.serve(sockets=[sock])
        announcer.cancel()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=20)


@dataclass
class ApiStack:
    embedded: EmbeddedDefault
    instance: DevInstance
    server: ApiServer
    relay: RelayKey
    state_dir: Path
    bicep_root: Path

    @property
    def url(self) -> str:
        return self.server.url

    def http(self, who: str | None = None, **kw: Any) -> httpx.Client:
        headers = CALLERS[who].headers if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kw.pop("timeout", 60), **kw)


def policy_text(relay: RelayKey) -> str:
    """The worker's approval policy: relay proofs only (the API's key), any verified identity approves, never the
    initiator."""
    return (
        'accepted_proofs = ["relay"]\n'
        "statement_lifetime_seconds = 900\n"
        "initiator_may_approve = false\n"
        "[[scope]]\n"
        'approvers = ["*"]\n'
        "[[relay]]\n"
        f'key_id = "{relay.key_id}"\n'
        f'public_key = "{relay.public_key_base64}"\n'
    )


@pytest.fixture(scope="module")
def api_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    folder = tmp_path_factory.mktemp("api-stack")
    make_relay_key_file(folder / "relay.pem")
    relay = load_relay_key(folder / "relay.pem", "team-api-test")
    policy = folder / "approval-policy.toml"
    policy.write_text(policy_text(relay))
    saved = {k: os.environ.pop(k, None) for k in SCRUBBED}
    embedded = EmbeddedDefault(
        folder / "state",
        worker_env={"ORCHESTRATOR_APPROVAL_POLICY": str(policy), "ORCHESTRATOR_CONFIRMATION_TIMEOUT": "600"},
    )
    server: ApiServer | None = None
    try:
        instance = embedded.start()
        bicep_root = folder / "bicep-root"  # the folder the API and the worker both see (one machine here)
        bicep_root.mkdir()
        server = ApiServer(instance, relay, SMALL_BODY_LIMIT, bicep_root)
        server.start()
        yield ApiStack(embedded, instance, server, relay, folder / "state", bicep_root)
    finally:
        if server is not None:
            server.stop()
        embedded.stop()
        for key, value in saved.items():
            if value is not None:
                os.environ[key] = value


def sse_events(response: httpx.Response, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The events of an SSE response (id, event, data parsed as JSON), until the stream ends or ``limit``."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in response.iter_lines():
        if line == "":
            if "event" in current:
                events.append(current)
                if limit is not None and len(events) >= limit:
                    return events
            current = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            current["id"] = int(value)
        elif name == "event":
            current["event"] = value
        elif name == "data":
            current["data"] = json.loads(value)
    return events


# ------------------------------------------------------------------------------------------------ helpers


def new_rg(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def start_body(stack: ApiStack, rg: str, template: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "subscription_id": stack.instance.subscription_id,
        "resource_group": rg,
        "location": "westeurope",
        "template": template if template is not None else example_template(),
        "parameters": extra.pop("parameters", example_parameters()),
        "skip_health": True,
        **extra,
    }


def start(stack: ApiStack, document: dict[str, Any], who: str = "deployer", **headers: str) -> httpx.Response:
    with stack.http(who) as http:
        return http.post("/deployments", json=document, headers=headers)


def follow(stack: ApiStack, deployment: str, who: str = "reader", **headers: str) -> list[dict[str, Any]]:
    with stack.http(who, timeout=120) as http, http.stream("GET", f"/deployments/{deployment}/events",
                                                           headers=headers) as response:  # fmt: skip
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return sse_events(response)


def wait_for_stage(stack: ApiStack, deployment: str, stage: str, seconds: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    with stack.http("reader") as http:
        while time.monotonic() < deadline:
            response = http.get(f"/deployments/{deployment}")
            if response.status_code == 200 and response.json()["stage"] == stage:
                return dict(response.json())
            time.sleep(0.2)
    raise AssertionError(f"{deployment} never reached {stage}")


def runs_of(stack: ApiStack, workflow_id: str) -> int:
    from services.temporal_client import connect

    async def count() -> int:
        client = await connect(address=stack.instance.temporal_address, namespace=stack.instance.namespace)
        return len([w async for w in client.list_workflows(query=f"WorkflowId = '{workflow_id}'")])

    return asyncio.run(count())


def waiting_deletion(stack: ApiStack, prefix: str) -> tuple[str, dict[str, Any]]:
    """A Complete-mode deployment that deletes the web app of an earlier one, waiting for approval."""
    rg = new_rg(prefix)
    first = start(stack, start_body(stack, rg))
    assert first.status_code == 201, first.text
    assert follow(stack, first.json()["id"])[-1]["data"]["outcome"] == "SUCCEEDED"
    smaller = start_body(stack, rg, example_template("azuredeploy.without-web.json"), mode="Complete")
    started = start(stack, smaller)
    assert started.status_code == 201, started.text
    deployment = started.json()["id"]
    return deployment, wait_for_stage(stack, deployment, "AWAITING_CONFIRMATION")
