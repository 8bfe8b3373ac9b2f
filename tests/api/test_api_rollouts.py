"""The team API's rollout operations through real processes: the embedded default (Temporal dev server, local ARM over
HTTPS, a worker), the API under uvicorn on a loopback port, real HTTP requests. Sign-in is the token table of
tests/support/api_env.py (OpenID Connect is tested on its own); one caller holds its roles for some groups only."""

from __future__ import annotations

import time
import uuid
from typing import Any

from harness.localarm import example_parameters, example_template
from tests.support.api_env import ApiStack

PROBLEM = "application/problem+json"


def document(stack: ApiStack, name: str, groups: list[list[str]], **ring: Any) -> dict[str, Any]:
    """A rollout body: the example template and parameters inline, one ring per list of resource groups."""
    return {
        "rollout": {
            "name": name,
            "template": "azuredeploy.json",
            "parameters": "azuredeploy.parameters.json",
            "location": "westeurope",
            "rings": [
                {"name": f"ring{i + 1}", "targets": [
                    {"subscription": stack.instance.subscription_id, "resource_group": rg} for rg in rgs
                ], **(ring if i == len(groups) - 1 else {})}
                for i, rgs in enumerate(groups)
            ],
        },
        "files": {
            "azuredeploy.json": example_template(),
            "azuredeploy.parameters.json": {"parameters": example_parameters()},
        },
    }  # fmt: skip


def wait_for(stack: ApiStack, rollout_id: str, check: Any, seconds: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    with stack.http("reader") as http:
        while True:
            response = http.get(f"/rollouts/{rollout_id}")
            if response.status_code == 200 and check(response.json()):
                return dict(response.json())
            assert time.monotonic() < deadline, response.text
            time.sleep(0.3)


def test_a_rollout_is_planned_started_paused_resumed_and_aborted_over_http(api_stack: ApiStack) -> None:
    tag = uuid.uuid4().hex[:6]
    name = f"api-{tag}"
    groups = [[f"api-roll-a-{tag}-1"], [f"api-roll-a-{tag}-2"]]
    body = document(api_stack, name, groups, approval=True)

    # Plan: what-if of every target, nothing deployed; a reader on every target may ask for it.
    with api_stack.http("reader") as http:
        planned = http.post("/rollouts", json={**body, "action": "plan"})
    assert planned.status_code == 201, planned.text
    assert planned.json()["id"].startswith(f"rollout-{name}-plan-")
    plan = wait_for(api_stack, planned.json()["id"], lambda s: s["state"] == "PREVIEWED")
    assert all(t["plan"]["creates"] > 0 for r in plan["rings"] for t in r["targets"]), plan
    assert not plan["running"] and plan["initiator"] == "cy@contoso.com"

    # Start: the rollout workflow; ring 2 waits for its approval.
    with api_stack.http("deployer") as http:
        started = http.post("/rollouts", json=body)
        assert started.status_code == 201, started.text
        rollout_id = started.json()["id"]
        assert rollout_id == f"rollout-{name}" and started.headers["location"] == f"/rollouts/{rollout_id}"
        again = http.post("/rollouts", json=body)
        assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
        assert again.json()["type"] == "/problems/rollout-running"
    waiting = wait_for(api_stack, rollout_id, lambda s: s["rings"][1]["state"] == "AWAITING_APPROVAL")
    assert waiting["rings"][0]["state"] == "SUCCEEDED" and waiting["initiator"] == "ana@contoso.com"
    child = waiting["rings"][0]["targets"][0]["workflow_id"]
    with api_stack.http("reader") as http:  # each target is an ordinary deployment of the API
        assert http.get(f"/deployments/{child}").json()["outcome"] == "SUCCEEDED"
        refused = http.post(f"/rollouts/{rollout_id}/abort", json={"reason": "no"})
        assert refused.status_code == 403 and refused.json()["required_role"] == "deployer"

    with api_stack.http("deployer") as http:
        assert http.post(f"/rollouts/{rollout_id}/pause").status_code == 202
        assert wait_for(api_stack, rollout_id, lambda s: s["paused"])["state"] == "PAUSED"
        assert http.post(f"/rollouts/{rollout_id}/resume").status_code == 202
        wait_for(api_stack, rollout_id, lambda s: not s["paused"])
        aborted = http.post(f"/rollouts/{rollout_id}/abort", json={"reason": "change freeze"})
        assert aborted.status_code == 202, aborted.text
        end = wait_for(api_stack, rollout_id, lambda s: not s["running"])
        assert end["state"] == "ABORTED" and end["aborted_by"] == "ana@contoso.com"
        assert end["abort_reason"] == "change freeze" and end["rings"][1]["state"] == "HALTED"
        late = http.post(f"/rollouts/{rollout_id}/pause")
        assert late.status_code == 409 and late.json()["type"] == "/problems/not-running"


def test_a_rollout_needs_the_role_on_every_target(api_stack: ApiStack) -> None:
    tag = uuid.uuid4().hex[:6]
    name = f"api-{tag}"
    outside = f"api-roll-b-{tag}"
    body = document(api_stack, name, [[f"api-roll-a-{tag}-1", outside]])
    with api_stack.http("scoped-deployer") as http:
        refused = http.post("/rollouts", json=body)
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
        assert outside in refused.json()["detail"] and "every target" in refused.json()["detail"]
        assert http.get(f"/rollouts/rollout-{name}").status_code == 404  # nothing was started
        inside = document(api_stack, name, [[f"api-roll-a-{tag}-1"]])
        started = http.post("/rollouts", json=inside)
        assert started.status_code == 201, started.text
    end = wait_for(api_stack, started.json()["id"], lambda s: not s["running"])
    assert end["state"] == "SUCCEEDED"


def test_a_document_may_name_only_the_files_it_brings(api_stack: ApiStack) -> None:
    body = document(api_stack, f"api-{uuid.uuid4().hex[:6]}", [[f"api-roll-a-{uuid.uuid4().hex[:6]}"]])
    with api_stack.http("deployer") as http:
        escape = {**body, "rollout": {**body["rollout"], "template": "../../../etc/passwd"}}
        response = http.post("/rollouts", json=escape)
        assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
        assert "template" in response.json()["detail"] and "not in files" in response.json()["detail"]
        bad_name = {**body, "files": {**body["files"], "../x.json": {}}}
        assert "not a file name" in http.post("/rollouts", json=bad_name).json()["detail"]
        typo = {**body, "rollout": {**body["rollout"], "ringz": []}}
        response = http.post("/rollouts", json=typo)
        assert response.status_code == 422 and "ringz" in response.json()["detail"]
        assert "/tmp" not in response.json()["detail"] and "rollout document" in response.json()["detail"]
        assert http.get("/rollouts/deploy-something").status_code == 404
        assert http.post("/rollouts", json={**body, "action": "deploy"}).status_code == 422


def test_a_ring_is_approved_through_the_api_as_a_verified_relay_attestation(api_stack: ApiStack) -> None:
    tag = uuid.uuid4().hex[:6]
    body = document(api_stack, f"api-{tag}", [[f"api-roll-a-{tag}-1"], [f"api-roll-a-{tag}-2"]], approval=True)
    with api_stack.http("deployer") as http:
        started = http.post("/rollouts", json=body)
    assert started.status_code == 201, started.text
    rollout_id = started.json()["id"]
    waiting = wait_for(api_stack, rollout_id, lambda s: s["rings"][1]["state"] == "AWAITING_APPROVAL")
    plan_hash = waiting["rings"][1]["plan_hash"]
    route = f"/rollouts/{rollout_id}/rings/ring2/approvals"
    with api_stack.http("reader") as http:
        refused = http.post(route, json={"plan_hash": plan_hash})
        assert refused.status_code == 403 and refused.json()["required_role"] == "approver"
    with api_stack.http("deployer") as http:  # ana started it: four eyes, nothing sent
        own = http.post(route, json={"plan_hash": plan_hash})
        assert own.status_code == 403 and own.json()["type"] == "/problems/four-eyes"
    with api_stack.http("approver") as http:
        stale = http.post(route, json={"plan_hash": "sha256:" + "0" * 64})
        assert stale.status_code == 409 and stale.json()["pending_plan_hash"] == plan_hash
        assert (
            http.post(f"/rollouts/{rollout_id}/rings/ring9/approvals", json={"plan_hash": plan_hash}).status_code == 404
        )
        approved = http.post(route, json={"plan_hash": plan_hash, "reason": "canary is healthy"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["outcome"] == "taken" and approved.json()["approvals"] == ["bo@contoso.com"]
    end = wait_for(api_stack, rollout_id, lambda s: not s["running"])
    assert end["state"] == "SUCCEEDED" and end["rings"][1]["approved_by"] == "bo@contoso.com"
    [evidence] = end["rings"][1]["approvals"]
    assert evidence["verification"]["verified"] and evidence["verification"]["proof_kind"] == "relay"
    assert end["rings"][1]["refused_approvals"] == []  # the refusals at the door never reached the workflow
