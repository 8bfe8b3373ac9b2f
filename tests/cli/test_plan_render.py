"""The what-if plan in az's notation, on real what-if shapes and on our own."""

from __future__ import annotations

import json
from pathlib import Path

from contract.plan_text import change_counts, plan_has_changes, render_plan, summary_line

RG = "/subscriptions/s1/resourceGroups/rg"


def rid(kind: str, name: str) -> str:
    return f"{RG}/providers/{kind}/{name}"


def test_contract_example_renders_like_az(shared: Path) -> None:
    doc = json.loads(
        (shared / "arm-contract/examples/deployments-2026-06-01/PostDeploymentWhatIfOnResourceGroup.json").read_text()
    )
    changes = doc["responses"]["200"]["body"]["properties"]["changes"]
    text = render_plan(changes)
    lines = text.splitlines()
    assert "Scope: /subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/my-resource-group" in lines
    assert "  + Microsoft.ManagedIdentity/userAssignedIdentities/myNewIdentity [2018-11-30]" in lines
    assert "  ~ Microsoft.ManagedIdentity/userAssignedIdentities/myExistingIdentity [2018-11-30]" in lines
    assert '    + tags.myNewTag: "my tag value"' in lines
    # az lists creations before modifications within a scope
    create = lines.index("  + Microsoft.ManagedIdentity/userAssignedIdentities/myNewIdentity [2018-11-30]")
    modify = lines.index("  ~ Microsoft.ManagedIdentity/userAssignedIdentities/myExistingIdentity [2018-11-30]")
    assert create < modify
    assert lines[-1] == "Resource changes: 1 to create, 1 to modify."
    assert plan_has_changes(changes)


def test_every_change_symbol_and_summary_order() -> None:
    kinds = ["NoChange", "Ignore", "Deploy", "Create", "Delete", "Modify", "Unsupported"]
    changes = [{"resourceId": rid("Microsoft.Web/sites", k.lower()), "changeType": k} for k in kinds]
    changes[-1]["unsupportedReason"] = "The template uses a function what-if cannot evaluate."
    lines = render_plan(changes).splitlines()
    body = [line for line in lines if line.startswith("  ") and "Microsoft.Web/sites/" in line]
    assert body == [
        "  - Microsoft.Web/sites/delete",
        "  + Microsoft.Web/sites/create",
        "  ! Microsoft.Web/sites/deploy",
        "  ~ Microsoft.Web/sites/modify",
        "  x Microsoft.Web/sites/unsupported",
        "  = Microsoft.Web/sites/nochange",
        "  * Microsoft.Web/sites/ignore",
    ]
    assert "Unsupported reason: The template uses a function what-if cannot evaluate." in "\n".join(lines)
    assert lines[-1] == (
        "Resource changes: 1 to delete, 1 to create, 1 to deploy, 1 to modify, 1 unsupported, 1 no change, 1 to ignore."
    )


def test_property_deltas_modify_array_noeffect() -> None:
    change = {
        "resourceId": rid("Microsoft.Network/virtualNetworks", "vnet-001"),
        "changeType": "Modify",
        "before": {"apiVersion": "2018-10-01"},
        "after": {"apiVersion": "2018-10-01"},
        "delta": [
            {"path": "tags.Owner", "propertyChangeType": "Delete", "before": "Team A"},
            {
                "path": "properties.addressSpace.addressPrefixes",
                "propertyChangeType": "Array",
                "children": [
                    {"path": "0", "propertyChangeType": "Delete", "before": "10.0.0.0/16"},
                    {"path": "0", "propertyChangeType": "Create", "after": "10.0.0.0/15"},
                ],
            },
            {"path": "properties.enableDdosProtection", "propertyChangeType": "Modify", "before": False, "after": True},
            {"path": "properties.flowTimeout", "propertyChangeType": "NoEffect", "after": 10},
        ],
    }
    lines = render_plan([change]).splitlines()
    start = lines.index("  ~ Microsoft.Network/virtualNetworks/vnet-001 [2018-10-01]")
    assert lines[start + 1 : start + 8] == [
        '    - tags.Owner: "Team A"',
        "    ~ properties.addressSpace.addressPrefixes: [",
        '      - 0: "10.0.0.0/16"',
        '      + 0: "10.0.0.0/15"',
        "      ]",
        "    ~ properties.enableDdosProtection: false => true",
        "    x properties.flowTimeout: 10",
    ]
    legend = lines[: lines.index("")]
    assert legend == [
        "Resource and property changes are indicated with these symbols:",
        "  - Delete",
        "  + Create",
        "  ~ Modify",
        "  x NoEffect",
    ]


def test_delete_shows_what_goes_away_and_sdk_snake_case_is_read() -> None:
    change = {
        "resource_id": rid("Microsoft.Web/sites", "old-web"),
        "change_type": "Delete",
        "before": {"name": "old-web", "location": "eastus", "properties": {"httpsOnly": True}},
    }
    text = render_plan([change])
    assert "  - Microsoft.Web/sites/old-web" in text
    assert "properties.httpsOnly: true" in text
    assert text.rstrip().endswith("Resource changes: 1 to delete.")


def test_no_change_plan() -> None:
    changes = [{"resourceId": rid("Microsoft.Storage/storageAccounts", "sa"), "changeType": "NoChange"}]
    assert not plan_has_changes(changes)
    assert change_counts(changes) == {"NoChange": 1}
    assert render_plan(changes).rstrip().endswith("Resource changes: 1 no change.")
    assert summary_line({}) == "Resource changes: none."
    assert "will not change any resources" in render_plan([])
