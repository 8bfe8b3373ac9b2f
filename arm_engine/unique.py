"""ARM's uniqueString() and guid(), bit-exact: their results end up in real resource names.

Algorithms per shared/arm-contract/unique-functions.md: uniqueString is a two-lane 32-bit MurmurHash3 variant
(the first two lanes of MurmurHash3_x86_128, seed 0) encoded as 13 base32 characters; guid is a version-5 UUID
in a fixed namespace. Arguments are joined with '-'.
"""

from __future__ import annotations

import uuid
from functools import lru_cache

_MASK = 0xFFFFFFFF
_C1 = 0x239B961B
_C2 = 0xAB0E9789
_A1 = 0x561CCD1B
_A2 = 0x0BCAA747
_F1 = 0x85EBCA6B
_F2 = 0xC2B2AE35
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
GUID_NAMESPACE = uuid.UUID("11fb06fb-712d-4ddd-98c7-e71bbd588830")


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _fmix(x: int) -> int:
    x ^= x >> 16
    x = (x * _F1) & _MASK
    x ^= x >> 13
    x = (x * _F2) & _MASK
    x ^= x >> 16
    return x


def _mix_k1(k1: int) -> int:
    return (_rotl((k1 * _C1) & _MASK, 15) * _C2) & _MASK


def _mix_k2(k2: int) -> int:
    return (_rotl((k2 * _C2) & _MASK, 17) * _C1) & _MASK


def murmur64(data: bytes) -> int:
    """The 64-bit hash behind uniqueString (h2 high, h1 low)."""
    h1 = h2 = 0
    length = len(data)
    blocks = length // 8
    for i in range(blocks):
        k1 = int.from_bytes(data[i * 8 : i * 8 + 4], "little")
        k2 = int.from_bytes(data[i * 8 + 4 : i * 8 + 8], "little")
        h1 ^= _mix_k1(k1)
        h1 = (_rotl(h1, 19) + h2) & _MASK
        h1 = (h1 * 5 + _A1) & _MASK
        h2 ^= _mix_k2(k2)
        h2 = (_rotl(h2, 13) + h1) & _MASK
        h2 = (h2 * 5 + _A2) & _MASK
    tail = data[blocks * 8 :]
    if tail:
        h1 ^= _mix_k1(int.from_bytes(tail[:4], "little"))
        if len(tail) > 4:
            h2 ^= _mix_k2(int.from_bytes(tail[4:], "little"))
    h1 ^= length
    h2 ^= length
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    h1 = _fmix(h1)
    h2 = _fmix(h2)
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    return (h2 << 32) | h1


@lru_cache(maxsize=4096)
def unique_string(*parts: str) -> str:
    """uniqueString(parts...): 13 lowercase base32 characters."""
    value = murmur64("-".join(parts).encode("utf-8"))
    chars = []
    for _ in range(13):
        chars.append(_ALPHABET[value >> 59])
        value = (value << 5) & 0xFFFFFFFFFFFFFFFF
    return "".join(chars)


@lru_cache(maxsize=4096)
def arm_guid(*parts: str) -> str:
    """guid(parts...): a deterministic version-5 UUID in ARM's namespace."""
    return str(uuid.uuid5(GUID_NAMESPACE, "-".join(parts)))
