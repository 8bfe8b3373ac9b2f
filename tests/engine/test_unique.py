"""uniqueString() and guid() must match Azure bit for bit: every vector of shared/arm-contract/unique-functions.md."""

from __future__ import annotations

import pytest

from arm_engine.scope import DeploymentScope
from arm_engine.unique import arm_guid, unique_string
from tests.support.expressions import SimpleContext, ev

AUTHORITATIVE_UNIQUE = [
    (("snap", "crackle", "pop"), "byghxckddilkc"),
    (("asd", "asdf", "asdf"), "iizpqit7ih3cc"),
    (("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myRg",), "js26ofeqkqeve"),
    (("/subscriptions/11068ed9-6c31-4a47-8183-4eca6d84bb32/resourceGroups/myRg",), "pwt7yebfrftwu"),
    (
        (
            "/subscriptions/31e9f9a0-9fd2-4294-a0a3-0101246d9700/resourceGroups/rg-modm201-20230913120256/providers/"
            "Microsoft.Compute/virtualMachines/bobjacmodm201",
        ),
        "yvjxno3je5on2",
    ),
    (("/subscriptions/00000000-0000-0000-0000-000000000000", "resource-id"), "cwvxuqg24sifi"),
]

# Consistent with the algorithm but unattributed (4b'): they cover 1-4 byte tails.
SHORT_TAIL_UNIQUE = [
    (("test",), "rbgf3xv4ufgzg"),
    (("abc",), "cgtzqvhu4i23s"),
    (("hello", "world"), "a7wkljktk6wne"),
    (("foo", "bar", "baz"), "xzi4ioaxtmth4"),
    (("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg",), "bmg7c6xu4tw46"),
]


@pytest.mark.parametrize(("parts", "expected"), AUTHORITATIVE_UNIQUE + SHORT_TAIL_UNIQUE)
def test_unique_string_vectors(parts: tuple[str, ...], expected: str) -> None:
    assert unique_string(*parts) == expected


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("foo", "bar", "baz"), "2ed86837-7c7c-5eaa-9864-dd077fd19b0d"),
        (("asdf",), "228d27cc-6fdb-5934-b7ac-1efccebade04"),
    ],
)
def test_guid_vectors(parts: tuple[str, ...], expected: str) -> None:
    assert arm_guid(*parts) == expected


@pytest.mark.parametrize(
    ("subscription", "expected"),
    [
        ("00000000-0000-0000-0000-000000000000", "js26ofeqkqeve"),
        ("11068ed9-6c31-4a47-8183-4eca6d84bb32", "pwt7yebfrftwu"),
    ],
)
def test_unique_string_of_resource_group_id_through_the_evaluator(subscription: str, expected: str) -> None:
    ctx = SimpleContext(scope=DeploymentScope(subscription_id=subscription, resource_group="myRg"))
    assert ev("[uniqueString(resourceGroup().id)]", ctx) == expected
    assert ev("[concat('store', uniqueString(resourceGroup().id))]", ctx) == "store" + expected


def test_guid_through_the_evaluator() -> None:
    assert ev("[guid('foo', 'bar', 'baz')]") == "2ed86837-7c7c-5eaa-9864-dd077fd19b0d"


def test_unique_string_is_case_sensitive_and_always_13_lowercase_chars() -> None:
    lower, upper = unique_string("myrg"), unique_string("MYRG")
    assert lower != upper
    for value in (lower, upper, unique_string(""), unique_string("x" * 1000)):
        assert len(value) == 13
        assert value.islower() or value.isdigit() or value.isalnum()
        assert value[-1] in "acegikmoqsuwy246"


def test_not_the_dsc_or_old_vectors() -> None:
    """The negative examples of the contract: values other projects assert that ARM does not produce."""
    assert unique_string("a") == "eveiun73364hy"
    assert unique_string("a") != "cfvwxu6sc4lqo"
