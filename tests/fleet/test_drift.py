"""Drift detection through the production path: `starter.py deploy` and `starter.py drift ...` as CLI processes, a
Temporal dev server with a real Schedule, a worker process and the local ARM, whose admin API changes and deletes
resources out of band. The schedule is triggered with the Temporal client (a client we did not write) instead of
waiting for its interval. Plus the classification rules on what-if documents."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.drift import AllowEntry, DriftClass, drift_schedule_id
from harness.localarm import storage_template
from local_arm.testing import FAST, LocalArm, running_local_arm
from services.drift import baseline_of, classify
from tests.support.fleet import Fleet

SUB = "00000000-0000-0000-0000-000000000301"
STORAGE = "Microsoft.Storage/storageAccounts"


@pytest.fixture(scope="module")
def local_arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArm]:
    yield from running_local_arm(tmp_path_factory.mktemp("local-arm-drift"), **FAST)


@pytest.fixture
def fleet(dev_env: Any, local_arm: LocalArm, tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(dev_env.client.service_client.config.target_host, local_arm, tmp_path)
    f.start_worker()
    try:
        yield f
    finally:
        f.stop()


def allow_list(path: Path, *, tags_expire: datetime) -> Path:
    entries = [
        {"resource_type": STORAGE, "path": "tags.*", "expires": tags_expire.isoformat(), "who": "ops@example.com",
         "why": "the cost tool rewrites tags"},
    ]  # fmt: skip
    path.write_text(yaml.safe_dump(entries))
    return path


@pytest.mark.asyncio(loop_scope="session")
async def test_drift_classes_through_a_schedule(fleet: Fleet, local_arm: LocalArm, dev_env: Any) -> None:
    rg = f"rg-drift-{uuid.uuid4().hex[:6]}"
    template = storage_template(["stdrift0001"])
    template["resources"][0]["properties"] = {"minimumTlsVersion": "TLS1_2"}
    template["resources"][0]["tags"] = {"owner": "team-a"}
    (fleet.tmp / "t.json").write_text(json.dumps(template))
    code, _, err = await fleet.cli("deploy", "-g", rg, "-l", "westeurope", "-t", "t.json", "--subscription", SUB)
    assert code == 0, (err, fleet.log.read_text()[-2000:])
    storage = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{STORAGE}/stdrift0001"
    schedule = dev_env.client.get_schedule_handle(drift_schedule_id(SUB, rg))
    place = ["-g", rg, "--subscription", SUB]

    async def check() -> dict[str, Any]:
        """The latest finished check (waiting for the one just started)."""
        deadline = time.monotonic() + 60
        while True:
            code, out, err = await fleet.cli("drift", "status", *place, "-o", "json")
            checks = json.loads(out)["checks"] if out else []
            if checks and checks[0]["report"] is not None and checks[0]["run_id"] not in seen:
                seen.add(checks[0]["run_id"])
                return {"code": code, **checks[0]["report"]}
            assert time.monotonic() < deadline, (out, err, fleet.log.read_text()[-2000:])
            await asyncio.sleep(0.5)

    seen: set[str] = set()
    allow = allow_list(fleet.tmp / "allow.yaml", tags_expire=datetime.now(UTC) + timedelta(days=30))
    code, _, err = await fleet.cli("drift", "enable", *place, "--every", "6h", "--allow-list", str(allow))
    assert code == 0, err
    first = await check()  # runs at once and takes the baseline right after the deployment
    assert first["classification"] == DriftClass.NO_CHANGE.value and first["baseline_captured"]
    assert first["code"] == 0

    # Noise: a tag the allow-list covers changes out of band: not reported, but counted.
    local_arm.admin.change_resource(storage, {"tags": {"owner": "cost-tool"}})
    await schedule.trigger()
    noise = await check()
    assert noise["classification"] == DriftClass.NOISE.value, noise
    assert noise["suppressed_allow_list"] == 1 and noise["findings"] == [] and noise["code"] == 0

    # Configuration drift: a property changed in the portal.
    local_arm.admin.change_resource(storage, {"properties": {"minimumTlsVersion": "TLS1_0"}})
    await schedule.trigger()
    drift = await check()
    assert drift["classification"] == DriftClass.CONFIGURATION_DRIFT.value, drift
    assert drift["findings"] == [
        {"resource_id": storage, "change_type": "Modify", "paths": ["properties.minimumTlsVersion"]}
    ]
    assert drift["suppressed_allow_list"] == 1 and drift["code"] == 7  # still counted; exit 7 says drift
    code, out, _ = await fleet.cli("drift", "status", *place)
    assert code == 7 and "configuration drift" in out and "properties.minimumTlsVersion" in out

    # The allow-list entry expires: the tag difference is reported again, and the entry is named as expired.
    local_arm.admin.change_resource(storage, {"properties": {"minimumTlsVersion": "TLS1_2"}})
    expired = allow_list(fleet.tmp / "allow.yaml", tags_expire=datetime.now(UTC) - timedelta(days=1))
    code, _, err = await fleet.cli("drift", "enable", *place, "--every", "6h", "--allow-list", str(expired))
    assert code == 0, err  # updates the schedule and runs a check
    again = await check()
    assert again["classification"] == DriftClass.CONFIGURATION_DRIFT.value, again
    assert again["findings"][0]["paths"] == ["tags.owner"] and again["suppressed_allow_list"] == 0
    assert len(again["expired_entries"]) == 1 and "tags.*" in again["expired_entries"][0]

    # Destructive drift: the resource was deleted out of band.
    with fleet_resources(local_arm) as rc:
        rc.resources.begin_delete_by_id(storage, api_version="2023-01-01").result()
    await schedule.trigger()
    gone = await check()
    assert gone["classification"] == DriftClass.DESTRUCTIVE_DRIFT.value, gone
    assert gone["findings"][0]["change_type"] == "Create"

    code, _, err = await fleet.cli("drift", "disable", *place)
    assert code == 0, err
    code, _, err = await fleet.cli("drift", "status", *place)
    assert code == 2 and "not enabled" in err


def fleet_resources(local_arm: LocalArm) -> Any:
    from azure.mgmt.resource.resources import ResourceManagementClient

    from local_arm.credential import LocalArmCredential

    return ResourceManagementClient(LocalArmCredential(), SUB, **local_arm.client_kwargs())


# ------------------------------------------------------------------------------------------ classification rules


def _doc(*changes: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {"changes": list(changes)}}


def _modify(rid: str, *paths: str) -> dict[str, Any]:
    return {
        "resourceId": rid,
        "changeType": "Modify",
        "delta": [{"path": p, "propertyChangeType": "Modify"} for p in paths],
    }


RID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/{STORAGE}/st1"
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def entry(path: str, *, days: int = 1, api: str = "*") -> AllowEntry:
    return AllowEntry(resource_type=STORAGE, api_version=api, path=path, expires=NOW + timedelta(days=days),
                      who="me", why="test")  # fmt: skip


def test_provider_noise_in_the_baseline_is_suppressed_and_counted() -> None:
    baseline = baseline_of(_doc(_modify(RID, "properties.encryption.keySource")))
    cls, findings, by_baseline, by_allow, _ = classify(
        _doc(_modify(RID, "properties.encryption.keySource")), baseline=baseline, allow_list=[], now=NOW
    )
    assert (cls, findings, by_baseline, by_allow) == (DriftClass.NOISE, [], 1, 0)


def test_allow_list_patterns_versions_and_expiry() -> None:
    doc = _doc(_modify(RID, "tags.owner", "properties.networkAcls.defaultAction"))
    cls, findings, _, by_allow, expired = classify(
        doc, baseline={}, allow_list=[entry("tags.*"), entry("properties.networkAcls.*", days=-1)], now=NOW
    )
    assert cls is DriftClass.CONFIGURATION_DRIFT and by_allow == 1
    assert findings[0].paths == ["properties.networkAcls.defaultAction"] and len(expired) == 1
    # An entry bound to another api version does not apply.
    cls, _, _, by_allow, _ = classify(
        _doc(_modify(RID, "tags.owner")), baseline={}, allow_list=[entry("tags.*", api="2019-01-01")], now=NOW,
        api_versions={RID.lower(): "2023-01-01"},
    )  # fmt: skip
    assert cls is DriftClass.CONFIGURATION_DRIFT and by_allow == 0
    # ... and one bound to the resource's version does, read from what-if's full payload when not given.
    change = _modify(RID, "tags.owner") | {"after": {"apiVersion": "2019-01-01"}}
    pinned = [entry("tags.*", api="2019-01-01")]
    cls, _, _, by_allow, _ = classify(_doc(change), baseline={}, allow_list=pinned, now=NOW)
    assert cls is DriftClass.NOISE and by_allow == 1


def test_a_deleted_resource_is_destructive_whatever_else_differs() -> None:
    doc = _doc(_modify(RID, "tags.owner"), {"resourceId": RID + "x", "changeType": "Create"})
    cls, findings, *_ = classify(doc, baseline={}, allow_list=[], now=NOW)
    assert cls is DriftClass.DESTRUCTIVE_DRIFT and [f.change_type for f in findings] == ["Modify", "Create"]


def test_nothing_differs_is_no_change() -> None:
    doc = _doc({"resourceId": RID, "changeType": "NoChange"}, {"resourceId": RID + "y", "changeType": "Ignore"})
    assert classify(doc, baseline={}, allow_list=[], now=NOW)[0] is DriftClass.NO_CHANGE
