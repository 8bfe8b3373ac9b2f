"""What a drift check does about the drift it finds, through the production path: `starter.py deploy` and
`starter.py drift ...` as CLI processes, a Temporal dev server with a real Schedule, a worker process (worker.py)
with a notification file, the local ARM over HTTPS (its admin API and the Azure SDK change the live state out of
band) and a local webhook receiver standing in for the team's endpoint (the real one cannot be reached from here).

- drift is announced once per check run to the sinks, with the stable event id, the page link and counts only;
- ``--remediate`` starts an ordinary deployment of the last good state, named in the report and the event; it
  puts a changed property back, and a remediation that deletes (Complete mode) waits for an approval that the
  worker's four-eyes policy refuses from the person who enabled it."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contract.drift import DriftClass, drift_schedule_id
from contract.models import (
    QUERY_STATUS,
    SIGNAL_APPROVE,
    ApprovalSignal,
    DeploymentStage,
    DeploymentStatus,
    DeployResult,
)
from contract.naming import workflow_id_for
from contract.notifications import NotificationKind, event_id
from harness.localarm import storage_template
from local_arm.testing import FAST, LocalArm, running_local_arm
from tests.support.fleet import Fleet
from tests.support.notification_receivers import WEBHOOK_KEY, HttpReceiver, http_receiver, verify_signature

SUB = "00000000-0000-0000-0000-000000000302"
STORAGE = "Microsoft.Storage/storageAccounts"
PUBLIC = "https://deploy.example.test"
ME = pwd.getpwuid(os.geteuid()).pw_name  # the CLI's identity claim: the remediation's initiator


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-drift-actions"), **FAST)


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as r:
        yield r


@pytest.fixture
def fleet(dev_env: Any, local_arm: LocalArm, tmp_path: Path, receiver: HttpReceiver) -> Iterator[Fleet]:
    config = tmp_path / "notifications.yaml"
    config.write_text(
        "delivery: {initial_interval_seconds: 1}\n"
        f"sinks:\n  - {{name: audit, type: webhook, url: '{receiver.url}', secret_env: HOOK_KEY}}\n"
    )
    f = Fleet(dev_env.client.service_client.config.target_host, local_arm, tmp_path)
    f.env.update(
        {
            "ORCHESTRATOR_NOTIFICATIONS": str(config),
            "ORCHESTRATOR_PUBLIC_URL": PUBLIC,
            "HOOK_KEY": WEBHOOK_KEY,
            "ORCHESTRATOR_FOUR_EYES": "1",
            "ORCHESTRATOR_CONFIRMATION_TIMEOUT_SECONDS": "300",
        }
    )
    f.start_worker()
    try:
        yield f
    finally:
        f.stop()


def resources(local_arm: LocalArm) -> Any:
    from azure.mgmt.resource.resources import ResourceManagementClient

    from local_arm.credential import LocalArmCredential

    return ResourceManagementClient(LocalArmCredential(), SUB, **local_arm.client_kwargs())


class Checks:
    """The drift checks of one resource group, read through `starter.py drift status -o json`."""

    def __init__(self, fleet: Fleet, place: list[str]) -> None:
        self.fleet, self.place, self.seen = fleet, place, set[str]()

    async def next(self) -> dict[str, Any]:
        deadline = time.monotonic() + 90
        while True:
            code, out, err = await self.fleet.cli("drift", "status", *self.place, "-o", "json")
            checks = json.loads(out)["checks"] if out else []
            if checks and checks[0]["report"] is not None and checks[0]["run_id"] not in self.seen:
                self.seen.add(checks[0]["run_id"])
                return {"code": code, "run_id": checks[0]["run_id"], **checks[0]["report"]}
            assert time.monotonic() < deadline, (out, err, self.fleet.log.read_text()[-3000:])
            await asyncio.sleep(0.5)


def drift_events(receiver: HttpReceiver) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.requests if r.json()["type"].endswith(".drift")]


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


@pytest.mark.asyncio(loop_scope="session")
async def test_drift_is_announced_once_and_remediated_by_an_ordinary_deployment(
    fleet: Fleet, local_arm: LocalArm, dev_env: Any, receiver: HttpReceiver
) -> None:
    rg = f"rg-remedy-{uuid.uuid4().hex[:6]}"
    template = storage_template(["stremedy01"])
    template["resources"][0]["properties"] = {"minimumTlsVersion": "TLS1_2"}
    (fleet.tmp / "t.json").write_text(json.dumps(template))
    code, _, err = await fleet.cli("deploy", "-g", rg, "-l", "westeurope", "-t", "t.json", "--subscription", SUB)
    assert code == 0, (err, fleet.log.read_text()[-2000:])
    storage = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{STORAGE}/stremedy01"
    place = ["-g", rg, "--subscription", SUB]
    checks = Checks(fleet, place)
    code, _, err = await fleet.cli("drift", "enable", *place, "--every", "6h", "--remediate")
    assert code == 0, err
    first = await checks.next()
    assert first["classification"] == DriftClass.NO_CHANGE.value and first["remediation_workflow_id"] is None
    assert first["notification_id"] is None

    local_arm.admin.change_resource(storage, {"properties": {"minimumTlsVersion": "TLS1_0"}})
    schedule = dev_env.client.get_schedule_handle(drift_schedule_id(SUB, rg))
    await schedule.trigger()
    drift = await checks.next()
    deployment_id = workflow_id_for(SUB, rg)
    assert drift["classification"] == DriftClass.CONFIGURATION_DRIFT.value, drift
    assert drift["remediation_workflow_id"] == deployment_id and drift["remediation_run_id"]
    assert drift["last_good_request"] is None  # the request stays in the activity's record, not the result
    check_id = f"{drift_schedule_id(SUB, rg)}-check"

    # The remediation is an ordinary deployment of the resource group: it puts the property back.
    remediation = dev_env.client.get_workflow_handle(
        deployment_id, run_id=drift["remediation_run_id"], result_type=DeployResult
    )
    result = await asyncio.wait_for(remediation.result(), 120)
    assert result.succeeded, result.failure
    status = await remediation.query(QUERY_STATUS, result_type=DeploymentStatus)
    assert status.plan is not None and status.plan.counts.get("Modify") == 1
    live = resources(local_arm).resources.get_by_id(storage, api_version="2023-01-01")
    assert live.properties["minimumTlsVersion"] == "TLS1_2"
    code, out, _ = await fleet.cli("drift", "status", *place)
    assert f"remediation: deployment {deployment_id} run {drift['remediation_run_id']}" in out

    # One event for the check run, signed, with its stable id, the page link and counts — no property value.
    await asyncio.to_thread(receiver.wait_for, 1, 30)
    await asyncio.sleep(2)  # a second copy would arrive within the retry interval
    [event] = drift_events(receiver)
    run = drift["run_id"]
    assert event["id"] == drift["notification_id"]
    assert event["type"] == "io.bicep-orchestrator.deployment.drift" and event["subject"] == rg
    data = event["data"]
    assert data["drift_class"] == "configuration drift" and data["plan_counts"] == {"Modify": 1}
    assert data["remediation_id"] == deployment_id and data["initiator"] == ME
    assert data["link"] == f"{PUBLIC}/ui/deployments/{deployment_id}"
    assert data["drift_check_id"].startswith(check_id)
    assert event["id"] == event_id(data["drift_check_id"], run, NotificationKind.DRIFT)
    raw = b"".join(r.body for r in receiver.requests)
    assert b"TLS1_0" not in raw and b"TLS1_2" not in raw
    assert verify_signature(receiver.requests[0])

    # After the remediation (a new good deployment) the next check takes a new baseline: nothing to do, no event.
    await schedule.trigger()
    after = await checks.next()
    assert after["classification"] == DriftClass.NO_CHANGE.value and after["baseline_captured"], after
    assert after["remediation_workflow_id"] is None
    await asyncio.sleep(1)
    assert len(drift_events(receiver)) == 1
    code, _, err = await fleet.cli("drift", "disable", *place)
    assert code == 0, err


@pytest.mark.asyncio(loop_scope="session")
async def test_a_remediation_that_deletes_waits_for_someone_other_than_who_enabled_it(
    fleet: Fleet, local_arm: LocalArm, dev_env: Any, receiver: HttpReceiver
) -> None:
    rg = f"rg-remedy-{uuid.uuid4().hex[:6]}"
    (fleet.tmp / "t.json").write_text(json.dumps(storage_template(["stremedy02"])))
    code, _, err = await fleet.cli(
        "deploy", "-g", rg, "-l", "westeurope", "-t", "t.json", "--subscription", SUB, "--mode", "Complete"
    )
    assert code == 0, (err, fleet.log.read_text()[-2000:])
    place = ["-g", rg, "--subscription", SUB]
    checks = Checks(fleet, place)
    code, _, err = await fleet.cli("drift", "enable", *place, "--every", "6h", "--remediate")
    assert code == 0, err
    assert (await checks.next())["classification"] == DriftClass.NO_CHANGE.value

    # Someone adds a storage account in the portal: in Complete mode the last good state deletes it.
    from azure.mgmt.resource.resources.models import GenericResource, Sku

    added = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{STORAGE}/stportal01"
    rc = resources(local_arm)
    body = GenericResource(location="westeurope", kind="StorageV2", sku=Sku(name="Standard_LRS"), properties={})
    rc.resources.begin_create_or_update_by_id(added, api_version="2023-01-01", parameters=body).result()
    await dev_env.client.get_schedule_handle(drift_schedule_id(SUB, rg)).trigger()
    drift = await checks.next()
    assert drift["classification"] == DriftClass.CONFIGURATION_DRIFT.value, drift
    assert drift["findings"][0]["change_type"] == "Delete"
    remediation = dev_env.client.get_workflow_handle(
        drift["remediation_workflow_id"], run_id=drift["remediation_run_id"], result_type=DeployResult
    )

    async def waiting() -> bool:
        s = await remediation.query(QUERY_STATUS, result_type=DeploymentStatus)
        return s.stage is DeploymentStage.AWAITING_CONFIRMATION

    await wait_for(waiting, 90, "the remediation's approval")
    status = await remediation.query(QUERY_STATUS, result_type=DeploymentStatus)
    assert status.pending_confirmation is not None
    plan_hash = status.pending_confirmation.plan_hash
    # Four eyes: who enabled the remediation (its initiator) may not approve its deletion.
    await remediation.signal(SIGNAL_APPROVE, ApprovalSignal(approver=ME, reason="mine", plan_hash=plan_hash))

    async def refused() -> bool:
        s = await remediation.query(QUERY_STATUS, result_type=DeploymentStatus)
        return bool(s.refused_decisions)

    await wait_for(refused, 30, "the refusal")
    status = await remediation.query(QUERY_STATUS, result_type=DeploymentStatus)
    assert status.stage is DeploymentStage.AWAITING_CONFIRMATION and "four eyes" in status.refused_decisions[0].why
    assert rc.resources.check_existence_by_id(added, api_version="2023-01-01")
    await remediation.signal(
        SIGNAL_APPROVE, ApprovalSignal(approver="ana", reason="portal change", plan_hash=plan_hash)
    )
    result = await asyncio.wait_for(remediation.result(), 120)
    assert result.succeeded, result.failure
    assert not rc.resources.check_existence_by_id(added, api_version="2023-01-01")
    await asyncio.to_thread(receiver.wait_for, 1, 30)
    events = [e for e in drift_events(receiver) if e["subject"] == rg]
    assert len(events) == 1 and events[0]["data"]["plan_counts"] == {"Delete": 1}
    code, _, err = await fleet.cli("drift", "disable", *place)
    assert code == 0, err


@pytest.mark.asyncio(loop_scope="session")
async def test_drift_detection_for_every_target_of_a_rollout_file(fleet: Fleet, local_arm: LocalArm) -> None:
    tag = uuid.uuid4().hex[:6]
    groups = [f"rg-drift-fleet-{tag}-{i}" for i in range(2)]
    ring = {"name": "all", "max_parallel": 2, "targets": [{"subscription": SUB, "resource_group": g} for g in groups]}
    template = storage_template([f"stfleet{tag}"])
    template["resources"][0]["properties"] = {"minimumTlsVersion": "TLS1_2"}
    path = fleet.rollout_file(f"drift-{tag}", [ring], template=template)
    code, _, err = await fleet.cli("rollout", "start", str(path), "--follow")
    assert code == 0, (err, fleet.log.read_text()[-2000:])

    code, _, err = await fleet.cli("drift", "enable", "--every", "6h")
    assert code == 2 and "-g RG" in err and "--rollout FILE" in err
    code, _, err = await fleet.cli("drift", "enable", "--rollout", str(path), "-g", groups[0])
    assert code == 2 and "leave out -g" in err
    code, out, err = await fleet.cli("drift", "enable", "--rollout", str(path), "--every", "6h", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["schedule_ids"] == [drift_schedule_id(SUB, g) for g in groups]

    async def all_checked() -> bool:
        _, out, _ = await fleet.cli("drift", "status", "--rollout", str(path), "-o", "json")
        schedules = json.loads(out)["schedules"] if out else []
        return len(schedules) == 2 and all(s["checks"] and s["checks"][0]["report"] for s in schedules)

    await wait_for(all_checked, 90, "a first check of every target")
    _, out, _ = await fleet.cli("drift", "status", "--rollout", str(path), "-o", "json")
    firsts = [s["checks"][0]["report"] for s in json.loads(out)["schedules"]]
    # Each target's last good deployment is the rollout's child: the first check takes its baseline.
    assert [(r["classification"], r["baseline_captured"], r["problem"]) for r in firsts] == [
        ("no change", True, None)
    ] * 2
    storage = f"/subscriptions/{SUB}/resourceGroups/{groups[1]}/providers/{STORAGE}/stfleet{tag}"
    local_arm.admin.change_resource(storage, {"properties": {"minimumTlsVersion": "TLS1_0"}})
    code, _, err = await fleet.cli("drift", "enable", "--rollout", str(path), "--every", "6h")  # updates, checks now
    assert code == 0, err

    async def second_group_drifted() -> bool:
        code, out, _ = await fleet.cli("drift", "status", "--rollout", str(path), "-o", "json")
        latest = json.loads(out)["schedules"][1]["checks"][0]["report"] if out else None
        return code == 7 and latest is not None and latest["classification"] == "configuration drift"

    await wait_for(second_group_drifted, 90, "the drift of the second target")
    code, out, _ = await fleet.cli("drift", "status", "--rollout", str(path))
    assert code == 7 and out.count("Drift schedule") == 2 and "properties.minimumTlsVersion" in out
    code, out, err = await fleet.cli("drift", "disable", "--rollout", str(path), "-o", "json")
    assert code == 0 and len(json.loads(out)["deleted"]) == 2, err
    code, out, _ = await fleet.cli("drift", "status", "--rollout", str(path), "-o", "json")
    assert code == 0 and not any(s["enabled"] for s in json.loads(out)["schedules"])


@pytest.mark.asyncio(loop_scope="session")
async def test_drift_against_a_named_template_is_reported_at_once_and_remediated_to_it(
    fleet: Fleet, local_arm: LocalArm, dev_env: Any
) -> None:
    rg = f"rg-given-{uuid.uuid4().hex[:6]}"
    deployed = storage_template(["stgiven01"])
    deployed["resources"][0]["properties"] = {"minimumTlsVersion": "TLS1_0"}
    (fleet.tmp / "deployed.json").write_text(json.dumps(deployed))
    wanted = storage_template(["stgiven01"])
    wanted["resources"][0]["properties"] = {"minimumTlsVersion": "TLS1_2"}
    (fleet.tmp / "wanted.json").write_text(json.dumps(wanted))
    code, _, err = await fleet.cli("deploy", "-g", rg, "-l", "westeurope", "-t", "deployed.json", "--subscription", SUB)
    assert code == 0, (err, fleet.log.read_text()[-2000:])
    place = ["-g", rg, "--subscription", SUB]
    code, _, err = await fleet.cli("drift", "enable", *place, "-p", "p.json")
    assert code == 2 and "give -t too" in err
    code, _, err = await fleet.cli("drift", "enable", *place, "-t", "wanted.json")
    assert code == 2 and "-l/--location" in err

    # The first check already reports what differs from the named template (no baseline takes it for noise).
    checks = Checks(fleet, place)
    code, _, err = await fleet.cli("drift", "enable", *place, "-t", "wanted.json", "-l", "westeurope", "--remediate")
    assert code == 0, err
    first = await checks.next()
    assert first["classification"] == DriftClass.CONFIGURATION_DRIFT.value and not first["baseline_captured"], first
    assert first["compared_with"].startswith("wanted.json (sha256:")
    assert first["findings"][0]["paths"] == ["properties.minimumTlsVersion"]
    remediation = dev_env.client.get_workflow_handle(
        first["remediation_workflow_id"], run_id=first["remediation_run_id"], result_type=DeployResult
    )
    result = await asyncio.wait_for(remediation.result(), 120)
    assert result.succeeded, result.failure
    storage = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{STORAGE}/stgiven01"
    live = resources(local_arm).resources.get_by_id(storage, api_version="2023-01-01")
    assert live.properties["minimumTlsVersion"] == "TLS1_2"  # the named template's value, deployed
    await dev_env.client.get_schedule_handle(drift_schedule_id(SUB, rg)).trigger()
    after = await checks.next()
    assert after["classification"] == DriftClass.NO_CHANGE.value and after["remediation_workflow_id"] is None
    code, _, err = await fleet.cli("drift", "disable", *place)
    assert code == 0, err


SUBSCRIPTION = ["--subscription", "00000000-0000-0000-0000-000000000001"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["enable", "--rollout", "missing.yaml"], "given with --rollout does not exist"),
        (["status", "--rollout", "missing.yaml", "-g", "rg"], "leave out -g"),
        (["enable", "-g", "rg", *SUBSCRIPTION, "-t", "main.bicep", "-l", "westeurope"], "az bicep build"),
        (["enable", "-g", "rg", *SUBSCRIPTION, "--mode", "Complete"], "give -t too"),
        (["enable", "-g", "rg", *SUBSCRIPTION, "-t", "main.json"], "-l/--location"),
        (["disable"], "-g RG"),
    ],
)
def test_bad_drift_arguments_are_refused_before_anything_connects(
    argv: list[str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 with a message naming the argument; nothing listens at the Temporal address, so a command that tried
    to connect would exit 3 instead."""
    from client.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.bicep").write_text("param x string\n")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")
    assert main(["drift", *argv]) == 2
    assert says in capsys.readouterr().err
