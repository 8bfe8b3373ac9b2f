"""CIDR functions: parseCidr, cidrSubnet, cidrHost (IPv4 and IPv6), as documented for ARM templates.

IPv4 reserves the network and broadcast addresses (usable hosts start at network + 1); IPv6 has no broadcast, so
its usable range spans the whole network. cidrHost(network, 0) is the first usable address.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..errors import IssueCode
from ._core import FunctionError, Invocation, arg_int, arg_str, arm_function

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(inv: Invocation, text: str) -> IPNetwork:
    if "/" not in text:
        raise FunctionError(IssueCode.INVALID_VALUE, f"{text!r} is not in CIDR notation (address/prefix)")
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise FunctionError(IssueCode.INVALID_VALUE, f"{text!r} is not a valid CIDR range: {exc}") from None


def _usable(net: IPNetwork) -> tuple[int, int]:
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4 and net.prefixlen <= 30:
        return first + 1, last - 1
    return first, last


@arm_function("parseCidr", 1, 1)
def parse_cidr(inv: Invocation, args: list[Any]) -> dict[str, Any]:
    net = _network(inv, arg_str(inv, args, 0))
    first, last = _usable(net)
    address = ipaddress.ip_address
    result: dict[str, Any] = {"network": str(net.network_address), "netmask": str(net.netmask)}
    if net.version == 4:
        result["broadcast"] = str(net.broadcast_address)
    result["firstUsable"] = str(address(first))
    result["lastUsable"] = str(address(last))
    result["cidr"] = net.prefixlen
    return result


@arm_function("cidrSubnet", 3, 3)
def cidr_subnet(inv: Invocation, args: list[Any]) -> str:
    net = _network(inv, arg_str(inv, args, 0))
    new_prefix = arg_int(inv, args, 1)
    index = arg_int(inv, args, 2)
    if not net.prefixlen <= new_prefix <= net.max_prefixlen:
        raise FunctionError(
            IssueCode.INVALID_VALUE,
            f"the new CIDR {new_prefix} must be between {net.prefixlen} and {net.max_prefixlen}",
        )
    count = 1 << (new_prefix - net.prefixlen)
    if not 0 <= index < count:
        raise FunctionError(
            IssueCode.INDEX_OUT_OF_RANGE,
            f"subnet index {index} is out of range: {net} has {count} /{new_prefix} subnets",
        )
    start = int(net.network_address) + (index << (net.max_prefixlen - new_prefix))
    return f"{ipaddress.ip_address(start)}/{new_prefix}"


@arm_function("cidrHost", 2, 2)
def cidr_host(inv: Invocation, args: list[Any]) -> str:
    net = _network(inv, arg_str(inv, args, 0))
    index = arg_int(inv, args, 1)
    first, last = _usable(net)
    if net.version == 6:
        first += 1  # the documented IPv6 example starts at ::1
    if index < 0 or first + index > last:
        raise FunctionError(IssueCode.INDEX_OUT_OF_RANGE, f"host index {index} is outside the usable range of {net}")
    return str(ipaddress.ip_address(first + index))
