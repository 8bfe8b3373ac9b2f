"""Pure pieces of the local ARM: the what-if property diff, provider read-only properties, fault matching."""

from __future__ import annotations

from arm_engine import Deferred
from local_arm.faults import FaultBook, FaultRule
from local_arm.providers import enrich, list_call_answer
from local_arm.whatif import materialize, property_delta

RID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/pip1"


def test_delta_ignores_unset_read_only_and_deferred_values() -> None:
    stored = {"name": "x", "location": "eastus", "properties": {"a": 1, "default": "kept"}, "id": "ignored"}
    template = {
        "name": "x",
        "location": "East US",
        "id": "other",
        "properties": {"a": 1, "b": Deferred("[reference('y').z]")},
    }
    assert property_delta(stored, template) == []


def test_delta_reports_modify_create_and_array_children() -> None:
    stored = {"properties": {"a": 1, "list": [1, 2, 3]}, "sku": {"name": "B1"}}
    template = {"properties": {"a": 2, "list": [1, 5]}, "sku": {"name": "B1"}, "tags": {"t": "v", "u": "w"}}
    delta = property_delta(stored, template)
    assert {"path": "properties.a", "propertyChangeType": "Modify", "before": 1, "after": 2} in delta
    assert {"path": "tags.t", "propertyChangeType": "Create", "after": "v"} in delta
    array = next(d for d in delta if d["propertyChangeType"] == "Array")
    assert array["path"] == "properties.list"
    assert array["children"] == [
        {"path": "1", "propertyChangeType": "Modify", "before": 2, "after": 5},
        {"path": "2", "propertyChangeType": "Delete", "before": 3},
    ]


def test_delta_compares_numbers_and_booleans_like_json() -> None:
    assert property_delta({"p": {"n": 1}}, {"p": {"n": 1.0}}) == []
    assert property_delta({"p": {"b": True}}, {"p": {"b": 1}}) != []


def test_materialize_shows_deferred_as_expressions() -> None:
    assert materialize({"a": [Deferred("[reference('x').y]")]}) == {"a": ["[reference('x').y]"]}


def test_enrich_adds_provider_values_deterministically_and_strips_secrets() -> None:
    body = {
        "name": "pip1",
        "type": "Microsoft.Network/publicIPAddresses",
        "location": "westeurope",
        "properties": {"dnsSettings": {"domainNameLabel": "myapp"}, "adminPassword": "secret"},
    }
    first, second = enrich(body, RID), enrich(body, RID)
    assert first == second
    assert first["properties"]["dnsSettings"]["fqdn"] == "myapp.westeurope.cloudapp.azure.com"
    assert first["properties"]["ipAddress"].count(".") == 3
    assert "adminPassword" not in first["properties"]
    assert body["properties"]["adminPassword"] == "secret"  # the stored request body is untouched
    other = enrich(body, RID.replace("pip1", "pip2"))
    assert other["properties"]["ipAddress"] != first["properties"]["ipAddress"]


def test_list_keys_is_stable_per_resource() -> None:
    assert list_call_answer(RID, "listKeys") == list_call_answer(RID, "listKeys")
    assert (
        list_call_answer(RID, "listKeys")["keys"][0]["value"]
        != list_call_answer(RID + "x", "listKeys")["keys"][0]["value"]
    )


def test_fault_rules_count_skip_and_filters() -> None:
    book = FaultBook(seed=1)
    book.set_rules([FaultRule(kind="error", method="GET", path="/rg1", skip=1, count=2)])
    fired = [
        book.match(("error",), method="GET", path="/subscriptions/s/resourcegroups/rg1") is not None for _ in range(5)
    ]
    assert fired == [False, True, True, False, False]
    assert book.match(("error",), method="PUT", path="/rg1") is None
    rule = FaultRule(kind="provision_failure", resource_name="web")
    book.set_rules([rule])
    assert book.match(("provision_failure",), resource_name="plan/web") is not None  # child name matches its leaf
