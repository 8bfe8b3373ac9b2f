"""The admin API changes a deployed resource out of band, as someone in the portal would: the SDK reads the change,
what-if of the same template reports it as a Modify, and no deployment records it (what drift detection looks for)."""

from __future__ import annotations

import pytest

from local_arm.admin import AdminError
from local_arm.testing import LocalArm
from tests.support.arm_templates import body, web_app_template


def _storage_id(local_arm: LocalArm, rg: str) -> str:
    resources = local_arm.resource_client()
    return next(r.id for r in resources.resources.list_by_resource_group(rg) if "storageAccounts" in r.id)


def test_an_out_of_band_change_is_seen_by_reads_and_what_if(local_arm: LocalArm) -> None:
    local_arm.create_resource_group("rg-oob")
    client = local_arm.deployments_client()
    client.deployments.begin_create_or_update("rg-oob", "web", body(web_app_template())).result()
    storage = _storage_id(local_arm, "rg-oob")
    deployments_before = len(list(client.deployments.list_by_resource_group("rg-oob")))

    local_arm.admin.change_resource(storage, {"properties": {"minimumTlsVersion": "TLS1_0"}, "tags": {"x": "1"}})

    res = local_arm.resource_client().resources.get_by_id(storage, api_version="2023-01-01")
    assert res.properties["minimumTlsVersion"] == "TLS1_0" and res.tags == {"x": "1"}
    plan = client.deployments.begin_what_if("rg-oob", "web", body(web_app_template())).result()
    change = next(c for c in plan.properties.changes if c.resource_id.lower() == storage.lower())
    assert change.change_type == "Modify"
    assert ("properties.minimumTlsVersion", "TLS1_0", "TLS1_2") in [(d.path, d.before, d.after) for d in change.delta]
    assert len(list(client.deployments.list_by_resource_group("rg-oob"))) == deployments_before


def test_an_out_of_band_change_of_a_missing_resource_is_refused(local_arm: LocalArm) -> None:
    with pytest.raises(AdminError, match="404"):
        local_arm.admin.change_resource("/subscriptions/s/resourceGroups/nope/providers/A.B/c/d", {"tags": {}})
    with pytest.raises(AdminError, match="400"):
        local_arm.admin._call("PATCH", "/admin/resources", {"id": 3})
