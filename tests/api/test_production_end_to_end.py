"""The team service in production mode, end to end, through real processes: the Temporal dev server, the local ARM
over HTTPS and the worker (the embedded default's processes), ``starter.py api`` as its own process WITHOUT --dev
(OpenID Connect against the local OpenID provider, a role map, a relay key), a local webhook receiver and a local
SMTP server with STARTTLS, and Azurite as the only content store the API and the worker share (each has its own
folder, which stays empty). An approver signs in in headless Chromium (Debian's, driven by Playwright) through the
provider's login form and approves from the page the e-mail links to.

Nothing is mocked. The provider's TLS certificate comes from a private loopback CA that Chromium cannot be told
about without an NSS database, so the browser context ignores certificate errors for it (the service itself checks
the provider's certificate against the CA file). Screenshots go to the test's folder; with
``ORCHESTRATOR_UI_SCREENSHOTS=docs`` into docs/ (how docs/api-page-*.png were made).

One stack per module (about 25 s to start), shared by the acceptance flow and the refusals.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.relay import load_relay_key, make_relay_key_file
from client.embedded import LOCAL_SUBSCRIPTION, EmbeddedDefault
from harness.localarm import example_parameters, example_template
from harness.oidc_provider import OidcClient, OidcProvider, OidcUser
from services.azure_blob_store import CONNECTION_STRING_ENV, CONTAINER_ENV, AzureBlobStore
from services.content_store import CONTENT_STORE_ENV
from tests.support.api_env import SCRUBBED, policy_text, sse_events
from tests.support.azurite import Azurite, running_azurite
from tests.support.metrics_scrape import Scrape, parse
from tests.support.notification_receivers import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_KEY,
    HttpReceiver,
    SmtpServer,
    free_port,
    http_receiver,
    smtp_server,
    verify_signature,
)

pytestmark = [pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"
MAX_BODY = 64 * 1024
CHROMIUM = os.environ.get("ORCHESTRATOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
DEPLOY, APPROVE, READ = "Deployments.Deploy", "Deployments.Approve", "Deployments.Read"


def _why_no_browser() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium; `make test` does it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (`make browser` installs it into .venv)"
    return None


@dataclass
class Stack:
    url: str
    idp: OidcProvider
    receiver: HttpReceiver
    smtp: SmtpServer
    azurite: Azurite
    container: str
    api_folder: Path
    worker_folder: Path
    api_log: Path
    pipeline_token: str

    def token(self, name: str, *roles: str, **claims: Any) -> str:
        """A person's token, signed by the provider's key as its token endpoint signs them."""
        return self.idp.mint(subject=name, name=f"{name}@contoso.test", roles=list(roles), **claims)

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, follow_redirects=False)


def _client_credentials(idp: OidcProvider, client_id: str, secret: str) -> str:
    answer = httpx.post(
        idp.token_url,
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
              "scope": f"{idp.audience}/.default"},
        verify=ssl.create_default_context(cafile=str(idp.ca_file)),
        timeout=30,
    )  # fmt: skip
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"starter.py api exited {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            announced = log.read_text().strip()  # the JSON line it prints once serving
            if announced and httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"starter.py api did not become healthy:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("production")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    callback = f"{url}/ui/sign-in/callback"
    saved = {k: os.environ.pop(k, None) for k in SCRUBBED}
    api: subprocess.Popen[bytes] | None = None
    embedded: EmbeddedDefault | None = None
    try:
        with (
            running_azurite(folder / "azurite") as azurite,
            OidcProvider(
                folder / "oidc",
                users=[OidcUser("alice", "alice-password", name="Alice Approver", roles=(APPROVE,))],
                clients=[
                    OidcClient("pipeline", secret="pipeline-secret", roles=(DEPLOY,)),
                    OidcClient("approval-page", secret="page-secret", redirect_uris=(callback,)),
                ],
            ) as idp,
            http_receiver() as receiver,
            smtp_server(folder / "smtp") as smtp,
        ):
            container = f"e2e-{uuid.uuid4().hex[:10]}"
            codec = "e2e=" + base64.b64encode(os.urandom(32)).decode()
            store = {CONTENT_STORE_ENV: "azblob", CONNECTION_STRING_ENV: azurite.connection_string,
                     CONTAINER_ENV: container, "ORCHESTRATOR_CODEC_KEYS": codec}  # fmt: skip
            make_relay_key_file(folder / "relay.pem")
            relay = load_relay_key(folder / "relay.pem", "team-api-e2e")
            (folder / "approval-policy.toml").write_text(policy_text(relay))
            notifications = folder / "notifications.yaml"
            notifications.write_text(
                "delivery: {initial_interval_seconds: 1}\n"
                "sinks:\n"
                f"  - {{name: audit, type: webhook, url: '{receiver.url}', secret_env: HOOK_KEY}}\n"
                "  - name: approvers\n    type: email\n    events: [approval_needed]\n"
                f"    host: 127.0.0.1\n    port: {smtp.port}\n    ca_file: {smtp.ca_file}\n"
                "    from: deployments@contoso.test\n    to: [approvers@contoso.test]\n"
                f"    username: {SMTP_USER}\n    password_env: SMTP_PASSWORD\n"
            )
            worker_folder = folder / "worker-blobs"
            embedded = EmbeddedDefault(
                folder / "state",
                worker_env={
                    **store,
                    "ORCHESTRATOR_BLOB_DIR": str(worker_folder),
                    "ORCHESTRATOR_APPROVAL_POLICY": str(folder / "approval-policy.toml"),
                    "ORCHESTRATOR_CONFIRMATION_TIMEOUT": "900",
                    "ORCHESTRATOR_NOTIFICATIONS": str(notifications),
                    "ORCHESTRATOR_PUBLIC_URL": url,
                    "HOOK_KEY": WEBHOOK_KEY,
                    "SMTP_PASSWORD": SMTP_PASSWORD,
                },
            )
            instance = embedded.start()
            role_map = folder / "roles.yaml"
            role_map.write_text(
                "grants:\n"
                f"  - {{claim: {DEPLOY}, roles: [deployer], scopes: ['{instance.subscription_id}/e2e-*']}}\n"
                f"  - {{claim: {APPROVE}, roles: [approver], scopes: ['*/*']}}\n"
                f"  - {{claim: {READ}, roles: [reader], scopes: ['*/*']}}\n"
            )
            api_folder = folder / "api-blobs"
            env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "TEMPORAL_"))}
            env.update(
                {
                    **store,
                    "ORCHESTRATOR_BLOB_DIR": str(api_folder),
                    "TEMPORAL_ADDRESS": instance.temporal_address,
                    "TEMPORAL_NAMESPACE": instance.namespace,
                    "ORCHESTRATOR_TASK_QUEUE": instance.task_queue,
                    "ORCHESTRATOR_OIDC_ISSUER": idp.issuer,
                    "ORCHESTRATOR_OIDC_AUDIENCE": idp.audience,
                    "ORCHESTRATOR_OIDC_TENANT": idp.tenant,
                    "ORCHESTRATOR_OIDC_CA_FILE": str(idp.ca_file),
                    "ORCHESTRATOR_ROLE_MAP": str(role_map),
                    "ORCHESTRATOR_API_RELAY_KEY_FILE": str(folder / "relay.pem"),
                    "ORCHESTRATOR_API_RELAY_KEY_ID": relay.key_id,
                    "ORCHESTRATOR_OIDC_CLIENT_ID": "approval-page",
                    "ORCHESTRATOR_OIDC_CLIENT_SECRET": "page-secret",
                    "ORCHESTRATOR_PUBLIC_URL": url,  # the sign-in callback is {url}/ui/sign-in/callback
                    "ORCHESTRATOR_OIDC_SCOPES": f"openid profile {idp.audience}/access_as_user",
                }
            )
            api_log = folder / "api.log"
            with api_log.open("wb") as out:
                api = subprocess.Popen(
                    [sys.executable, str(REPO / "starter.py"), "api", "--port", str(port), "--output", "json",
                     "--max-body-bytes", str(MAX_BODY)],
                    cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            _wait_healthy(url, api, api_log)
            announced = json.loads(api_log.read_text().splitlines()[0])
            assert announced["dev"] is False and announced["relay_key_id"] == relay.key_id
            pipeline = _client_credentials(idp, "pipeline", "pipeline-secret")
            yield Stack(url, idp, receiver, smtp, azurite, container, api_folder, worker_folder, api_log, pipeline)
    finally:
        if api is not None and api.poll() is None:
            api.send_signal(signal.SIGTERM)
            try:
                api.wait(timeout=20)
            except subprocess.TimeoutExpired:
                api.kill()
                api.wait(timeout=10)
        if embedded is not None:
            embedded.stop()
        for key, value in saved.items():
            if value is not None:
                os.environ[key] = value


# ------------------------------------------------------------------------------------------------ helpers


def _body(rg: str, template: str = "azuredeploy.json", **extra: Any) -> dict[str, Any]:
    return {
        "subscription_id": LOCAL_SUBSCRIPTION,
        "resource_group": rg,
        "location": "westeurope",
        "template": example_template(template),
        "parameters": example_parameters(),
        "skip_health": True,
        "git_sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        **extra,
    }


def _follow(stack: Stack, token: str, deployment: str) -> list[dict[str, Any]]:
    with stack.http(token) as http, http.stream("GET", f"/deployments/{deployment}/events",
                                                timeout=300) as response:  # fmt: skip
        assert response.status_code == 200, response.read()
        return sse_events(response)


def _state(stack: Stack, deployment: str) -> dict[str, Any]:
    with stack.http(stack.token("cy", READ)) as http:
        answer = http.get(f"/deployments/{deployment}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _wait_for_stage(stack: Stack, deployment: str, stage: str, seconds: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = _state(stack, deployment)
        if state["stage"] == stage:
            return state
        time.sleep(0.3)
    raise AssertionError(f"{deployment} never reached {stage}: {_state(stack, deployment)['stage']}")


def _waiting_deletion(stack: Stack, starter: str, prefix: str) -> tuple[str, dict[str, Any], str]:
    """Deploy the example, then start it without its web app in Complete mode: a plan that deletes, waiting.
    Returns the deployment, its state and the first run's plan hash (an old plan of the same deployment)."""
    rg = f"e2e-{prefix}-{uuid.uuid4().hex[:6]}"
    with stack.http(starter) as http:
        first = http.post("/deployments", json=_body(rg))
    assert first.status_code == 201, first.text
    deployment, first_run = first.json()["id"], first.json()["run_id"]
    assert _follow(stack, starter, deployment)[-1]["data"]["outcome"] == "SUCCEEDED"
    with stack.http(starter) as http:
        old_plan = http.get(f"/deployments/{deployment}", params={"run_id": first_run}).json()["plan"]["hash"]
        second = http.post("/deployments", json=_body(rg, "azuredeploy.without-web.json", mode="Complete"))
    assert second.status_code == 201, second.text
    return deployment, _wait_for_stage(stack, deployment, "AWAITING_CONFIRMATION"), old_plan


def _nothing_changed(stack: Stack, deployment: str, plan_hash: str) -> None:
    state = _state(stack, deployment)
    assert state["stage"] == "AWAITING_CONFIRMATION" and state["status"] == "RUNNING", state["stage"]
    assert state["pending_confirmation"]["plan_hash"] == plan_hash
    assert state["confirmations"] == [] and state["refused_decisions"] == []
    with stack.http(stack.token("cy", READ)) as http:
        audit = http.get(f"/deployments/{deployment}/audit").json()
    assert audit["signals"] == [] and audit["approvals"] == []  # not a signal reached the workflow


def _metrics(stack: Stack) -> Scrape:
    scrape = httpx.get(f"{stack.url}/metrics", timeout=10, follow_redirects=True)  # as Prometheus asks for it
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    return parse(scrape.text)


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# ------------------------------------------------------------------------------------------------ acceptance


@pytest.mark.skipif(_why_no_browser() is not None, reason=str(_why_no_browser()))
def test_a_pipeline_starts_a_deletion_an_approver_signs_in_and_approves_from_the_mail_link(
    stack: Stack, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    pipeline = stack.pipeline_token
    started_before = _metrics(stack).value("orchestrator_api_deployments_started_total")
    deployment, waiting, _ = _waiting_deletion(stack, pipeline, "accept")
    run_id = waiting["run_id"]
    deletions = waiting["plan"]["deletions"]
    assert deletions and all("/sites/" in d or "/serverfarms/" in d for d in deletions), deletions

    # The SSE stream, followed from the start of this run while everything below happens.
    streamed: list[dict[str, Any]] = []

    def follow() -> None:
        with (
            stack.http(pipeline) as http,
            http.stream("GET", f"/deployments/{deployment}/events", params={"run_id": run_id}, timeout=300) as response,
        ):
            streamed.extend(sse_events(response))

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()

    # One signed CloudEvent and one e-mail "approval needed", both linking to the page.
    link = f"{stack.url}/ui/deployments/{deployment}"

    def mails() -> list[Any]:
        return [m for m in stack.smtp.mailbox.messages if link in m.get_content()]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not mails():
        time.sleep(0.2)
    [mail] = mails()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
        r.json()["data"].get("run_id") == run_id for r in stack.receiver.requests
    ):
        time.sleep(0.2)
    mine = [r for r in stack.receiver.requests if r.json()["data"].get("run_id") == run_id]
    assert [r.json()["type"] for r in mine] == ["io.bicep-orchestrator.deployment.approval_needed"]
    assert verify_signature(mine[0]) and mine[0].json()["data"]["link"] == link
    assert mail["Subject"].startswith("Approval needed: ") and all(stack.smtp.mailbox.tls)
    text = mail.get_content()
    assert f"Approval page: {link}" in text
    page_link = next(word for word in text.split() if word.startswith(f"{stack.url}/ui/deployments/"))

    shots = Path(os.environ.get("ORCHESTRATOR_UI_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(page_link)  # not signed in: to /ui/sign-in, then the provider's login form
            assert page.url.startswith(stack.idp.authorize_url.split("?")[0]), page.url
            page.fill("#username", "alice")
            page.fill("#password", "alice-password")
            page.click("#sign-in")
            page.wait_for_url(page_link)
            assert "Signed in as alice" in page.inner_text("div.who")
            box = page.inner_text("div.deletions")
            assert f"This plan deletes {len(deletions)} resource(s)" in box
            for resource_id in deletions:  # the plan summary lower-cases ids, as ARM compares them
                assert resource_id in box.lower()
            assert "Started by" in page.content() and waiting["initiator"] in page.inner_text("body")
            page.screenshot(path=str(shots / "api-page-waiting.png"), full_page=True)

            cookies = {c["name"]: c for c in context.cookies(stack.url)}
            session = cookies["orchestrator-session"]
            assert session["httpOnly"] and session["sameSite"] == "Lax" and session["expires"] > time.time()
            assert session["expires"] < time.time() + 3700  # short: an hour at most
            assert "eyJ" not in session["value"] and "alice" not in session["value"]  # sealed, no token inside
            assert "orchestrator-sign-in" not in cookies  # the PKCE verifier's cookie is gone once used

            # The session opens the page, never the API: the JSON routes take bearer tokens only.
            with httpx.Client(base_url=stack.url, timeout=30) as bare:
                bare.cookies.set("orchestrator-session", session["value"])
                assert bare.get(f"/deployments/{deployment}").status_code == 401
                assert bare.get(f"/ui/deployments/{deployment}").status_code == 200
                bare.cookies.set("orchestrator-session", session["value"][:-4] + "AAAA")  # altered: not signed in
                forged = bare.get(f"/ui/deployments/{deployment}", follow_redirects=False)
                assert forged.status_code == 303 and forged.headers["location"].startswith("/ui/sign-in?next=")

            page.goto(f"{stack.url}/ui")
            assert deployment in page.content()
            page.screenshot(path=str(shots / "api-page-list.png"), full_page=True)

            page.goto(page_link)
            page.fill("form.decide:has(button.approve) textarea[name=reason]", "the web app is retired")
            with page.expect_navigation(timeout=60_000):
                page.click("button.approve")
            assert page.url == page_link, (page.url, page.inner_text("body"))  # 303 back to the page: taken
            deadline = time.monotonic() + 120
            while "stage-COMPLETED" not in page.content() and time.monotonic() < deadline:
                time.sleep(0.5)
                page.reload()
            assert "stage-COMPLETED" in page.content()
            assert "APPROVED by alice" in page.inner_text("body") and "(verified)" in page.inner_text("body")
            page.screenshot(path=str(shots / "api-page-completed.png"), full_page=True)
        finally:
            browser.close()

    follower.join(timeout=120)
    assert not follower.is_alive(), "the event stream did not end after the result"
    final = _state(stack, deployment)
    assert final["stage"] == "COMPLETED" and final["outcome"] == "SUCCEEDED"

    # Every stage in order, as the workflow recorded its transitions; then the result, last.
    ids = [e["id"] for e in streamed]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    stages = [e["data"]["stage"] for e in streamed if e["event"] == "stage"]
    recorded = [t["stage"] for t in final["transitions"]]
    assert stages == recorded[1:], (stages, recorded)  # INITIALIZED is written with the start, not a transition
    assert stages[0] == "VALIDATING_PARAMETERS" and stages[-1] == "COMPLETED"
    for a, b in (("PLANNING", "AWAITING_CONFIRMATION"), ("AWAITING_CONFIRMATION", "DEPLOYING")):
        assert stages.index(a) < stages.index(b), stages
    kinds = [e["event"] for e in streamed]
    assert kinds[-1] == "result" and streamed[-1]["data"]["outcome"] == "SUCCEEDED"
    assert kinds.index("plan") < kinds.index("decision")
    [decision] = [e["data"] for e in streamed if e["event"] == "decision"]
    assert decision["taken"] and decision["decision"] == "APPROVED" and decision["identity_verified"] is True
    assert decision["by"] == "alice"

    # The audit: the approver's verified identity, the relay's statement, proof and verification.
    with stack.http(stack.token("cy", READ)) as http:
        audit = http.get(f"/deployments/{deployment}/audit").json()
    [approval] = [a for a in audit["approvals"] if a["decision"] == "APPROVED"]
    assert approval["by"] == "alice" and approval["identity_verified"] is True
    assert approval["reason"] == "the web app is retired" and approval["plan_hash"] == waiting["plan"]["hash"]
    [counted] = approval["decisions"]
    verification = counted["verification"]
    assert verification["verified"] is True and verification["proof_kind"] == "relay"
    assert verification["identity"] == "alice" and verification["key_fingerprint"] == "team-api-e2e"
    assert counted["statement"]["identity"] == "alice" and counted["statement"]["plan_hash"] == approval["plan_hash"]

    # The completion is announced once too; nothing else for this run.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len([r for r in stack.receiver.requests
                                               if r.json()["data"].get("run_id") == run_id]) < 2:  # fmt: skip
        time.sleep(0.2)
    time.sleep(1.5)
    mine = [r.json()["type"] for r in stack.receiver.requests if r.json()["data"].get("run_id") == run_id]
    assert mine == [
        "io.bicep-orchestrator.deployment.approval_needed",
        "io.bicep-orchestrator.deployment.completed",
    ]
    assert len(mails()) == 1

    # The API and the worker shared only the Azurite container: neither wrote a file of its own.
    assert _files_under(stack.api_folder) == [] and _files_under(stack.worker_folder) == []
    raw = AzureBlobStore(container=stack.container, connection_string=stack.azurite.connection_string)
    try:
        assert any(b.name.startswith("sha256/") for b in raw._client.list_blobs())
    finally:
        raw.close()

    # /metrics: the service counted its requests by route template and the starts it made.
    metrics = _metrics(stack)
    assert metrics.value("orchestrator_api_deployments_started_total") - started_before == 2  # the two POSTs
    assert metrics.value("orchestrator_api_requests_total", route="/deployments/{deployment_id}", status="200") > 0
    assert deployment not in metrics.text  # route templates, never the id a caller sent
    assert stack.pipeline_token not in stack.api_log.read_text()


# ------------------------------------------------------------------------------------------------ refusals


def test_refusals_answer_with_their_status_and_change_nothing(stack: Stack) -> None:
    dana = stack.token("dana", DEPLOY, APPROVE)  # deploys, and approves other people's deployments
    deployment, waiting, old_plan = _waiting_deletion(stack, dana, "refuse")
    plan_hash = waiting["plan"]["hash"]
    assert old_plan != plan_hash
    approve = f"/deployments/{deployment}/approvals"
    decision = {"plan_hash": plan_hash, "reason": "should not count"}
    approver = ("bo", APPROVE)

    def unauthenticated(token: str | None, why: str) -> None:
        with stack.http(token) as http:
            answer = http.post(approve, json=decision)
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == PROBLEM and answer.json()["type"] == "/problems/unauthenticated"
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith("Bearer error=") and why in answer.json()["detail"], (challenge, answer.text)
        if token:
            assert token not in answer.text and token not in challenge
        _nothing_changed(stack, deployment, plan_hash)

    unauthenticated(None, "no bearer token")
    now = time.time()
    unauthenticated(stack.token(*approver, expires_in=-600, issued_at=now - 4000, not_before=now - 4000), "expired")
    unauthenticated(stack.token(*approver, audience="api://another-service"), "wrong audience")
    unauthenticated(stack.token(*approver, issuer="https://127.0.0.1:1/other-tenant/v2.0"), "wrong issuer")

    def refused(token: str, body: dict[str, Any], status: int, kind: str) -> None:
        with stack.http(token) as http:
            answer = http.post(approve, json=body)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == PROBLEM and answer.json()["type"] == f"/problems/{kind}"
        _nothing_changed(stack, deployment, plan_hash)

    refused(stack.token("cy", READ), decision, 403, "forbidden")  # a reader approving
    refused(dana, decision, 403, "four-eyes")  # the deployer approving their own
    refused(stack.token(*approver), {**decision, "plan_hash": old_plan}, 409, "plan-changed")  # the earlier plan
    refused(stack.token(*approver), {**decision, "reason": "x" * (MAX_BODY + 1)}, 413, "request-too-large")

    # Starting is refused the same way, and nothing starts.
    rg = f"e2e-none-{uuid.uuid4().hex[:6]}"
    for token, status in (
        (None, 401),
        (stack.token("dana", DEPLOY, expires_in=-600, issued_at=now - 4000, not_before=now - 4000), 401),
        (stack.token("dana", DEPLOY, audience="api://another-service"), 401),
        (stack.token("cy", READ), 403),  # a reader starting
        (stack.token("erin", DEPLOY, APPROVE, issuer="https://127.0.0.1:1/other-tenant/v2.0"), 401),
    ):
        with stack.http(token) as http:
            answer = http.post("/deployments", json=_body(rg))
        assert answer.status_code == status, answer.text
    with stack.http(dana) as http:
        too_large = http.post("/deployments", json=_body(rg, parameters={"pad": {"value": "x" * MAX_BODY}}))
        assert too_large.status_code == 413, too_large.text
        listed = http.get("/deployments", params={"resource_group": rg}).json()["deployments"]
    assert listed == []

    # Browser sign-in refuses a callback it did not start, and the issuer's refusal; no session either way.
    with httpx.Client(base_url=stack.url, timeout=30) as browser:
        stray = browser.get("/ui/sign-in/callback", params={"code": "stolen", "state": "guessed"})
        assert stray.status_code == 400 and "not started in this browser" in stray.text
        begun = browser.get("/ui/sign-in", params={"next": "//evil.example/phish"})
        assert begun.status_code == 303 and begun.headers["location"].startswith(stack.idp.authorize_url)
        forged = browser.get("/ui/sign-in/callback", params={"code": "stolen", "state": "forged"})
        assert forged.status_code == 401 and "state" in forged.text
        begun = browser.get("/ui/sign-in")
        state = dict(httpx.QueryParams(begun.headers["location"].split("?", 1)[1]))["state"]
        denied = browser.get("/ui/sign-in/callback", params={"error": "access_denied", "state": state})
        assert denied.status_code == 401 and "access_denied" in denied.text
        assert not any("session" in name for name in browser.cookies)
        assert browser.get(f"/ui/deployments/{deployment}").status_code == 303  # still to sign in
    _nothing_changed(stack, deployment, plan_hash)

    # Then the approver's approval of the pending plan is taken: the refusals had left it waiting for exactly this.
    with stack.http(stack.token(*approver)) as http:
        taken = http.post(approve, json={"plan_hash": plan_hash, "reason": "reviewed"})
    assert taken.status_code == 200 and taken.json()["outcome"] == "taken", taken.text
    assert _follow(stack, dana, deployment)[-1]["data"]["outcome"] == "SUCCEEDED"
