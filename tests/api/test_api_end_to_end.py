"""The HTTP API through real processes: the embedded default (Temporal dev server, local ARM over HTTPS, a worker whose
approval policy trusts the API's relay key), the API under uvicorn on a loopback port, real HTTP requests.

Sign-in is a table of fixed bearer tokens (tests/support/api_env.py): OpenID Connect validation is tested on its own;
these tests cover what the API does with an authenticated caller."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.localarm import example_template
from harness.secret_template import random_token, secret_template
from tests.support.api_env import (
    SMALL_BODY_LIMIT,
    ApiStack,
    follow,
    new_rg,
    runs_of,
    sse_events,
    start,
    start_body,
    waiting_deletion,
)

PROBLEM = "application/problem+json"
OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
STAGES_OF_A_CLEAN_RUN = ["VALIDATING_PARAMETERS", "LINTING", "PLANNING", "DEPLOYING", "VERIFYING_HEALTH", "COMPLETED"]


# ------------------------------------------------------------------------------------------------ start and follow


def test_a_start_is_followed_over_sse_to_completion_in_order_and_resumes_exactly(api_stack: ApiStack) -> None:
    response = start(api_stack, start_body(api_stack, new_rg("api-follow")))
    assert response.status_code == 201, response.text
    started = response.json()
    deployment = started["id"]
    assert response.headers["location"] == f"/deployments/{deployment}"
    assert started["links"]["events"] == f"/deployments/{deployment}/events"

    # Follow from the start, dropping the connection after two events, then resume with Last-Event-ID.
    with api_stack.http("reader", timeout=120) as http, http.stream("GET", started["links"]["events"]) as first:
        head = sse_events(first, limit=2)
    resumed = follow(api_stack, deployment, **{"Last-Event-ID": str(head[-1]["id"])})
    whole = follow(api_stack, deployment)

    assert head + resumed == whole  # nothing lost, nothing twice
    ids = [e["id"] for e in whole]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    stages = [e["data"]["stage"] for e in whole if e["event"] == "stage"]
    assert [s for s in stages if s in STAGES_OF_A_CLEAN_RUN] == STAGES_OF_A_CLEAN_RUN, stages
    kinds = [e["event"] for e in whole]
    assert kinds[-1] == "result" and whole[-1]["data"]["outcome"] == "SUCCEEDED"
    plan_at = kinds.index("plan")
    deploying_at = next(i for i, e in enumerate(whole) if e["event"] == "stage" and e["data"]["stage"] == "DEPLOYING")
    assert plan_at < deploying_at  # the plan is announced before anything is deployed

    with api_stack.http("reader") as http:
        state = http.get(f"/deployments/{deployment}").json()
        assert state["stage"] == "COMPLETED" and state["outcome"] == "SUCCEEDED"
        assert state["initiator"] == "ana@contoso.com"  # the authenticated principal, not a claim of the body
        assert state["attempts"]["DEPLOYING"]["attempts"] >= 1
        assert state["result"]["outcome"] == "SUCCEEDED"
        plan = http.get(f"/deployments/{deployment}/plan")
        assert plan.json()["hash"] == state["plan"]["hash"]
        text = http.get(f"/deployments/{deployment}/plan", headers={"Accept": "text/plain"})
        assert text.headers["content-type"].startswith("text/plain") and "Resource and property changes" in text.text
        audit = http.get(f"/deployments/{deployment}/audit").json()
        assert audit["deployment_id"] == deployment and audit["initiator"] == "ana@contoso.com"
        listed = http.get("/deployments", params={"resource_group": state["resource_group"]}).json()
        assert [d["id"] for d in listed["deployments"]] == [deployment]


def test_the_same_idempotency_key_starts_one_workflow_and_another_body_is_refused(api_stack: ApiStack) -> None:
    rg = new_rg("api-idem")
    body = start_body(api_stack, rg)
    key = str(uuid.uuid4())

    async def twice_at_once() -> list[httpx.Response]:
        headers = {"Authorization": "Bearer token-ana"}
        async with httpx.AsyncClient(base_url=api_stack.url, headers=headers, timeout=60) as http:
            posts = [http.post("/deployments", json=body, headers={"Idempotency-Key": key}) for _ in range(2)]
            return list(await asyncio.gather(*posts))

    concurrent = asyncio.run(twice_at_once())
    assert [r.status_code for r in concurrent] == [201, 201], [r.text for r in concurrent]
    later = start(api_stack, body, **{"Idempotency-Key": key})
    answers = [r.json() for r in (*concurrent, later)]
    assert len({(a["id"], a["run_id"]) for a in answers}) == 1, answers
    assert later.headers["idempotent-replayed"] == "true"
    assert runs_of(api_stack, answers[0]["id"]) == 1

    other = start(api_stack, {**body, "mode": "Complete"}, **{"Idempotency-Key": key})
    assert other.status_code == 422 and other.headers["content-type"] == PROBLEM
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    # Another caller's key never meets ana's: the same key from di is a new request (refused as busy here).
    theirs = start(api_stack, body, who="other-deployer", **{"Idempotency-Key": key})
    assert theirs.status_code in (201, 409)
    if theirs.status_code == 409:
        assert theirs.json()["type"] == "/problems/resource-group-busy"
    follow(api_stack, answers[0]["id"])  # let it end before the module's stack stops
    assert runs_of(api_stack, answers[0]["id"]) == (2 if theirs.status_code == 201 else 1)


# ------------------------------------------------------------------------------------------------ approvals


def test_a_complete_mode_deletion_is_approved_through_the_api_as_a_verified_relay_attestation(
    api_stack: ApiStack,
) -> None:
    deployment, waiting = waiting_deletion(api_stack, "api-approve")
    pending_hash = waiting["plan"]["hash"]
    assert waiting["pending_confirmation"]["plan_hash"] == pending_hash
    assert any("/sites/" in d for d in waiting["plan"]["deletions"])

    def refused(who: str, plan_hash: str, status: int, kind: str, route: str = "approvals") -> None:
        with api_stack.http(who) as http:
            answer = http.post(f"/deployments/{deployment}/{route}", json={"plan_hash": plan_hash, "reason": "x"})
            assert answer.status_code == status, answer.text
            assert answer.headers["content-type"] == PROBLEM and answer.json()["type"] == f"/problems/{kind}"
            after = http.get(f"/deployments/{deployment}").json()
        # No change to the deployment: still waiting, nothing decided, nothing even recorded as refused.
        assert after["stage"] == "AWAITING_CONFIRMATION" and after["confirmations"] == []
        assert after["refused_decisions"] == []

    refused("reader", pending_hash, 403, "forbidden")
    refused("reader", pending_hash, 403, "forbidden", route="rejections")
    refused("deployer", pending_hash, 403, "four-eyes")  # ana started it
    refused("approver", "sha256:" + "0" * 64, 409, "plan-changed")

    with api_stack.http("approver") as http:
        answer = http.post(
            f"/deployments/{deployment}/approvals", json={"plan_hash": pending_hash, "reason": "web app retired"}
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "taken" and answer.json()["attested_by_relay"] == "team-api-test"
    events = follow(api_stack, deployment)
    assert events[-1]["data"]["outcome"] == "SUCCEEDED"
    decisions = [e["data"] for e in events if e["event"] == "decision"]
    assert decisions and decisions[-1]["by"] == "bo@contoso.com" and decisions[-1]["identity_verified"] is True

    with api_stack.http("reader") as http:
        audit = http.get(f"/deployments/{deployment}/audit").json()
    text = json.dumps(audit)
    assert "bo@contoso.com" in text and '"relay"' in text and "team-api-test" in text
    approvals = audit.get("approvals") or []
    assert any(a.get("identity_verified") for a in approvals), approvals


# ------------------------------------------------------------------------------------------------ refusals


def test_refusals_are_problem_details(api_stack: ApiStack) -> None:
    with api_stack.http() as anonymous:
        missing = anonymous.get("/deployments")
        assert missing.status_code == 401 and missing.headers["content-type"] == PROBLEM
        assert missing.headers["www-authenticate"].startswith("Bearer ")
        forged = anonymous.get("/deployments", headers={"Authorization": "Bearer forged"})
        assert forged.status_code == 401 and 'error="invalid_token"' in forged.headers["www-authenticate"]
    with api_stack.http("reader") as http:
        for response, status, kind in (
            (http.get("/deployments/deploy-nothing-here"), 404, "not-found"),
            (http.get("/no/such/route"), 404, "not-found"),
            (http.delete("/deployments"), 405, "method-not-allowed"),
            (http.post("/deployments", json={"resource_group": "x"}), 422, "invalid-request"),
            (http.post("/deployments", content=b"{not json", headers={"Content-Type": "application/json"}), 422,
             "invalid-request"),
            (http.get("/deployments", params={"since": "yesterday-ish"}), 422, "invalid-request"),
        ):  # fmt: skip
            assert response.status_code == status, (response.request.url, response.text)
            assert response.headers["content-type"] == PROBLEM
            problem = response.json()
            assert problem["type"] == f"/problems/{kind}" and problem["status"] == status and problem["detail"]
            assert response.headers["x-content-type-options"] == "nosniff"
        # The OpenAPI document the service serves is the one checked in.
        served = http.get("/openapi.json")
        assert served.status_code == 200 and served.json() == json.loads(OPENAPI.read_text(encoding="utf-8"))
        # A reader may read but not start.
        refused = http.post("/deployments", json=start_body(api_stack, new_rg("api-reader")))
        assert refused.status_code == 403 and refused.json()["type"] == "/problems/forbidden"


def test_a_body_over_the_limit_is_refused_with_413_before_anything_starts(api_stack: ApiStack) -> None:
    rg = new_rg("api-big")
    big = start_body(api_stack, rg, overrides={"padding": "x" * (SMALL_BODY_LIMIT + 1)})
    declared = start(api_stack, big)
    assert declared.status_code == 413 and declared.headers["content-type"] == PROBLEM
    assert declared.json()["type"] == "/problems/request-too-large"

    def chunks() -> Any:  # no Content-Length: the limit holds on the bytes actually received
        payload = json.dumps(big).encode()
        for i in range(0, len(payload), 64 * 1024):
            yield payload[i : i + 64 * 1024]

    with api_stack.http("deployer") as http:
        chunked = http.post("/deployments", content=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413 and chunked.json()["type"] == "/problems/request-too-large"
    from contract.naming import workflow_id_for

    assert runs_of(api_stack, workflow_id_for(api_stack.instance.subscription_id, rg)) == 0


def test_secure_parameter_values_are_accepted_and_never_echoed(
    api_stack: ApiStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger of this process, the API's thread included
    secret, marked = random_token(), random_token()
    rg = new_rg("api-secret")
    account = "st" + uuid.uuid4().hex[:12]
    template = secret_template(account)
    # Refused input naming a secure parameter: the message names it, never its value.
    wrong = start_body(
        api_stack, rg, template, parameters={"adminPassword": {"value": secret}, "nope": {"value": secret}}
    )
    refused = start(api_stack, wrong)
    assert refused.status_code == 422, refused.text
    assert secret not in refused.text
    typed = start_body(api_stack, rg, template, parameters={"adminPassword": {"value": {"not": secret}}})
    refused = start(api_stack, typed)
    assert refused.status_code == 422 and secret not in refused.text, refused.text

    body = start_body(
        api_stack,
        rg,
        template,
        parameters={"adminPassword": {"value": secret}},
        overrides={"ownerTag": marked},
        secret_parameters=["ownerTag"],
    )
    started = start(api_stack, body)
    assert started.status_code == 201, started.text
    deployment = started.json()["id"]
    events = follow(api_stack, deployment)
    assert events[-1]["data"]["outcome"] == "SUCCEEDED", events[-1]
    seen = [started.text, json.dumps(events)]
    with api_stack.http("reader") as http:
        for path in ("", "/plan", "/audit"):
            seen.append(http.get(f"/deployments/{deployment}{path}").text)
        seen.append(http.get("/deployments").text)
    seen.append(caplog.text)
    for text in seen:
        assert secret not in text and marked not in text


def test_cancel_needs_the_deployer_role_and_ends_the_deployment(api_stack: ApiStack) -> None:
    deployment, _ = waiting_deletion(api_stack, "api-cancel")
    # While it waits nothing happens: the stream sends heartbeat comments, so proxies keep it open.
    with api_stack.http("reader", timeout=30) as http, http.stream("GET", f"/deployments/{deployment}/events") as s:
        comments = []
        for line in s.iter_lines():
            if line.startswith(":"):
                comments.append(line)
            if ": heartbeat" in comments:
                break
    with api_stack.http("reader") as http:
        refused = http.post(f"/deployments/{deployment}/cancel")
        assert refused.status_code == 403 and refused.json()["type"] == "/problems/forbidden"
        assert http.get(f"/deployments/{deployment}").json()["stage"] == "AWAITING_CONFIRMATION"
    with api_stack.http("other-deployer") as http:
        accepted = http.post(f"/deployments/{deployment}/cancel")
        assert accepted.status_code == 202, accepted.text
    events = follow(api_stack, deployment)
    assert events[-1]["event"] == "result" and events[-1]["data"]["outcome"] == "CANCELLED"
    with api_stack.http("other-deployer") as http:
        again = http.post(f"/deployments/{deployment}/cancel")
        assert again.status_code == 409 and again.json()["type"] == "/problems/not-running"


# ------------------------------------------------------------------------------------------------ Bicep


BICEP = """param namePrefix string
param location string = resourceGroup().location

resource sa 'Microsoft.Storage/storageAccounts@2023-01-01' = {
  name: '${namePrefix}${uniqueString(resourceGroup().id)}'
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
}
"""


def test_bicep_is_taken_by_path_under_the_bicep_root_and_compiled_on_the_worker(api_stack: ApiStack) -> None:
    import shutil

    (api_stack.bicep_root / "web").mkdir(exist_ok=True)
    (api_stack.bicep_root / "web" / "main.bicep").write_text(BICEP)
    outside = api_stack.bicep_root.parent / "outside.bicep"
    outside.write_text(BICEP)
    link = api_stack.bicep_root / "link.bicep"
    if not link.exists():
        link.symlink_to(outside)
    rg = new_rg("api-bicep")
    base = start_body(api_stack, rg, parameters={"namePrefix": {"value": "api"}})
    del base["template"]
    for path in ("../outside.bicep", str(outside), "link.bicep", "web/missing.bicep", "web"):
        refused = start(api_stack, {**base, "bicep_path": path})
        assert refused.status_code == 422 and refused.json()["type"] == "/problems/invalid-request", (
            path,
            refused.text,
        )
    both = start(api_stack, {**base, "bicep_path": "web/main.bicep", "template": example_template()})
    assert both.status_code == 422 and "exactly one" in both.text
    from contract.naming import workflow_id_for

    assert runs_of(api_stack, workflow_id_for(api_stack.instance.subscription_id, rg)) == 0

    started = start(api_stack, {**base, "bicep_path": "web/main.bicep"})
    assert started.status_code == 201, started.text
    result = follow(api_stack, started.json()["id"])[-1]["data"]
    if shutil.which("bicep") is not None:  # a machine with the Bicep CLI compiles and deploys it
        assert result["outcome"] == "SUCCEEDED", result
        return
    # This machine has no Bicep compiler: the worker read the file at the same path and says it cannot compile it.
    assert result["outcome"] == "LOGIC_FAILURE" and result["failure"]["stage"] == "LINTING", result
    assert "bicep" in result["failure"]["message"].lower()
    with api_stack.http("reader") as http:
        audit = http.get(f"/deployments/{started.json()['id']}/audit").json()
    assert audit["template_file"] == str((api_stack.bicep_root / "web" / "main.bicep").resolve())
