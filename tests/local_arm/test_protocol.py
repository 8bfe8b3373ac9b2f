"""The local ARM at the HTTP level: TLS, authentication, resource groups, errors in ARM's shape."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.mgmt.resource.resources import ResourceManagementClient

from local_arm.admin import AdminClient
from local_arm.credential import AsyncLocalArmCredential, LocalArmCredential
from local_arm.testing import LocalArm
from tests.support.rawhttp import call

REPO = Path(__file__).resolve().parents[2]


def rg_path(arm: LocalArm, rg: str) -> str:
    return f"/subscriptions/{arm.subscription_id}/resourcegroups/{rg}"


def test_tls_is_verified_against_the_printed_ca(local_arm: LocalArm) -> None:
    client = local_arm.resource_client()
    assert client.resource_groups.create_or_update("rg-tls", {"location": "eastus"}).name == "rg-tls"
    # Without the CA bundle the system trust store rejects the self-signed chain: verification is really on.
    untrusting = ResourceManagementClient(
        LocalArmCredential(), local_arm.subscription_id, base_url=local_arm.endpoint, retry_total=0
    )
    with pytest.raises(ServiceRequestError, match=r"(?i)certificate"):
        untrusting.resource_groups.get("rg-tls")
    untrusting.close()


def test_credential_tokens_are_well_formed_with_a_real_expiry() -> None:
    info = LocalArmCredential().get_token_info("https://management.azure.com/.default")
    token = LocalArmCredential().get_token("https://management.azure.com/.default")
    assert info.token.count(".") == 2 and token.token.count(".") == 2
    assert time.time() + 600 < info.expires_on <= time.time() + 3601
    assert info.refresh_on is not None and info.refresh_on < info.expires_on


async def test_async_credential_and_aio_clients(local_arm: LocalArm) -> None:
    token = await AsyncLocalArmCredential().get_token("https://management.azure.com/.default")
    assert token.expires_on > time.time()
    async with local_arm.async_resource_client() as client:
        await client.resource_groups.create_or_update("rg-aio", {"location": "westeurope", "tags": {"a": "b"}})
        group = await client.resource_groups.get("rg-aio")
        assert (group.location, group.tags) == ("westeurope", {"a": "b"})
        assert await client.resource_groups.check_existence("rg-aio") is True
        poller = await client.resource_groups.begin_delete("rg-aio")
        await poller.result()
        assert await client.resource_groups.check_existence("rg-aio") is False


def test_request_without_token_gets_401_with_arm_body(local_arm: LocalArm) -> None:
    resp = call(
        local_arm.endpoint, local_arm.ca_file, "GET", rg_path(local_arm, "x") + "?api-version=2025-04-01", token=None
    )
    assert resp.status == 401
    assert resp.body["error"]["code"] == "AuthenticationFailed"
    assert resp.headers["www-authenticate"].startswith("Bearer authorization_uri=")
    expired = ".".join(["eyJhbGciOiJub25lIn0", "eyJleHAiOjEwMDB9", ""])
    resp = call(
        local_arm.endpoint, local_arm.ca_file, "GET", rg_path(local_arm, "x") + "?api-version=2025-04-01", token=expired
    )
    assert (resp.status, resp.body["error"]["code"]) == (401, "ExpiredAuthenticationToken")
    resp = call(
        local_arm.endpoint,
        local_arm.ca_file,
        "GET",
        rg_path(local_arm, "x") + "?api-version=2025-04-01",
        token="nonsense",
    )
    assert (resp.status, resp.body["error"]["code"]) == (401, "InvalidAuthenticationToken")


def test_resource_group_lifecycle_through_the_sdk(local_arm: LocalArm) -> None:
    client = local_arm.resource_client()
    created = client.resource_groups.create_or_update("Rg-Life", {"location": "East US", "tags": {"env": "t"}})
    assert created.id == f"/subscriptions/{local_arm.subscription_id}/resourceGroups/Rg-Life"
    assert created.location == "eastus" and created.properties.provisioning_state == "Succeeded"
    assert client.resource_groups.get("rg-life").name == "Rg-Life"  # names are case-insensitive
    assert [g.name for g in client.resource_groups.list()] == ["Rg-Life"]
    with pytest.raises(ResourceExistsError) as exc:
        client.resource_groups.create_or_update("rg-life", {"location": "westus"})
    assert exc.value.error.code == "InvalidResourceGroupLocation"
    client.resource_groups.begin_delete("rg-life").result()
    with pytest.raises(ResourceNotFoundError) as missing:
        client.resource_groups.get("rg-life")
    assert missing.value.error.code == "ResourceGroupNotFound"
    assert missing.value.error.message == "Resource group 'rg-life' could not be found."


def test_resource_group_delete_is_a_location_lro(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-del")
    resp = call(
        local_arm.endpoint, local_arm.ca_file, "DELETE", rg_path(local_arm, "rg-del") + "?api-version=2025-04-01"
    )
    assert resp.status == 202
    monitor = resp.headers["location"]
    assert monitor.startswith(local_arm.endpoint + f"/subscriptions/{local_arm.subscription_id}/operationresults/")
    assert "retry-after" not in resp.headers  # the test server polls fast: 10 ms, not the SDK's 30 s default
    assert resp.headers["retry-after-ms"] == "10"
    done = call(local_arm.endpoint, local_arm.ca_file, "GET", monitor.removeprefix(local_arm.endpoint))
    assert done.status == 200


@pytest.mark.parametrize(
    ("name", "body", "status", "code"),
    [
        ("bad name!", {"location": "eastus"}, 400, "InvalidResourceGroupName"),
        ("rg-ok", {"location": "atlantis"}, 400, "LocationNotAvailableForResourceGroup"),
        ("rg-ok", {}, 400, "LocationRequired"),
    ],
)
def test_resource_group_input_errors(local_arm: LocalArm, name: str, body: dict, status: int, code: str) -> None:
    client = local_arm.resource_client()
    with pytest.raises(HttpResponseError) as exc:
        client.resource_groups.create_or_update(name, body)
    assert exc.value.status_code == status
    assert exc.value.error.code == code


def test_api_version_and_body_errors_in_arm_shape(local_arm: LocalArm) -> None:
    arm = local_arm
    unknown = call(arm.endpoint, arm.ca_file, "GET", rg_path(arm, "a") + "?api-version=2099-01-01")
    assert unknown.status == 400 and unknown.body["error"]["code"] == "InvalidApiVersionParameter"
    assert "2026-06-01" in unknown.body["error"]["message"] and "2025-04-01" in unknown.body["error"]["message"]
    missing = call(arm.endpoint, arm.ca_file, "GET", rg_path(arm, "a"))
    assert missing.status == 400 and missing.body["error"]["code"] == "MissingApiVersionParameter"
    malformed = call(arm.endpoint, arm.ca_file, "PUT", rg_path(arm, "a") + "?api-version=2025-04-01", raw_body=b"{nope")
    assert malformed.status == 400 and malformed.body["error"]["code"] == "InvalidRequestContent"
    assert set(malformed.body) == {"error"} and set(malformed.body["error"]) == {"code", "message"}
    for resp in (unknown, missing, malformed):
        assert resp.headers["content-type"].startswith("application/json")
        assert resp.headers["x-ms-request-id"]


def test_request_over_4_mb_is_rejected(local_arm: LocalArm) -> None:
    arm = local_arm
    arm.create_resource_group("rg-big")
    template = {"resources": [], "variables": {"pad": "x" * (4 * 1024 * 1024 + 10)}}
    path = rg_path(arm, "rg-big") + "/providers/Microsoft.Resources/deployments/big?api-version=2026-06-01"
    resp = call(arm.endpoint, arm.ca_file, "PUT", path, {"properties": {"mode": "Incremental", "template": template}})
    assert resp.status == 413 and resp.body["error"]["code"] == "RequestEntityTooLarge"
    # The server is still healthy afterwards.
    assert arm.resource_client().resource_groups.check_existence("rg-big") is True


def test_generic_resource_not_found_and_unknown_path(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-gen")
    client = local_arm.resource_client()
    rg_id = f"/subscriptions/{local_arm.subscription_id}/resourceGroups/rg-gen"
    rid = f"{rg_id}/providers/Microsoft.Storage/storageAccounts/nope"
    with pytest.raises(ResourceNotFoundError) as exc:
        client.resources.get_by_id(rid, api_version="2023-01-01")
    assert exc.value.error.code == "ResourceNotFound"
    assert "Microsoft.Storage/storageAccounts/nope" in exc.value.error.message


def test_generic_resource_put_get_list_delete(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-gen2")
    client = local_arm.resource_client()
    rid = f"/subscriptions/{local_arm.subscription_id}/resourceGroups/rg-gen2/providers/Microsoft.Web/sites/app1"
    client.resources.begin_create_or_update_by_id(
        rid, {"location": "eastus", "properties": {}}, api_version="2022-03-01"
    ).result()
    got = client.resources.get_by_id(rid, api_version="2022-03-01")
    assert got.properties["defaultHostName"] == "app1.azurewebsites.net"
    assert got.properties["provisioningState"] == "Succeeded"
    assert [r.id for r in client.resources.list_by_resource_group("rg-gen2")] == [rid]
    client.resources.begin_delete_by_id(rid, api_version="2022-03-01").result()
    assert list(client.resources.list_by_resource_group("rg-gen2")) == []


def test_state_survives_a_restart(tmp_path: Path) -> None:
    from local_arm.testing import running_local_arm

    gen = running_local_arm(tmp_path)
    arm = next(gen)
    ca_before = Path(arm.ca_file).read_bytes()
    arm.create_resource_group("rg-keep", "northeurope")
    gen.close()
    gen = running_local_arm(tmp_path)
    arm = next(gen)
    try:
        assert Path(arm.ca_file).read_bytes() == ca_before  # clients keep trusting the same CA
        assert arm.resource_client().resource_groups.get("rg-keep").location == "northeurope"
    finally:
        gen.close()


def test_cli_prints_one_json_line_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "starter.py", "local-arm", "--port", "0", "--state-dir", str(tmp_path / "state")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        info = json.loads(line)
        assert set(info) == {"endpoint", "ca_file", "state_dir"}
        assert info["endpoint"].startswith("https://127.0.0.1:")
        assert AdminClient(info["endpoint"], ca_file=info["ca_file"]).health()["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stdout.read() == ""  # exactly one line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_rejects_a_bad_config_file_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "faults.json"
    bad.write_text('{"faults": [{"kind": "explode"}]}')
    result = subprocess.run(
        [sys.executable, "starter.py", "local-arm", "--state-dir", str(tmp_path / "s"), "--config", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2
    assert "kind" in result.stderr and "explode" in result.stderr and "Traceback" not in result.stderr


def test_cli_names_an_unusable_state_dir_and_a_busy_port(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "starter.py", "local-arm", "--state-dir", str(blocker / "state")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "--state-dir" in result.stderr and "Traceback" not in result.stderr
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "starter.py", "local-arm", "--port", str(port), "--state-dir", str(tmp_path / "s")],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert result.returncode == 3
    assert f"127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr
