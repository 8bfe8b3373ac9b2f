"""CIDR functions against the documented examples (IPv4 and IPv6)."""

from __future__ import annotations

import pytest

from arm_engine.errors import IssueCode, TemplateError
from tests.support.expressions import ev


def test_parse_cidr_ipv4_and_ipv6() -> None:
    assert ev("[parseCidr('10.144.0.0/20')]") == {
        "network": "10.144.0.0",
        "netmask": "255.255.240.0",
        "broadcast": "10.144.15.255",
        "firstUsable": "10.144.0.1",
        "lastUsable": "10.144.15.254",
        "cidr": 20,
    }
    assert ev("[parseCidr('fdad:3236:5555::/48')]") == {
        "network": "fdad:3236:5555::",
        "netmask": "ffff:ffff:ffff::",
        "firstUsable": "fdad:3236:5555::",
        "lastUsable": "fdad:3236:5555:ffff:ffff:ffff:ffff:ffff",
        "cidr": 48,
    }


def test_cidr_subnet_documented_sequences() -> None:
    assert [ev(f"[cidrSubnet('10.144.0.0/20', 24, {i})]") for i in range(5)] == [
        "10.144.0.0/24",
        "10.144.1.0/24",
        "10.144.2.0/24",
        "10.144.3.0/24",
        "10.144.4.0/24",
    ]
    assert [ev(f"[cidrSubnet('fdad:3236:5555::/48', 52, {i})]") for i in range(3)] == [
        "fdad:3236:5555::/52",
        "fdad:3236:5555:1000::/52",
        "fdad:3236:5555:2000::/52",
    ]
    assert ev("[cidrSubnet('10.0.0.0/16', 16, 0)]") == "10.0.0.0/16"


def test_cidr_host_documented_sequences() -> None:
    assert [ev(f"[cidrHost('10.144.3.0/24', {i})]") for i in range(3)] == ["10.144.3.1", "10.144.3.2", "10.144.3.3"]
    assert ev("[cidrHost('fdad:3236:5555:3000::/52', 0)]") == "fdad:3236:5555:3000::1"
    assert ev("[cidrHost('10.144.3.0/24', 253)]") == "10.144.3.254"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[parseCidr('10.0.0.0')]", IssueCode.INVALID_VALUE),
        ("[parseCidr('300.0.0.0/8')]", IssueCode.INVALID_VALUE),
        ("[cidrSubnet('10.0.0.0/16', 8, 0)]", IssueCode.INVALID_VALUE),
        ("[cidrSubnet('10.0.0.0/16', 24, 256)]", IssueCode.INDEX_OUT_OF_RANGE),
        ("[cidrHost('10.144.3.0/24', 254)]", IssueCode.INDEX_OUT_OF_RANGE),
        ("[cidrHost('10.144.3.0/24', -1)]", IssueCode.INDEX_OUT_OF_RANGE),
        ("[cidrHost('10.144.3.0/24', '1')]", IssueCode.TYPE_ERROR),
    ],
)
def test_cidr_errors(text: str, code: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(text)
    assert info.value.first.code == code
