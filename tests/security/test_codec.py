"""The payload codec: ciphertext only, rotation keeps old payloads readable, bad key config named."""

from __future__ import annotations

import base64
import json
import os

import pytest
from temporalio.api.common.v1 import Payload

from services.codec import ENCODING, KEY_ID_METADATA, CodecConfigError, EncryptionCodec, KeyRing


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"secret": text}).encode())


async def test_encoded_payload_hides_the_plaintext_and_round_trips() -> None:
    ring = KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": f"k1={_key()}"})
    assert ring is not None
    codec = EncryptionCodec(ring)
    token = "Zr8qLw3TnV0pXc5YbH2mKd7sEa9uJf1G"
    [encoded] = await codec.encode([_payload(token)])
    assert token.encode() not in encoded.SerializeToString()
    assert encoded.metadata["encoding"] == ENCODING
    assert encoded.metadata[KEY_ID_METADATA] == b"k1"
    [decoded] = await codec.decode([encoded])
    assert json.loads(decoded.data)["secret"] == token


async def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    old, new = _key(), _key()
    before = EncryptionCodec(KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": f"old={old}"}))  # type: ignore[arg-type]
    [written_before] = await before.encode([_payload("v1")])
    after = EncryptionCodec(KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": f"new={new},old={old}"}))  # type: ignore[arg-type]
    [written_after] = await after.encode([_payload("v2")])
    assert written_after.metadata[KEY_ID_METADATA] == b"new"
    decoded = await after.decode([written_before, written_after])
    assert [json.loads(p.data)["secret"] for p in decoded] == ["v1", "v2"]


async def test_unknown_key_id_is_named() -> None:
    a = EncryptionCodec(KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": f"a={_key()}"}))  # type: ignore[arg-type]
    b = EncryptionCodec(KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": f"b={_key()}"}))  # type: ignore[arg-type]
    [encoded] = await a.encode([_payload("x")])
    with pytest.raises(ValueError, match="key id 'a'"):
        await b.decode([encoded])


async def test_plain_payloads_pass_through_decode() -> None:
    codec = EncryptionCodec(KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": f"a={_key()}"}))  # type: ignore[arg-type]
    plain = _payload("not secret")
    assert await codec.decode([plain]) == [plain]


def test_key_file_and_bad_configs(tmp_path) -> None:
    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps({"active": "k2", "keys": {"k1": _key(), "k2": _key()}}))
    ring = KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEY_FILE": str(key_file)})
    assert ring is not None and ring.active_key_id == "k2"
    assert KeyRing.from_environment({}) is None
    with pytest.raises(CodecConfigError, match="not valid base64"):
        KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": "k=@@@"})
    with pytest.raises(CodecConfigError, match="32 random bytes"):
        KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": "k=" + base64.b64encode(b"short").decode()})
    with pytest.raises(CodecConfigError, match="cannot read the key file"):
        KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEY_FILE": str(tmp_path / "missing.json")})
    with pytest.raises(CodecConfigError, match="kid1=BASE64KEY"):
        KeyRing.from_environment({"ORCHESTRATOR_CODEC_KEYS": "nokey"})
