"""Request-level faults through the SDK: throttling, server errors, dropped connections, token buckets, counters."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ServiceResponseError

from local_arm.admin import Fault
from local_arm.testing import LocalArm
from tests.support.rawhttp import call


def test_one_429_is_retried_after_retry_after(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-t")
    local_arm.admin.set_faults(Fault.throttle(operation="ResourceGroups_Get", count=1, retry_after=1))
    local_arm.admin.reset_counters()
    started = time.monotonic()
    group = local_arm.resource_client().resource_groups.get("rg-t")
    elapsed = time.monotonic() - started
    assert group.name == "rg-t"
    counters = local_arm.admin.counters()
    assert counters.count(operation="ResourceGroups_Get", status=429) == 1
    assert counters.count(operation="ResourceGroups_Get", status=200) == 1
    assert elapsed >= 0.9  # the SDK honoured Retry-After: 1


def test_throttle_headers_and_body(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-th")
    local_arm.admin.set_faults(Fault.throttle(method="GET", count=1, retry_after=7))
    path = f"/subscriptions/{local_arm.subscription_id}/resourcegroups/rg-th?api-version=2025-04-01"
    resp = call(local_arm.endpoint, local_arm.ca_file, "GET", path)
    assert resp.status == 429
    assert resp.headers["retry-after"] == "7"
    assert resp.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    assert resp.body["error"]["code"] == "TooManyRequests"
    ok = call(local_arm.endpoint, local_arm.ca_file, "GET", path)
    assert ok.status == 200 and int(ok.headers["x-ms-ratelimit-remaining-subscription-reads"]) > 0


def test_persistent_throttling_surfaces_as_http_response_error(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-tp")
    local_arm.admin.set_faults(Fault.throttle(operation="ResourceGroups_Get", retry_after=0))
    client = local_arm.resource_client(retry_total=2, retry_backoff_factor=0.01)
    with pytest.raises(HttpResponseError) as exc:
        client.resource_groups.get("rg-tp")
    assert exc.value.status_code == 429
    assert local_arm.admin.counters().count(operation="ResourceGroups_Get", status=429) == 3  # 1 + 2 retries


@pytest.mark.parametrize(("status", "code"), [(500, "InternalServerError"), (503, "ServiceUnavailable")])
def test_transient_5xx_is_retried(local_arm: LocalArm, status: int, code: str) -> None:
    local_arm.create_resource_group("rg-5xx")
    local_arm.admin.set_faults(Fault.error(status, operation="ResourceGroups_Get", count=1, retry_after=0))
    assert local_arm.resource_client(retry_backoff_factor=0.01).resource_groups.get("rg-5xx").name == "rg-5xx"
    assert local_arm.admin.counters().count(operation="ResourceGroups_Get", status=status) == 1
    rules = local_arm.admin.faults()["rules"]
    assert rules[0]["fired"] == 1


def test_persistent_500_raises_with_arm_error_code(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-500")
    local_arm.admin.set_faults(Fault.error(500, operation="ResourceGroups_Get"))
    client = local_arm.resource_client(retry_total=1, retry_backoff_factor=0.01)
    with pytest.raises(HttpResponseError) as exc:
        client.resource_groups.get("rg-500")
    assert exc.value.status_code == 500
    assert exc.value.error.code == "InternalServerError"


def test_dropped_connection_is_retried_then_raises(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-drop")
    local_arm.admin.set_faults(Fault.drop(operation="ResourceGroups_Get", count=1))
    client = local_arm.resource_client(retry_backoff_factor=0.01)
    assert client.resource_groups.get("rg-drop").name == "rg-drop"
    assert local_arm.admin.counters().count(operation="ResourceGroups_Get", status=0) == 1
    local_arm.admin.set_faults(Fault.drop(operation="ResourceGroups_Get"))
    failing = local_arm.resource_client(retry_total=1, retry_backoff_factor=0.01)
    with pytest.raises(ServiceResponseError):
        failing.resource_groups.get("rg-drop")


def test_probability_faults_are_seeded(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-p")
    path = f"/subscriptions/{local_arm.subscription_id}/resourcegroups/rg-p?api-version=2025-04-01"

    def pattern() -> list[int]:
        local_arm.admin.set_faults(Fault.error(500, method="GET", probability=0.5), seed=42)
        return [call(local_arm.endpoint, local_arm.ca_file, "GET", path).status for _ in range(16)]

    first, second = pattern(), pattern()
    assert first == second
    assert 500 in first and 200 in first


def test_token_bucket_rate_limit_throttles_and_sdk_recovers(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-rl")
    local_arm.admin.set_rate_limits(reads=(3, 0.5))
    path = f"/subscriptions/{local_arm.subscription_id}/resourcegroups/rg-rl?api-version=2025-04-01"
    statuses = [call(local_arm.endpoint, local_arm.ca_file, "GET", path) for _ in range(4)]
    assert [r.status for r in statuses] == [200, 200, 200, 429]
    assert [r.headers["x-ms-ratelimit-remaining-subscription-reads"] for r in statuses] == ["2", "1", "0", "0"]
    assert statuses[3].body["error"]["code"] == "SubscriptionRequestsThrottled"
    assert int(statuses[3].headers["retry-after"]) >= 1
    # The SDK waits Retry-After and gets through once the bucket refills.
    assert local_arm.resource_client().resource_groups.get("rg-rl").name == "rg-rl"


def test_counters_by_method_path_and_reset(local_arm: LocalArm) -> None:
    client = local_arm.resource_client()
    client.resource_groups.create_or_update("rg-c", {"location": "eastus"})
    client.resource_groups.get("rg-c")
    client.resource_groups.get("rg-c")
    counters = local_arm.admin.counters()
    assert counters.count(method="PUT") == 1
    assert counters.count(method="GET", path_contains="/resourcegroups/rg-c") == 2
    local_arm.admin.reset_counters()
    assert local_arm.admin.counters().total == 0


def test_bad_fault_rule_is_refused_with_a_reason(local_arm: LocalArm) -> None:
    from local_arm.admin import AdminError

    with pytest.raises(AdminError, match="kind"):
        local_arm.admin.set_faults({"kind": "meteor"})
    with pytest.raises(AdminError, match="probability"):
        local_arm.admin.set_faults({"kind": "error", "probability": 3})
    with pytest.raises(AdminError, match="latency"):
        local_arm.admin.configure(latency="slow")
    with pytest.raises(AdminError, match="unknown setting"):
        local_arm.admin.configure(colour="blue")
    assert local_arm.admin.configure(latency=0.0)["latency"] == 0.0


def test_lost_answer_after_a_put_took_effect(local_arm: LocalArm) -> None:
    from tests.support.arm_templates import body, identities_template

    local_arm.admin.configure(provisioning_seconds=5.0)
    local_arm.create_resource_group("rg-lost")
    local_arm.admin.set_faults(Fault.drop(operation="Deployments_CreateOrUpdate", count=1, after_handling=True))
    client = local_arm.deployments_client(retry_backoff_factor=0.01)
    # The first PUT started the deployment but its answer was lost; the SDK's retry meets the running deployment.
    with pytest.raises(HttpResponseError) as exc:
        client.deployments.begin_create_or_update("rg-lost", "d", body(identities_template(1)))
    assert exc.value.status_code == 409 and exc.value.error.code == "DeploymentActive"
    assert client.deployments.get("rg-lost", "d").properties.provisioning_state in ("Accepted", "Running")
    counters = local_arm.admin.counters()
    assert counters.count(method="PUT", deployment="d", status=0) == 1
    assert counters.count(method="PUT", deployment="d", status=409) == 1


def test_config_file_faults_apply_from_the_first_request(tmp_path: Path) -> None:
    import json

    from local_arm.config import LocalArmConfig
    from local_arm.server import LocalArmServer
    from local_arm.testing import LocalArm

    config_file = tmp_path / "faults.json"
    config_file.write_text(
        json.dumps(
            {
                "retry_after": 0,
                "provisioning_seconds": 0,
                "seed": 3,
                "faults": [{"kind": "error", "status": 503, "operation": "ResourceGroups_CreateOrUpdate", "count": 1}],
            }
        )
    )
    server = LocalArmServer(tmp_path / "state", config=LocalArmConfig.from_file(config_file)).start()
    arm = LocalArm(server)
    try:
        assert arm.admin.faults()["rules"][0]["kind"] == "error"
        arm.resource_client(retry_backoff_factor=0.01).resource_groups.create_or_update(
            "rg-cfg", {"location": "eastus"}
        )
        counters = arm.admin.counters()
        assert counters.count(operation="ResourceGroups_CreateOrUpdate", status=503) == 1
        assert counters.count(operation="ResourceGroups_CreateOrUpdate", status=201) == 1
    finally:
        arm.close()
        server.stop()
