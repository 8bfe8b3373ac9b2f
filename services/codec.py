"""Payload encryption for Temporal: AES-256-GCM with a key ring.

Every payload the client or worker sends (workflow and activity inputs and results, signals, queries, memo) is
encrypted before it reaches the Temporal server, so history holds ciphertext only. The key id travels in the
payload metadata; rotation = put the new key first in the ring and keep the old ones for decoding.

Keys come from the environment, never from code:
- ``ORCHESTRATOR_CODEC_KEYS``: ``kid1=BASE64KEY,kid2=BASE64KEY`` — the first key encrypts, all decrypt;
- or ``ORCHESTRATOR_CODEC_KEY_FILE``: a JSON file ``{"active": "kid1", "keys": {"kid1": "BASE64KEY", ...}}``.
Keys are 32 random bytes, base64-encoded:
``python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEYS_ENV = "ORCHESTRATOR_CODEC_KEYS"
KEY_FILE_ENV = "ORCHESTRATOR_CODEC_KEY_FILE"
_NONCE_BYTES = 12


class CodecConfigError(ValueError):
    """The key configuration is unusable; the message names the variable or file and what to fix."""


@dataclass(frozen=True)
class KeyRing:
    active_key_id: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if self.active_key_id not in self.keys:
            raise CodecConfigError(f"the active key id {self.active_key_id!r} is not among the configured keys")
        for kid, key in self.keys.items():
            if len(key) != 32:
                raise CodecConfigError(f"key {kid!r} is {len(key)} bytes; AES-256-GCM needs 32 random bytes")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> KeyRing | None:
        """The configured key ring, or None when encryption is not configured."""
        env = os.environ if environ is None else environ
        if env.get(KEYS_ENV):
            return cls._from_pairs(env[KEYS_ENV])
        if env.get(KEY_FILE_ENV):
            return cls._from_file(Path(env[KEY_FILE_ENV]))
        return None

    @classmethod
    def _from_pairs(cls, text: str) -> KeyRing:
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            kid, sep, b64 = item.partition("=")
            if not sep or not kid:
                raise CodecConfigError(f"{KEYS_ENV} must look like 'kid1=BASE64KEY,kid2=BASE64KEY'")
            keys[kid] = _decode_key(b64, f"{KEYS_ENV} key {kid!r}")
            order.append(kid)
        if not order:
            raise CodecConfigError(f"{KEYS_ENV} is set but holds no key")
        return cls(active_key_id=order[0], keys=keys)

    @classmethod
    def _from_file(cls, path: Path) -> KeyRing:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            active = doc["active"]
            raw = doc["keys"]
        except OSError as exc:
            raise CodecConfigError(f"cannot read the key file {path} ({KEY_FILE_ENV}): {exc.strerror}") from None
        except (ValueError, KeyError, TypeError):
            raise CodecConfigError(
                f'the key file {path} ({KEY_FILE_ENV}) must be JSON {{"active": "kid", "keys": {{"kid": "BASE64"}}}}'
            ) from None
        keys = {kid: _decode_key(b64, f"key {kid!r} in {path}") for kid, b64 in raw.items()}
        return cls(active_key_id=active, keys=keys)


def _decode_key(b64: str, what: str) -> bytes:
    try:
        return base64.b64decode(b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CodecConfigError(f"{what} is not valid base64") from None


class CodecKeyError(ValueError):
    """A payload is encrypted and this process lacks the key: the message names the key id and how to supply it."""


class MissingKeysCodec(PayloadCodec):
    """The codec of a process without keys: plain payloads pass, an encrypted one is answered with what to
    configure (instead of the converter's ``KeyError: 'Unknown payload encoding binary/encrypted'``)."""

    async def encode(self, payloads: Iterable[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Iterable[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding", b"") == ENCODING:
                kid = p.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
                raise CodecKeyError(
                    f"this deployment's payloads are encrypted (key id {kid!r}) and no payload encryption keys are "
                    f"configured here: set {KEYS_ENV} (or {KEY_FILE_ENV}) to the keys the worker uses "
                    "(docs/SECURITY.md), then run the command again"
                )
            out.append(p)
        return out


class EncryptionCodec(PayloadCodec):
    """AES-GCM over the serialized payload; the key id and encoding go in clear metadata."""

    def __init__(self, key_ring: KeyRing) -> None:
        self._ring = key_ring
        self._ciphers = {kid: AESGCM(key) for kid, key in key_ring.keys.items()}

    async def encode(self, payloads: Iterable[Payload]) -> list[Payload]:
        kid = self._ring.active_key_id
        cipher = self._ciphers[kid]
        out = []
        for p in payloads:
            nonce = os.urandom(_NONCE_BYTES)
            data = nonce + cipher.encrypt(nonce, p.SerializeToString(), kid.encode())
            out.append(Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: kid.encode()}, data=data))
        return out

    async def decode(self, payloads: Iterable[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding", b"") != ENCODING:
                out.append(p)  # written before encryption was enabled, or by a client without it
                continue
            kid = p.metadata.get(KEY_ID_METADATA, b"").decode()
            cipher = self._ciphers.get(kid)
            if cipher is None:
                raise CodecKeyError(
                    f"payload was encrypted with key id {kid!r}, which this process does not have; "
                    f"add it (after the active key) to {KEYS_ENV} or {KEY_FILE_ENV}"
                )
            nonce, ciphertext = p.data[:_NONCE_BYTES], p.data[_NONCE_BYTES:]
            decoded = Payload()
            decoded.ParseFromString(cipher.decrypt(nonce, ciphertext, kid.encode()))
            out.append(decoded)
        return out
